//! A minimal SMTP server inside the benchmark: it accepts every message, keeps nothing but
//! a count, and answers fast enough not to be what is measured (aiosmtpd, the tests'
//! server, is the slower side of any exchange with the service).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;

/// Each accepted message's first recipient and when its DATA was accepted.
pub type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// The in-process SMTP sink: dropping `runtime` stops it.
pub struct Sink {
    pub runtime: tokio::runtime::Runtime,
    pub port: u16,
    /// Messages accepted so far.
    pub accepted: Arc<AtomicU64>,
    /// When recording: each accepted message's first recipient and when its DATA was accepted.
    pub arrivals: Arrivals,
}

/// A minimal SMTP server on a runtime of its own: it accepts every message, counts it, adds
/// a permit to `pace`, and with `record` notes its recipient and the time in `arrivals`.
pub fn smtp_sink(pace: Option<Arc<Semaphore>>, record: bool) -> Sink {
    let accepted = Arc::new(AtomicU64::new(0));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = Seen {
        accepted: accepted.clone(),
        arrivals: record.then(|| arrivals.clone()),
        pace,
    };
    let (runtime, addr) = super::tcp_server(1, move |stream| smtp_session(stream, seen.clone()));
    Sink {
        runtime,
        port: addr.port(),
        accepted,
        arrivals,
    }
}

/// What a session reports each accepted message to.
#[derive(Clone)]
struct Seen {
    accepted: Arc<AtomicU64>,
    arrivals: Option<Arrivals>,
    pace: Option<Arc<Semaphore>>,
}

impl Seen {
    fn message(&self, rcpt: &str) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        if let Some(pace) = &self.pace {
            pace.add_permits(1);
        }
        if let Some(arrivals) = &self.arrivals {
            arrivals
                .lock()
                .unwrap()
                .push((rcpt.to_string(), Instant::now()));
        }
    }
}

/// One SMTP session, line by line (pipelined commands are answered in order).
async fn smtp_session(stream: tokio::net::TcpStream, seen: Seen) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    let mut in_data = false;
    let mut rcpt = String::new();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply: &[u8] = if in_data {
            // Every line ends in CRLF, so a line "." is the end "\r\n.\r\n".
            if line != b".\r\n" {
                continue;
            }
            in_data = false;
            seen.message(&rcpt);
            b"250 2.0.0 accepted\r\n"
        } else {
            let verb = line
                .get(..4)
                .map(|v| v.to_ascii_uppercase())
                .unwrap_or_default();
            match &verb[..] {
                b"EHLO" => b"250-sink\r\n250 PIPELINING\r\n",
                b"HELO" => b"250 sink\r\n",
                b"RCPT" => {
                    rcpt = recipient(&line);
                    b"250 2.0.0 ok\r\n"
                }
                b"MAIL" | b"RSET" | b"NOOP" => b"250 2.0.0 ok\r\n",
                b"DATA" => {
                    in_data = true;
                    b"354 end with <CRLF>.<CRLF>\r\n"
                }
                b"QUIT" => {
                    let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                    return;
                }
                _ => b"502 5.5.2 not implemented\r\n",
            }
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The address in "RCPT TO:<address>".
fn recipient(line: &[u8]) -> String {
    let line = String::from_utf8_lossy(line);
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line.get(start..end).unwrap_or_default().to_string()
}
