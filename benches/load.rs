//! The load benchmark: the release binary under 64 busy keep-alive connections, every figure
//! a ratio to a bare hyper server measured in the same run with the same client.
//!
//! This machine's speed drifts by several per cent within seconds, so the short scenarios
//! alternate with the bare server in pairs of slices and take the median of the pairs'
//! ratios ([`Ceiling::paired`]); the minute of scenario 3 is measured after the bare server.
//! Each row has the service's CPU time per answer, which the load generator's share of the
//! cores does not move.
//!
//! Scenario 8 is a distributed flood at the shipped limits (`common::flood`), on a service of
//! its own, for 120 s (`BENCH_FLOOD_SECS` shortens it), with the service's RSS at its end.
//!
//! `cargo bench --bench load` prints a markdown table and writes `target/bench-load.md`;
//! `cargo bench --bench load -- 2 5` runs only scenarios 2 and 5, and `BENCH_RESETGATE_BIN`
//! points it at another build (`common::bin`), to compare two in alternating runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

mod common;

use common::{connect, drive, join_all, mb, ms, post, summarize, Row, CONNECTIONS};

const USERS: usize = 100_000;
const WARMUP: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(5);
/// The short scenarios alternate with the ceiling in this many pairs of [`SLICE`]s.
const PAIRS: usize = 5;
const SLICE: Duration = Duration::from_secs(2);
const LONG_RUN: Duration = Duration::from_secs(60);

fn main() {
    let client = common::client_runtime();
    // (scenario, its ratio to the ceiling)
    let mut rows: Vec<(Row, Ratio)> = Vec::new();
    let mut ceiling = Ceiling::start();
    let dir = tempfile::tempdir().unwrap();
    let users = common::users_file(dir.path(), "u", USERS);

    let wanted = common::wanted();
    // Start-up and the service's own scenarios, durability "flush" (the shipped default,
    // "fsync", is scenario 4's).
    let service = common::start(dir.path(), &users, &[("storage", "durability = \"flush\"")]);
    let addr = service.addr;
    let counter = Arc::new(AtomicUsize::new(0));
    if wanted(2) {
        rows.push(ceiling.paired(&client, |length| {
            run(
                &client,
                (addr, Some(service.pid())),
                "2. forgot-password, unknown email (404)",
                length,
                404,
                |i| (FORGOT, format!("{{\"email\": \"nobody{i}@example.com\"}}")),
            )
        }));
    }
    if wanted(5) {
        rows.push(ceiling.paired(&client, |length| {
            run(
                &client,
                (addr, Some(service.pid())),
                "5. confirm-otp-reset, wrong code (400)",
                length,
                400,
                |i| {
                    (
                        CONFIRM,
                        format!(
                            "{{\"resetToken\": \"{:012}\"}}",
                            i * 7919 % 1_000_000_000_000
                        ),
                    )
                },
            )
        }));
    }
    if wanted(7) {
        rows.push(ceiling.paired(&client, |length| {
            run(
                &client,
                (addr, Some(service.pid())),
                "7. GET /reset, the reset page (200)",
                length,
                200,
                |_| ("GET /reset", String::new()),
            )
        }));
    }
    // Before scenario 3, whose backlog of mail would delay the codes this one waits for.
    let cycle = wanted(6).then(|| full_cycles(&client, addr, &service.data));
    if wanted(3) {
        rows.push(ceiling.before(&client, || {
            run(
                &client,
                (addr, Some(service.pid())),
                "3. forgot-password, known email (200, flushed)",
                LONG_RUN,
                200,
                known_users(&counter),
            )
        }));
    }
    let rss_load = service.rss();
    let resets = counter.load(Ordering::Relaxed);
    let data_size = common::du(&service.data).bytes;
    let (started_in, rss_start) = (service.started_in, service.rss_start);
    service.stop();

    if wanted(4) {
        let fsync = common::start(
            &dir.path().join("fsync"),
            &users,
            &[("storage", "durability = \"fsync\"")],
        );
        let addr = fsync.addr;
        rows.push(ceiling.paired(&client, |length| {
            run(
                &client,
                (addr, Some(fsync.pid())),
                "4. forgot-password, known email (200, fsync)",
                length,
                200,
                known_users(&counter),
            )
        }));
        fsync.stop();
    }
    let flood = wanted(8).then(|| {
        let service = common::start_shipped(
            &dir.path().join("flood"),
            &users,
            &[("server", "trusted_proxies = [\"127.0.0.1\"]")],
        );
        let rss_start = service.rss();
        let mut flood = None;
        let row = ceiling.before(&client, || {
            let f = common::flood(
                &client,
                service.addr,
                service.pid(),
                USERS,
                "8. distributed flood at the shipped limits (forgot-password, a random client per request, half known addresses)",
                flood_length(),
            );
            flood = Some((f.statuses, f.rss_half, f.rss_end));
            f.row
        });
        rows.push(row);
        service.stop();
        (rss_start, flood.expect("the flood ran"))
    });
    rows.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let first = ceiling.first.take().expect("the ceiling was measured");
    let slices = ceiling.slices.clone();
    ceiling.stop();

    let mut report = String::from("| scenario (64 connections) | req/s | ratio to ceiling | p50 | p99 | p99.9 | service CPU per answer |\n|---|---|---|---|---|---|---|\n");
    let low = slices.iter().copied().fold(f64::INFINITY, f64::min);
    let high = slices.iter().copied().fold(0.0, f64::max);
    report.push_str(&format!(
        "| 1. bare hyper (the ceiling; {} measurements, {low:.0}–{high:.0}; latencies of the first) | {:.0} | 100.0 % | {:.2} ms | {:.2} ms | {:.2} ms | |\n",
        slices.len(),
        slices.iter().sum::<f64>() / slices.len() as f64,
        ms(first.p50),
        ms(first.p99),
        ms(first.p999)
    ));
    for (r, ratio) in &rows {
        let (ratio, taken) = ratio.cells();
        report.push_str(&format!(
            "| {} ({taken}) | {:.0} | {ratio} | {:.2} ms | {:.2} ms | {:.2} ms | {} |\n",
            r.name,
            r.rps,
            ms(r.p50),
            ms(r.p99),
            ms(r.p999),
            r.cpu_per_answer
                .map(|d| format!("{:.1} µs", d.as_secs_f64() * 1e6))
                .unwrap_or_default()
        ));
    }
    if let Some(cycle) = cycle {
        report.push_str(&format!(
            "| 6. full forgot → confirm → password-reset cycle (PBKDF2 600,000) | {:.1} cycles/s | | {:.0} ms | {:.0} ms | | |\n",
            cycle.rps, ms(cycle.p50), ms(cycle.p99)
        ));
    }
    let binary = std::fs::metadata(common::bin())
        .map(|m| m.len())
        .unwrap_or(0);
    report.push_str(&format!(
        "\n| footprint | value |\n|---|---|\n\
         | RSS after start-up, {USERS} users | {:.1} MB |\n\
         | RSS after {} s of scenario 3 | {:.1} MB |\n\
         | exec to first successful request, {USERS} users | {:.0} ms |\n\
         | data dir after {USERS} users and {resets} codes issued in scenario 3 | {:.1} MB |\n\
         | release binary (stripped) | {:.1} MB |\n",
        mb(rss_start),
        LONG_RUN.as_secs(),
        mb(rss_load),
        ms(started_in),
        mb(data_size),
        mb(binary)
    ));
    if let Some((rss_start, (statuses, rss_half, rss_end))) = flood {
        let answers: Vec<String> = statuses.iter().map(|(s, n)| format!("{n} × {s}")).collect();
        let secs = flood_length().as_secs();
        report.push_str(&format!(
            "| scenario 8's service: RSS at start, after {} s, after {secs} s of the flood | {:.1}, {:.1}, {:.1} MB |\n\
             | scenario 8's answers | {} |\n",
            secs / 2,
            mb(rss_start),
            mb(rss_half),
            mb(rss_end),
            answers.join(", ")
        ));
    }
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-load.md");
    std::fs::write(out, report).unwrap();
}

/// Scenario 8's length: 120 s, or `BENCH_FLOOD_SECS` (for quick runs).
fn flood_length() -> Duration {
    let secs = std::env::var("BENCH_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    Duration::from_secs(secs.unwrap_or(120))
}

/// Forgot-password for the pre-loaded users in turn, counting them in `counter`.
fn known_users(
    counter: &Arc<AtomicUsize>,
) -> impl Fn(usize) -> (&'static str, String) + Send + Sync + 'static {
    let c = counter.clone();
    move |_| {
        let n = c.fetch_add(1, Ordering::Relaxed) % USERS;
        (FORGOT, format!("{{\"email\": \"u{n}@example.com\"}}"))
    }
}

const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";

/// A scenario's requests per second as a share of the ceiling's.
struct Ratio {
    value: f64,
    /// The ceiling's measurements it was taken against.
    ceilings: Vec<f64>,
    /// The lowest and highest of the pairs' ratios, for a paired one.
    spread: Option<(f64, f64)>,
}

impl Ratio {
    /// The median of `sorted` ratios, with their spread.
    fn paired(sorted: Vec<f64>, ceilings: Vec<f64>) -> Ratio {
        let n = sorted.len();
        let median = match n % 2 {
            1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Ratio {
            value: median,
            ceilings,
            spread: Some((sorted[0], sorted[n - 1])),
        }
    }

    /// The ratio, and how it was taken, for the table.
    fn cells(&self) -> (String, String) {
        let low = self.ceilings.iter().copied().fold(f64::INFINITY, f64::min);
        let high = self.ceilings.iter().copied().fold(0.0, f64::max);
        match self.spread {
            None => (
                format!("{:.1} %", 100.0 * self.value),
                format!("ceiling just before: {low:.0}"),
            ),
            Some((a, b)) => (
                format!(
                    "{:.1} % ({:.1}–{:.1})",
                    100.0 * self.value,
                    100.0 * a,
                    100.0 * b
                ),
                format!(
                    "median of {} pairs of {} s with the ceiling, {low:.0}–{high:.0}",
                    self.ceilings.len(),
                    SLICE.as_secs()
                ),
            ),
        }
    }
}

/// Scenario 1: a bare hyper 1.x server answering every POST with a small fixed JSON body,
/// measured again before each of the other scenarios.
struct Ceiling {
    server: tokio::runtime::Runtime,
    addr: SocketAddr,
    /// The first measurement, whose latencies the table shows.
    first: Option<Row>,
    /// Requests per second of every measurement.
    slices: Vec<f64>,
}

impl Ceiling {
    fn start() -> Ceiling {
        let (server, addr) = bare_hyper();
        Ceiling {
            server,
            addr,
            first: None,
            slices: Vec::new(),
        }
    }

    /// Measures the bare server for `length`; returns its requests per second.
    fn measure(&mut self, client: &tokio::runtime::Runtime, length: Duration) -> f64 {
        let row = run(
            client,
            (self.addr, None),
            "1. bare hyper (the ceiling)",
            length,
            200,
            |_| (FORGOT, "{\"email\": \"a@b.c\"}".to_string()),
        );
        self.slices.push(row.rps);
        let rps = row.rps;
        self.first.get_or_insert(row);
        rps
    }

    /// Alternates the bare server and `scenario` in [`PAIRS`] pairs of [`SLICE`]s: the
    /// scenario's row pools the slices (latencies, requests per second, CPU per answer), and
    /// its ratio is the median of the pairs' ratios, each slice's to the ceiling measured
    /// just before it, so that the machine's drift within the minute moves both sides of a
    /// ratio alike.
    fn paired(
        &mut self,
        client: &tokio::runtime::Runtime,
        scenario: impl Fn(Duration) -> Row,
    ) -> (Row, Ratio) {
        let mut ratios = Vec::new();
        let mut ceilings = Vec::new();
        let mut slices = Vec::new();
        for _ in 0..PAIRS {
            let base = self.measure(client, SLICE);
            let slice = scenario(SLICE);
            ratios.push(slice.rps / base);
            ceilings.push(base);
            slices.push(slice);
        }
        ratios.sort_by(f64::total_cmp);
        let name = slices[0].name.clone();
        let answers: usize = slices.iter().map(|s| s.samples.len()).sum();
        let cpu = slices
            .iter()
            .map(|s| s.cpu_per_answer.map(|c| c * s.samples.len() as u32))
            .sum::<Option<Duration>>()
            .map(|c| c / answers.max(1) as u32);
        let samples = slices.into_iter().flat_map(|s| s.samples).collect();
        let row = Row {
            cpu_per_answer: cpu,
            ..summarize(&name, samples, SLICE * PAIRS as u32)
        };
        (row, Ratio::paired(ratios, ceilings))
    }

    /// Measures the bare server, then runs `scenario`; returns the scenario's row and the
    /// ceiling measured just before it.
    fn before(
        &mut self,
        client: &tokio::runtime::Runtime,
        scenario: impl FnOnce() -> Row,
    ) -> (Row, Ratio) {
        let base = self.measure(client, RUN);
        let row = scenario();
        let ratio = Ratio {
            value: row.rps / base,
            ceilings: vec![base],
            spread: None,
        };
        (row, ratio)
    }

    fn stop(self) {
        self.server.shutdown_background();
    }
}

fn bare_hyper() -> (tokio::runtime::Runtime, SocketAddr) {
    common::tcp_server(2, |stream| async move {
        let service =
            hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                let _ = req.into_body().collect().await;
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"{\"message\":\"ok\"}",
                ))))
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
}

/// Runs [`CONNECTIONS`] connections for `warm-up + length`, each sending the requests
/// `body(i)` makes; summarizes the requests sent after the warm-up. With the service's
/// process id, the row has its CPU time per answer: user and system time over the whole
/// run (warm-up included) by every answer, a cost that, unlike the ratio, does not depend
/// on how much of the two cores the load generator took.
fn run(
    client: &tokio::runtime::Runtime,
    (addr, pid): (SocketAddr, Option<u32>),
    name: &str,
    length: Duration,
    expect: u16,
    body: impl Fn(usize) -> (&'static str, String) + Send + Sync + 'static,
) -> Row {
    let measure_from = Instant::now() + WARMUP;
    let until = measure_from + length;
    let cpu_before = pid.map(common::cpu_time);
    let samples = drive(client, addr, name, expect, None, move |i| {
        (Instant::now() < until).then(|| body(i))
    });
    let answers = samples.len() as u32;
    let cpu = pid
        .zip(cpu_before)
        .map(|(pid, before)| common::cpu_time(pid) - before);
    let measured = samples
        .into_iter()
        .filter(|(sent, _)| *sent >= measure_from)
        .map(|(_, took)| took)
        .collect();
    Row {
        cpu_per_answer: cpu.map(|cpu| cpu / answers.max(1)),
        ..summarize(name, measured, length)
    }
}

/// Scenario 6: forgot → the code from the .eml file → confirm → password-reset, with the
/// default PBKDF2 cost, from 64 connections: after a warm-up of half a `RUN`, the cycles
/// completed within the next two `RUN`s count (cycles/s: those over the window's length).
/// Codes are read by a watcher thread.
fn full_cycles(client: &tokio::runtime::Runtime, addr: SocketAddr, data: &Path) -> Row {
    let codes: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mail = data.join("mail");
    let (watch_codes, stop) = (
        codes.clone(),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let stopping = stop.clone();
    let watcher = std::thread::spawn(move || {
        let mut seen = std::collections::HashSet::new();
        while !stopping.load(Ordering::Relaxed) {
            for entry in std::fs::read_dir(&mail).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "eml") || !seen.insert(path.clone()) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let to = text
                    .lines()
                    .find_map(|l| l.strip_prefix("To: <"))
                    .map(|t| t.trim_end_matches('>').to_string());
                let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
                lines.find(|l| l.starts_with("Your one-time code is:"));
                if let (Some(to), Some(code)) = (to, lines.next()) {
                    watch_codes
                        .lock()
                        .unwrap()
                        .insert(to, code.replace(' ', ""));
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let seq = Arc::new(AtomicUsize::new(0));
    let from = Instant::now() + RUN / 2;
    let until = from + RUN + RUN;
    let samples = client.block_on(async {
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (codes, seq) = (codes.clone(), seq.clone());
                tokio::spawn(async move {
                    let mut sender = connect(addr).await;
                    let mut samples = Vec::new();
                    while Instant::now() < until {
                        let n = 50_000 + seq.fetch_add(1, Ordering::Relaxed);
                        let email = format!("u{n}@example.com");
                        let started = Instant::now();
                        let r = post(&mut sender, FORGOT, format!("{{\"email\": \"{email}\"}}")).await;
                        assert_eq!(r.status(), 200);
                        let _ = r.into_body().collect().await;
                        let code = loop {
                            if let Some(code) = codes.lock().unwrap().remove(&email) {
                                break code;
                            }
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        };
                        let r = post(&mut sender, CONFIRM, format!("{{\"resetToken\": \"{code}\"}}")).await;
                        assert_eq!(r.status(), 200);
                        let _ = r.into_body().collect().await;
                        let r = post(&mut sender, RESET, format!("{{\"email\": \"{email}\", \"password\": \"purple elephant dances {n}\"}}")).await;
                        assert_eq!(r.status(), 200);
                        let _ = r.into_body().collect().await;
                        samples.push((started, started.elapsed()));
                    }
                    samples
                })
            })
            .collect();
        join_all(tasks).await
    });
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let within = samples
        .into_iter()
        .filter(|&(started, took)| (from..=until).contains(&(started + took)))
        .map(|(_, took)| took)
        .collect();
    summarize("6", within, RUN + RUN)
}
