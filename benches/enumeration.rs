//! Enumeration-safe mode, measured: interleaved forgot-password requests for known and
//! unknown addresses against the real binary (release build), and the difference of their
//! median latencies, in three set-ups:
//! 1. as shipped: file transport, durability "fsync";
//! 2. SMTP with DKIM signing (RSA-2048), to a sink in this process (`common::smtp_sink`):
//!    a known address's mail is rendered, signed and sent after the answer, an unknown
//!    address's decoy only removed;
//! 3. file transport with `durability = "fsync"`.
//!
//! `cargo bench --bench enumeration` prints a markdown table and writes it to
//! `target/bench-enumeration.md`. Figures are relative to each other in the same run.

use std::process::Command;
use std::time::Duration;

mod common;

use common::{percentiles, Conn};

const PAIRS: usize = 2_000;
const WARMUP: usize = 200;

fn main() {
    let mut table = String::from(
        "| set-up ({PAIRS} requests each, interleaved) | known p50 µs | p90 | p99 | unknown p50 µs | p90 | p99 | difference of medians |\n|---|---|---|---|---|---|---|---|\n",
    )
    .replace("{PAIRS}", &PAIRS.to_string());
    let sink = common::smtp_sink(None, false);
    let key_dir = tempfile::tempdir().expect("temp dir");
    let key = rsa_key(key_dir.path());
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"",
        sink.port
    );
    let dkim = format!("domain = \"example.com\"\nselector = \"s1\"\nkey_file = \"{key}\"");
    let setups: [(&str, Vec<(&str, &str)>); 3] = [
        ("file transport, durability \"fsync\" (as shipped)", vec![]),
        (
            "SMTP with DKIM (RSA-2048), durability \"flush\"",
            vec![
                ("mail", "transport = \"smtp\""),
                ("mail", "from = \"bench <noreply@example.com>\""),
                ("mail.smtp", &smtp),
                ("mail.dkim", &dkim),
            ],
        ),
        (
            "file transport, durability \"fsync\"",
            vec![("storage", "durability = \"fsync\"")],
        ),
    ];
    for (label, extra) in setups {
        let (known, unknown) = interleaved(&extra);
        table.push_str(&row(label, known, unknown));
    }
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-enumeration.md");
    std::fs::write(out, &table).expect("writing the report");
}

/// The latencies of forgot-password for known and for unknown addresses, interleaved, on
/// one keep-alive connection, in enumeration-safe mode with `extra`.
fn interleaved(extra: &[(&str, &str)]) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = common::users_file(dir.path(), "known", PAIRS + WARMUP);
    let mut config = vec![("recovery", "hide_unknown_accounts = true")];
    config.extend_from_slice(extra);
    let service = common::start(dir.path(), &users, &config);

    let mut conn = Conn::open(service.addr);
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
    service.stop();
    (known, unknown)
}

fn row(label: &str, mut known: Vec<Duration>, mut unknown: Vec<Duration>) -> String {
    let quantiles = [0.5, 0.9, 0.99];
    let [k50, k90, k99] = percentiles(&mut known, quantiles).map(|d| d.as_micros());
    let [u50, u90, u99] = percentiles(&mut unknown, quantiles).map(|d| d.as_micros());
    let diff = k50 as f64 - u50 as f64;
    format!(
        "| {label} | {k50} | {k90} | {k99} | {u50} | {u90} | {u99} | {diff:+.0} µs ({:+.1} %) |\n",
        100.0 * diff / u50.max(1) as f64
    )
}

/// An RSA-2048 key made by the openssl command, as DKIM's `key_file`.
fn rsa_key(dir: &std::path::Path) -> String {
    let path = dir.join("dkim.pem");
    let p = path.to_str().expect("a UTF-8 path").to_string();
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &p,
        ])
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{made:?}");
    p
}
