//! The storm benchmark: how the data directory grows under a storm of forgot-password
//! requests for known addresses at the shipped limits raised 100×, whether it shrinks when the
//! storm ends, and its size at rest after a restart ([The disk bound] in docs/performance.md).
//!
//! 100,000 accounts. Per address, the shipped limits ×100: `per_email` 3,000 an hour,
//! `per_email_per_client` 300 an hour, `resend_cooldown` 600 ms; the mail budget ×100:
//! `global` 300,000 a minute and `mail_reserve` 600,000. The code's life, the sweeper and the
//! durability are as shipped (10 min, 1 min, "fsync"; "flush" until 2026-12-07). A storm comes from many clients and
//! this one has one address, so the per-client limits are raised as in the load benchmark.
//! Mail goes through the outbox over 4 SMTP connections to the sink in this process. 64
//! connections ask for the accounts in turn, unpaced: what a limit refuses is answered 429.
//!
//! Each minute it prints the data directory's size (bytes and blocks allocated), RSS, the
//! codes issued (200) and refused (429) in that minute, and the outbox's depth. Then it rests
//! (`STORM_REST_MINUTES`, default 11: past the last code's expiry and the sweep after it),
//! stops the service with SIGTERM, starts it again on the same directory and prints it at
//! rest, and the size of a backup taken then: what the store holds, without the dead
//! versions its files keep. `cargo bench --bench storm` (`STORM_MINUTES`, default 10) writes
//! `target/bench-storm.md`. Nothing is asserted about sizes; every answer is 200 or 429.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{mb, DiskUse, Service};

const USERS: usize = 100_000;
const MINUTE: Duration = Duration::from_secs(60);
const FORGOT: &str = "/api/v1/user/forgot-password";

/// One row of the table.
struct Sample {
    label: String,
    data: DiskUse,
    rss: u64,
    issued: usize,
    refused: usize,
    outbox_depth: Option<f64>,
}

fn main() {
    let storm = minutes("STORM_MINUTES", 10);
    let rest = minutes("STORM_REST_MINUTES", 11);
    let client = common::client_runtime();
    let sink = common::smtp_sink(None, false);
    let dir = tempfile::tempdir().unwrap();
    let users = common::users_file(dir.path(), "u", USERS);
    let smtp = format!(
        "host = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nconnections = 4",
        sink.port
    );
    let service = common::start(
        dir.path(),
        &users,
        &[
            ("mail", "transport = \"smtp\""),
            ("mail", "from = \"storm <noreply@example.com>\""),
            ("mail.smtp", &smtp),
            ("recovery", "resend_cooldown = \"600ms\""),
            (
                "limits",
                "mail_reserve = { requests = 600000, window = \"1m\" }",
            ),
            (
                "limits.forgot_password",
                "per_email = { requests = 3000, window = \"1h\" }",
            ),
            (
                "limits.forgot_password",
                "per_email_per_client = { requests = 300, window = \"1h\" }",
            ),
            (
                "limits.forgot_password",
                "global = { requests = 300000, window = \"1m\" }",
            ),
        ],
    );
    let token = std::fs::read_to_string(service.data.join("admin.token")).expect("admin.token");
    let probe = |service: &Service, label: String, issued, refused| {
        let metrics = common::metrics(service.admin, token.trim());
        Sample {
            label,
            data: common::du(&service.data),
            rss: service.rss(),
            issued,
            refused,
            outbox_depth: metrics.get("resetgate_outbox_depth").copied(),
        }
    };
    let mut rows = vec![probe(&service, "before the storm".into(), 0, 0)];
    let next = Arc::new(AtomicUsize::new(0));
    for minute in 1..=storm {
        let until = Instant::now() + MINUTE;
        let next = next.clone();
        let answers = common::drive_answers(&client, service.addr, None, move |_| {
            (Instant::now() < until).then(|| {
                let n = next.fetch_add(1, Ordering::Relaxed) % USERS;
                (FORGOT, format!("{{\"email\": \"u{n}@example.com\"}}"))
            })
        });
        let count = |status| answers.iter().filter(|a| a.3 == status).count();
        let (issued, refused) = (count(200), count(429));
        assert_eq!(
            issued + refused,
            answers.len(),
            "every answer is 200 or 429"
        );
        let row = probe(&service, format!("storm, minute {minute}"), issued, refused);
        eprintln!(
            "storm: minute {minute}, data dir {:.1} MB",
            mb(row.data.bytes)
        );
        rows.push(row);
    }
    for minute in 1..=rest {
        std::thread::sleep(MINUTE);
        rows.push(probe(&service, format!("rest, minute {minute}"), 0, 0));
    }
    service.terminate();
    let service = common::serve(dir.path());
    rows.push(probe(&service, "after a restart".into(), 0, 0));
    let live = live_bytes(dir.path());
    let delivered = sink.accepted.load(Ordering::Relaxed);
    let report = report(&rows, storm, delivered, live);
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-storm.md");
    std::fs::write(out, &report).unwrap();
}

/// The size of a backup taken now (`resetgate backup`, through the running service): what
/// the store holds, without the dead versions its files keep.
fn live_bytes(dir: &Path) -> u64 {
    let file = dir.join("live.backup");
    let done = std::process::Command::new(common::bin())
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("backup")
        .arg(&file)
        .output()
        .expect("resetgate backup");
    assert!(done.status.success(), "{done:?}");
    std::fs::metadata(&file).expect("the backup").len()
}

fn minutes(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: a number of minutes"))
        })
        .unwrap_or(default)
}

fn report(rows: &[Sample], minutes: u32, delivered: u64, live: u64) -> String {
    let issued: usize = rows.iter().map(|r| r.issued).sum();
    let at_rest = rows.last().expect("a sample after the restart").data.bytes;
    let mut out = format!(
        "Storm: {minutes} min of forgot-password for {USERS} accounts at the shipped limits \
         ×100, then rest and a restart. {issued} codes issued, {delivered} mails delivered. \
         A backup then holds {:.1} MB ({} bytes per account): the data directory is {:.2}× \
         what it holds.\n\n\
         | sample | data dir MB | allocated MB | bytes per account | RSS MB | codes issued | refused (429) | outbox depth |\n\
         |---|---|---|---|---|---|---|---|\n",
        mb(live),
        live / USERS as u64,
        at_rest as f64 / live.max(1) as f64,
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {} | {:.1} | {} | {} | {} |\n",
            r.label,
            mb(r.data.bytes),
            mb(r.data.allocated),
            r.data.bytes / USERS as u64,
            mb(r.rss),
            r.issued,
            r.refused,
            r.outbox_depth.map_or("–".into(), |d| format!("{d:.0}")),
        ));
    }
    out
}
