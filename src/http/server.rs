//! The accept loop shared by the public and the admin listener.
//!
//! Limits live here: a cap on open connections (further clients wait in the kernel's
//! backlog), a header-read timeout (it needs hyper's timer to do anything), and graceful
//! shutdown that stops accepting, then lets in-flight requests finish within a bound.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::json::Resp;
use super::timed_io::TimedIo;
use crate::App;

pub type Handler =
    fn(App, Request<Incoming>, SocketAddr) -> Pin<Box<dyn Future<Output = Resp> + Send>>;

pub struct Limits {
    pub max_connections: usize,
    /// Open connections one peer address may hold (0: no limit).
    pub max_connections_per_client: usize,
    pub header_read_timeout: Duration,
    pub write_timeout: Duration,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub shutdown_grace: Duration,
}

/// Open connections per peer address.
#[derive(Default)]
struct PerPeer(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

impl PerPeer {
    fn enter(&self, ip: std::net::IpAddr, cap: usize) -> bool {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_default();
        if cap > 0 && *n >= cap {
            return false;
        }
        *n += 1;
        true
    }

    fn leave(&self, ip: std::net::IpAddr) {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// Serves `listener` until `shutdown` resolves, then drains connections for at most the grace time.
pub async fn serve(
    listener: TcpListener,
    app: App,
    handler: Handler,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_peer = Arc::new(PerPeer::default());
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if !per_peer.enter(peer.ip(), limits.max_connections_per_client) {
            tracing::debug!(%peer, "refused: too many connections from this address");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handler(app, req, peer).await) }
        });
        let io = TokioIo::new(TimedIo::new(stream, limits.write_timeout));
        let conn = graceful.watch(builder.serve_connection(io, service));
        let per_peer = per_peer.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            per_peer.leave(peer.ip());
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("connections still open after the shutdown grace time; closing them");
        }
    }
}
