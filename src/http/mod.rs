//! The HTTP layer: parse, route, JSON in and out, one error → status map.
//!
//! It calls `recovery` and the store's user functions; it never touches sled itself.

pub mod admin;
pub mod bodies;
pub mod json;
pub mod public;
pub mod server;
mod timed_io;

use std::future::Future;
use std::net::IpAddr;
use std::time::Instant;

use hyper::{Method, Uri};

use json::Resp;

/// The one log line each request gets: who, what, the status and how long it took.
struct Logged {
    listener: &'static str,
    method: Method,
    uri: Uri,
    client: IpAddr,
}

fn logged(listener: &'static str, method: Method, uri: Uri, client: IpAddr) -> Logged {
    Logged {
        listener,
        method,
        uri,
        client,
    }
}

impl Logged {
    async fn around(self, handler: impl Future<Output = Resp>) -> Resp {
        let started = Instant::now();
        let resp = handler.await;
        tracing::info!(
            listener = self.listener,
            client = %self.client,
            method = %self.method,
            path = self.uri.path(),
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
        resp
    }
}
