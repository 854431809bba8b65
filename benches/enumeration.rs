//! Enumeration-safe mode, measured: interleaved forgot-password requests for known and
//! unknown addresses against the real binary (release build, file transport, durable
//! flush), and the difference of their median latencies.
//!
//! `cargo bench --bench enumeration` prints a markdown table and writes it to
//! `target/bench-enumeration.md`. Figures are relative to each other in the same run.

use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{ready_address, Conn};

const PAIRS: usize = 2_000;
const WARMUP: usize = 200;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    let off = "{ requests = 0, window = \"1m\" }";
    let limits = format!(
        "per_client = {off}\nper_email = {off}\nper_email_per_client = {off}\nglobal = {off}\n"
    );
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = \"{}\"\n\
             [recovery]\nhide_unknown_accounts = true\nresend_cooldown = \"0s\"\n\
             [limits.forgot_password]\n{limits}[guard]\nban_after = {off}\n[log]\nlevel = \"warn,resetgate=info\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let users = dir.path().join("users.jsonl");
    let lines: String = (0..PAIRS + WARMUP)
        .map(|i| format!("{{\"email\": \"known{i}@example.com\"}}\n"))
        .collect();
    std::fs::write(&users, lines).expect("users");
    let bin = env!("CARGO_BIN_EXE_resetgate");
    let import = Command::new(bin)
        .args([
            "--config",
            config.to_str().unwrap(),
            "users",
            "import",
            users.to_str().unwrap(),
        ])
        .output()
        .expect("import");
    assert!(import.status.success(), "{import:?}");

    let mut child = Command::new(bin)
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let addr = ready_address(&mut log);
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));

    let mut conn = Conn::open(addr);
    for i in 0..WARMUP {
        conn.forgot(&format!("known{}@example.com", PAIRS + i));
        conn.forgot(&format!("unknown-warm{i}@example.com"));
    }
    let (mut known, mut unknown) = (Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS));
    for i in 0..PAIRS {
        // Alternate which goes first, so that neither always follows the other.
        if i % 2 == 0 {
            known.push(conn.forgot(&format!("known{i}@example.com")));
            unknown.push(conn.forgot(&format!("unknown{i}@example.com")));
        } else {
            unknown.push(conn.forgot(&format!("unknown{i}@example.com")));
            known.push(conn.forgot(&format!("known{i}@example.com")));
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    let (k, u) = (Stats::of(&mut known), Stats::of(&mut unknown));
    let diff = k.p50 as f64 - u.p50 as f64;
    let table =
        format!(
        "| requests ({PAIRS} each, interleaved) | p50 µs | p90 µs | p99 µs |\n|---|---|---|---|\n\
         | known address (code stored, mail queued) | {} | {} | {} |\n\
         | unknown address (enumeration-safe 200) | {} | {} | {} |\n\n\
         Difference of medians: {diff:+.0} µs ({:+.1} % of the unknown median).\n",
        k.p50, k.p90, k.p99, u.p50, u.p90, u.p99,
        100.0 * diff / u.p50.max(1) as f64
    );
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-enumeration.md");
    std::fs::write(out, &table).expect("writing the report");
}

struct Stats {
    p50: u128,
    p90: u128,
    p99: u128,
}

impl Stats {
    fn of(samples: &mut [Duration]) -> Stats {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_micros();
        Stats {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
        }
    }
}
