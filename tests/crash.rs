//! The crash test: the real binary under a steady stream of forgot-password requests,
//! killed with SIGKILL at random moments, restarted each time, then drained. Every request
//! that got a 200 must lead to a delivered mail; duplicates are allowed at most one batch
//! (`mail.batch`) per kill.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{smtp_config, try_request, Setup, SmtpSink};

const KILLS: usize = 20;
/// `mail.batch`: the messages sent before one flush records them, so a kill can repeat at
/// most this many (one connection).
const BATCH: usize = 4;
const USERS: usize = 8_000;

/// xorshift64*, seeded from the clock: the kill moments differ from run to run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn user(i: usize) -> String {
    format!("user{i}@example.com")
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_mail() {
    let sink = SmtpSink::start();
    let off = "{ requests = 0, window = \"1m\" }";
    let limits = format!("per_client = {off}\nper_email = {off}\nglobal = {off}\n");
    let mail = smtp_config(sink.port).replace("[mail]\n", &format!("[mail]\nbatch = {BATCH}\n"));
    let extra = format!(
        "{mail}[recovery]\nresend_cooldown = \"0s\"\n[limits.forgot_password]\n{limits}[guard]\nban_after = {off}\n"
    );
    let setup = Setup::new(&extra);
    setup.import(USERS, user);

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let mut acknowledged: HashSet<String> = HashSet::new();
    let mut next = 0usize;
    for _ in 0..KILLS {
        let service = setup.start();
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, stopping, first) = (service.public, stop.clone(), next);
        let client = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = first;
            while !stopping.load(Ordering::Relaxed) && i < USERS {
                let body = format!(r#"{{"email": "{}"}}"#, user(i));
                match try_request(addr, "/api/v1/user/forgot-password", &body) {
                    Ok(r) if r.status == 200 => acked.push(user(i)),
                    Ok(r) => panic!("unexpected answer {r:?}"),
                    Err(_) => break, // the service died mid-request: not acknowledged
                }
                i += 1;
            }
            (acked, i)
        });
        // The random moment of the crash.
        std::thread::sleep(Duration::from_millis(20 + rng.below(200)));
        service.crash();
        stop.store(true, Ordering::Relaxed);
        let (acked, reached) = client.join().expect("the client thread");
        next = reached + 1;
        acknowledged.extend(acked);
    }

    // Restart once more (the store must reopen cleanly, as it did after every kill) and drain.
    let mut service = setup.start();
    let mut received: HashMap<String, u32> = HashMap::new();
    let take = |received: &mut HashMap<String, u32>, mail: support::Mail| {
        for r in mail.rcpt_tos {
            *received.entry(r).or_default() += 1;
        }
    };
    while !acknowledged.iter().all(|a| received.contains_key(a)) {
        take(&mut received, sink.next_mail());
    }
    // Then until nothing is queued (a message leaves the outbox just after the server
    // accepted it, and the log says so once it has).
    loop {
        let r = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
        if r.json()["queued"] == 0 {
            break;
        }
        service.wait_for_log("message delivered");
    }
    for mail in sink.pending() {
        take(&mut received, mail);
    }
    let (status, log) = service.stop();
    assert!(status.success());

    let duplicates: u32 = received.values().map(|n| n - 1).sum();
    let delivered = received.len();
    println!(
        "crash test: kills {KILLS}, acknowledged {}, delivered {delivered}, duplicates {duplicates}",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > KILLS,
        "the stream was steady enough to matter"
    );
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|a| !received.contains_key(*a))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but never delivered: {lost:?}"
    );
    assert!(
        duplicates as usize <= KILLS * BATCH,
        "{duplicates} duplicates for {KILLS} kills of batches of {BATCH}"
    );
    assert!(
        !log.iter().any(|l| l.contains("corrupt")),
        "the store reopened cleanly"
    );
}
