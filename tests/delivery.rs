//! The outbox against a real SMTP server: a 200 means the mail arrives, across SMTP outages,
//! restarts and crashes; a newer code replaces the older one; refusals are set aside visibly.

mod support;

use resetgate::crypto::CodeKey;
use resetgate::store::Db;
use support::{free_port, smtp_config, Service, Setup, SmtpSink};

fn setup_with_user(extra: &str, email: &str) -> Setup {
    let setup = Setup::new(extra);
    let added = setup.cli(&["users", "add", email]);
    assert_eq!(added.code, Some(0), "{added:?}");
    setup
}

/// A sink started with `sink_args`, a service with one account, and that account's
/// forgot-password answered 200.
fn queued_for(sink_args: &[&str], email: &str) -> (SmtpSink, Setup, Service) {
    let sink = SmtpSink::start_with(sink_args);
    let setup = setup_with_user(&smtp_config(sink.port), email);
    let service = setup.start();
    let r = service.forgot(&format!(r#"{{"email": "{email}"}}"#));
    assert_eq!(r.status, 200, "{r:?}");
    (sink, setup, service)
}

#[test]
fn smtp_down_at_first_then_delivered_once_it_is_up() {
    let port = free_port();
    let setup = setup_with_user(&smtp_config(port), "ada@example.com");
    let mut service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    service.wait_for_log("delivery failed; will retry");

    let sink = SmtpSink::start_with(&["--port", &port.to_string()]);
    let mail = sink.next_mail();
    assert_eq!(mail.rcpt_tos, vec!["ada@example.com"]);
    assert_eq!(mail.code().len(), 12);
    service.wait_for_log("message delivered");
    let (status, _) = service.stop();
    assert!(status.success());
    assert!(sink.pending().is_empty(), "delivered exactly once");
}

#[test]
fn a_new_request_replaces_the_code() {
    let sink = SmtpSink::start();
    let extra = format!(
        "{}[recovery]\nresend_cooldown = \"0s\"\n",
        smtp_config(sink.port)
    );
    let setup = setup_with_user(&extra, "ada@example.com");
    let service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    let first = sink.next_mail().code();
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    let second = sink.next_mail().code();
    let (status, _) = service.stop();
    assert!(status.success());

    // Look into the real store: only the newest code's MAC is indexed.
    let secret = std::fs::read_to_string(setup.data_dir().join("secret")).unwrap();
    let key = CodeKey::new(secret.trim().as_bytes());
    let db = Db::open(&setup.data_dir(), 8, resetgate::config::Durability::Flush).unwrap();
    assert_eq!(
        db.code_owner(&key.mac(&second)).unwrap().as_deref(),
        Some("ada@example.com")
    );
    if first != second {
        assert_eq!(
            db.code_owner(&key.mac(&first)).unwrap(),
            None,
            "the older code is gone"
        );
    }
    let reset = db.reset("ada@example.com").unwrap().unwrap();
    assert_eq!(
        reset.code.expect("a live code").mac,
        key.mac(&second).to_vec()
    );
}

#[test]
fn only_the_newest_code_is_mailed_after_an_outage() {
    let port = free_port();
    let extra = format!(
        "{}[recovery]\nresend_cooldown = \"0s\"\n",
        smtp_config(port)
    );
    let setup = setup_with_user(&extra, "ada@example.com");
    let mut service = setup.start();
    for _ in 0..3 {
        assert_eq!(
            service.forgot(r#"{"email": "ada@example.com"}"#).status,
            200
        );
    }
    let sink = SmtpSink::start_with(&["--port", &port.to_string()]);
    let mail = sink.next_mail();
    service.wait_for_log("message delivered");
    let r = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
    assert_eq!(
        r.json()["queued"],
        0,
        "the replaced codes' mails were dropped, not queued"
    );
    let (status, _) = service.stop();
    assert!(status.success());
    assert!(sink.pending().is_empty(), "one mail, not three");

    let secret = std::fs::read_to_string(setup.data_dir().join("secret")).unwrap();
    let key = CodeKey::new(secret.trim().as_bytes());
    let db = Db::open(&setup.data_dir(), 8, resetgate::config::Durability::Flush).unwrap();
    assert_eq!(
        db.code_owner(&key.mac(&mail.code())).unwrap().as_deref(),
        Some("ada@example.com"),
        "it carries the live code"
    );
}

#[test]
fn several_connections_deliver_each_message_exactly_once() {
    let sink = SmtpSink::start();
    let off = "{ requests = 0, window = \"1m\" }";
    let extra = format!(
        "{}connections = 4\n[limits.forgot_password]\nper_client = {off}\nper_email = {off}\nglobal = {off}\n",
        smtp_config(sink.port)
    );
    let setup = Setup::new(&extra);
    setup.import(40, |i| format!("u{i}@example.com"));
    let mut service = setup.start();
    assert!(service.wait_for_log("smtp transport").contains("lanes=4"));
    for i in 0..40 {
        assert_eq!(
            service
                .forgot(&format!(r#"{{"email": "u{i}@example.com"}}"#))
                .status,
            200
        );
    }
    let mut seen: Vec<String> = (0..40).flat_map(|_| sink.next_mail().rcpt_tos).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40, "forty different recipients");
    loop {
        if service
            .admin_call(&setup, "GET", "/admin/v1/outbox", b"")
            .json()["queued"]
            == 0
        {
            break;
        }
        service.wait_for_log("message delivered");
    }
    let (status, _) = service.stop();
    assert!(status.success());
    assert!(sink.pending().is_empty(), "no message went out twice");
}

#[test]
fn restart_keeps_users_and_undelivered_mail() {
    let port = free_port();
    let setup = setup_with_user(&smtp_config(port), "grace@example.com");
    let service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "grace@example.com"}"#).status,
        200
    );
    let (status, _) = service.stop();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");

    let sink = SmtpSink::start_with(&["--port", &port.to_string()]);
    let mut service = setup.start();
    assert_eq!(sink.next_mail().rcpt_tos, vec!["grace@example.com"]);
    service.wait_for_log("message delivered");
    let listed = setup.cli(&["users", "list"]);
    assert_eq!(
        (listed.code, listed.stdout.trim()),
        (Some(0), "grace@example.com")
    );
}

#[test]
fn a_crash_after_the_200_loses_nothing() {
    let port = free_port();
    let setup = setup_with_user(&smtp_config(port), "linus@example.com");
    let service = setup.start();
    for n in 0..5 {
        let r = service.forgot(&format!(r#"{{"email": "LINUS@example.com", "n": {n}}}"#));
        assert_eq!(r.status, if n == 0 { 200 } else { 429 });
    }
    service.crash();

    let sink = SmtpSink::start_with(&["--port", &port.to_string()]);
    let mut service = setup.start();
    let mail = sink.next_mail();
    assert_eq!(mail.rcpt_tos, vec!["linus@example.com"]);
    service.wait_for_log("message delivered");
    let (status, _) = service.stop();
    assert!(status.success());
    assert!(sink.pending().is_empty());
}

#[test]
fn temporary_refusals_are_retried_and_permanent_ones_set_aside() {
    let (sink, _setup, mut service) = queued_for(
        &["--fail-first", "2", "--fail-reply", "451 4.3.0 busy"],
        "ada@example.com",
    );
    assert_eq!(
        sink.next_mail().rcpt_tos,
        vec!["ada@example.com"],
        "delivered after two 451s"
    );
    service.wait_for_log("message delivered");
    assert_eq!(
        service
            .log()
            .iter()
            .filter(|l| l.contains("will retry"))
            .count(),
        2
    );
    drop(service);

    let (_sink, setup, mut service) = queued_for(
        &[
            "--fail-first",
            "1",
            "--fail-reply",
            "550 5.1.1 no such mailbox",
        ],
        "gone@example.com",
    );
    service.wait_for_log("kept as a dead letter");
    let r = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["queued"], 0);
    assert_eq!(body["dead"][0]["to"], "gone@example.com");
    assert_eq!(body["dead"][0]["error"], "550 no such mailbox");
    let r = support::request(service.admin, "GET", "/admin/v1/outbox", &[], b"");
    assert_eq!(r.status, 401, "the admin API wants the token");
}

#[test]
fn a_server_that_offers_pipelining_gets_the_commands_together_and_refusals_mean_the_same() {
    // Without PIPELINING the client waits for each reply; with it, MAIL, RCPT and DATA go
    // out together (RFC 2920).
    let (sink, _setup, mut service) = queued_for(&[], "ada@example.com");
    let mail = sink.next_mail();
    assert!(!mail.pipelined, "not offered, not used");
    service.wait_for_log("message delivered");
    let (sink, _setup, mut service) = queued_for(&["--pipelining"], "ada@example.com");
    let mail = sink.next_mail();
    assert!(mail.pipelined, "offered, used");
    assert_eq!(
        (mail.code().len(), mail.rcpt_tos),
        (12, vec!["ada@example.com".to_string()])
    );
    service.wait_for_log("message delivered");

    // A refused sender is retried; a refused recipient is set aside with the server's words.
    let (sink, _setup, mut service) = queued_for(
        &[
            "--pipelining",
            "--fail-at",
            "MAIL",
            "--fail-first",
            "1",
            "--fail-reply",
            "530 5.7.0 Authentication required",
        ],
        "ada@example.com",
    );
    assert!(sink.next_mail().pipelined);
    service.wait_for_log("message delivered");
    assert!(service.log().iter().any(|l| l.contains("will retry")));
    let (_sink, setup, mut service) = queued_for(
        &[
            "--pipelining",
            "--fail-at",
            "RCPT",
            "--fail-first",
            "1",
            "--fail-reply",
            "550 5.1.1 unknown user",
        ],
        "gone@example.com",
    );
    service.wait_for_log("kept as a dead letter");
    let body = service
        .admin_call(&setup, "GET", "/admin/v1/outbox", b"")
        .json();
    assert_eq!(body["dead"][0]["error"], "550 unknown user");

    // A refusal of the content is retried, on the same connection once reset.
    let (sink, _setup, mut service) = queued_for(
        &[
            "--pipelining",
            "--fail-first",
            "1",
            "--fail-reply",
            "451 4.3.0 busy",
        ],
        "ada@example.com",
    );
    assert!(sink.next_mail().pipelined);
    service.wait_for_log("message delivered");
    assert!(service
        .log()
        .iter()
        .any(|l| l.contains("will retry") && l.contains("busy")));
}

#[test]
fn a_refused_sender_is_a_configuration_problem_not_the_messages() {
    // 5xx at MAIL FROM (relay denied, authentication required) says the configuration is
    // wrong: the message is kept and retried, not set aside.
    let (sink, _setup, mut service) = queued_for(
        &[
            "--fail-at",
            "MAIL",
            "--fail-first",
            "2",
            "--fail-reply",
            "530 5.7.0 Authentication required",
        ],
        "ada@example.com",
    );
    assert_eq!(sink.next_mail().rcpt_tos, vec!["ada@example.com"]);
    service.wait_for_log("message delivered");
    assert!(service.log().iter().all(|l| !l.contains("dead letter")));

    // 5xx at RCPT is about the message: one attempt, then a dead letter, durable across a
    // crash, shown without its code, and sent again when an operator retries it.
    let (sink, setup, mut service) = queued_for(
        &[
            "--fail-at",
            "RCPT",
            "--fail-first",
            "1",
            "--fail-reply",
            "550 5.1.1 unknown user",
        ],
        "gone@example.com",
    );
    service.wait_for_log("kept as a dead letter");
    let retries = service
        .log()
        .iter()
        .filter(|l| l.contains("will retry"))
        .count();
    assert_eq!(retries, 0, "one attempt");
    service.crash();
    let listed = setup.cli(&["outbox", "list"]);
    assert_eq!(listed.code, Some(0), "{listed:?}");
    let line = listed.stdout.lines().next().expect("one dead letter");
    assert!(
        line.contains("dead\totp\tgone@example.com\tattempts=0")
            && line.ends_with("550 unknown user"),
        "{line}"
    );
    let id = line.split('\t').next().unwrap().to_string();
    let shown = setup.cli(&["outbox", "show", &id]);
    let view: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(view["state"], "dead");
    assert!(view["message"].get("code").is_none() && !shown.stdout.contains("Your one-time code"));

    let mut service = setup.start();
    let retried = setup.cli(&["outbox", "retry", &id]);
    assert_eq!(retried.code, Some(0), "{retried:?}");
    let mail = sink.next_mail();
    assert_eq!(
        (mail.code().len(), mail.rcpt_tos),
        (12, vec!["gone@example.com".to_string()])
    );
    service.wait_for_log("message delivered");
    assert_eq!(
        setup.cli(&["outbox", "retry", &id]).code,
        Some(3),
        "no longer dead"
    );
    assert_eq!(
        setup.cli(&["outbox", "purge", "--all"]).stdout.trim(),
        "purged 0 dead letters"
    );
}

#[test]
fn a_message_whose_code_expired_is_dropped_and_counted() {
    let port = free_port();
    let extra = format!("{}[recovery]\ncode_ttl = \"1s\"\n", smtp_config(port));
    let setup = setup_with_user(&extra, "ada@example.com");
    let mut service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    service.wait_for_log("dropping a message whose code expired");
    let r = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
    let body = r.json();
    assert_eq!(body["queued"], 0);
    assert_eq!(body["since_start"]["expired_unsent"], 1);
    assert_eq!(body["since_start"]["sent"], 0);
    assert!(body["since_start"]["retried"].as_u64().unwrap() >= 1);
}

#[test]
fn a_stalled_smtp_server_does_not_hold_up_shutdown() {
    let stalled = SmtpSink::start_with(&["--stall"]);
    let extra = format!(
        "{}[server]\nshutdown_grace = \"1s\"\n",
        smtp_config(stalled.port).replace("timeout = \"10s\"", "timeout = \"1h\"")
    );
    let setup = setup_with_user(&extra, "ada@example.com");
    let service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    // Two connections: the start-up probe's, then the worker's, now stuck waiting for a greeting.
    assert_eq!(stalled.next_event(), "connected");
    assert_eq!(stalled.next_event(), "connected");
    let (status, log) = service.stop();
    assert!(status.success(), "{status:?}");
    assert!(log.iter().any(|l| l.contains("it stays queued")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("store flushed")));

    // And it does stay queued: a working server gets it after the restart.
    let sink = SmtpSink::start();
    let moved = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("port = {}", stalled.port),
        &format!("port = {}", sink.port),
    );
    std::fs::write(&setup.config, moved).unwrap();
    let _service = setup.start();
    assert_eq!(sink.next_mail().rcpt_tos, vec!["ada@example.com"]);
}

#[test]
fn messages_follow_accept_language_and_template_files() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("otp.html"),
        "<p>Code: <b>{{code}}</b> for {{product}}</p>",
    )
    .unwrap();
    std::fs::write(dir.path().join("otp.subject"), "Reset code for {{product}}").unwrap();
    let mail_keys = format!(
        "[mail]\nproduct_name = \"Ex<ample>\"\nreply_to = \"Help <help@example.com>\"\n\
         support_contact = \"help@example.com\"\ntemplates_dir = \"{}\"\n",
        dir.path().display()
    );
    let extra = format!(
        "{}[recovery]\nresend_cooldown = \"0s\"\n",
        smtp_config(sink.port).replacen("[mail]\n", &mail_keys, 1)
    );
    let setup = setup_with_user(&extra, "ada@example.com");
    let service = setup.start();
    let ask = |lang: &str| {
        let r = support::request(
            service.public,
            "POST",
            "/api/v1/user/forgot-password",
            &[("Accept-Language", lang), support::JSON],
            br#"{"email": "ada@example.com"}"#,
        );
        assert_eq!(r.status, 200, "{r:?}");
        sink.next_mail()
    };
    let english = ask("en-GB,en;q=0.9");
    assert_eq!(
        english.header("subject").as_deref(),
        Some("Reset code for Ex<ample>"),
        "the file's subject"
    );
    assert!(
        english.data.contains("multipart/alternative"),
        "text and HTML"
    );
    assert!(
        english.data.contains("Ex&lt;ample&gt;"),
        "values are escaped in HTML"
    );
    assert!(english
        .header("reply-to")
        .unwrap()
        .contains("help@example.com"));
    assert!(english.data.contains("Questions: help@example.com"));

    let german = ask("de-DE,de;q=0.9,en;q=0.5");
    assert!(
        german.data.contains("Ihr Einmalcode lautet:"),
        "the German text: {}",
        german.data
    );
    assert!(german.data.contains("10 Minuten"));
    assert!(
        !german.data.contains("multipart/alternative"),
        "no German HTML file, no HTML part"
    );

    let fallback = ask("es");
    assert!(
        fallback.data.contains("Your one-time code is:"),
        "English for an unknown locale"
    );
}

#[test]
fn the_shipped_config_writes_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let data = dir.path().join("data");
    let admin = format!("127.0.0.1:{}", free_port());
    let env = [
        ("RESETGATE_STORAGE__DATA_DIR", data.to_str().unwrap()),
        ("RESETGATE_SERVER__LISTEN", "127.0.0.1:0"),
        ("RESETGATE_ADMIN__LISTEN", admin.as_str()),
    ];
    let mut service = Service::start(&shipped, &env);
    let transport = service.wait_for_log("file transport");
    assert!(
        transport.contains("mail.transport = \"smtp\""),
        "the log says how to switch: {transport}"
    );
    let added = std::process::Command::new(support::BIN)
        .args([
            "--config",
            shipped.to_str().unwrap(),
            "users",
            "add",
            "ada.lovelace@example.com",
        ])
        .envs(env)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    assert_eq!(
        service
            .forgot(r#"{"email": "ada.lovelace@example.com"}"#)
            .status,
        200
    );
    service.wait_for_log("message delivered");
    let files: Vec<_> = std::fs::read_dir(data.join("mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory is private");
    assert_eq!(mode(&files[0]), 0o600, "mail with live codes is private");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("To: <ada.lovelace@example.com>"), "{eml}");
    assert!(eml.contains("Your one-time code is:"));
}

/// The file transport writes each message under a fresh temporary name (`O_EXCL`,
/// `O_NOFOLLOW`): a link planted where the next message's temporary file goes does not
/// make the service write a live code through it.
#[test]
fn the_file_transport_never_writes_through_a_planted_link() {
    let setup = Setup::new("");
    setup.import(2, |i| format!("user{i}@example.com"));
    let mut service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "user0@example.com"}"#).status,
        200
    );
    let line = service.wait_for_log("message delivered");
    let id: u64 = line
        .split("id=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("the delivered id");
    let victim = setup.dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let mail = setup.data_dir().join("mail");
    let next = format!("{:020}.eml", id + 1);
    std::os::unix::fs::symlink(&victim, mail.join(format!(".{next}.tmp"))).unwrap();
    assert_eq!(
        service.forgot(r#"{"email": "user1@example.com"}"#).status,
        200
    );
    service.wait_for_log("message delivered");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let eml = std::fs::read_to_string(mail.join(&next)).unwrap();
    assert!(eml.contains("To: <user1@example.com>"), "{eml}");
    assert!(
        !std::fs::symlink_metadata(mail.join(&next))
            .unwrap()
            .is_symlink(),
        "a file of its own"
    );
}

/// Admission control: a relay that accepts slowly makes the service refuse new codes
/// (503, Retry-After) once the oldest code mail has waited half a code's lifetime, rather
/// than acknowledge mail that cannot arrive before its code expires; when the relay has
/// caught up, new codes are accepted again.
#[test]
fn a_slow_relay_makes_new_codes_wait_rather_than_arrive_too_late() {
    let sink = SmtpSink::start_with(&["--slow-data", "1:3", "--slow-data", "2:3"]);
    let setup = Setup::new(&format!(
        "{}[recovery]\ncode_ttl = \"4s\"\nresend_cooldown = \"0s\"\n",
        smtp_config(sink.port)
    ));
    setup.import(4, |i| format!("u{i}@example.com"));
    let mut service = setup.start();
    for i in 0..2 {
        let r = service.forgot(&format!(r#"{{"email": "u{i}@example.com"}}"#));
        assert_eq!(r.status, 200, "{r:?}");
    }
    // The precondition is that the first code mail (queued before its answer, before this
    // moment) has waited over half the lifetime (2 s).
    let asked = std::time::SystemTime::now();
    let half = asked + std::time::Duration::from_millis(2_100);
    while let Ok(left) = half.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(left);
    }
    let refused = service.forgot(r#"{"email": "u2@example.com"}"#);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(
        refused.message(),
        "Service temporarily unavailable; try again later"
    );
    assert_eq!(refused.header("Retry-After"), Some("2"));
    service.wait_for_log("new codes are refused (503) until the outbox catches up");

    // The relay catches up: both slow messages are answered, and the queue is empty again.
    let metrics = |service: &Service| service.admin_call(&setup, "GET", "/metrics", b"").raw_body;
    service.wait_for_log("message delivered");
    service.wait_for_log("message delivered");
    let deadline = std::time::Instant::now() + support::PATIENCE;
    while !metrics(&service).contains("resetgate_outbox_code_mail_wait_seconds 0.0") {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox never caught up"
        );
    }
    assert!(metrics(&service).contains(r#"resetgate_refusals_total{kind="outbox_behind"} 1"#));
    let again = service.forgot(r#"{"email": "u3@example.com"}"#);
    assert_eq!(again.status, 200, "accepted again: {again:?}");
    // The new code's mail arrives (after the two slow ones).
    while sink.next_mail().rcpt_tos != ["u3@example.com"] {}
}

#[test]
fn queued_mail_goes_out_when_the_relay_returns_not_after_its_backoff() {
    // Every retry waits 10 minutes, far beyond the test's patience (60 s): the mail can
    // arrive in time only if the relay's return pulls the retries forward.
    let port = free_port();
    let extra = smtp_config(port).replace(
        "retry_initial = \"100ms\"\nretry_max = \"500ms\"",
        "retry_initial = \"10m\"\nretry_max = \"10m\"",
    );
    assert!(extra.contains("retry_initial = \"10m\""), "{extra}");
    let emails: Vec<String> = (0..5).map(|i| format!("u{i}@example.com")).collect();
    let setup = Setup::new(&extra);
    for email in &emails {
        assert_eq!(setup.cli(&["users", "add", email]).code, Some(0));
    }
    let mut service = setup.start();
    for email in &emails {
        let r = service.forgot(&format!(r#"{{"email": "{email}"}}"#));
        assert_eq!(r.status, 200, "{r:?}");
    }
    // The relay refuses connections: each message is tried once and put in backoff.
    for _ in &emails {
        let line = service.wait_for_log("delivery failed; will retry");
        assert!(line.contains("retry_in_ms=600000"), "{line}");
    }

    let sink = SmtpSink::start_with(&["--port", &port.to_string()]);
    let mut arrived: Vec<String> = emails
        .iter()
        .map(|_| sink.next_mail().rcpt_tos.join(","))
        .collect();
    arrived.sort();
    assert_eq!(arrived, emails, "each queued message, once");
    service.wait_for_log("retries waiting for it are due now");
    let (status, _) = service.stop();
    assert!(status.success());
    assert!(sink.pending().is_empty(), "no second copies");
}
