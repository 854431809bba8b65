//! The cost of one offline password-policy check, measured against a baseline in the same
//! run: the rules before zxcvbn (length, the list of common passwords, runs, the email
//! address; `passwords.min_guess_score = 0`) against the whole policy as shipped
//! (`min_guess_score = 3`). Rounds alternate the two over the same passwords, so the
//! machine's noise falls on both; the table gives each round's ratio.
//!
//! `cargo bench --bench policy` prints a markdown table and writes it to
//! `target/bench-policy.md`. A password-reset also hashes the password (PBKDF2, about
//! 110 ms at the shipped 600,000 iterations), which this does not include.

use std::time::{Duration, Instant};

use resetgate::config::Passwords;
use resetgate::recovery::policy::{check, warm_up};

const ROUNDS: usize = 7;
const PER_ROUND: usize = 400;

/// Passwords a person might choose: accepted and refused ones, of 15 to 120 characters.
const PASSWORDS: [&str; 8] = [
    "purple elephant dances at noon",
    "correct horse battery staple",
    "password1234567",
    "qwertyuiopasdfg",
    "my dog rex likes long walks in the park on sundays",
    "Kx9#mQ2vL!pR7sWz",
    "johnsmith19851985",
    "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm red sofa by the window",
];

fn time(config: &Passwords) -> Duration {
    let start = Instant::now();
    for i in 0..PER_ROUND {
        let password = PASSWORDS[i % PASSWORDS.len()];
        std::hint::black_box(check(password, "ada.lovelace@example.com", config).is_ok());
    }
    start.elapsed() / PER_ROUND as u32
}

/// This process's resident memory (VmRSS), in KiB.
fn rss_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let baseline = Passwords {
        min_guess_score: 0,
        ..Passwords::default()
    };
    let shipped = Passwords::default();
    let rss_before = rss_kb();
    let started = Instant::now();
    warm_up();
    let warm = started.elapsed();
    let dictionaries_mb = (rss_kb() - rss_before) as f64 / 1024.0;
    let mut table = String::from(
        "| round | baseline (no estimate) µs/check | as shipped µs/check | ratio |\n|---|---|---|---|\n",
    );
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let (b, s) = if round % 2 == 1 {
            let b = time(&baseline);
            (b, time(&shipped))
        } else {
            let s = time(&shipped);
            (time(&baseline), s)
        };
        let ratio = s.as_secs_f64() / b.as_secs_f64();
        ratios.push(ratio);
        table.push_str(&format!(
            "| {round} | {:.2} | {:.1} | {ratio:.0}× |\n",
            b.as_secs_f64() * 1e6,
            s.as_secs_f64() * 1e6
        ));
    }
    ratios.sort_by(f64::total_cmp);
    table.push_str(&format!(
        "\nMedian ratio {:.0}×. zxcvbn's dictionaries, built once at start-up: {:.1} ms, {dictionaries_mb:.1} MB more resident memory.\n",
        ratios[ROUNDS / 2],
        warm.as_secs_f64() * 1e3
    ));
    print!("{table}");
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-policy.md"),
        &table,
    );
}
