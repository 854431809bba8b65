//! A paced flood of forgot-password requests through a trusted proxy: keep-alive
//! connections from this process, each request naming its client in `X-Forwarded-For`.
//! The pacing shapes the load (so many requests a second); nothing waits on it for
//! synchronisation.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request of a flood: the client address the proxy names, and the address asked for.
pub type Shot = (String, String);

/// A flood in flight; [`Flood::join`] waits for its end and counts the answers by status.
pub struct Flood {
    threads: Vec<std::thread::JoinHandle<BTreeMap<u16, u64>>>,
}

impl Flood {
    /// `rate` requests a second for `duration`, spread over `connections` connections;
    /// request `i` is `shot(i)`.
    pub fn start(
        addr: SocketAddr,
        rate: u64,
        duration: Duration,
        connections: u64,
        shot: impl Fn(u64) -> Shot + Send + Sync + 'static,
    ) -> Flood {
        let shot = Arc::new(shot);
        let total = rate * duration.as_secs();
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let threads = (0..connections)
            .map(|_| {
                let (shot, next) = (shot.clone(), next.clone());
                std::thread::spawn(move || {
                    let mut answers = BTreeMap::new();
                    let mut conn = None;
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        if i >= total {
                            return answers;
                        }
                        let due = started + Duration::from_micros(i * 1_000_000 / rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let (client, email) = shot(i);
                        let status = forgot(&mut conn, addr, &client, &email);
                        *answers.entry(status).or_insert(0) += 1;
                    }
                })
            })
            .collect();
        Flood { threads }
    }

    /// The answers, counted by status.
    pub fn join(self) -> BTreeMap<u16, u64> {
        let mut all = BTreeMap::new();
        for thread in self.threads {
            for (status, n) in thread.join().expect("a flood thread") {
                *all.entry(status).or_insert(0) += n;
            }
        }
        all
    }
}

/// One forgot-password for `email` from `client` (via the proxy), on the kept connection
/// (opened again when the server closed it); its status.
pub fn forgot(
    conn: &mut Option<BufReader<TcpStream>>,
    addr: SocketAddr,
    client: &str,
    email: &str,
) -> u16 {
    let body = format!(r#"{{"email": "{email}"}}"#);
    let request = format!(
        "POST /api/v1/user/forgot-password HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Forwarded-For: {client}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for _ in 0..2 {
        let reader = conn.get_or_insert_with(|| {
            let stream = TcpStream::connect(addr).expect("connecting to resetgate");
            stream.set_nodelay(true).expect("nodelay");
            stream
                .set_read_timeout(Some(super::PATIENCE))
                .expect("read timeout");
            BufReader::new(stream)
        });
        if reader.get_mut().write_all(request.as_bytes()).is_ok() {
            if let Some((status, keep)) = answer(reader) {
                if !keep {
                    *conn = None;
                }
                return status;
            }
        }
        // The server closed the kept connection: once more on a new one.
        *conn = None;
    }
    panic!("no answer from resetgate on a fresh connection");
}

/// Reads one answer: its status, and whether the connection stays open.
fn answer(reader: &mut BufReader<TcpStream>) -> Option<(u16, bool)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let (mut length, mut keep) = (0usize, true);
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "connection" => keep = !value.trim().eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((status, keep))
}

/// A small deterministic generator (xorshift), so that a flood's addresses differ per run
/// only by its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The `i`-th pseudo-random value of a stream seeded with `seed`.
pub fn nth(seed: u64, i: u64) -> u64 {
    let mut rng = Rng::new(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.next();
    rng.next()
}

/// A client in a random /64 of 2001:db8::/32.
pub fn v6_in_one_32(seed: u64, i: u64) -> String {
    let r = nth(seed, i);
    format!(
        "2001:db8:{:x}:{:x}:{:x}::1",
        r & 0xffff,
        (r >> 16) & 0xffff,
        (r >> 32) & 0xffff
    )
}

/// One of 5,000 random IPv4 clients (outside the real users' 198.18.0.0/15).
pub fn v4_of_5000(seed: u64, i: u64) -> String {
    let r = nth(seed, nth(seed, i) % 5_000);
    let a = 1 + (r & 0x7f) as u8; // 1..=128, never 198
    format!(
        "{a}.{}.{}.{}",
        (r >> 8) & 0xff,
        (r >> 16) & 0xff,
        1 + (r >> 24) % 254
    )
}
