//! A password change's cost with a dead webhook endpoint's backlog, against the release
//! binary: 100,000 deliveries queued for an endpoint that refuses connections (in their
//! backoff, as after days of downtime), beside a live endpoint, against an empty queue.
//!
//! Each run changes passwords through the admin API (`users/set-password`, one keep-alive
//! connection, one after another; each change queues a `password.changed` delivery for both
//! endpoints) and reports the wall time per change (p50, p99), the service's CPU time per
//! change (user + system, from /proc: what the delivery tasks do in the background counts
//! too) and the time of a /metrics scrape. Runs alternate, empty and backlog, twice.
//!
//! `cargo bench --bench webhook_backlog` prints a markdown table and writes
//! `target/bench-webhook-backlog.md`. Figures are comparable within one run only. With
//! `BENCH_OLD_LAYOUT=1` the backlog is written as schema 3 kept it (`id_webhook`, by id
//! alone), for a build from before schema 4 named by `BENCH_RESETGATE_BIN`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use resetgate::store::outbox::{Kind, Queued};
use resetgate::store::{unix_ms, Db};

mod common;

use common::percentiles;

const BACKLOG: usize = 100_000;
const CHANGES: usize = 1_000;
const WARM_UP: usize = 100;
const USERS: usize = 1_000;
const SECRET: &str = "whsec_EMjg+VvePl/wr3Kzx8CtNyK37fF7XUhhUivhUYtxQTU=";

/// A figure of the table: its name, and how to read it from a run.
type Figure = (&'static str, fn(&Run) -> f64);

struct Run {
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_change: f64,
    scrape_ms: f64,
}

fn main() {
    let receiver = receiver();
    let mut rows = Vec::new();
    for round in 0..2 {
        for backlog in [0, BACKLOG] {
            let run = run(backlog, receiver);
            eprintln!(
                "round {round}, backlog {backlog}: p50 {:.2} ms, p99 {:.2} ms, CPU {:.2} ms per change, /metrics {:.2} ms",
                run.p50_ms, run.p99_ms, run.cpu_ms_per_change, run.scrape_ms
            );
            rows.push((backlog, run));
        }
    }
    let mean = |backlog: usize, f: fn(&Run) -> f64| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|(b, _)| *b == backlog)
            .map(|(_, r)| f(r))
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let mut report = format!(
        "| password change via the admin API, {CHANGES} in a row | empty queue | {BACKLOG} queued for a dead endpoint | ratio |\n|---|---|---|---|\n"
    );
    let figures: [Figure; 4] = [
        ("wall p50 ms", |r| r.p50_ms),
        ("wall p99 ms", |r| r.p99_ms),
        ("service CPU ms per change", |r| r.cpu_ms_per_change),
        ("/metrics scrape ms", |r| r.scrape_ms),
    ];
    for (name, f) in figures {
        let (empty, full) = (mean(0, f), mean(BACKLOG, f));
        report.push_str(&format!(
            "| {name} | {empty:.2} | {full:.2} | {:.2} |\n",
            full / empty
        ));
    }
    report.push_str("\nEach run (round, backlog): ");
    for (backlog, r) in &rows {
        report.push_str(&format!(
            "{backlog}: p50 {:.2} / p99 {:.2} / CPU {:.2} / scrape {:.2}; ",
            r.p50_ms, r.p99_ms, r.cpu_ms_per_change, r.scrape_ms
        ));
    }
    report.push('\n');
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-webhook-backlog.md");
    let _ = std::fs::write(out, &report);
}

fn run(backlog: usize, receiver: u16) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    if backlog > 0 {
        fill(&data, backlog);
        if std::env::var_os("BENCH_OLD_LAYOUT").is_some() {
            to_schema_3(&data);
        }
    }
    let users = common::users_file(dir.path(), "u", USERS);
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hooks = format!(
        "name = \"dead\"\nurl = \"http://127.0.0.1:{dead}/hooks\"\nsecret = \"{SECRET}\"\n\
         events = [\"password.changed\"]\ninclude_password_hash = true\nretry_max = \"1h\"\n\n\
         [[webhooks]]\nname = \"app\"\nurl = \"http://127.0.0.1:{receiver}/hooks\"\n\
         secret = \"{SECRET}\"\nevents = [\"password.changed\"]\ninclude_password_hash = true"
    );
    let service = common::start(
        dir.path(),
        &users,
        &[
            ("passwords", "pbkdf2_iterations = 10000"),
            ("[webhooks]", &hooks),
        ],
    );
    let token = std::fs::read_to_string(service.data.join("admin.token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    // The delivery tasks' first scans: not part of any change.
    std::thread::sleep(Duration::from_secs(3));
    let mut conn = Admin::open(service.admin, &auth);
    for i in 0..WARM_UP {
        conn.set_password(i);
    }
    let cpu = cpu_ms(service.pid());
    let mut took = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let t = Instant::now();
        conn.set_password(WARM_UP + i);
        took.push(t.elapsed());
    }
    let cpu_ms_per_change = (cpu_ms(service.pid()) - cpu) / CHANGES as f64;
    let [p50, p99] = percentiles(&mut took, [0.5, 0.99]);
    let mut scrapes = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let m = common::metrics(service.admin, token.trim());
        assert!(!m.is_empty(), "/metrics answers");
        scrapes.push(t.elapsed());
    }
    let [scrape] = percentiles(&mut scrapes, [0.5]);
    service.stop();
    Run {
        p50_ms: p50.as_secs_f64() * 1e3,
        p99_ms: p99.as_secs_f64() * 1e3,
        cpu_ms_per_change,
        scrape_ms: scrape.as_secs_f64() * 1e3,
    }
}

/// `n` deliveries of `password.changed` for the endpoint "dead", queued two days ago and
/// in their backoff for another 10 to 60 minutes, each about another account.
fn fill(data: &Path, n: usize) {
    let db = Db::open(data, 64, resetgate::config::Durability::Flush).unwrap();
    let now = unix_ms(SystemTime::now());
    let hash = format!(
        "$pbkdf2-sha256$i=600000${}${}",
        "A".repeat(22),
        "B".repeat(43)
    );
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let deliveries: Vec<Queued> = chunk
            .iter()
            .map(|&i| {
                let account = format!("old{i}@example.com");
                let body = format!(
                    r#"{{"data":{{"changed_at":"2026-12-05T10:00:00.000Z","client":"192.0.2.1","email":"{account}","password_hash":"{hash}","request_id":"req{i}","source":"reset"}},"timestamp":"2026-12-05T10:00:00.000Z","type":"password.changed"}}"#
                );
                let kind = Kind::Webhook {
                    event: "password.changed".into(),
                    id: format!("msg_{i:032x}"),
                    account,
                    body,
                };
                let created = now - 2 * 86_400_000;
                let mut q = Queued::new("dead".into(), kind, created, Some(now + 86_400_000));
                q.attempts = 50;
                q.next_attempt_ms = now + 600_000 + (i as u64 * 37_000) % 3_000_000;
                q.last_error = Some("connection refused".into());
                q
            })
            .collect();
        db.queue_webhooks(&deliveries).unwrap();
    }
    db.flush_blocking().unwrap();
    drop(db);
    // sled lets go of the directory's lock a moment after the last handle is dropped.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Db::open(data, 8, resetgate::config::Durability::Flush) {
            Ok(db) => {
                drop(db);
                std::thread::sleep(Duration::from_millis(500));
                // sled made its files with this process's umask.
                close_to_others(data);
                return;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{e}"),
        }
    }
}

/// The service's user + system CPU time so far, in ms.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks * 10.0 // USER_HZ = 100
}

/// A webhook receiver that answers 200 to everything, on its own threads.
fn receiver() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer_all(stream));
        }
    });
    port
}

fn answer_all(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(ok).is_err() {
            return;
        }
    }
}

/// One keep-alive connection to the admin API.
struct Admin {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    auth: String,
}

impl Admin {
    fn open(addr: SocketAddr, auth: &str) -> Admin {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Admin {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            auth: auth.to_string(),
        }
    }

    fn set_password(&mut self, i: usize) {
        let body = format!(
            r#"{{"email": "u{}@example.com", "password": "purple elephant dances at noon {i}"}}"#,
            i % USERS
        );
        write!(
            self.writer,
            "POST /admin/v1/users/set-password HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.auth,
            body.len()
        )
        .unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
    }
}

/// `chmod -R go-rwx`: the service refuses a data directory others may use.
fn close_to_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap();
    let mode = meta.permissions().mode() & 0o700;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            close_to_others(&entry.unwrap().path());
        }
    }
}

/// Moves the queue back to schema 3's layout (`id_webhook`, by id alone).
fn to_schema_3(data: &Path) {
    let db = sled::open(data.join("store")).unwrap();
    let new = db.open_tree("endpoint_webhook").unwrap();
    let old = db.open_tree("id_webhook").unwrap();
    for entry in new.iter() {
        let (key, value) = entry.unwrap();
        old.insert(&key[key.len() - 8..], value).unwrap();
    }
    db.drop_tree("endpoint_webhook").unwrap();
    let meta = db.open_tree("meta").unwrap();
    meta.insert("schema_version", &3u32.to_be_bytes()).unwrap();
    db.flush().unwrap();
    drop(db);
    std::thread::sleep(Duration::from_secs(1));
    close_to_others(data);
}
