//! The load benchmark: the release binary under 64 busy keep-alive connections, every figure
//! a ratio to a bare hyper server measured in the same run with the same client.
//!
//! `cargo bench --bench load` prints a markdown table and writes `target/bench-load.md`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const CONNECTIONS: usize = 64;
const USERS: usize = 100_000;
const WARMUP: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(5);
const LONG_RUN: Duration = Duration::from_secs(60);

struct Row {
    name: String,
    rps: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
}

fn main() {
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();

    let ceiling = bare_hyper(&client);
    rows.push(ceiling);
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.jsonl");
    std::fs::write(
        &users,
        (0..USERS)
            .map(|i| format!("{{\"email\": \"u{i}@example.com\"}}\n"))
            .collect::<String>(),
    )
    .unwrap();

    // Start-up and the service's own scenarios, durability "flush" (as shipped).
    let (mut service, addr, data, started_in, rss_start) = start(dir.path(), "flush", &users);
    let counter = Arc::new(AtomicUsize::new(0));
    rows.push(run(
        &client,
        addr,
        "2. forgot-password, unknown email (404)",
        RUN,
        404,
        |i| (FORGOT, format!("{{\"email\": \"nobody{i}@example.com\"}}")),
    ));
    rows.push(run(
        &client,
        addr,
        "5. confirm-otp-reset, wrong code (400)",
        RUN,
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
    ));
    // Before scenario 3, whose backlog of mail would delay the codes this one waits for.
    let cycle = full_cycles(&client, addr, &data);
    let c = counter.clone();
    rows.insert(
        2,
        run(
            &client,
            addr,
            "3. forgot-password, known email (200, flushed)",
            LONG_RUN,
            200,
            move |_| {
                let n = c.fetch_add(1, Ordering::Relaxed) % USERS;
                (FORGOT, format!("{{\"email\": \"u{n}@example.com\"}}"))
            },
        ),
    );
    let rss_load = rss(service.id());
    let resets = counter.load(Ordering::Relaxed);
    let data_size = du(&data);
    let _ = service.kill();
    let _ = service.wait();

    let (mut fsync, addr, _, _, _) = start(&dir.path().join("fsync"), "fsync", &users);
    let c = counter.clone();
    rows.insert(
        3,
        run(
            &client,
            addr,
            "4. forgot-password, known email (200, fsync)",
            RUN,
            200,
            move |_| {
                let n = c.fetch_add(1, Ordering::Relaxed) % USERS;
                (FORGOT, format!("{{\"email\": \"u{n}@example.com\"}}"))
            },
        ),
    );
    let _ = fsync.kill();
    let _ = fsync.wait();

    let base = rows[0].rps;
    let mut report = String::from("| scenario (64 connections) | req/s | ratio to ceiling | p50 | p99 | p99.9 |\n|---|---|---|---|---|---|\n");
    for r in &rows {
        report.push_str(&format!(
            "| {} | {:.0} | {:.1} % | {:.2} ms | {:.2} ms | {:.2} ms |\n",
            r.name,
            r.rps,
            100.0 * r.rps / base,
            ms(r.p50),
            ms(r.p99),
            ms(r.p999)
        ));
    }
    report.push_str(&format!(
        "| 6. full forgot → confirm → password-reset cycle (PBKDF2 600,000) | {:.1} cycles/s | | {:.0} ms | {:.0} ms | |\n",
        cycle.rps, ms(cycle.p50), ms(cycle.p99)
    ));
    let binary = std::fs::metadata(env!("CARGO_BIN_EXE_resetgate"))
        .map(|m| m.len())
        .unwrap_or(0);
    report.push_str(&format!(
        "\n| footprint | value |\n|---|---|\n\
         | RSS after start-up, {USERS} users | {:.1} MB |\n\
         | RSS after {} s of scenario 3 | {:.1} MB |\n\
         | exec to first successful request, {USERS} users | {:.0} ms |\n\
         | data dir after {USERS} users and {resets} resets | {:.1} MB |\n\
         | release binary (stripped) | {:.1} MB |\n",
        mb(rss_start),
        LONG_RUN.as_secs(),
        mb(rss_load),
        ms(started_in),
        mb(data_size),
        mb(binary)
    ));
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-load.md");
    std::fs::write(out, report).unwrap();
}

const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Scenario 1: a bare hyper 1.x server answering every POST with a small fixed JSON body.
fn bare_hyper(client: &tokio::runtime::Runtime) -> Row {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    server.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"{\"message\":\"ok\"}"),
                        )))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let row = run(
        client,
        addr,
        "1. bare hyper (the ceiling)",
        RUN,
        200,
        |_| (FORGOT, "{\"email\": \"a@b.c\"}".to_string()),
    );
    server.shutdown_background();
    row
}

/// Runs 64 connections for `warm-up + length`, each sending the requests `body(i)` makes.
fn run(
    client: &tokio::runtime::Runtime,
    addr: SocketAddr,
    name: &str,
    length: Duration,
    expect: u16,
    body: impl Fn(usize) -> (&'static str, String) + Send + Sync + 'static,
) -> Row {
    let body = Arc::new(body);
    let seq = Arc::new(AtomicUsize::new(0));
    let label: Arc<str> = Arc::from(name);
    let results = client.block_on(async {
        let start = Instant::now();
        let measure_from = start + WARMUP;
        let until = measure_from + length;
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (body, seq, label) = (body.clone(), seq.clone(), label.clone());
                tokio::spawn(async move {
                    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let (mut sender, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .unwrap();
                    tokio::spawn(conn);
                    let mut samples = Vec::new();
                    loop {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        let (path, json) = body(seq.fetch_add(1, Ordering::Relaxed));
                        sender.ready().await.expect("the connection stays usable");
                        let req = Request::post(path)
                            .header("host", "bench")
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(json)))
                            .unwrap();
                        let resp = sender.send_request(req).await.expect("an answer");
                        let status = resp.status().as_u16();
                        let _ = resp.into_body().collect().await;
                        assert_eq!(status, expect, "{label}");
                        if now >= measure_from {
                            samples.push(now.elapsed());
                        }
                    }
                    samples
                })
            })
            .collect();
        join_all(tasks).await
    });
    summarize(name, results, length)
}

/// Every connection task's samples, together.
async fn join_all(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> Vec<Duration> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a connection task"));
    }
    all
}

/// Requests per second and percentiles of `samples` taken over `length`.
fn summarize(name: &str, mut samples: Vec<Duration>, length: Duration) -> Row {
    samples.sort();
    let at = |q: f64| samples[((samples.len().max(1) - 1) as f64 * q) as usize];
    Row {
        name: name.to_string(),
        rps: samples.len() as f64 / length.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
    }
}

/// The service as shipped (file transport) with limits raised; returns it, its address,
/// its data dir, the time from exec to the first successful request, and its RSS then.
fn start(
    dir: &Path,
    durability: &str,
    users: &Path,
) -> (Child, SocketAddr, PathBuf, Duration, u64) {
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("data");
    let config = dir.join("config.toml");
    let off = "{ requests = 0, window = \"1m\" }";
    let limits = format!("per_client = {off}\nper_email = {off}\nglobal = {off}\n");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections_per_client = 0\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = \"{}\"\ndurability = \"{durability}\"\n\
             [recovery]\nresend_cooldown = \"0s\"\nfailed_confirm_budget = {off}\n\
             [limits]\nconfirm_failures_per_client = {off}\n\
             [limits.forgot_password]\n{limits}[limits.confirm_otp_reset]\n{limits}[limits.password_reset]\n{limits}\
             [guard]\nban_after = {off}\n[log]\nlevel = \"warn,resetgate=info\"\n",
            data.display()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_resetgate");
    let c = config.to_str().unwrap();
    let import = Command::new(bin)
        .args(["--config", c, "users", "import", users.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let exec = Instant::now();
    let mut child = Command::new(bin)
        .args(["--config", c, "serve"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr: SocketAddr = loop {
        line.clear();
        assert!(log.read_line(&mut line).unwrap() > 0, "the service exited");
        if let Some(rest) = line.split("public=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                break;
            }
        }
    }
    let started_in = exec.elapsed();
    let rss = rss(child.id());
    (child, addr, data, started_in, rss)
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        // A file may be renamed away between the listing and this (the outbox writes on).
        let Ok(meta) = entry.metadata() else { continue };
        total += if meta.is_dir() {
            du(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Scenario 6: forgot → the code from the .eml file → confirm → password-reset, with the
/// default PBKDF2 cost, from 64 connections for `RUN`. Codes are read by a watcher thread.
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
    let samples = client.block_on(async {
        let until = Instant::now() + RUN + RUN;
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (codes, seq) = (codes.clone(), seq.clone());
                tokio::spawn(async move {
                    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                    tokio::spawn(conn);
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
                        samples.push(started.elapsed());
                    }
                    samples
                })
            })
            .collect();
        join_all(tasks).await
    });
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    summarize("6", samples, RUN + RUN)
}

async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: &'static str,
    json: String,
) -> Response<hyper::body::Incoming> {
    sender.ready().await.expect("the connection stays usable");
    let req = Request::post(path)
        .header("host", "bench")
        .body(Full::new(Bytes::from(json)))
        .unwrap();
    sender.send_request(req).await.expect("an answer")
}
