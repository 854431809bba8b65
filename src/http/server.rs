//! The accept loop shared by the public listener, the admin listener (plain or TLS) and the
//! local admin socket.
//!
//! Limits live here: a cap on open connections, one per client key (the address, IPv6 per
//! /64, as the rate limits count), a header-read timeout (it needs hyper's timer to do
//! anything), and graceful shutdown that stops accepting, then lets in-flight requests
//! finish within a bound. When a cap is reached, the oldest idle connection is closed to
//! make room ([`super::conns`]), so that clients holding idle keep-alive connections cannot
//! keep a new client waiting.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::conns::{Conn, Registry};
use super::json::Resp;
use super::timed_io::TimedIo;

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    Tcp(SocketAddr),
    /// The local admin socket: a process of the service's user (or root).
    Local,
}

impl Peer {
    /// The TCP peer's address (the unspecified address for the local socket).
    pub fn ip(self) -> IpAddr {
        match self {
            Peer::Tcp(addr) => addr.ip(),
            Peer::Local => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// A listener's router: its state (a handle, cheap to clone), the request and the peer.
pub type Handler<S> = fn(S, Request<Incoming>, Peer) -> Pin<Box<dyn Future<Output = Resp> + Send>>;

/// A listening socket.
pub enum Listener {
    Tcp(TcpListener),
    /// TCP whose connections speak TLS (the admin listener with `admin.tls_*_file`).
    Tls(TcpListener, super::tls::Acceptor),
    /// The admin socket in the data directory; only the service's user (or root) may talk.
    Local(UnixListener),
}

pub struct Limits {
    pub max_connections: usize,
    /// Open connections one client key may hold (0: no limit).
    pub max_connections_per_client: usize,
    pub header_read_timeout: Duration,
    pub write_timeout: Duration,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub shutdown_grace: Duration,
    /// Peers not capped per client (`server.trusted_proxies`): a proxy is many clients.
    pub trusted: Vec<ipnet::IpNet>,
}

/// What every connection task of one listener shares.
struct Shared<S> {
    state: S,
    handler: Handler<S>,
    trusted: Vec<ipnet::IpNet>,
    builder: http1::Builder,
    write_timeout: Duration,
    registry: Arc<Registry>,
    stop: watch::Receiver<bool>,
}

/// Serves `listener` until `shutdown` resolves, then drains connections for at most the grace time.
pub async fn serve<S: Clone + Send + Sync + 'static>(
    listener: Listener,
    state: S,
    handler: Handler<S>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(Shared {
        state,
        handler,
        trusted: limits.trusted.clone(),
        builder: builder(&limits),
        write_timeout: limits.write_timeout,
        registry: Registry::new(),
        stop,
    });
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        let (io, peer) = match accepted {
            Ok(Some(pair)) => pair,
            Ok(None) => continue,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let key = shared.key(peer);
        if !shared
            .registry
            .may_enter(key, limits.max_connections_per_client)
        {
            tracing::debug!(?peer, "refused: too many busy connections from this client");
            continue;
        }
        let permit = tokio::select! {
            permit = room(&shared.registry, &slots) => permit,
            () = &mut shutdown => break,
        };
        shared.spawn(io, peer, key, permit);
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drain(&slots, &limits).await;
}

/// hyper's HTTP/1 settings: a header timeout (with the timer it needs) and head limits.
fn builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes);
    builder
}

/// Waits until every connection has ended (all slots are back), at most the grace time.
async fn drain(slots: &Semaphore, limits: &Limits) {
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!("connections still open after the shutdown grace time; closing them");
    }
}

impl<S: Clone + Send + Sync + 'static> Shared<S> {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The key a connection is counted under: its client key, except for a trusted proxy,
    /// whose connections carry many clients (the guard tells them apart by the header the
    /// proxy writes), and the local socket.
    fn key(&self, peer: Peer) -> Option<IpAddr> {
        match peer {
            Peer::Tcp(addr) if !self.trusts(addr.ip()) => {
                Some(crate::guard::client_key(addr.ip().to_canonical()))
            }
            _ => None,
        }
    }

    /// Serves the connection on a task of its own, which gives its slot back when it ends.
    fn spawn(
        self: &Arc<Self>,
        io: Stream,
        peer: Peer,
        key: Option<IpAddr>,
        slot: OwnedSemaphorePermit,
    ) {
        let (conn, id) = self.registry.enter(key);
        let task = connection(self.clone(), io, peer, conn);
        let registry = self.registry.clone();
        tokio::spawn(async move {
            task.await;
            registry.leave(id);
            drop(slot);
        });
    }
}

/// The next connection: a TCP stream, or a local one whose peer runs as this service's
/// user or as root (None: refused).
async fn accept(listener: &Listener) -> std::io::Result<Option<(Stream, Peer)>> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, peer) = accept_tcp(l).await?;
            Ok(Some((Stream::Tcp(stream), Peer::Tcp(peer))))
        }
        Listener::Tls(l, tls) => {
            let (stream, peer) = accept_tcp(l).await?;
            Ok(Some((Stream::Tls(stream, tls.clone()), Peer::Tcp(peer))))
        }
        Listener::Local(l) => {
            let (stream, _) = l.accept().await?;
            let own = l
                .local_addr()?
                .as_pathname()
                .map(std::fs::metadata)
                .transpose()?
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m));
            let peer = stream.peer_cred()?.uid();
            if peer != 0 && Some(peer) != own {
                tracing::warn!(
                    uid = peer,
                    "refused a connection to the admin socket from another user"
                );
                return Ok(None);
            }
            Ok(Some((Stream::Local(stream), Peer::Local)))
        }
    }
}

async fn accept_tcp(l: &TcpListener) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    let (stream, peer) = l.accept().await?;
    let _ = stream.set_nodelay(true);
    Ok((stream, peer))
}

/// A connection slot: at once if one is free; else the oldest idle connection is closed,
/// and the slot it frees is taken. With none idle, waits for one to turn idle or close.
async fn room(registry: &Registry, slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return permit;
    }
    registry.set_waiting(true);
    let permit = loop {
        registry.make_room(None);
        tokio::select! {
            permit = slots.clone().acquire_owned() => break permit,
            () = registry.idled.notified() => {}
        }
    };
    registry.set_waiting(false);
    permit.expect("the semaphore is never closed")
}

/// A TCP or a local stream, or a TCP stream whose TLS handshake is still to come (on the
/// connection's task, so that a slow handshake never holds up the accept loop).
enum Stream {
    Tcp(tokio::net::TcpStream),
    Tls(tokio::net::TcpStream, super::tls::Acceptor),
    Local(tokio::net::UnixStream),
}

fn connection<T: Clone + Send + Sync + 'static>(
    shared: Arc<Shared<T>>,
    io: Stream,
    peer: Peer,
    conn: Arc<Conn>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    match io {
        Stream::Tcp(s) => Box::pin(run_connection(shared, s, peer, conn)),
        Stream::Local(s) => Box::pin(run_connection(shared, s, peer, conn)),
        Stream::Tls(s, tls) => Box::pin(async move {
            if let Some(s) = tls.handshake(s).await {
                run_connection(shared, s, peer, conn).await;
            }
        }),
    }
}

/// Serves one connection until it ends, is asked to make room, or the listener stops; the
/// last two close it gracefully (at once when idle, else after the request in progress).
async fn run_connection<T, S>(shared: Arc<Shared<T>>, stream: S, peer: Peer, conn: Arc<Conn>)
where
    T: Clone + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (state, handler) = (shared.state.clone(), shared.handler);
    let activity = conn.clone();
    let service = service_fn(move |req| {
        let state = state.clone();
        let busy = activity.busy();
        async move {
            let resp = handler(state, req, peer).await;
            drop(busy);
            Ok::<_, Infallible>(resp)
        }
    });
    let io = TokioIo::new(TimedIo::new(stream, shared.write_timeout));
    let serving = shared.builder.serve_connection(io, service);
    tokio::pin!(serving);
    let mut stop = shared.stop.clone();
    let ended = tokio::select! {
        ended = serving.as_mut() => Some(ended),
        () = conn.close.notified() => {
            if conn.idle() {
                // Making room: no answer is owed, so the connection goes at once, also one
                // that has sent part of a request head (hyper's graceful close would wait
                // for the rest, up to the header timeout, with the new client waiting).
                return;
            }
            None
        }
        _ = stop.wait_for(|stop| *stop) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            serving.as_mut().graceful_shutdown();
            serving.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(?peer, error = %e, "connection ended with an error");
    }
}
