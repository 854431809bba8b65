//! The distributed flood (load scenario 8): forgot-password at the shipped limits, from behind
//! a trusted proxy, each request naming a random IPv4 client in `X-Forwarded-For`, half of
//! them for known addresses (taken at random from the pre-loaded accounts) and half for
//! addresses that have none (each a new one), sent unpaced from [`CONNECTIONS`] keep-alive
//! connections.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use super::{connect, join_all, rss, summarize, Row, CONNECTIONS};

/// What the flood measured.
pub struct Flood {
    /// Requests per second and latencies over the whole flood.
    pub row: Row,
    /// How many answers of each status.
    pub statuses: BTreeMap<u16, u64>,
    /// The service's RSS half-way and at the end.
    pub rss_half: u64,
    pub rss_end: u64,
}

/// Floods the service `pid` at `addr` for `length`; `users` accounts `u0@example.com` … exist.
pub fn flood(
    client: &tokio::runtime::Runtime,
    addr: SocketAddr,
    pid: u32,
    users: usize,
    name: &str,
    length: Duration,
) -> Flood {
    let started = Instant::now();
    let until = started + length;
    let half = std::thread::spawn(move || {
        std::thread::sleep(length / 2);
        rss(pid)
    });
    let seq = Arc::new(AtomicUsize::new(0));
    let answers = client.block_on(async {
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let seq = seq.clone();
                tokio::spawn(async move {
                    let mut sender = connect(addr).await;
                    let mut answers = Vec::new();
                    while Instant::now() < until {
                        let i = seq.fetch_add(1, Ordering::Relaxed) as u64;
                        let req = request(i, users);
                        sender.ready().await.expect("the connection stays usable");
                        let sent = Instant::now();
                        let resp = sender.send_request(req).await.expect("an answer");
                        let status = resp.status().as_u16();
                        let _ = resp.into_body().collect().await;
                        answers.push((status, sent.elapsed()));
                    }
                    answers
                })
            })
            .collect();
        join_all(tasks).await
    });
    let rss_end = rss(pid);
    let mut statuses = BTreeMap::new();
    for (status, _) in &answers {
        *statuses.entry(*status).or_insert(0) += 1;
    }
    let took = answers.into_iter().map(|(_, took)| took).collect();
    Flood {
        row: summarize(name, took, started.elapsed()),
        statuses,
        rss_half: half.join().expect("the RSS sampler"),
        rss_end,
    }
}

/// The `i`-th request: from a random IPv4 client; even ones for a random known address, odd
/// ones for a new unknown address.
fn request(i: u64, users: usize) -> Request<Full<Bytes>> {
    let random = splitmix64(i);
    let client = Ipv4Addr::from((random >> 32) as u32);
    let email = if i % 2 == 0 {
        format!("u{}@example.com", (random & 0xffff_ffff) % users as u64)
    } else {
        format!("stranger{i}@example.net")
    };
    Request::post("/api/v1/user/forgot-password")
        .header("host", "bench")
        .header("content-type", "application/json")
        .header("x-forwarded-for", client.to_string())
        .body(Full::new(Bytes::from(format!(
            "{{\"email\": \"{email}\"}}"
        ))))
        .expect("a valid request")
}

/// A well-mixed 64-bit value for each `n` (SplitMix64's finaliser).
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
