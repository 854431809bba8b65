//! An account's lifecycle for the application, against the real binary with a real SMTP
//! server and a real webhook receiver: a new address, a password set or cleared, disabled
//! and enabled, and the history support reads (`users show`), over the admin API and the
//! CLI (the admin socket) alike.

mod support;

use serde_json::{json, Value};
use support::webhook::{webhook_config, WebhookReceiver, TEST_SECRET};
use support::{Reply, Service, Setup, SmtpSink};

const PASSWORD: &str = "purple elephant dances at noon";
const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";

/// A service with ada (who has a password), SMTP to a real sink, a webhook receiver, and
/// `extra` configuration.
fn service(extra: &str) -> (SmtpSink, WebhookReceiver, Setup, Service) {
    let sink = SmtpSink::start();
    let hooks = WebhookReceiver::start(TEST_SECRET);
    let config = format!(
        "{}[recovery]\nresend_cooldown = \"0s\"\n{extra}\n{}",
        support::smtp_config(sink.port),
        webhook_config("app", &hooks.url(), TEST_SECRET, "")
    );
    let setup = Setup::new(&config);
    let added = setup.cli_with_stdin(
        &["users", "add", "ada@example.com", "--password-stdin"],
        PASSWORD,
    );
    assert_eq!(added.code, Some(0), "{added:?}");
    let service = setup.start();
    (sink, hooks, setup, service)
}

fn admin(service: &Service, setup: &Setup, path: &str, body: Value) -> Reply {
    let body = body.to_string();
    service.admin_call(
        setup,
        "POST",
        &format!("/admin/v1/users/{path}"),
        body.as_bytes(),
    )
}

fn verify(service: &Service, setup: &Setup, email: &str, password: &str) -> u16 {
    admin(
        service,
        setup,
        "verify",
        json!({ "email": email, "password": password }),
    )
    .status
}

fn forgot(service: &Service, email: &str) -> Reply {
    service.post(FORGOT, &json!({ "email": email }).to_string())
}

/// The next delivery of `kind` (the others, say `code.confirmed`, are passed over).
fn event(hooks: &WebhookReceiver, kind: &str) -> Value {
    loop {
        let delivery = hooks.next_delivery();
        assert!(delivery.verified, "{delivery:?}");
        if delivery.event_type() == kind {
            return delivery.data().clone();
        }
    }
}

fn history(service: &Service, setup: &Setup, email: &str) -> Vec<Value> {
    let shown = admin(service, setup, "show", json!({ "email": email }));
    assert_eq!(shown.status, 200, "{shown:?}");
    shown.json()["history"].as_array().unwrap().clone()
}

fn whats(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect()
}

#[test]
fn a_new_address_keeps_the_password_failures_and_history_and_ends_the_old_code() {
    let (sink, hooks, setup, mut service) = service("");
    assert_eq!(forgot(&service, "ada@example.com").status, 200);
    let code = sink.next_mail().code();
    service.wait_for_log("message delivered");
    let wrong = json!({ "resetToken": "000000000000", "email": "ada@example.com" });
    assert_eq!(service.post(CONFIRM, &wrong.to_string()).status, 400);

    let moved = admin(
        &service,
        &setup,
        "change-email",
        json!({ "email": "ada@example.com", "new_email": "Ada@New.example" }),
    );
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(
        moved.json(),
        json!({ "email": "Ada@New.example", "previous": "ada@example.com" })
    );
    let data = event(&hooks, "account.email_changed");
    assert_eq!(
        (data["email"].as_str(), data["previous_email"].as_str()),
        (Some("Ada@New.example"), Some("ada@example.com"))
    );
    assert_eq!(
        verify(&service, &setup, "ada@new.example", PASSWORD),
        200,
        "the hash came along"
    );
    assert_eq!(verify(&service, &setup, "ada@example.com", PASSWORD), 401);
    let old_code = service.post(CONFIRM, &json!({ "resetToken": code }).to_string());
    assert_eq!(old_code.status, 400, "the old address's code ended");
    let shown = admin(
        &service,
        &setup,
        "show",
        json!({ "email": "ada@new.example" }),
    )
    .json();
    assert_eq!(shown["failures"], 1, "the failure count came along");
    assert_eq!(shown["code_expires_ms"], Value::Null);
    assert_eq!(
        whats(shown["history"].as_array().unwrap()),
        [
            "code_requested",
            "mail_accepted",
            "confirmations_refused",
            "email_changed"
        ],
        "the history came along"
    );

    let taken = admin(
        &service,
        &setup,
        "change-email",
        json!({ "email": "ada@new.example", "new_email": "ada@new.example" }),
    );
    assert_eq!(taken.status, 409, "{taken:?}");
    let nobody = admin(
        &service,
        &setup,
        "change-email",
        json!({ "email": "nobody@example.com", "new_email": "x@example.com" }),
    );
    assert_eq!(
        (nobody.status, nobody.message()),
        (404, "No Account found with this email address".into())
    );

    // The CLI, over the admin socket.
    let back = setup.cli(&[
        "users",
        "change-email",
        "ada@new.example",
        "ada@example.com",
    ]);
    assert_eq!(back.code, Some(0), "{back:?}");
    assert!(
        back.stdout
            .contains("Ada@New.example is now ada@example.com"),
        "{back:?}"
    );
    let again = setup.cli(&[
        "users",
        "change-email",
        "nobody@example.com",
        "ada@example.com",
    ]);
    assert_eq!(again.code, Some(3), "{again:?}");
}

/// A code whose mail could not go yet (the relay refuses for now) is not sent to the old
/// address after the change.
#[test]
fn the_old_addresss_queued_mail_is_not_sent() {
    let port = support::free_port();
    let config = format!(
        "{}[recovery]\nresend_cooldown = \"0s\"\n",
        support::smtp_config(port)
    );
    let setup = Setup::new(&config);
    assert_eq!(
        setup.cli(&["users", "add", "ada@example.com"]).code,
        Some(0)
    );
    let service = setup.start();
    assert_eq!(forgot(&service, "ada@example.com").status, 200);
    let outbox = service
        .admin_call(&setup, "GET", "/admin/v1/outbox", b"")
        .json();
    assert_eq!(outbox["queued"], 1, "waiting for the relay: {outbox}");
    let moved = admin(
        &service,
        &setup,
        "change-email",
        json!({ "email": "ada@example.com", "new_email": "ada@new.example" }),
    );
    assert_eq!(moved.status, 200);
    let outbox = service
        .admin_call(&setup, "GET", "/admin/v1/outbox", b"")
        .json();
    assert_eq!(
        outbox["queued"], 0,
        "the code's mail went with it: {outbox}"
    );
}

#[test]
fn the_operator_sets_or_clears_a_password_under_the_same_policy() {
    let (sink, hooks, setup, service) = service("");
    assert_eq!(forgot(&service, "ada@example.com").status, 200);
    let code = sink.next_mail().code();
    let weak = admin(
        &service,
        &setup,
        "set-password",
        json!({ "email": "ada@example.com", "password": "short" }),
    );
    assert_eq!(weak.status, 400, "{weak:?}");
    assert!(
        weak.message().starts_with("Password must be at least"),
        "{weak:?}"
    );
    let common = admin(
        &service,
        &setup,
        "set-password",
        json!({ "email": "ada@example.com", "password": "password1234567890" }),
    );
    assert_eq!(common.status, 400, "{common:?}");

    let new = "a different passphrase for ada";
    let set = admin(
        &service,
        &setup,
        "set-password",
        json!({ "email": "ada@example.com", "password": new }),
    );
    assert_eq!(
        set.json(),
        json!({ "email": "ada@example.com", "has_password": true })
    );
    let data = event(&hooks, "password.changed");
    assert_eq!(data["source"], "admin");
    assert_eq!(verify(&service, &setup, "ada@example.com", new), 200);
    assert_eq!(verify(&service, &setup, "ada@example.com", PASSWORD), 401);
    let old_code = service.post(CONFIRM, &json!({ "resetToken": code }).to_string());
    assert_eq!(old_code.status, 400, "the live code ended");

    let cleared = admin(
        &service,
        &setup,
        "set-password",
        json!({ "email": "ada@example.com", "password": null }),
    );
    assert_eq!(cleared.json()["has_password"], false);
    assert_eq!(verify(&service, &setup, "ada@example.com", new), 401);
    let data = event(&hooks, "password.changed");
    assert!(data.get("password_hash").is_none(), "{data}");

    let cli = setup.cli_with_stdin(
        &[
            "users",
            "set-password",
            "ada@example.com",
            "--password-stdin",
        ],
        PASSWORD,
    );
    assert_eq!(cli.code, Some(0), "{cli:?}");
    assert_eq!(event(&hooks, "password.changed")["source"], "admin");
    assert_eq!(verify(&service, &setup, "ada@example.com", PASSWORD), 200);
    let history = history(&service, &setup, "ada@example.com");
    let changes: Vec<&str> = history
        .iter()
        .filter(|e| e["what"] == "password_changed")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["admin", "admin", "admin"]);

    // The recovery flow says "reset".
    assert_eq!(forgot(&service, "ada@example.com").status, 200);
    let code = sink.next_mail().code();
    let confirmed = service.post(CONFIRM, &json!({ "resetToken": code }).to_string());
    assert_eq!(confirmed.status, 200);
    let reset = json!({ "email": "ada@example.com", "password": new });
    assert_eq!(service.post(RESET, &reset.to_string()).status, 200);
    assert_eq!(event(&hooks, "password.changed")["source"], "reset");
}

/// A disabled account answers as an unknown address, in both modes; verify refuses it.
#[test]
fn a_disabled_account_answers_as_an_unknown_address() {
    for hide in [false, true] {
        let extra = format!("hide_unknown_accounts = {hide}\n");
        let (sink, hooks, setup, mut service) = service(&extra);
        assert_eq!(forgot(&service, "ada@example.com").status, 200);
        let code = sink.next_mail().code();
        service.wait_for_log("message delivered");
        let disabled = admin(
            &service,
            &setup,
            "disable",
            json!({ "email": "ada@example.com" }),
        );
        assert_eq!(
            disabled.json(),
            json!({ "email": "ada@example.com", "disabled": true, "changed": true })
        );
        assert_eq!(
            event(&hooks, "account.disabled")["email"],
            "ada@example.com"
        );

        let known = forgot(&service, "ada@example.com");
        let unknown = forgot(&service, "nobody@example.com");
        assert_eq!(
            (known.status, &known.raw_body),
            (unknown.status, &unknown.raw_body),
            "hide = {hide}"
        );
        let confirm = service.post(CONFIRM, &json!({ "resetToken": code }).to_string());
        assert_eq!(confirm.status, 400, "its live code ended");
        let reset = |email: &str| {
            service.post(
                RESET,
                &json!({ "email": email, "password": PASSWORD }).to_string(),
            )
        };
        let (known, unknown) = (reset("ada@example.com"), reset("nobody@example.com"));
        assert_eq!(
            (known.status, known.message()),
            (unknown.status, unknown.message())
        );
        assert_eq!(verify(&service, &setup, "ada@example.com", PASSWORD), 401);
        let metrics = service.admin_call(&setup, "GET", "/metrics", b"").raw_body;
        assert!(
            metrics.contains("resetgate_codes_issued_total 1\n"),
            "no code while disabled"
        );

        let enabled = setup.cli(&["users", "enable", "ada@example.com"]);
        assert_eq!(enabled.code, Some(0), "{enabled:?}");
        assert_eq!(event(&hooks, "account.enabled")["email"], "ada@example.com");
        assert_eq!(verify(&service, &setup, "ada@example.com", PASSWORD), 200);
        assert_eq!(forgot(&service, "ada@example.com").status, 200);
        assert!(!sink.next_mail().code().is_empty(), "codes again");
        service.wait_for_log("message delivered");
        let history = history(&service, &setup, "ada@example.com");
        assert!(whats(&history).ends_with(&[
            "disabled",
            "enabled",
            "code_requested",
            "mail_accepted"
        ]));
    }
}

/// "I never got the code": the history says when it was asked for, from where, and what
/// the relay answered; it survives a restart and keeps only the newest entries.
#[test]
fn the_history_tells_whether_the_code_went_out_and_what_the_relay_said() {
    let (sink, _hooks, setup, mut service) = service("[history]\nper_account = 4\n");
    let asked = support::request(
        service.public,
        "POST",
        FORGOT,
        &[support::JSON],
        br#"{"email": "ada@example.com"}"#,
    );
    assert_eq!(asked.status, 200);
    let request_id = asked.header("x-request-id").unwrap().to_string();
    let mail = sink.next_mail();
    service.wait_for_log("message delivered");
    let history = history(&service, &setup, "ada@example.com");
    assert_eq!(whats(&history), ["code_requested", "mail_accepted"]);
    assert_eq!(history[0]["client"], "127.0.0.1");
    assert_eq!(history[0]["request_id"], request_id);
    let reply = history[1]["detail"].as_str().unwrap();
    assert!(reply.starts_with("250"), "the relay's reply: {reply}");
    let text = serde_json::to_string(&history).unwrap();
    assert!(!text.contains(&mail.code()), "never the code: {text}");

    let shown = setup.cli(&["users", "show", "ada@example.com"]);
    assert_eq!(shown.code, Some(0), "{shown:?}");
    assert!(
        shown.stdout.contains("mail_accepted") && shown.stdout.contains(reply),
        "{}",
        shown.stdout
    );
    let as_json = setup.cli(&["--json", "users", "show", "ada@example.com"]);
    let value: Value = serde_json::from_str(as_json.stdout.trim()).unwrap();
    assert_eq!(value["history"].as_array().unwrap().len(), 2);

    let (status, _) = service.stop();
    assert!(status.success());
    let mut service = setup.start();
    assert_eq!(
        whats(&history_of(&service, &setup)),
        ["code_requested", "mail_accepted"],
        "after a restart"
    );
    for _ in 0..2 {
        assert_eq!(forgot(&service, "ada@example.com").status, 200);
        sink.next_mail();
        service.wait_for_log("message delivered");
    }
    // A repeated request is counted in its hour's entry (two, if an hour began meanwhile).
    let history = history_of(&service, &setup);
    let counted = |what: &str| -> u64 {
        let entries = history.iter().filter(|e| e["what"] == what);
        entries.map(|e| e["count"].as_u64().unwrap()).sum()
    };
    assert_eq!(
        (counted("code_requested"), counted("mail_accepted")),
        (3, 3),
        "{history:?}"
    );
    assert!(history.len() <= 4, "{history:?}");
    let latest = history
        .iter()
        .rev()
        .find(|e| e["what"] == "code_requested")
        .unwrap();
    assert!(latest["last_ms"].as_u64().unwrap() >= latest["at_ms"].as_u64().unwrap());
    for op in ["disable", "enable", "disable"] {
        let done = admin(&service, &setup, op, json!({ "email": "ada@example.com" }));
        assert_eq!(done.status, 200, "{op}");
    }
    let history = history_of(&service, &setup);
    assert_eq!(
        whats(&history),
        ["mail_accepted", "disabled", "enabled", "disabled"],
        "history.per_account: the newest 4 of {history:?}"
    );
    let unknown = admin(
        &service,
        &setup,
        "show",
        json!({ "email": "nobody@example.com" }),
    );
    assert_eq!(unknown.status, 404, "only accounts have a history");
}

fn history_of(service: &Service, setup: &Setup) -> Vec<Value> {
    history(service, setup, "ada@example.com")
}
