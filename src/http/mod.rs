//! The HTTP layer: parse, route, JSON or the reset page in and out, one error → status map.
//!
//! It translates requests and answers: the public steps are `steps`', the operator's
//! operations `admin`'s. It never touches the store itself.

pub mod admin;
pub mod bodies;
pub mod browser;
mod conns;
mod handle;
pub mod json;
pub mod page;
pub mod public;
pub mod ready;
pub mod server;
mod timed_io;
pub mod tls;

use std::future::Future;
use std::net::IpAddr;
use std::time::Instant;

use hyper::{Method, Uri};

use json::Resp;

tokio::task_local! {
    /// The submitted address of the request being handled, masked, for its log line.
    static EMAIL: std::cell::RefCell<Option<String>>;
}

pub use crate::events::current_request_id;
use crate::events::REQUEST_ID;

/// Notes the request's address for its log line, masked (`a***@example.com`).
pub fn note_email(key: &str) {
    let _ = EMAIL.try_with(|cell| *cell.borrow_mut() = Some(mask(key)));
}

fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// The one log line each request gets: request id, client, endpoint, status, duration and
/// the masked address; the request id is also returned in `X-Request-Id`. The request is
/// counted in the metrics.
struct Logged {
    listener: &'static str,
    method: Method,
    uri: Uri,
    /// None: the local admin socket.
    client: Option<IpAddr>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

fn logged(
    listener: &'static str,
    method: Method,
    uri: Uri,
    client: Option<IpAddr>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) -> Logged {
    Logged {
        listener,
        method,
        uri,
        client,
        metrics,
    }
}

impl Logged {
    async fn around(self, handler: impl Future<Output = Resp>) -> Resp {
        let started = Instant::now();
        let id = request_id();
        let (mut resp, email) = REQUEST_ID
            .scope(
                id,
                EMAIL.scope(std::cell::RefCell::new(None), async {
                    let resp = handler.await;
                    (resp, EMAIL.with(|cell| cell.borrow_mut().take()))
                }),
            )
            .await;
        let took = started.elapsed();
        let endpoint = crate::metrics::endpoint_label(self.uri.path());
        let status = resp.status().as_u16();
        self.metrics.request(self.listener, endpoint, status, took);
        let id = std::str::from_utf8(&id).unwrap_or_default();
        if let Ok(value) = hyper::header::HeaderValue::from_str(id) {
            resp.headers_mut().insert("x-request-id", value);
        }
        tracing::info!(
            request_id = id,
            listener = self.listener,
            client = %Client(self.client),
            method = self.method.as_str(),
            endpoint,
            status,
            micros = took.as_micros() as u64,
            email = email.as_deref().unwrap_or("-"),
            "request"
        );
        resp
    }
}

/// A request's client in its log line: the address, or `local` for the admin socket.
struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("local"),
        }
    }
}

/// A request id: 16 hex digits; two ids collide with odds of 2^-64. A counter goes through SipHash under a key drawn at start-up,
/// so ids are cheap (no system call) and do not reveal how many requests came between two.
fn request_id() -> [u8; 16] {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::OnceLock;
    static KEY: OnceLock<std::hash::RandomState> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = KEY
        .get_or_init(std::hash::RandomState::new)
        .hash_one(NEXT.fetch_add(1, Relaxed));
    let mut out = [0u8; 16];
    for (i, byte) in n.to_be_bytes().iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 15)];
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_distinct_hex() {
        let ids: std::collections::HashSet<[u8; 16]> =
            (0..10_000).map(|_| super::request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.iter().all(u8::is_ascii_hexdigit)));
    }

    #[test]
    fn emails_are_masked() {
        assert_eq!(super::mask("ada.lovelace@example.com"), "a***@example.com");
        assert_eq!(super::mask("nonsense"), "***");
    }
}
