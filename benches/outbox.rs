//! The outbox, measured against the release binary:
//! 1. mails per second drained to a local SMTP server (aiosmtpd, as in the tests), with one
//!    and with four connections, and the time from each 200 until the server accepted the
//!    message (p50, p99);
//! 2. what each `storage.durability` mode costs a forgot-password request (file transport).
//!
//! `cargo bench --bench outbox` prints a markdown table and writes `target/bench-outbox.md`.
//! Figures are comparable within one run only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{ms, percentiles, Conn, Service};

const MAILS: usize = 2_000;
const REQUESTS: usize = 2_000;

fn main() {
    let mut report = String::from("| outbox to a local SMTP server | mails/s | 200 → accepted p50 ms | p99 ms |\n|---|---|---|---|\n");
    for connections in [1, 4] {
        let (rate, p50, p99) = drain(connections);
        report.push_str(&format!(
            "| {connections} connection(s), {MAILS} mails | {rate:.0} | {p50:.1} | {p99:.1} |\n"
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
