//! The outbox against an SMTP server that misbehaves, or speaks TLS: every fault ends in a
//! clear log line and a delivery, a retry or a dead letter, never a lost message.

mod support;

use support::{free_port, private_ca, smtp_config, Service, Setup, SmtpSink};

fn start(extra: &str, email: &str) -> (Setup, Service) {
    let setup = Setup::new(extra);
    assert_eq!(setup.cli(&["users", "add", email]).code, Some(0));
    let service = setup.start();
    let r = service.forgot(&format!(r#"{{"email": "{email}"}}"#));
    assert_eq!(r.status, 200, "{r:?}");
    (setup, service)
}

fn tls_config(port: u16, security: &str, ca: &std::path::Path) -> String {
    smtp_config(port).replace(
        "security = \"none\"",
        &format!("security = \"{security}\"\nca_file = \"{}\"", ca.display()),
    )
}

fn queued(service: &Service, setup: &Setup) -> u64 {
    let r = service.admin_call(setup, "GET", "/admin/v1/outbox", b"");
    r.json()["queued"].as_u64().expect("a count")
}

#[test]
fn starttls_to_a_relay_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path(), "relay");
    let sink = SmtpSink::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let (_setup, mut service) = start(&tls_config(sink.port, "starttls", &ca), "ada@example.com");
    assert_eq!(sink.next_mail().rcpt_tos, vec!["ada@example.com"]);
    service.wait_for_log("message delivered");
}

#[test]
fn implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path(), "relay");
    let sink = SmtpSink::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--implicit-tls",
    ]);
    let (_setup, mut service) = start(&tls_config(sink.port, "tls", &ca), "ada@example.com");
    assert_eq!(sink.next_mail().rcpt_tos, vec!["ada@example.com"]);
    service.wait_for_log("message delivered");
}

#[test]
fn tls_required_but_not_offered_is_a_clear_error_and_nothing_is_lost() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = private_ca(dir.path(), "unused");
    let (setup, mut service) = start(&tls_config(sink.port, "starttls", &ca), "ada@example.com");
    let line = service.wait_for_log("delivery failed; will retry");
    assert!(
        line.to_lowercase().contains("starttls"),
        "the reason is named: {line}"
    );
    assert_eq!(queued(&service, &setup), 1, "still queued");
    assert!(sink.pending().is_empty(), "nothing was sent in the clear");
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = private_ca(dir.path(), "relay");
    let (other_ca, _, _) = private_ca(dir.path(), "other");
    let sink = SmtpSink::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--implicit-tls",
    ]);
    let (setup, mut service) = start(&tls_config(sink.port, "tls", &other_ca), "ada@example.com");
    let line = service.wait_for_log("delivery failed; will retry");
    assert!(
        line.to_lowercase().contains("certificate"),
        "the reason is named: {line}"
    );
    assert_eq!(queued(&service, &setup), 1);
}

#[test]
fn a_stalled_server_times_out_and_the_worker_tries_again() {
    let stalled = SmtpSink::start_with(&["--stall"]);
    let extra = smtp_config(stalled.port).replace("timeout = \"10s\"", "timeout = \"1s\"");
    let (setup, mut service) = start(&extra, "ada@example.com");
    let line = service.wait_for_log("delivery failed; will retry");
    assert!(line.contains("did not answer in time"), "{line}");
    service.wait_for_log("delivery failed; will retry");
    assert_eq!(stalled.next_event(), "connected");
    assert_eq!(
        stalled.next_event(),
        "connected",
        "a fresh attempt, not a hung worker"
    );
    assert_eq!(queued(&service, &setup), 1);
}

#[test]
fn a_connection_dropped_after_the_final_dot_is_set_aside_not_sent_again() {
    // The relay drops the connection instead of answering the first message's final dot:
    // it may have queued the message, so a retry could be a second copy. The message is a
    // dead letter, which an operator can send again.
    let sink = SmtpSink::start_with(&["--drop-data", "1"]);
    let (setup, mut service) = start(&smtp_config(sink.port), "ada@example.com");
    let line = service.wait_for_log("kept as a dead letter");
    assert!(line.contains("may have been delivered"), "{line}");
    let view = service
        .admin_call(&setup, "GET", "/admin/v1/outbox", b"")
        .json();
    assert_eq!(view["queued"], 0, "not retried: {view}");
    let id = view["dead"][0]["id"].as_u64().unwrap().to_string();
    assert!(sink.pending().is_empty());

    let retried = setup.cli(&["outbox", "retry", &id]);
    assert_eq!(retried.code, Some(0), "{retried:?}");
    assert_eq!(sink.next_mail().rcpt_tos, vec!["ada@example.com"]);
    service.wait_for_log("message delivered");
}

#[test]
fn a_bad_ca_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let setup = Setup::new(&tls_config(free_port(), "tls", &empty));
    let out = setup.cli(&["check-config"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("mail.smtp.ca_file"), "{out:?}");
}

#[test]
fn send_test_mail_reports_the_outcome() {
    let sink = SmtpSink::start();
    let setup = Setup::new(&smtp_config(sink.port));
    let sent = setup.cli(&["send-test-mail", "ops@example.com"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    assert!(
        sent.stdout.contains("accepted for ops@example.com"),
        "{sent:?}"
    );
    let mail = sink.next_mail();
    assert_eq!(mail.rcpt_tos, vec!["ops@example.com"]);
    assert!(mail.header("subject").unwrap().contains("test message"));

    let refusing = SmtpSink::start_with(&[
        "--fail-at",
        "RCPT",
        "--fail-first",
        "1",
        "--fail-reply",
        "550 5.1.1 no such user",
    ]);
    let setup = Setup::new(&smtp_config(refusing.port));
    let refused = setup.cli(&["send-test-mail", "ops@example.com"]);
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("550 no such user"), "{refused:?}");

    let setup = Setup::new(&smtp_config(free_port()));
    let down = setup.cli(&["send-test-mail", "ops@example.com"]);
    assert_eq!(down.code, Some(1));
    assert!(down.stderr.contains("temporary"), "{down:?}");
}

#[test]
fn an_unreachable_relay_is_reported_at_start_up_without_failing() {
    let setup = Setup::new(&smtp_config(free_port()));
    let mut service = setup.start();
    let warning = service.wait_for_log("the mail transport is not usable right now");
    assert!(warning.contains("WARN"), "{warning}");
    assert_eq!(
        service.forgot(r#"{"email": "x@example.com"}"#).status,
        404,
        "serving anyway"
    );
}

#[test]
fn a_message_the_relay_took_without_answering_is_not_sent_twice() {
    // The relay takes every message, but drops the connection instead of answering the
    // final dot of the 2nd and the 4th: those two are on the relay, and sending them again
    // would make second copies. Each message must arrive exactly once.
    let sink = SmtpSink::start_with(&["--accept-then-drop", "2", "--accept-then-drop", "4"]);
    let setup = Setup::new(&smtp_config(sink.port));
    setup.import(6, |i| format!("u{i}@example.com"));
    let mut service = setup.start();
    for i in 0..6 {
        let r = service.forgot(&format!(r#"{{"email": "u{i}@example.com"}}"#));
        assert_eq!(r.status, 200, "{r:?}");
    }
    // Arrivals per Message-ID, until all six messages have arrived.
    let mut copies: std::collections::HashMap<String, usize> = Default::default();
    while copies.len() < 6 {
        let mail = sink.next_mail();
        *copies
            .entry(mail.header("message-id").unwrap())
            .or_default() += 1;
    }
    // The sink hands a mail over before the service has read the relay's answer and
    // removed the message from its queue: wait for the service's account of all six.
    let (mut dead, mut delivered) = (0, 0);
    while dead + delivered < 6 {
        let line = service.wait_for_any_log(&["kept as a dead letter", "message delivered"]);
        if line.contains("kept as a dead letter") {
            assert!(line.contains("may have been delivered"), "{line}");
            dead += 1;
        } else {
            delivered += 1;
        }
    }
    assert_eq!((dead, delivered), (2, 4));
    let view = service
        .admin_call(&setup, "GET", "/admin/v1/outbox", b"")
        .json();
    assert_eq!(view["queued"], 0, "{view}");
    assert_eq!(view["dead"].as_array().unwrap().len(), 2, "{view}");
    let (status, _) = service.stop();
    assert!(status.success());
    for mail in sink.pending() {
        *copies
            .entry(mail.header("message-id").unwrap())
            .or_default() += 1;
    }
    assert!(
        copies.values().all(|&n| n == 1),
        "one copy each: {copies:?}"
    );
}

#[test]
fn shutdown_with_a_backlog_finishes_the_message_in_flight_and_exits() {
    // One connection, one second per message, several queued: SIGTERM lets the message in
    // flight finish and exits, without waiting out the whole shutdown grace.
    let sink = SmtpSink::start_with(&["--slow-data", "0:1"]);
    let extra = format!(
        "{}[recovery]\nresend_cooldown = \"0s\"\n[server]\nshutdown_grace = \"1h\"\n",
        smtp_config(sink.port)
    );
    let setup = Setup::new(&extra);
    for name in ["a", "b", "c", "d"] {
        assert_eq!(
            setup
                .cli(&["users", "add", &format!("{name}@example.com")])
                .code,
            Some(0)
        );
    }
    let service = setup.start();
    for name in ["a", "b", "c", "d"] {
        assert_eq!(
            service
                .forgot(&format!(r#"{{"email": "{name}@example.com"}}"#))
                .status,
            200
        );
    }
    let (status, log) = service.stop();
    assert!(status.success(), "{status:?}");
    assert!(
        !log.iter().any(|l| l.contains("it stays queued")),
        "nothing was cut off: {log:?}"
    );
    assert!(log.iter().any(|l| l.contains("store flushed")));
}
