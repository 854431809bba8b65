//! A full or read-only disk: no mail storm, new codes refused in time, and recovery once
//! space returns, against the real binary and a real SMTP server.
//!
//! The data directory lives on a small tmpfs that the test mounts and fills, which needs
//! root (CI runs these tests as root). As another user each test says so and passes
//! without running: `cargo test` stays usable for developers who are not root.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use support::{free_port, smtp_config, Mail, Service, Setup, SmtpSink};

/// A tmpfs of a few megabytes, unmounted when dropped.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    /// None (after saying why) when this process may not mount file systems.
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).expect("mount point");
        let size = format!("size={megabytes}m,mode=0700");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(&mount)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { _dir: dir, mount }),
            other if running_as_root() => panic!("root, but mounting a tmpfs failed: {other:?}"),
            _ => {
                eprintln!("SKIPPED: mounting a small tmpfs needs root (CI runs this test as root)");
                None
            }
        }
    }

    fn remount(&self, mode: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.mount)
            .output()
            .expect("mount runs");
        assert!(out.status.success(), "remount {mode}: {out:?}");
    }

    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount)
            .output()
            .expect("df runs");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's answer")
    }

    /// Writes a filler file until `leave` bytes are free (0: until the disk is full).
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0x5a_u8; 64 * 1024];
        loop {
            let free = self.free();
            if free <= leave {
                break;
            }
            let n = (free - leave).min(chunk.len() as u64) as usize;
            if file
                .write_all(&chunk[..n])
                .and_then(|()| file.sync_all())
                .is_err()
            {
                break; // ENOSPC: full
            }
        }
        path
    }
}

/// Whether this process runs as root (the real uid in /proc/self/status).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(1).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// A setup whose data directory is on `disk`, with `extra` configuration.
fn setup_on(disk: &SmallDisk, extra: &str) -> Setup {
    let setup = Setup::new(extra);
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let data = disk.mount.join("data");
    let moved = text.replace(
        &format!("data_dir = \"{}\"", setup.data_dir().display()),
        &format!("data_dir = \"{}\"", data.display()),
    );
    assert_ne!(text, moved, "the data directory was moved");
    std::fs::write(&setup.config, moved).unwrap();
    setup
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}@example.com")).collect()
}

/// Mails received so far per recipient, after waiting until every one of `want` has one.
fn mails_until_each_has_one(sink: &SmtpSink, want: &[String], seen: &mut Vec<Mail>) {
    let count = |seen: &Vec<Mail>, who: &str| {
        seen.iter()
            .filter(|m| m.rcpt_tos.iter().any(|r| r == who))
            .count()
    };
    while want.iter().any(|w| count(seen, w) == 0) {
        seen.push(sink.next_mail());
    }
    seen.extend(sink.pending());
}

fn copies_per_message(seen: &[Mail]) -> HashMap<String, usize> {
    let mut copies = HashMap::new();
    for mail in seen {
        let id = mail.header("Message-ID").expect("a Message-ID");
        *copies.entry(id).or_default() += 1;
    }
    copies
}

/// The issue's storm: the disk fills while requests and deliveries go on. sled answers the
/// first write that needs space it cannot get with an I/O error, and refuses every write
/// after it; before this fix each sent message's removal then failed and the same message
/// went out again at once, over and over. Now no request gets a 200 that is not durable,
/// the service stops sending and exits with 75, and at most one extra copy of any message
/// reaches the server. Started again while the disk is still full, it refuses to start
/// without sending anything. Once space returns, a restart (as systemd's
/// Restart=on-failure does) delivers every acknowledged message.
#[test]
fn a_full_disk_costs_at_most_one_copy_and_a_restart_heals_it() {
    let Some(disk) = SmallDisk::mount(24) else {
        return;
    };
    let sink = SmtpSink::start();
    let unlimited = "{ requests = 100000, window = \"1m\" }";
    let setup = setup_on(
        &disk,
        &format!(
            "{}[storage]\nmin_free = 0\n[recovery]\nresend_cooldown = \"0s\"\n\
             [limits.forgot_password]\nper_client = {unlimited}\nper_email = {unlimited}\n\
             per_email_per_client = {unlimited}\nglobal = {unlimited}\n",
            smtp_config(sink.port)
        ),
    );
    let accounts = users(200);
    setup.import(accounts.len(), |i| accounts[i].clone());
    let service = setup.start();
    let filler = disk.fill(0);
    // Ask until the store runs out of room: sled first fills the space its file already has.
    let mut acknowledged = Vec::new();
    for n in 0..20_000 {
        let who = &accounts[n % accounts.len()];
        let body = format!(r#"{{"email": "{who}"}}"#);
        match support::try_request(service.public, "/api/v1/user/forgot-password", &body) {
            Ok(r) if r.status == 200 => acknowledged.push(who.clone()),
            Ok(r) => {
                assert_eq!(r.status, 500, "{r:?}");
                break;
            }
            Err(_) => break, // the service stopped accepting
        }
    }
    let (status, log) = service.wait_exit();
    assert_eq!(status.code(), Some(75), "{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("the store failed to write")));
    let mut seen = sink.pending();
    let most = copies_per_message(&seen).into_values().max().unwrap_or(0);
    assert!(
        most <= 2,
        "at most one extra copy while the disk is full: {most}"
    );

    // Still full: the next start refuses before sending anything.
    match Service::try_start(&setup.config, &[]) {
        Err((status, log)) => assert_eq!(status.code(), Some(75), "{}", log.join("\n")),
        Ok(service) => panic!("started on a full disk: {:?}", service.log()),
    }
    assert!(
        sink.pending().is_empty(),
        "nothing sent by the refused start"
    );

    std::fs::remove_file(filler).unwrap();
    let service = setup.start();
    acknowledged.sort();
    acknowledged.dedup();
    mails_until_each_has_one(&sink, &acknowledged, &mut seen);
    let copies = copies_per_message(&seen);
    assert!(copies.values().all(|&n| n <= 2), "{copies:?}");
    let r = service.forgot(r#"{"email": "user0@example.com"}"#);
    assert_eq!(r.status, 200, "serving again: {r:?}");
    let (status, _) = service.stop();
    assert!(status.success());
}

/// `storage.min_free` refuses new codes before the disk is full: filled to just below the
/// threshold, forgot-password answers 503 with Retry-After, while a confirmation and a
/// password change, which write little, still work; their notice waits until there is
/// room, then goes out. SIGTERM while low on space exits cleanly.
#[test]
fn below_min_free_new_codes_are_refused_and_the_rest_goes_on() {
    let Some(disk) = SmallDisk::mount(32) else {
        return;
    };
    let sink = SmtpSink::start();
    let setup = setup_on(
        &disk,
        &format!("{}[storage]\nmin_free = \"8MB\"\n", smtp_config(sink.port)),
    );
    setup.import(2, |i| format!("user{i}@example.com"));
    let mut service = setup.start();
    let r = service.forgot(r#"{"email": "user0@example.com"}"#);
    assert_eq!(r.status, 200);
    let code = sink.next_mail().code();

    let filler = disk.fill(7_000_000);
    let refused = service.forgot(r#"{"email": "user1@example.com"}"#);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(
        refused.message(),
        "Service temporarily unavailable; try again later"
    );
    assert!(refused.header("Retry-After").is_some());
    service.wait_for_log("free space is below storage.min_free");
    let ready = support::request(service.public, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{ready:?}");

    let confirmed = service.post(
        "/api/v1/user/confirm-otp-reset",
        &format!(r#"{{"resetToken": "{code}"}}"#),
    );
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let session = confirmed.json()["resetSession"]
        .as_str()
        .unwrap()
        .to_string();
    let reset = service.post(
        "/api/v1/user/password-reset",
        &format!(
            r#"{{"email": "user0@example.com", "password": "a new and long passphrase", "resetSession": "{session}"}}"#
        ),
    );
    assert_eq!(reset.status, 200, "{reset:?}");
    let token = std::fs::read_to_string(disk.mount.join("data/admin.token")).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let metrics = support::request(
        service.admin,
        "GET",
        "/metrics",
        &[("Authorization", &auth)],
        b"",
    )
    .raw_body;
    assert!(
        metrics.contains(r#"resetgate_refusals_total{kind="min_free"} 1"#),
        "{metrics}"
    );
    assert!(
        sink.pending().is_empty(),
        "delivery waits while space is low"
    );

    std::fs::remove_file(filler).unwrap();
    let notice = sink.next_mail();
    assert!(notice.data.contains("was changed"), "{}", notice.data);
    let again = service.forgot(r#"{"email": "user1@example.com"}"#);
    assert_eq!(again.status, 200, "new codes again once there is room");
    let (status, _) = service.stop();
    assert!(status.success(), "a clean stop: {status}");
}

/// A read-only data directory (an operator's mistake, or a remount after an I/O error)
/// behaves like a full disk: the service does not start delivering (exit 75, the log says
/// why), sends nothing, and once the directory is writable again a start delivers what was
/// queued. (A file system with files open for writing cannot be remounted read-only, so the
/// test remounts it while the service is stopped; a write that fails while it runs takes
/// the full disk's path above.)
#[test]
fn a_read_only_data_directory_sends_nothing_and_heals_when_writable() {
    let Some(disk) = SmallDisk::mount(24) else {
        return;
    };
    let port = free_port();
    let setup = setup_on(
        &disk,
        &format!("{}[storage]\nmin_free = 0\n", smtp_config(port)),
    );
    let accounts = users(6);
    setup.import(accounts.len(), |i| accounts[i].clone());
    let service = setup.start();
    for who in &accounts {
        let r = service.forgot(&format!(r#"{{"email": "{who}"}}"#));
        assert_eq!(r.status, 200);
    }
    let (status, _) = service.stop();
    assert!(status.success());
    disk.remount("ro");
    let sink = SmtpSink::start_with(&["--port", &port.to_string()]);
    match Service::try_start(&setup.config, &[]) {
        Err((status, log)) => {
            assert_eq!(status.code(), Some(75), "{}", log.join("\n"));
            let said = log.join("\n");
            assert!(said.contains("Read-only file system"), "{said}");
        }
        Ok(service) => panic!("started on a read-only store: {:?}", service.log()),
    }
    assert!(sink.pending().is_empty(), "nothing was sent");

    disk.remount("rw");
    let service = setup.start();
    let mut seen = Vec::new();
    mails_until_each_has_one(&sink, &accounts, &mut seen);
    assert!(
        copies_per_message(&seen).values().all(|&n| n == 1),
        "{seen:?}"
    );
    drop(service);
}
