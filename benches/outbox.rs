//! The outbox, measured against the release binary:
//! 1. mails per second drained to a local SMTP server (aiosmtpd, as in the tests), with one
//!    and with four connections, and the time from each 200 until the server accepted the
//!    message (p50, p99);
//! 2. mails per second drained over four connections to Postfix's `smtp-sink` (Debian package
//!    `postfix`; fast enough not to be the bottleneck) while 64 connections send
//!    forgot-password unpaced, beside the request rate and the admission control's 503s;
//! 3. the time from each 200 until the server accepted the message (p50, p99) when
//!    forgot-password runs at the shipped global limit (3,000 a minute) and at ten times it,
//!    over four connections to a sink in this process that notes when each message arrived
//!    (`common::smtp_sink`: smtp-sink cannot say when it accepted which message);
//! 4. what each `storage.durability` mode costs a forgot-password request (file transport).
//!
//! `cargo bench --bench outbox` prints a markdown table and writes `target/bench-outbox.md`.
//! Figures are comparable within one run only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

mod common;

use common::{ms, percentiles, Conn, Service};

const MAILS: usize = 2_000;
const REQUESTS: usize = 2_000;
/// Accounts for scenarios 2 and 3, asked for in turn.
const USERS: usize = 20_000;
/// How long scenario 2 sends requests for.
const LOAD_FOR: Duration = Duration::from_secs(10);
/// How long scenario 3 sends requests for, at each rate.
const PACED_FOR: Duration = Duration::from_secs(10);
/// The shipped `limits.forgot_password.global`: 3,000 a minute.
const SHIPPED_GLOBAL_PER_S: usize = 50;
const LANES: usize = 4;
const FORGOT: &str = "/api/v1/user/forgot-password";

fn main() {
    let mut report = String::from("| outbox to a local SMTP server | mails/s | 200 → accepted p50 ms | p99 ms |\n|---|---|---|---|\n");
    for connections in [1, 4] {
        let (rate, p50, p99) = drain(connections);
        report.push_str(&format!(
            "| {connections} connection(s), {MAILS} mails | {rate:.0} | {p50:.1} | {p99:.1} |\n"
        ));
    }
    let b = beside_load();
    report.push_str(&format!(
        "\n| {LANES} connections to Postfix's smtp-sink, 64 connections unpaced for {}s | value |\n|---|---|\n\
         | forgot-password answered 200, per s | {:.0} |\n\
         | refused 503 (outbox behind), per s | {:.0} |\n\
         | **mails/s delivered meanwhile** | **{:.0}** |\n\
         | outbox depth when the load stopped | {:.0} |\n\
         | the rest drained in | {:.1} s |\n",
        LOAD_FOR.as_secs(),
        b.ok_per_s,
        b.refused_per_s,
        b.mails_per_s,
        b.depth_after,
        b.drained_in.as_secs_f64(),
    ));
    report.push_str(&format!(
        "\n| forgot-password paced for {}s, {LANES} connections, sink in process | req/s | 200 → accepted p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n",
        PACED_FOR.as_secs()
    ));
    for (label, rate) in [
        ("the shipped global limit", SHIPPED_GLOBAL_PER_S),
        ("ten times it", SHIPPED_GLOBAL_PER_S * 10),
    ] {
        let [p50, p99, max] = paced(rate);
        report.push_str(&format!(
            "| {label} | {rate} | {p50:.1} | {p99:.1} | {max:.1} |\n"
        ));
    }
    report.push_str("\n| forgot-password, known address, sequential | req/s | p50 µs | p99 µs |\n|---|---|---|---|\n");
    for mode in ["background", "flush", "fsync"] {
        let (rate, p50, p99) = durability(mode);
        report.push_str(&format!(
            "| durability = \"{mode}\" | {rate:.0} | {p50} | {p99} |\n"
        ));
    }
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-outbox.md");
    std::fs::write(out, report).expect("writing the report");
}

/// A service with `users` accounts (`u0@example.com` …), configured by `extra` (as
/// [`common::start`] takes it); returns it and the directory it keeps its data in.
fn start(extra: &[(&str, &str)], users: usize) -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = common::users_file(dir.path(), "u", users);
    (common::start(dir.path(), &list, extra), dir)
}

fn drain(connections: usize) -> (f64, f64, f64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
    let mut sink = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd");
    let mut out = BufReader::new(sink.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let port: u16 = first
        .trim()
        .trim_start_matches("PORT ")
        .parse()
        .expect("sink port");
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let to = v["rcpt_tos"][0].as_str().unwrap_or_default().to_string();
            if tx.send((to, Instant::now())).is_err() {
                break;
            }
        }
    });
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nconnections = {connections}"
    );
    let (service, _dir) = start(
        &[
            ("mail", "transport = \"smtp\""),
            ("mail", "from = \"bench <noreply@example.com>\""),
            ("mail.smtp", &smtp),
        ],
        MAILS,
    );
    let mut conn = Conn::open(service.addr);
    let mut acked = HashMap::new();
    let started = Instant::now();
    for i in 0..MAILS {
        conn.forgot(&format!("u{i}@example.com"));
        acked.insert(format!("u{i}@example.com"), Instant::now());
    }
    let mut latencies = Vec::with_capacity(MAILS);
    let mut last = started;
    while latencies.len() < MAILS {
        let (to, at) = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("mail arrives");
        if let Some(sent) = acked.remove(&to) {
            latencies.push(at.duration_since(sent));
            last = at;
        }
    }
    service.stop();
    drop(sink.stdin.take());
    let _ = sink.kill();
    let _ = sink.wait();
    let rate = MAILS as f64 / last.duration_since(started).as_secs_f64();
    let [p50, p99] = percentiles(&mut latencies, [0.5, 0.99]);
    (rate, ms(p50), ms(p99))
}

fn durability(mode: &str) -> (f64, u128, u128) {
    let durability = format!("durability = \"{mode}\"");
    let (service, _dir) = start(
        &[("storage", &durability), ("mail", "transport = \"file\"")],
        REQUESTS,
    );
    let mut conn = Conn::open(service.addr);
    let mut samples = Vec::with_capacity(REQUESTS);
    let started = Instant::now();
    for i in 0..REQUESTS {
        let t = Instant::now();
        conn.forgot(&format!("u{i}@example.com"));
        samples.push(t.elapsed());
    }
    let rate = REQUESTS as f64 / started.elapsed().as_secs_f64();
    service.stop();
    let [p50, p99] = percentiles(&mut samples, [0.5, 0.99]);
    (rate, p50.as_micros(), p99.as_micros())
}

/// Scenario 2's figures.
struct BesideLoad {
    ok_per_s: f64,
    refused_per_s: f64,
    mails_per_s: f64,
    depth_after: f64,
    drained_in: Duration,
}

/// Postfix's smtp-sink on a free port; killed when dropped.
struct PostfixSink {
    child: std::process::Child,
    port: u16,
}

impl Drop for PostfixSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn postfix_sink() -> PostfixSink {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut cmd = Command::new("/usr/sbin/smtp-sink");
    if root {
        // smtp-sink refuses to run as root without a user to switch to.
        cmd.args(["-u", "postfix"]);
    }
    let child = cmd
        .args([&format!("127.0.0.1:{port}"), "1024"])
        .spawn()
        .expect("/usr/sbin/smtp-sink: apt-get install postfix");
    let sink = PostfixSink { child, port };
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::yield_now();
    }
    sink
}

/// A service with `USERS` accounts that sends its mail over `LANES` connections to the
/// SMTP server on `port`.
fn start_smtp(port: u16) -> (Service, tempfile::TempDir) {
    let smtp =
        format!("host = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nconnections = {LANES}");
    start(
        &[
            ("mail", "transport = \"smtp\""),
            ("mail", "from = \"bench <noreply@example.com>\""),
            ("mail.smtp", &smtp),
        ],
        USERS,
    )
}

fn beside_load() -> BesideLoad {
    let sink = postfix_sink();
    let (service, _dir) = start_smtp(sink.port);
    let token = std::fs::read_to_string(service.data.join("admin.token")).expect("admin.token");
    let sent = || common::metrics(service.admin, token.trim())["resetgate_outbox_sent_total"];
    let client = common::client_runtime();
    let before = sent();
    let started = Instant::now();
    let deadline = started + LOAD_FOR;
    let answers = common::drive_answers(&client, service.addr, None, move |i| {
        (Instant::now() < deadline).then(|| {
            (
                FORGOT,
                format!("{{\"email\": \"u{}@example.com\"}}", i % USERS),
            )
        })
    });
    let window = started.elapsed().as_secs_f64();
    let delivered = sent() - before;
    let stopped = Instant::now();
    let depth_after = common::metrics(service.admin, token.trim())["resetgate_outbox_depth"];
    while common::metrics(service.admin, token.trim())["resetgate_outbox_depth"] > 0.0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let count = |status| answers.iter().filter(|a| a.3 == status).count() as f64;
    let (ok, refused) = (count(200), count(503));
    assert_eq!(
        ok + refused,
        answers.len() as f64,
        "only 200 and 503 answers"
    );
    BesideLoad {
        ok_per_s: ok / window,
        refused_per_s: refused / window,
        mails_per_s: delivered / window,
        depth_after,
        drained_in: stopped.elapsed(),
    }
}

/// Scenario 3 at `rate` requests a second: p50, p99 and max from each 200 to the sink's
/// acceptance of its message, in ms.
fn paced(rate: usize) -> [f64; 3] {
    let sink = common::smtp_sink(None, true);
    let (service, _dir) = start_smtp(sink.port);
    let total = rate * PACED_FOR.as_secs() as usize;
    assert!(total <= USERS, "one request per account");
    let pace = Arc::new(Semaphore::new(0));
    let ticker = {
        let pace = pace.clone();
        std::thread::spawn(move || {
            // A tick every 10 ms adds the permits due by then.
            let started = Instant::now();
            let mut added = 0;
            while added < total {
                std::thread::sleep(Duration::from_millis(10));
                let due = (started.elapsed().as_secs_f64() * rate as f64) as usize;
                let now = due.min(total) - added;
                pace.add_permits(now);
                added += now;
            }
        })
    };
    let client = common::client_runtime();
    let answers = common::drive_answers(&client, service.addr, Some(pace), move |i| {
        (i < total).then(|| (FORGOT, format!("{{\"email\": \"u{i}@example.com\"}}")))
    });
    ticker.join().unwrap();
    assert!(
        answers.iter().all(|a| a.3 == 200),
        "every request answered 200"
    );
    let acked: HashMap<String, Instant> = answers
        .iter()
        .map(|&(i, sent, took, _)| (format!("u{i}@example.com"), sent + took))
        .collect();
    let waiting = Instant::now();
    while (sink.arrivals.lock().unwrap().len()) < total {
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "every mail arrives"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    service.stop();
    let mut latencies: Vec<Duration> = sink
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(to, at)| at.saturating_duration_since(acked[to]))
        .collect();
    let [p50, p99, max] = percentiles(&mut latencies, [0.5, 0.99, 1.0]);
    [ms(p50), ms(p99), ms(max)]
}
