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
