//! The soak benchmark: one million forgot-password cycles against the release binary, to show
//! that its RSS and its store on disk stay flat while codes are issued, mailed and expire.
//!
//! 100,000 accounts, every limit raised far above the load, durability "flush", codes that live 2 s
//! and a sweeper that runs every second, so expired codes leave the store during the run.
//! Mail goes through the real outbox and SMTP transport (4 connections) to a minimal SMTP
//! sink in this process that keeps nothing but a count. A cycle is one forgot-password
//! request for a known address, answered 200, from 64 keep-alive connections.
//!
//! The requests are paced by the sink: at most `MAILS_IN_FLIGHT` answered requests may wait
//! for their mail. Unpaced, the requests outrun the outbox (each delivery waits for a store
//! flush, and those queue behind the requests' own), and with 2 s codes most messages would
//! expire unsent; paced, every message is delivered and the outbox stays short, so what
//! grows is the service's own doing.
//!
//! `cargo bench --bench soak` (cycles: `SOAK_CYCLES`, default 1,000,000) prints a markdown
//! table, a sample every tenth of the cycles and one after the outbox drained and the
//! sweeper ran, and writes it to `target/bench-soak.md`. Nothing is asserted about speed;
//! every answer must be 200, and every message must reach the sink or be counted as
//! expired before it could be sent (`resetgate_outbox_expired_unsent_total`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

mod common;

use common::{mb, ms, DiskUse, Service};

const USERS: usize = 100_000;
const CHECKPOINTS: usize = 10;
const CODE_TTL: Duration = Duration::from_secs(2);
const SWEEP: Duration = Duration::from_secs(1);
const SMTP_CONNECTIONS: usize = 4;
/// Answered requests whose mail the sink has not accepted yet, at most.
const MAILS_IN_FLIGHT: usize = 1_000;
const FORGOT: &str = "/api/v1/user/forgot-password";

/// One row of the table.
struct Sample {
    label: String,
    cycles: usize,
    elapsed: Duration,
    /// Cycles per second and p99 latency since the previous checkpoint.
    segment: Option<(f64, Duration)>,
    rss: u64,
    store: DiskUse,
    outbox_depth: Option<f64>,
    dropped_unsent: Option<f64>,
    codes_swept: Option<f64>,
    accepted: u64,
}

fn main() {
    let cycles: usize = std::env::var("SOAK_CYCLES")
        .ok()
        .map(|v| v.replace('_', "").parse().expect("SOAK_CYCLES: a number"))
        .unwrap_or(1_000_000);
    assert!(
        cycles >= CHECKPOINTS,
        "SOAK_CYCLES must be at least {CHECKPOINTS}"
    );
    let client = common::client_runtime();
    let pace = Arc::new(Semaphore::new(MAILS_IN_FLIGHT));
    let common::Sink {
        runtime: _sink,
        port,
        accepted,
        ..
    } = common::smtp_sink(Some(pace.clone()), false);

    let dir = tempfile::tempdir().unwrap();
    let users = common::users_file(dir.path(), "u", USERS);
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nconnections = {SMTP_CONNECTIONS}"
    );
    let sweep = format!("sweep_interval = \"{}s\"", SWEEP.as_secs());
    let ttl = format!("code_ttl = \"{}s\"", CODE_TTL.as_secs());
    let service = common::start(
        dir.path(),
        &users,
        &[
            ("storage", "durability = \"flush\""),
            ("storage", &sweep),
            ("recovery", &ttl),
            ("mail", "transport = \"smtp\""),
            ("mail", "from = \"soak <noreply@example.com>\""),
            ("mail.smtp", &smtp),
        ],
    );
    let token = std::fs::read_to_string(service.data.join("admin.token")).expect("admin.token");
    let probe = Probe {
        service: &service,
        token: token.trim(),
        accepted: &accepted,
    };

    // A message that expires unsent is never accepted, so its permit would be lost: give
    // the permits of expired messages back as the service counts them.
    let refill = Refill::start(service.admin, token.trim(), pace.clone());

    let started = Instant::now();
    let mut rows = Vec::new();
    let mut done = 0;
    for k in 1..=CHECKPOINTS {
        let checkpoint = cycles * k / CHECKPOINTS;
        let (base, count) = (done, checkpoint - done);
        let segment = Instant::now();
        let answers = common::drive(
            &client,
            service.addr,
            "forgot-password, known address",
            200,
            Some(pace.clone()),
            move |i| {
                (i < count).then(|| {
                    let n = (base + i) % USERS;
                    (FORGOT, format!("{{\"email\": \"u{n}@example.com\"}}"))
                })
            },
        );
        assert_eq!(answers.len(), count, "every cycle answered");
        let took = segment.elapsed();
        let latencies = answers.into_iter().map(|(_, took)| took).collect();
        let row = common::summarize("", latencies, took);
        done = checkpoint;
        rows.push(probe.sample(format!("{done}"), done, started, Some((row.rps, row.p99))));
        eprintln!("soak: {done} of {cycles} cycles, {:.0} cycles/s", row.rps);
    }
    let driven = started.elapsed();

    // The outbox drains: every message reaches the sink, or the wait ends when nothing has
    // moved for a while (then the assertion below says what is missing).
    let bound = Duration::from_secs(120) + Duration::from_millis(cycles as u64);
    let drain = Instant::now();
    let accounted = || accepted.load(Ordering::Relaxed) + refill.expired();
    let (mut last, mut moved) = (accounted(), Instant::now());
    while accounted() < cycles as u64 && drain.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(100));
        let now = accounted();
        if now != last {
            (last, moved) = (now, Instant::now());
        } else if moved.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    let drained_in = drain.elapsed();
    // Every code has expired and the sweeper has run at least once since.
    std::thread::sleep(CODE_TTL + SWEEP * 2 + Duration::from_millis(500));
    let last = probe.sample("drained, swept".into(), done, started, None);
    let delivered = last.accepted;
    let dropped = last.dropped_unsent.unwrap_or(0.0) as u64;
    rows.push(last);

    let report = report(&rows, cycles, driven, drained_in);
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-soak.md");
    std::fs::write(out, &report).unwrap();
    service.stop();
    // Nothing acknowledged is lost: each message was delivered, or visibly set aside
    // because its (2 s) code expired first.
    assert!(
        delivered + dropped >= cycles as u64,
        "the sink received {delivered} of {cycles} messages and {dropped} expired unsent (see the table)"
    );
}

/// What a sample reads: the service's RSS and store, its metrics, and the sink's count.
struct Probe<'a> {
    service: &'a Service,
    token: &'a str,
    accepted: &'a AtomicU64,
}

impl Probe<'_> {
    fn sample(
        &self,
        label: String,
        cycles: usize,
        started: Instant,
        segment: Option<(f64, Duration)>,
    ) -> Sample {
        let metrics = common::metrics(self.service.admin, self.token);
        let metric = |name: &str| metrics.get(name).copied();
        Sample {
            label,
            cycles,
            elapsed: started.elapsed(),
            segment,
            rss: self.service.rss(),
            store: common::du(&self.service.data.join("store")),
            outbox_depth: metric("resetgate_outbox_depth"),
            dropped_unsent: metric("resetgate_outbox_expired_unsent_total"),
            codes_swept: metric("resetgate_codes_expired_total"),
            accepted: self.accepted.load(Ordering::Relaxed),
        }
    }
}

/// Polls `resetgate_outbox_expired_unsent_total` and adds a pacing permit for each newly
/// expired message (the sink adds one for each accepted message).
struct Refill {
    expired: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Refill {
    fn start(admin: SocketAddr, token: &str, pace: Arc<Semaphore>) -> Refill {
        let expired = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, stopping, token) = (expired.clone(), stop.clone(), token.to_string());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let now = common::metrics(admin, &token)
                    .get("resetgate_outbox_expired_unsent_total")
                    .map_or(0, |v| *v as u64);
                let before = seen.swap(now.max(seen.load(Ordering::Relaxed)), Ordering::Relaxed);
                pace.add_permits(now.saturating_sub(before) as usize);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Refill { expired, stop }
    }

    /// Messages the service has counted as expired unsent so far.
    fn expired(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }
}

impl Drop for Refill {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The table, a summary line and the rates.
fn report(rows: &[Sample], cycles: usize, driven: Duration, drained_in: Duration) -> String {
    let opt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    let mut out = format!(
        "Soak: {cycles} forgot-password cycles over {USERS} accounts, 64 connections, \
         code_ttl {}s, sweep every {}s, SMTP sink over {SMTP_CONNECTIONS} connections, \
         at most {MAILS_IN_FLIGHT} mails in flight.\n\n\
         | sample | cycles | elapsed s | cycles/s | p99 ms | RSS MB | store MB | store allocated MB | outbox depth | mails accepted | dropped unsent | codes swept |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        CODE_TTL.as_secs(),
        SWEEP.as_secs()
    );
    for r in rows {
        let (rate, p99) = r.segment.map_or(("–".into(), "–".into()), |(rate, p99)| {
            (format!("{rate:.0}"), format!("{:.1}", ms(p99)))
        });
        out.push_str(&format!(
            "| {} | {} | {:.1} | {rate} | {p99} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} |\n",
            r.label,
            r.cycles,
            r.elapsed.as_secs_f64(),
            mb(r.rss),
            mb(r.store.bytes),
            mb(r.store.allocated),
            opt(r.outbox_depth),
            r.accepted,
            opt(r.dropped_unsent),
            opt(r.codes_swept),
        ));
    }
    let first = &rows[0];
    let at_end = &rows[rows.len() - 2];
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    out.push_str(&format!(
        "\nAt {} cycles: RSS {:.2}× and disk {:.2}× (allocated {:.2}×) of the first checkpoint ({} cycles). \
         {:.0} cycles/s over the run; the outbox drained {:.1} s after the last request.\n",
        at_end.cycles,
        ratio(at_end.rss, first.rss),
        ratio(at_end.store.bytes, first.store.bytes),
        ratio(at_end.store.allocated, first.store.allocated),
        first.cycles,
        cycles as f64 / driven.as_secs_f64(),
        drained_in.as_secs_f64(),
    ));
    out
}
