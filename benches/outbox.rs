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
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::Conn;

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

/// A service with `users` accounts, configured by `extra`; returns it, its address, the dir.
fn service(
    extra: &str,
    users: usize,
    env: &[(&str, &str)],
) -> (Child, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    let off = "{ requests = 0, window = \"1m\" }";
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [recovery]\nresend_cooldown = \"0s\"\n[guard]\nban_after = {off}\n\
             [limits.forgot_password]\nper_client = {off}\nper_email = {off}\n\
             per_email_per_client = {off}\nglobal = {off}\n\
             [log]\nlevel = \"warn,resetgate=info\"\n{extra}\n[storage]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let list = dir.path().join("users.jsonl");
    let lines: String = (0..users)
        .map(|i| format!("{{\"email\": \"u{i}@example.com\"}}\n"))
        .collect();
    std::fs::write(&list, lines).expect("users");
    let bin = env!("CARGO_BIN_EXE_resetgate");
    let c = config.to_str().unwrap();
    let import = Command::new(bin)
        .args(["--config", c, "users", "import", list.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let mut child = Command::new(bin)
        .args(["--config", c, "serve"])
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let addr = common::ready_address(&mut log);
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    (child, addr, dir)
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
    let extra = format!(
        "[mail]\ntransport = \"smtp\"\nfrom = \"bench <noreply@example.com>\"\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nconnections = {connections}\n"
    );
    let (mut child, addr, _dir) = service(&extra, MAILS, &[]);
    let mut conn = Conn::open(addr);
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
            latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
            last = at;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(sink.stdin.take());
    let _ = sink.kill();
    let _ = sink.wait();
    latencies.sort_by(f64::total_cmp);
    let rate = MAILS as f64 / last.duration_since(started).as_secs_f64();
    (rate, latencies[MAILS / 2], latencies[MAILS * 99 / 100])
}

fn durability(mode: &str) -> (f64, u128, u128) {
    let env = [("RESETGATE_STORAGE__DURABILITY", mode)];
    let (mut child, addr, _dir) = service("[mail]\ntransport = \"file\"\n", REQUESTS, &env);
    let mut conn = Conn::open(addr);
    let mut samples = Vec::with_capacity(REQUESTS);
    let started = Instant::now();
    for i in 0..REQUESTS {
        let t = Instant::now();
        conn.forgot(&format!("u{i}@example.com"));
        samples.push(t.elapsed().as_micros());
    }
    let rate = REQUESTS as f64 / started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    samples.sort();
    (rate, samples[REQUESTS / 2], samples[REQUESTS * 99 / 100])
}
