//! Enumeration-safe mode, measured: interleaved forgot-password requests for known and
//! unknown addresses against the real binary (release build, file transport, durable
//! flush), and the difference of their median latencies.
//!
//! `cargo bench --bench enumeration` prints a markdown table and writes it to
//! `target/bench-enumeration.md`. Figures are relative to each other in the same run.

mod common;

use common::{percentiles, Conn};

const PAIRS: usize = 2_000;
const WARMUP: usize = 200;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = common::users_file(dir.path(), "known", PAIRS + WARMUP);
    let service = common::start(
        dir.path(),
        &users,
        &[("recovery", "hide_unknown_accounts = true")],
    );

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

    let quantiles = [0.5, 0.9, 0.99];
    let [k50, k90, k99] = percentiles(&mut known, quantiles).map(|d| d.as_micros());
    let [u50, u90, u99] = percentiles(&mut unknown, quantiles).map(|d| d.as_micros());
    let diff = k50 as f64 - u50 as f64;
    let table =
        format!(
        "| requests ({PAIRS} each, interleaved) | p50 µs | p90 µs | p99 µs |\n|---|---|---|---|\n\
         | known address (code stored, mail queued) | {} | {} | {} |\n\
         | unknown address (enumeration-safe 200) | {} | {} | {} |\n\n\
         Difference of medians: {diff:+.0} µs ({:+.1} % of the unknown median).\n",
        k50, k90, k99, u50, u90, u99,
        100.0 * diff / u50.max(1) as f64
    );
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-enumeration.md");
    std::fs::write(out, &table).expect("writing the report");
}
