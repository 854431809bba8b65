//! The load generator's side: tokio runtimes, hyper client connections, and [`drive`],
//! which sends a benchmark's requests from many keep-alive connections at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;

use super::CONNECTIONS;

/// A loopback TCP server on a runtime of its own with `threads` workers (dropping the runtime
/// stops it): `session` serves each connection. Returns the runtime and the address.
pub fn tcp_server<S, F>(threads: usize, session: S) -> (tokio::runtime::Runtime, SocketAddr)
where
    S: Fn(tokio::net::TcpStream) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = runtime(threads);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(session(stream));
        }
    });
    (runtime, addr)
}

/// A multi-threaded tokio runtime with `workers` worker threads, timers and I/O on.
fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// The runtime the load and soak benchmarks' client ([`drive`]) runs on: two workers.
pub fn client_runtime() -> tokio::runtime::Runtime {
    runtime(2)
}

/// One keep-alive hyper connection.
pub async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// POSTs `json` to `path` once the connection is ready; a `path` of the form
/// "GET /reset" is a GET of that path instead (`json` unused).
pub async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    path: &'static str,
    json: String,
) -> Response<Incoming> {
    sender.ready().await.expect("the connection stays usable");
    let req = match path.strip_prefix("GET ") {
        Some(path) => Request::get(path)
            .header("host", "bench")
            .body(Full::new(Bytes::new())),
        None => Request::post(path)
            .header("host", "bench")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json))),
    }
    .unwrap();
    sender.send_request(req).await.expect("an answer")
}

/// Sends requests from [`CONNECTIONS`] keep-alive connections: the `i`-th (counted over all
/// of them) is `request(i)`, until that is `None`. Every answer must have status `expect`.
/// With `pace`, each request first takes a permit from it for good (whoever adds permits
/// sets the pace). Returns, for each request, when it was sent and how long its answer took.
pub fn drive(
    client: &tokio::runtime::Runtime,
    addr: SocketAddr,
    label: &str,
    expect: u16,
    pace: Option<Arc<Semaphore>>,
    request: impl Fn(usize) -> Option<(&'static str, String)> + Send + Sync + 'static,
) -> Vec<(Instant, Duration)> {
    drive_answers(client, addr, pace, request)
        .into_iter()
        .map(|(_, sent, took, status)| {
            assert_eq!(status, expect, "{label}");
            (sent, took)
        })
        .collect()
}

/// [`drive`], with each answer's request number and status returned beside its timing
/// instead of checked.
pub fn drive_answers(
    client: &tokio::runtime::Runtime,
    addr: SocketAddr,
    pace: Option<Arc<Semaphore>>,
    request: impl Fn(usize) -> Option<(&'static str, String)> + Send + Sync + 'static,
) -> Vec<(usize, Instant, Duration, u16)> {
    let request = Arc::new(request);
    let seq = Arc::new(AtomicUsize::new(0));
    client.block_on(async {
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (request, seq, pace) = (request.clone(), seq.clone(), pace.clone());
                tokio::spawn(async move {
                    let mut sender = connect(addr).await;
                    let mut samples = Vec::new();
                    loop {
                        let i = seq.fetch_add(1, Ordering::Relaxed);
                        let Some((path, json)) = request(i) else {
                            break;
                        };
                        if let Some(pace) = &pace {
                            pace.acquire().await.expect("the pace stays open").forget();
                        }
                        let sent = Instant::now();
                        let resp = post(&mut sender, path, json).await;
                        let status = resp.status().as_u16();
                        let _ = resp.into_body().collect().await;
                        samples.push((i, sent, sent.elapsed(), status));
                    }
                    samples
                })
            })
            .collect();
        join_all(tasks).await
    })
}

/// Every connection task's samples, together.
pub async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<Vec<T>>>) -> Vec<T> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a connection task"));
    }
    all
}
