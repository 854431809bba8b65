//! Backups: taken while the service runs, restored into an empty data directory, and the
//! restored service has the accounts, blocks and queued mail of the original.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{free_port, smtp_config, Setup, SmtpSink};

#[test]
fn backup_while_running_then_restore_elsewhere() {
    let port = free_port();
    let original = Setup::new(&smtp_config(port));
    let add = original.cli_with_stdin(
        &["users", "add", "ada@example.com", "--password-stdin"],
        "an old and long passphrase\n",
    );
    assert_eq!(add.code, Some(0));
    assert_eq!(
        original.cli(&["users", "add", "grace@example.com"]).code,
        Some(0)
    );
    let service = original.start();
    assert_eq!(
        original
            .cli(&["blocks", "add", "203.0.113.0/24", "--reason", "abuse"])
            .code,
        Some(0)
    );
    // SMTP is down: this mail stays queued, and must survive the trip.
    assert_eq!(
        service.forgot(r#"{"email": "grace@example.com"}"#).status,
        200
    );

    let file = original.dir.path().join("resetgate.backup");
    let backed = original.cli(&["backup", file.to_str().unwrap()]);
    assert_eq!(backed.code, Some(0), "{backed:?}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a backup holds hashes and codes");
    let running = original.cli(&["restore", file.to_str().unwrap()]);
    assert_eq!(
        running.code,
        Some(3),
        "not while the service runs: {running:?}"
    );
    drop(service);

    let copy = Setup::new(&smtp_config(port));
    let restored = copy.cli(&["restore", file.to_str().unwrap()]);
    assert_eq!(restored.code, Some(0), "{restored:?}");
    let mut users: Vec<String> = copy
        .cli(&["users", "list"])
        .stdout
        .lines()
        .map(String::from)
        .collect();
    users.sort();
    assert_eq!(users, ["ada@example.com", "grace@example.com"]);
    assert!(copy
        .cli(&["blocks", "list"])
        .stdout
        .contains("203.0.113.0/24\tabuse"));
    let again = copy.cli(&["restore", file.to_str().unwrap()]);
    assert_eq!(again.code, Some(3), "only into an empty store: {again:?}");

    let sink = SmtpSink::start_with(&["--port", &port.to_string()]);
    let mut service = copy.start();
    assert_eq!(
        sink.next_mail().rcpt_tos,
        vec!["grace@example.com"],
        "the queued mail came along"
    );
    service.wait_for_log("message delivered");
    let verify = service.admin_call(
        &copy,
        "POST",
        "/admin/v1/users/verify",
        br#"{"email": "ada@example.com", "password": "an old and long passphrase"}"#,
    );
    assert_eq!(verify.status, 200, "the password hash came along");
}

/// An account's failed confirmations, as schema 1 stored them (no time of the last one).
const SCHEMA_1_LOCKED: &[u8] = br#"{"code":null,"failures":2,"confirmation":null}"#;

#[test]
fn a_store_of_an_older_schema_is_migrated_and_keeps_its_lock() {
    let sink = SmtpSink::start();
    let setup = Setup::new(&format!(
        "{}[recovery]\nmax_account_failures = 2\n",
        smtp_config(sink.port)
    ));
    assert_eq!(
        setup.cli(&["users", "add", "ada@example.com"]).code,
        Some(0)
    );
    // Turn the store into one that the first release wrote: schema 1, a locked account.
    setup.write_raw("meta", "schema_version", &1u32.to_be_bytes());
    setup.write_raw("email_reset", "ada@example.com", SCHEMA_1_LOCKED);

    let service = setup.start();
    let log = service.log();
    let line = log.iter().find(|l| l.contains("migrated the store"));
    assert!(
        line.is_some_and(|l| l.contains("from=1") && l.contains("to=4")),
        "{log:?}"
    );
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    let code = sink.next_mail().code();
    let named = format!(r#"{{"resetToken": "{code}", "email": "ada@example.com"}}"#);
    let locked = service.post("/api/v1/user/confirm-otp-reset", &named);
    assert_eq!(
        (locked.status, locked.message()),
        (400, "Invalid OTP".to_string()),
        "the lock survived the upgrade"
    );
    let code_only = format!(r#"{{"resetToken": "{code}"}}"#);
    let owner = service.post("/api/v1/user/confirm-otp-reset", &code_only);
    assert_eq!(owner.status, 200, "the migrated code index works");
    let (status, log) = service.stop();
    assert!(status.success());
    assert!(
        !log.iter()
            .any(|l| l.contains("migrated") && l.contains(&code)),
        "no code in the log"
    );

    let again = setup.start();
    assert!(
        !again.log().iter().any(|l| l.contains("migrated the store")),
        "a migration runs once"
    );
}

/// A store with one account (ada@example.com) that says it has schema `version`.
fn store_of_schema(version: u32) -> Setup {
    let setup = Setup::new("");
    let add = setup.cli(&["users", "add", "ada@example.com"]);
    assert_eq!(add.code, Some(0), "{add:?}");
    setup.write_raw("meta", "schema_version", &version.to_be_bytes());
    setup
}

#[test]
fn a_store_of_a_newer_schema_is_refused_untouched() {
    let setup = store_of_schema(9);
    let serve = setup.cli(&["serve"]);
    assert_ne!(serve.code, Some(0), "{serve:?}");
    assert!(
        serve
            .stderr
            .contains("written by a newer resetgate (schema 9, this build reads 4)"),
        "{serve:?}"
    );
    let list = setup.cli(&["users", "list"]);
    assert_ne!(list.code, Some(0), "direct mode refuses too: {list:?}");
    setup.write_raw("meta", "schema_version", &4u32.to_be_bytes());
    let list = setup.cli(&["users", "list"]);
    assert_eq!(
        list.stdout.trim(),
        "ada@example.com",
        "the data was not touched"
    );
}

#[test]
fn a_command_that_opens_an_older_store_migrates_it_and_says_so() {
    let setup = store_of_schema(1);
    setup.write_raw("email_reset", "ada@example.com", SCHEMA_1_LOCKED);
    let list = setup.cli(&["users", "list"]);
    assert_eq!(list.code, Some(0), "{list:?}");
    assert!(
        list.stderr.contains("migrated the store in")
            && list.stderr.contains("from schema 1 to 4 (1 records)"),
        "{list:?}"
    );
    let again = setup.cli(&["users", "list"]);
    assert_eq!(again.stderr, "", "once");
}

/// The security review's freeze: a backup holds off writers for about a second per 100,000
/// accounts, and requests that wait for it must not park the async workers, or the whole
/// process (both listeners, the outbox) stops answering. While a backup of 100,000 accounts
/// runs and forgot-password requests wait for it, a refused request and the admin
/// `/healthz` are answered: the service logs their answers before the backup's end.
#[test]
fn a_backup_does_not_stop_the_service_from_answering() {
    let setup = Setup::new("[guard]\ndeny = [\"127.0.0.9\"]\n");
    setup.import(100_000, |i| format!("user{i}@example.com"));
    let mut service = setup.start();
    let auth = setup.admin_auth();
    let admin = service.admin;
    let backup = std::thread::spawn(move || {
        support::request(
            admin,
            "GET",
            "/admin/v1/backup",
            &[("Authorization", &auth)],
            b"",
        )
        .status
    });
    service.wait_for_log("backup started");
    let waiting: Vec<_> = (0..16)
        .map(|i| {
            let body = format!(r#"{{"email": "user{i}@example.com"}}"#);
            let stream = std::net::TcpStream::connect(service.public).unwrap();
            let raw = format!(
                "POST /api/v1/user/forgot-password HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            std::io::Write::write_all(&mut &stream, raw.as_bytes()).unwrap();
            std::thread::spawn(move || {
                let mut answer = Vec::new();
                std::io::Read::read_to_end(&mut &stream, &mut answer).unwrap();
                support::parse(&answer).status
            })
        })
        .collect();
    let refused = support::request_from(
        "127.0.0.9".parse().unwrap(),
        service.public,
        "/api/v1/user/forgot-password",
        r#"{"email": "user1@example.com"}"#,
    );
    assert_eq!(refused.status, 403);
    let health = support::request(service.admin, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200);
    assert_eq!(backup.join().unwrap(), 200);
    for w in waiting {
        assert_eq!(
            w.join().unwrap(),
            200,
            "the waiting requests went on afterwards"
        );
    }
    let (_, log) = service.stop();
    let at = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in the log"))
    };
    let taken = at("backup taken");
    assert!(at("status=403") < taken, "refused while the backup ran");
    assert!(
        at("endpoint=\"healthz\"") < taken,
        "healthy while the backup ran"
    );
}
