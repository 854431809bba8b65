//! Webhooks against a real receiver (tests/support/webhook_receiver.py), which checks every
//! delivery with the reference `standardwebhooks` package: the real binary, a real SMTP
//! server for the codes, and the events a password change causes.

mod support;

use std::collections::HashMap;

use serde_json::{json, Value};
use support::webhook::{webhook_config, Delivery, WebhookReceiver, TEST_SECRET};
use support::{private_ca, Service, Setup, SmtpSink};

const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";
const PASSWORD: &str = "purple elephant dances at noon";

struct Flow {
    sink: SmtpSink,
    setup: Setup,
    service: Service,
}

impl Flow {
    /// A service with `users`, the SMTP server, and `webhooks` (TOML, last in the file).
    fn start(webhooks: &str, users: &[&str]) -> Flow {
        let (sink, setup, service) = support::started(webhooks, users);
        Flow {
            sink,
            setup,
            service,
        }
    }

    /// forgot-password, the code from the mail, confirm-otp-reset: the `resetSession`.
    fn confirm(&self, email: &str) -> String {
        let r = self
            .service
            .post(FORGOT, &json!({ "email": email }).to_string());
        assert_eq!(r.status, 200, "{r:?}");
        // Skipping an earlier recovery's "password changed" notice.
        let mail = loop {
            let mail = self.sink.next_mail();
            if mail.rcpt_tos == [email] && !mail.data.contains("was changed") {
                break mail;
            }
        };
        let body = json!({ "resetToken": mail.code() }).to_string();
        let r = self.service.post(CONFIRM, &body);
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["resetSession"].as_str().unwrap().to_string()
    }

    /// The whole recovery of `email`; the password-reset's `x-request-id`.
    fn recover(&self, email: &str) -> String {
        let session = self.confirm(email);
        let body = json!({
            "email": email, "password": PASSWORD, "confirmPassword": PASSWORD,
            "resetSession": session,
        });
        let r = self.service.post(RESET, &body.to_string());
        assert_eq!(r.status, 200, "{r:?}");
        r.header("x-request-id").unwrap().to_string()
    }

    fn outbox(&self) -> Value {
        let r = self
            .service
            .admin_call(&self.setup, "GET", "/admin/v1/outbox", b"");
        assert_eq!(r.status, 200);
        r.json()
    }

    fn metrics(&self) -> String {
        let r = self.service.admin_call(&self.setup, "GET", "/metrics", b"");
        assert_eq!(r.status, 200);
        r.raw_body
    }
}

/// docs/integration.md "Keep your own copy": `$pbkdf2-sha256$i=<n>$<salt>$<hash>`, salt (16 bytes) and
/// hash (32 bytes) in standard base64 without padding, PBKDF2-HMAC-SHA256 of the UTF-8
/// password.
fn phc_verifies(phc: &str, password: &str) -> bool {
    use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
    use base64::Engine;
    let parts: Vec<&str> = phc.split('$').collect();
    let ["", "pbkdf2-sha256", iterations, salt, hash] = parts[..] else {
        panic!("not the documented layout: {phc}")
    };
    let iterations: u32 = iterations.strip_prefix("i=").unwrap().parse().unwrap();
    let (salt, hash) = (B64.decode(salt).unwrap(), B64.decode(hash).unwrap());
    assert_eq!((salt.len(), hash.len()), (16, 32));
    let iterations = std::num::NonZeroU32::new(iterations).unwrap();
    let algorithm = ring::pbkdf2::PBKDF2_HMAC_SHA256;
    ring::pbkdf2::verify(algorithm, iterations, &salt, password.as_bytes(), &hash).is_ok()
}

/// Runs docs/integration.md's code block in `lang` that defines `function` on `(phc, password)`; what
/// it printed ("True" or "False").
fn readme_verifier(lang: &str, function: &str, phc: &str, password: &str) -> String {
    let readme = include_str!("../docs/integration.md");
    let fence = format!("```{lang}\n");
    let block = readme
        .split(&fence)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .find(|code| code.contains(&format!(" {function}(")))
        .unwrap_or_else(|| panic!("docs/integration.md has no {lang} block defining {function}"));
    let out = match lang {
        "python" => std::process::Command::new("python3")
            .arg("-c")
            .arg(format!("{block}\nimport sys\nprint({function}(sys.argv[1], sys.argv[2]))"))
            .args([phc, password])
            .output(),
        _ => std::process::Command::new("node")
            .args(["--input-type=module", "-e"])
            .arg(format!(
                "{block}\nconsole.log(String({function}(process.argv[1], process.argv[2])) === 'true' ? 'True' : 'False');"
            ))
            .args([phc, password])
            .output(),
    }
    .expect("python3 and node run");
    assert!(
        out.status.success(),
        "{lang}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Every delivery the receiver checks: signed (the reference library accepts it, and
/// rejects it tampered with or unsigned), an id `msg_` + 32 hex digits, a timestamp in
/// whole seconds, JSON as the OpenAPI document's `webhooks` section describes it.
fn assert_signed(d: &Delivery) {
    support::openapi::Spec::load().check_webhook(&d.body);
    assert!(d.verified, "the reference library accepts it: {d:?}");
    assert!(d.tamper_rejected, "a tampered body is rejected: {d:?}");
    assert!(
        d.unsigned_rejected,
        "an unsigned delivery is rejected: {d:?}"
    );
    let id = d.id.strip_prefix("msg_").unwrap_or_default();
    assert!(is_hex(id, 32), "webhook-id {:?}", d.id);
    assert!(d.timestamp.bytes().all(|b| b.is_ascii_digit()), "{d:?}");
    assert_eq!(d.content_type, "application/json");
    assert_eq!(d.path, "/hooks");
}

#[test]
fn a_password_change_reaches_the_receiver_signed_and_as_documented() {
    let receiver = WebhookReceiver::start(TEST_SECRET);
    let hooks = webhook_config(
        "app",
        &receiver.url(),
        TEST_SECRET,
        "include_password_hash = true\n",
    );
    let mut f = Flow::start(&hooks, &["Ada@Example.com"]);
    let request_id = f.recover("Ada@Example.com");

    let confirmed = receiver.next_delivery();
    assert_signed(&confirmed);
    assert_eq!(confirmed.event_type(), "code.confirmed");
    assert_eq!(confirmed.data()["email"], "Ada@Example.com");
    assert_eq!(confirmed.data()["client"], "127.0.0.1");

    let changed = receiver.next_delivery();
    assert_signed(&changed);
    assert!(!changed.duplicate && changed.status == 200);
    assert_ne!(changed.id, confirmed.id, "one id per event");
    let body = &changed.body;
    assert_eq!(body["type"], "password.changed");
    let data = changed.data();
    assert_eq!(data["email"], "Ada@Example.com", "the stored address");
    assert_eq!(data["client"], "127.0.0.1");
    assert_eq!(
        data["request_id"],
        request_id.as_str(),
        "the request's x-request-id"
    );
    let at = data["changed_at"].as_str().unwrap();
    assert_eq!(body["timestamp"], at);
    assert!(
        at.ends_with('Z') && at.len() == 24,
        "RFC 3339 with ms: {at}"
    );
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["data", "timestamp", "type"]
    );
    let hash = data["password_hash"].as_str().unwrap();
    assert!(hash.starts_with("$pbkdf2-sha256$i=10000$"), "{hash}");
    assert!(
        phc_verifies(hash, PASSWORD),
        "docs/integration.md's reading of the hash: {hash}"
    );
    assert!(!phc_verifies(hash, "another password entirely"));
    // docs/integration.md's Python and JavaScript functions read it the same way.
    for (lang, name) in [
        ("python", "verify_resetgate_hash"),
        ("js", "verifyResetgateHash"),
    ] {
        assert_eq!(readme_verifier(lang, name, hash, PASSWORD), "True");
        assert_eq!(
            readme_verifier(lang, name, hash, "another password"),
            "False"
        );
    }

    // The hash is the one stored: the new password verifies against the service.
    let verify = json!({ "email": "Ada@Example.com", "password": PASSWORD }).to_string();
    let r = f.service.admin_call(
        &f.setup,
        "POST",
        "/admin/v1/users/verify",
        verify.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(
        receiver.pending().is_empty(),
        "nothing else: {:?}",
        receiver.pending()
    );
    // Counted once recorded (after the answer came).
    f.service.wait_for_log("webhook delivered");
    f.service.wait_for_log("webhook delivered");
    let metrics = f.metrics();
    assert!(
        metrics.contains(
            r#"resetgate_webhook_deliveries_total{endpoint="app",outcome="delivered"} 2"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"resetgate_webhook_oldest_undelivered_seconds{endpoint="app"} 0"#));
}

#[test]
fn without_include_password_hash_no_hash_leaves_and_only_the_chosen_events_go() {
    let receiver = WebhookReceiver::start(TEST_SECRET);
    let hooks = webhook_config(
        "app",
        &receiver.url(),
        TEST_SECRET,
        "events = [\"password.changed\"]\n",
    );
    let f = Flow::start(&hooks, &["ada@example.com"]);
    f.recover("ada@example.com");
    let changed = receiver.next_delivery();
    assert_signed(&changed);
    assert_eq!(
        changed.event_type(),
        "password.changed",
        "code.confirmed was not chosen"
    );
    assert!(
        changed.data().get("password_hash").is_none(),
        "{:?}",
        changed.body
    );
}

#[test]
fn a_failing_receiver_gets_every_event_in_order_per_account() {
    // 500 for the first five deliveries, then 200.
    let receiver = WebhookReceiver::start_with(TEST_SECRET, &["--fail-first", "5"]);
    let hooks = webhook_config("app", &receiver.url(), TEST_SECRET, "");
    let users = ["a@example.com", "b@example.com"];
    let mut f = Flow::start(&hooks, &users);
    for user in users {
        f.recover(user);
    }
    // Each account: code.confirmed, then password.changed, each delivered once.
    let mut seen: Vec<Delivery> = Vec::new();
    while seen.iter().filter(|d| d.status == 200).count() < 4 {
        let d = receiver.next_delivery();
        assert_signed(&d);
        seen.push(d);
    }
    assert!(seen.iter().filter(|d| d.status == 500).count() == 5);
    let mut per_account: HashMap<String, Vec<(String, u16)>> = HashMap::new();
    for d in &seen {
        let email = d.data()["email"].as_str().unwrap().to_string();
        let entry = (d.event_type().to_string(), d.status);
        per_account.entry(email).or_default().push(entry);
    }
    for user in users {
        let attempts = &per_account[user];
        let first_change = attempts
            .iter()
            .position(|(e, _)| e == "password.changed")
            .unwrap();
        let confirmed_ok = attempts
            .iter()
            .position(|(e, s)| e == "code.confirmed" && *s == 200)
            .unwrap();
        assert!(
            confirmed_ok < first_change,
            "{user}: password.changed went out only after code.confirmed was delivered: {attempts:?}"
        );
    }
    // The same event keeps its id on every attempt.
    let mut ids: HashMap<&str, Vec<&str>> = HashMap::new();
    for d in &seen {
        ids.entry(&d.id)
            .or_default()
            .push(d.body["type"].as_str().unwrap());
    }
    assert_eq!(ids.len(), 4, "four events: {ids:?}");
    assert!(seen.iter().all(|d| !d.duplicate));
    // Four events delivered, and four mails (each account's code and its password-changed
    // notice), which the queue below must no longer hold.
    let (mut hooks, mut mails) = (0, 0);
    while hooks < 4 || mails < 4 {
        let line = f
            .service
            .wait_for_any_log(&["webhook delivered", "message delivered"]);
        if line.contains("webhook delivered") {
            hooks += 1;
        } else {
            mails += 1;
        }
    }
    assert_eq!((hooks, mails), (4, 4));
    let metrics = f.metrics();
    assert!(
        metrics
            .contains(r#"resetgate_webhook_deliveries_total{endpoint="app",outcome="retried"} 5"#),
        "{metrics}"
    );
    assert_eq!(f.outbox()["queued"], 0);
}

#[test]
fn a_refused_event_is_a_dead_letter_until_retried() {
    // 400 for the first three deliveries: the event is refused three times, set aside.
    let receiver =
        WebhookReceiver::start_with(TEST_SECRET, &["--fail-first", "3", "--fail-status", "400"]);
    let hooks = webhook_config(
        "app",
        &receiver.url(),
        TEST_SECRET,
        "events = [\"code.confirmed\"]\n",
    );
    let mut f = Flow::start(&hooks, &["ada@example.com"]);
    f.confirm("ada@example.com");
    let first = receiver.next_delivery();
    for _ in 0..2 {
        let again = receiver.next_delivery();
        assert_eq!((again.id.as_str(), again.status), (first.id.as_str(), 400));
    }
    f.service.wait_for_log("kept as a dead letter");
    let view = f.outbox();
    assert_eq!(view["queued"], 0);
    let dead = &view["dead"][0];
    assert_eq!(dead["kind"], "webhook");
    assert_eq!(dead["event"], "code.confirmed");
    assert_eq!(dead["to"], "app");
    assert_eq!(dead["error"], "HTTP 400");
    assert!(dead.get("body").is_none(), "the body is not shown");
    let id = dead["id"].as_u64().unwrap().to_string();

    let listed = f.setup.cli(&["outbox", "list"]);
    assert!(
        listed.stdout.contains("\tdead\twebhook\tapp\t"),
        "{listed:?}"
    );
    let retried = f.setup.cli(&["outbox", "retry", &id]);
    assert_eq!(retried.code, Some(0), "{retried:?}");
    let delivered = receiver.next_delivery();
    assert_signed(&delivered);
    assert_eq!(
        (delivered.id.as_str(), delivered.status),
        (first.id.as_str(), 200)
    );
    f.service.wait_for_log("webhook delivered");
    assert_eq!(f.outbox()["dead"], json!([]));
    assert!(f
        .metrics()
        .contains(r#"resetgate_webhook_deliveries_total{endpoint="app",outcome="dead"} 1"#));
}

#[test]
fn https_to_a_receiver_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(dir.path(), "hooks");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let receiver =
        WebhookReceiver::start_with(TEST_SECRET, &["--tls-cert", cert, "--tls-key", key]);
    assert!(receiver.url().starts_with("https://127.0.0.1:"));
    let extra = format!("ca_file = \"{}\"\n", ca.display());
    let hooks = webhook_config("app", &receiver.url(), TEST_SECRET, &extra);
    let f = Flow::start(&hooks, &["ada@example.com"]);

    // resetgate send-test-webhook: a signed test.ping, now.
    let sent = f.setup.cli(&["send-test-webhook", "app"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    let ping = receiver.next_delivery();
    assert_signed(&ping);
    assert_eq!(ping.event_type(), "test.ping");
    assert_eq!(ping.data()["name"], "app");

    // And an event through the outbox.
    f.confirm("ada@example.com");
    let confirmed = receiver.next_delivery();
    assert_signed(&confirmed);
    assert_eq!(confirmed.event_type(), "code.confirmed");

    // Without the CA the receiver is not trusted.
    let untrusted = Setup::new(&webhook_config("app", &receiver.url(), TEST_SECRET, ""));
    let refused = untrusted.cli(&["send-test-webhook", "app"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("TLS"), "{refused:?}");
    let unknown = untrusted.cli(&["send-test-webhook", "nobody"]);
    assert_eq!(unknown.code, Some(3), "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("no [[webhooks]] entry is named \"nobody\""),
        "{unknown:?}"
    );
}

#[test]
fn a_bad_webhook_configuration_names_its_key() {
    let cases = [
        ("name = \"App\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", "webhooks[0].name"),
        ("name = \"app\"\nurl = \"ftp://x/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", "webhooks[0].url"),
        ("name = \"app\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", "webhooks[0].secret"),
        ("name = \"app\"\nurl = \"http://127.0.0.1:1/\"\n", "webhooks[0].secret"),
        ("name = \"app\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"password.chnged\"]\n", "webhooks[0].events[0]"),
    ];
    for (table, key) in cases {
        let setup = Setup::new(&format!("[[webhooks]]\n{table}"));
        let checked = setup.cli(&["check-config"]);
        assert_ne!(checked.code, Some(0), "{table}");
        assert!(
            checked.stderr.contains(&format!("`{key}`")),
            "{key}: {checked:?}"
        );
    }
}

#[test]
fn a_locked_account_and_a_spent_budget_are_announced() {
    let receiver = WebhookReceiver::start(TEST_SECRET);
    let hooks = webhook_config(
        "ops",
        &receiver.url(),
        TEST_SECRET,
        "events = [\"account.locked\", \"recovery.budget_exhausted\"]\n",
    );
    let extra = format!(
        "[recovery]\nmax_account_failures = 3\nfailed_confirm_budget = {{ requests = 5, window = \"1h\" }}\n{hooks}"
    );
    let f = Flow::start(&extra, &["ada@example.com"]);
    let wrong = |email: Option<&str>| {
        let mut body = json!({ "resetToken": "000000000000" });
        if let Some(email) = email {
            body["email"] = email.into();
        }
        f.service.post(CONFIRM, &body.to_string()).status
    };
    // Three failures naming the account lock it; the third is announced, once.
    for _ in 0..4 {
        assert_eq!(wrong(Some("ada@example.com")), 400);
    }
    let locked = receiver.next_delivery();
    assert_signed(&locked);
    assert_eq!(locked.event_type(), "account.locked");
    assert_eq!(locked.data()["email"], "ada@example.com");
    assert_eq!(locked.data()["failures"], 3);
    assert_eq!(locked.data()["client"], "127.0.0.1");

    // The budget (5 failures, the four above counted) runs out for code-only guesses.
    assert_eq!(wrong(None), 400);
    assert_eq!(wrong(None), 429);
    assert_eq!(wrong(None), 429);
    let spent = receiver.next_delivery();
    assert_signed(&spent);
    assert_eq!(spent.event_type(), "recovery.budget_exhausted");
    assert_eq!(spent.data()["budget"], 5);
    assert_eq!(spent.data()["window_seconds"], 3600);
    assert!(spent.data()["until"].as_str().unwrap().ends_with('Z'));
    assert!(
        receiver.pending().is_empty(),
        "each announced once: {:?}",
        receiver.pending()
    );
}

#[test]
fn a_connection_the_receiver_closed_while_idle_costs_no_retry() {
    let receiver = WebhookReceiver::start_with(TEST_SECRET, &["--close-after-answer"]);
    let hooks = webhook_config(
        "app",
        &receiver.url(),
        TEST_SECRET,
        "events = [\"code.confirmed\"]\n",
    );
    let users = [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ];
    let mut f = Flow::start(&hooks, &users);
    for user in users {
        f.confirm(user);
        let d = receiver.next_delivery();
        assert_signed(&d);
        assert_eq!(d.data()["email"], user);
        f.service.wait_for_log("webhook delivered");
    }
    let metrics = f.metrics();
    assert!(
        metrics
            .contains(r#"resetgate_webhook_deliveries_total{endpoint="app",outcome="retried"} 0"#),
        "each delivery went out at once on a fresh connection: {metrics}"
    );
}

#[test]
fn deliveries_to_an_endpoint_no_longer_configured_become_dead_letters() {
    // A receiver that refuses everything with 503 (retried): the event stays queued.
    let receiver = WebhookReceiver::start_with(
        TEST_SECRET,
        &["--fail-first", "1000", "--fail-status", "503"],
    );
    let hooks = webhook_config(
        "old",
        &receiver.url(),
        TEST_SECRET,
        "events = [\"code.confirmed\"]\n",
    );
    let mut f = Flow::start(&hooks, &["ada@example.com"]);
    f.confirm("ada@example.com");
    assert_eq!(receiver.next_delivery().status, 503);
    f.service.wait_for_log("will retry");
    let (status, _) = f.service.stop();
    assert!(status.success());

    // The endpoint renamed: its queued delivery has no task any more.
    let config = std::fs::read_to_string(&f.setup.config).unwrap();
    std::fs::write(
        &f.setup.config,
        config.replace("name = \"old\"", "name = \"new\""),
    )
    .unwrap();
    f.service = f.setup.start();
    f.service
        .wait_for_log("no longer configured were set aside as dead letters");
    let view = f.outbox();
    assert_eq!(view["queued"], 0);
    let dead = &view["dead"][0];
    assert_eq!(
        (dead["to"].as_str(), dead["error"].as_str()),
        (Some("old"), Some("the endpoint is no longer configured"))
    );
    let id = dead["id"].as_u64().unwrap().to_string();
    let retried = f.setup.cli(&["outbox", "retry", &id]);
    assert_eq!(retried.code, Some(3), "{retried:?}");
    assert!(
        retried.stderr.contains("no longer configured"),
        "{retried:?}"
    );
}

#[test]
fn a_dead_letters_password_hash_is_scrubbed_once_it_is_not_the_accounts() {
    // 400 for the first three deliveries: the password.changed event, with its hash, is
    // refused three times and set aside as a dead letter.
    let receiver =
        WebhookReceiver::start_with(TEST_SECRET, &["--fail-first", "3", "--fail-status", "400"]);
    let hooks = format!(
        "[storage]\nsweep_interval = \"200ms\"\n{}",
        webhook_config(
            "app",
            &receiver.url(),
            TEST_SECRET,
            "events = [\"password.changed\"]\ninclude_password_hash = true\n",
        )
    );
    let mut f = Flow::start(&hooks, &["ada@example.com"]);
    f.recover("ada@example.com");
    let refused = receiver.next_delivery();
    assert_eq!(refused.status, 400);
    let hash = refused.data()["password_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(hash.starts_with("$pbkdf2-sha256$"), "{hash}");
    f.service.wait_for_log("kept as a dead letter");
    let dead = &f.outbox()["dead"][0];
    assert_eq!(dead["event"], "password.changed");
    let id = dead["id"].as_u64().unwrap();

    // The account goes: its hash is nobody's any more, and the sweeper takes it out.
    let removed = f.setup.cli(&["users", "remove", "ada@example.com"]);
    assert_eq!(removed.code, Some(0), "{removed:?}");
    f.service
        .wait_for_log("replaced password hashes from dead letters");
    let listed = f.setup.cli(&["outbox", "show", &id.to_string()]);
    assert!(!listed.stdout.contains(&hash), "{listed:?}");
    let (status, _) = f.service.stop();
    assert!(status.success());

    let db =
        resetgate::store::Db::open(&f.setup.data_dir(), 8, resetgate::config::Durability::Flush)
            .unwrap();
    let letter = db.dead_letter(id).unwrap().expect("still a dead letter");
    let resetgate::store::outbox::Kind::Webhook { body, .. } = letter.message.kind else {
        panic!("a webhook delivery: {letter:?}");
    };
    assert!(
        !body.contains("password_hash") && !body.contains(&hash),
        "{body}"
    );
    assert!(body.contains("password.changed"), "the event stays: {body}");
}

/// The value of an unlabelled series in the metrics text.
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

#[test]
fn a_dead_endpoints_backlog_is_not_read_again_for_each_event() {
    // 2,000 deliveries queued for an endpoint that refuses connections, all in their
    // backoff, beside a live endpoint: an event costs the delivery tasks a look at what is
    // new, not a read of the backlog (counted by resetgate_webhook_queue_reads_total).
    const BACKLOG: usize = 2_000;
    let receiver = WebhookReceiver::start(TEST_SECRET);
    let dead = format!(
        "[[webhooks]]\nname = \"dead\"\nurl = \"http://127.0.0.1:{}/hooks\"\nsecret = \"{TEST_SECRET}\"\n\
         events = [\"password.changed\"]\nretry_initial = \"1h\"\nretry_max = \"1h\"\n",
        support::free_port()
    );
    let app = webhook_config(
        "app",
        &receiver.url(),
        TEST_SECRET,
        "events = [\"password.changed\"]\n",
    );
    let sink = SmtpSink::start();
    let setup = Setup::new(&format!("{}{dead}{app}", support::smtp_config(sink.port)));
    assert_eq!(
        setup.cli(&["users", "add", "ada@example.com"]).code,
        Some(0)
    );
    {
        let db =
            resetgate::store::Db::open(&setup.data_dir(), 8, resetgate::config::Durability::Flush)
                .unwrap();
        let now = resetgate::store::unix_ms(std::time::SystemTime::now());
        let backlog: Vec<_> = (0..BACKLOG)
            .map(|i| {
                let kind = resetgate::store::outbox::Kind::Webhook {
                    event: "password.changed".into(),
                    id: format!("msg_{i:032x}"),
                    account: format!("old{i}@example.com"),
                    body: r#"{"type":"password.changed"}"#.into(),
                };
                let mut q = resetgate::store::outbox::Queued::new(
                    "dead".into(),
                    kind,
                    now,
                    Some(now + 86_400_000),
                );
                q.next_attempt_ms = now + 3_600_000;
                q
            })
            .collect();
        db.queue_webhooks(&backlog).unwrap();
        db.flush_blocking().unwrap();
    }
    support::close_to_others(&setup.data_dir());
    // sled lets go of the directory's lock a moment after: a command that opens it directly
    // succeeds once it has.
    while setup.cli(&["users", "list"]).code != Some(0) {}
    let mut service = setup.start();
    let change = |service: &Service, i: usize| {
        let body = json!({ "email": "ada@example.com", "password": format!("{PASSWORD} {i}") });
        let r = service.admin_call(
            &setup,
            "POST",
            "/admin/v1/users/set-password",
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{r:?}");
    };
    let metrics = |service: &Service| {
        let r = service.admin_call(&setup, "GET", "/metrics", b"");
        series(&r.raw_body, "resetgate_webhook_queue_reads_total")
    };
    change(&service, 0);
    assert_eq!(receiver.next_delivery().status, 200);
    service.wait_for_log("webhook delivered");
    let before = metrics(&service);
    assert!(
        before >= BACKLOG as f64,
        "the first scan read the backlog: {before}"
    );
    for i in 1..=10 {
        change(&service, i);
    }
    for _ in 1..=10 {
        assert_eq!(receiver.next_delivery().event_type(), "password.changed");
    }
    for _ in 1..=10 {
        service.wait_for_log("webhook delivered");
    }
    let read = metrics(&service) - before;
    assert!(
        read < (BACKLOG / 2) as f64,
        "ten events read {read} entries of a backlog of {BACKLOG}"
    );
}
