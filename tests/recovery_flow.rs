//! The whole recovery flow against the real binary and a real SMTP server (docs/api.md, confirm-otp-reset and password-reset):
//! forgot → code from the mail → confirm-otp-reset → password-reset, every status and
//! message of the last two, and every response checked against the OpenAPI document.

mod support;

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use support::openapi::Spec;
use support::{request, request_from, smtp_config, Reply, Service, Setup, SmtpSink, JSON};

const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";
const NEW_PASSWORD: &str = "purple elephant dances at noon";

struct Flow {
    sink: SmtpSink,
    setup: Setup,
    service: Service,
    spec: Spec,
}

impl Flow {
    /// A service with `user` (whose password is "an old and long passphrase") and `extra` config.
    fn start(extra: &str, users: &[&str]) -> Flow {
        let sink = SmtpSink::start();
        let setup = Setup::new(&format!("{}{extra}", smtp_config(sink.port)));
        for user in users {
            let added = setup.cli_with_stdin(
                &["users", "add", user, "--password-stdin"],
                "an old and long passphrase\n",
            );
            assert_eq!(added.code, Some(0), "{added:?}");
        }
        let service = setup.start();
        Flow {
            sink,
            setup,
            service,
            spec: Spec::load(),
        }
    }

    /// POSTs `body` to `path` and checks the answer against the OpenAPI document.
    fn post(&self, path: &str, body: &Value) -> Reply {
        let reply = self.service.post(path, &body.to_string());
        self.spec.check("POST", path, &reply);
        reply
    }

    /// forgot-password for `email`, then the code from the mail it sends.
    fn code_for(&self, email: &str) -> String {
        let r = self.post(FORGOT, &json!({ "email": email }));
        assert_eq!(r.status, 200, "{r:?}");
        let mail = self.sink.next_mail();
        assert_eq!(mail.rcpt_tos, vec![email.to_string()]);
        mail.code()
    }

    fn confirm(&self, code: &str) -> Reply {
        self.post(CONFIRM, &json!({ "resetToken": code }))
    }

    fn verify(&self, email: &str, password: &str) -> u16 {
        let body = json!({ "email": email, "password": password }).to_string();
        let r = self.service.admin_call(
            &self.setup,
            "POST",
            "/admin/v1/users/verify",
            body.as_bytes(),
        );
        self.spec.check("POST", "/admin/v1/users/verify", &r);
        r.status
    }
}

fn assert_error(r: &Reply, status: u16, message: &str) {
    assert_eq!(
        (r.status, r.message()),
        (status, message.to_string()),
        "{r:?}"
    );
}

/// Waits until the wall clock has passed `t`: the precondition of an expiry test is that
/// time has passed, so this waits for exactly that, with a short configured lifetime.
fn wait_past(t: SystemTime) {
    while let Ok(left) = t.duration_since(SystemTime::now()) {
        std::thread::sleep(left + Duration::from_millis(5));
    }
}

#[test]
fn a_person_recovers_their_account() {
    let f = Flow::start("", &["Ada@Example.com"]);
    let code = f.code_for("Ada@Example.com");

    let r = f.confirm(&code);
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    assert_eq!(body["message"], "OTP confirmed successfully");
    assert_eq!(body["email"], "Ada@Example.com", "the stored address");
    assert_eq!(body["key_0"], 600, "the confirmation window");
    assert_eq!(body["key_1"], body["message"]);
    assert_eq!(body["key_4"], true);
    let session = body["resetSession"].as_str().expect("a session");
    assert!(session.len() >= 22, "at least 128 bits: {session}");

    let r = f.post(
        RESET,
        &json!({ "email": "ada@example.com", "password": NEW_PASSWORD }),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["message"], "Password reset successfully");
    assert_eq!(
        (r.json()["key_0"].as_u64(), r.json()["key_4"].as_bool()),
        (Some(0), Some(true))
    );

    let notice = f.sink.next_mail();
    assert_eq!(notice.rcpt_tos, vec!["Ada@Example.com"]);
    assert!(notice.data.contains("was changed"), "{}", notice.data);
    assert!(
        notice.data.contains("127.0.0.1"),
        "names the client address"
    );
    assert!(!notice.data.contains(NEW_PASSWORD) && !notice.data.contains(&code));

    assert_eq!(f.verify("ada@example.com", NEW_PASSWORD), 200);
    assert_eq!(
        f.verify("ada@example.com", "an old and long passphrase"),
        401
    );
    assert_eq!(f.verify("nobody@example.com", NEW_PASSWORD), 401);

    let (status, log) = f.service.stop();
    assert!(status.success());
    for secret in [NEW_PASSWORD, code.as_str(), session] {
        assert!(
            log.iter().all(|l| !l.contains(secret)),
            "{secret} reached the log"
        );
    }
}

#[test]
fn codes_confirm_once_and_only_while_live() {
    let f = Flow::start(
        "[recovery]\nresend_cooldown = \"0s\"\ncode_ttl = \"2s\"\n",
        &["a@example.com", "b@example.com"],
    );

    // Used: the second try fails.
    let code = f.code_for("a@example.com");
    assert_eq!(f.confirm(&code).status, 200);
    assert_error(&f.confirm(&code), 400, "Invalid OTP");

    // Replaced by a newer one.
    let old = f.code_for("a@example.com");
    let new = f.code_for("a@example.com");
    if old != new {
        assert_error(&f.confirm(&old), 400, "Invalid OTP");
    }
    // Another account's code, named as b's: refused, and a's code still works.
    let r = f.post(
        CONFIRM,
        &json!({ "resetToken": new, "email": "b@example.com" }),
    );
    assert_error(&r, 400, "Invalid OTP");
    let grouped = format!("{} {}-{}", &new[..4], &new[4..8], &new[8..]);
    let r = f.post(
        CONFIRM,
        &json!({ "resetToken": grouped, "email": "A@example.com" }),
    );
    assert_eq!(r.status, 200, "typed as shown, with the right email: {r:?}");

    // Expired: the configured lifetime is two seconds.
    let code = f.code_for("b@example.com");
    wait_past(SystemTime::now() + Duration::from_secs(2));
    assert_error(&f.confirm(&code), 400, "Invalid OTP");
    assert_error(&f.confirm("000000000000"), 400, "Invalid OTP");
}

#[test]
fn concurrent_confirmations_of_one_code_give_one_success() {
    let f = Flow::start("", &["a@example.com"]);
    let code = f.code_for("a@example.com");
    let (addr, body) = (f.service.public, json!({ "resetToken": code }).to_string());
    let start = std::sync::Barrier::new(8);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    request(addr, "POST", CONFIRM, &[JSON], body.as_bytes()).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );
}

#[test]
fn password_reset_needs_this_clients_live_confirmation() {
    let f = Flow::start(
        "[recovery]\nresend_cooldown = \"0s\"\nconfirm_window = \"2s\"\n",
        &["a@example.com"],
    );
    let reset = |body: Value| f.post(RESET, &body);
    let plain = json!({ "email": "a@example.com", "password": NEW_PASSWORD });

    assert_error(&reset(plain.clone()), 400, "Invalid Request");

    // After the window.
    let code = f.code_for("a@example.com");
    assert_eq!(f.confirm(&code).status, 200);
    wait_past(SystemTime::now() + Duration::from_secs(2));
    assert_error(&reset(plain.clone()), 400, "Invalid Request");

    // From another address without the session; with a wrong one; then with the right one.
    let code = f.code_for("a@example.com");
    let session = f.confirm(&code).json()["resetSession"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    let r = request_from(elsewhere, f.service.public, RESET, &plain.to_string());
    assert_error(&r, 400, "Invalid Request");
    let mut wrong = plain.clone();
    wrong["resetSession"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_error(&reset(wrong), 400, "Invalid Request");
    let mut right = plain.clone();
    right["resetSession"] = json!(session);
    let r = request_from(elsewhere, f.service.public, RESET, &right.to_string());
    assert_eq!(r.status, 200, "the session works from anywhere: {r:?}");

    // Twice.
    assert_error(&reset(right), 400, "Invalid Request");
}

#[test]
fn the_session_can_be_made_mandatory() {
    let f = Flow::start("[recovery]\nrequire_session = true\n", &["a@example.com"]);
    let session = f.confirm(&f.code_for("a@example.com")).json()["resetSession"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = json!({ "email": "a@example.com", "password": NEW_PASSWORD });
    assert_error(&f.post(RESET, &plain), 400, "Invalid Request");
    let mut with = plain;
    with["resetSession"] = json!(session);
    assert_eq!(f.post(RESET, &with).status, 200);
}

#[test]
fn failures_per_account_survive_a_restart() {
    let mut f = Flow::start("[recovery]\nmax_account_failures = 3\n", &["a@example.com"]);
    let code = f.code_for("a@example.com");
    let guess = |f: &Flow| {
        f.post(
            CONFIRM,
            &json!({ "resetToken": "111111111111", "email": "a@example.com" }),
        )
    };
    assert_error(&guess(&f), 400, "Invalid OTP");
    assert_error(&guess(&f), 400, "Invalid OTP");
    let (status, _) = f.service.stop();
    assert!(status.success());
    f.service = f.setup.start();
    assert_error(&guess(&f), 400, "Invalid OTP");
    // Three consecutive failures: naming the account, even the right code is refused now.
    let named = json!({ "resetToken": code, "email": "a@example.com" });
    assert_error(&f.post(CONFIRM, &named), 400, "Invalid OTP");
    let unlocked = f.setup.cli(&["users", "unlock", "a@example.com"]);
    assert_eq!(unlocked.code, Some(0), "{unlocked:?}");
    assert_eq!(
        f.post(CONFIRM, &named).status,
        200,
        "the code was live all along"
    );
}

#[test]
fn a_locked_account_can_still_confirm_the_documented_way() {
    // The lock guards the path that names the account; the code-only path is bounded by
    // the global budget, so the owner's documented request is not locked out by a stranger.
    let f = Flow::start("[recovery]\nmax_account_failures = 2\n", &["a@example.com"]);
    let code = f.code_for("a@example.com");
    for _ in 0..3 {
        let guess = json!({ "resetToken": "111111111111", "email": "a@example.com" });
        assert_error(&f.post(CONFIRM, &guess), 400, "Invalid OTP");
    }
    assert_eq!(f.confirm(&code).status, 200);
}

/// The security review's poller: someone who knows only the address, behind the same
/// address as the owner (NAT, a proxy), loops password-reset without `resetSession`. Each
/// refusal spoils the same-client fallback for the code and its confirmation, so the poll
/// that comes after the owner's code-only confirmation does not win the account; only the
/// `resetSession` the owner was given still works.
#[test]
fn a_poller_behind_the_owners_address_never_resets_the_account() {
    let f = Flow::start("", &["ada@example.com"]);
    let stolen = json!({ "email": "ada@example.com", "password": "the attacker's new passphrase" });
    assert_error(&f.post(RESET, &stolen), 400, "Invalid Request");
    let code = f.code_for("ada@example.com");
    assert_error(&f.post(RESET, &stolen), 400, "Invalid Request");
    let confirmed = f.confirm(&code);
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    for _ in 0..3 {
        assert_error(&f.post(RESET, &stolen), 400, "Invalid Request");
    }
    let fallback = json!({ "email": "ada@example.com", "password": NEW_PASSWORD });
    assert_error(&f.post(RESET, &fallback), 400, "Invalid Request");
    let session = confirmed.json()["resetSession"]
        .as_str()
        .unwrap()
        .to_string();
    let owner =
        json!({ "email": "ada@example.com", "password": NEW_PASSWORD, "resetSession": session });
    assert_eq!(f.post(RESET, &owner).status, 200);
    assert_eq!(
        f.verify("ada@example.com", "the attacker's new passphrase"),
        401
    );
    assert_eq!(f.verify("ada@example.com", NEW_PASSWORD), 200);
    let metrics = f
        .service
        .admin_call(&f.setup, "GET", "/metrics", b"")
        .raw_body;
    assert!(
        metrics.contains("resetgate_password_resets_refused_total 6"),
        "every refusal was counted: {metrics}"
    );
}

/// A stranger elsewhere who polls password-reset for the address changes nothing for the
/// owner: only a refused client loses the same-client fallback, so the owner's documented
/// three steps (no `resetSession`) still work.
#[test]
fn a_stranger_polling_from_elsewhere_does_not_break_the_owners_flow() {
    let f = Flow::start("", &["ada@example.com"]);
    let stranger: IpAddr = "127.0.0.77".parse().unwrap();
    let stolen = json!({ "email": "ada@example.com", "password": "the attacker's new passphrase" })
        .to_string();
    let code = f.code_for("ada@example.com");
    let r = request_from(stranger, f.service.public, RESET, &stolen);
    assert_error(&r, 400, "Invalid Request");
    assert_eq!(f.confirm(&code).status, 200);
    let r = request_from(stranger, f.service.public, RESET, &stolen);
    assert_error(&r, 400, "Invalid Request");
    let owner = json!({ "email": "ada@example.com", "password": NEW_PASSWORD });
    assert_eq!(f.post(RESET, &owner).status, 200, "the documented flow");
    assert_eq!(f.verify("ada@example.com", NEW_PASSWORD), 200);
}

/// Refused password-resets are failures: they count against the client (and earn ban
/// strikes), so a poller is stopped with 429 after `limits.reset_failures_per_client`.
#[test]
fn refused_password_resets_are_limited_per_client() {
    let f = Flow::start(
        "[limits]\nreset_failures_per_client = { requests = 2, window = \"1h\" }\n",
        &["ada@example.com"],
    );
    let poll = json!({ "email": "ada@example.com", "password": NEW_PASSWORD });
    assert_error(&f.post(RESET, &poll), 400, "Invalid Request");
    assert_error(&f.post(RESET, &poll), 400, "Invalid Request");
    let limited = f.post(RESET, &poll);
    assert_error(&limited, 429, "Too many requests");
    assert!(limited.header("Retry-After").is_some());
    let other: IpAddr = "127.0.0.31".parse().unwrap();
    let r = request_from(other, f.service.public, RESET, &poll.to_string());
    assert_error(&r, 400, "Invalid Request");
}

#[test]
fn strangers_cannot_spend_the_owners_password_reset_allowance() {
    let per_email = "per_client = { requests = 100, window = \"1h\" }\nper_email = { requests = 2, window = \"1h\" }\nglobal = { requests = 0, window = \"1m\" }\n";
    let f = Flow::start(
        &format!("[limits.password_reset]\n{per_email}"),
        &["a@example.com"],
    );
    let session = f.confirm(&f.code_for("a@example.com")).json()["resetSession"]
        .as_str()
        .unwrap()
        .to_string();
    let stranger: IpAddr = "127.0.0.9".parse().unwrap();
    let hopeless = json!({ "email": "a@example.com", "password": NEW_PASSWORD }).to_string();
    for _ in 0..5 {
        let r = request_from(stranger, f.service.public, RESET, &hopeless);
        assert_error(&r, 400, "Invalid Request");
    }
    let owner =
        json!({ "email": "a@example.com", "password": NEW_PASSWORD, "resetSession": session });
    assert_eq!(
        f.post(RESET, &owner).status,
        200,
        "the owner is not limited by a stranger's tries"
    );
}

#[test]
fn confirm_errors_and_limits() {
    let extra = "[limits]\nconfirm_failures_per_client = { requests = 3, window = \"1h\" }\n";
    let f = Flow::start(extra, &["a@example.com"]);
    for body in [
        json!({}),
        json!({ "resetToken": null }),
        json!({ "resetToken": "  " }),
        json!({ "code": "1" }),
    ] {
        assert_error(
            &f.post(CONFIRM, &body),
            400,
            "Missing One or More Required Parameters",
        );
    }
    assert_error(
        &f.post(CONFIRM, &json!({ "resetToken": 123 })),
        400,
        "The field 'resetToken' must be a string",
    );
    let r = f.post(
        CONFIRM,
        &json!({ "resetToken": "1", "email": "not an address" }),
    );
    assert_eq!(r.status, 400);
    for _ in 0..3 {
        assert_error(&f.confirm("999999999999"), 400, "Invalid OTP");
    }
    let r = f.confirm("999999999999");
    assert_error(&r, 429, "Too many requests");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((3_500..=3_600).contains(&wait), "{wait}");
    // Another client is not affected.
    let elsewhere: IpAddr = "127.0.0.3".parse().unwrap();
    let r = request_from(
        elsewhere,
        f.service.public,
        CONFIRM,
        r#"{"resetToken": "999999999999"}"#,
    );
    assert_error(&r, 400, "Invalid OTP");
}

#[test]
fn the_global_budget_of_failures_stops_code_only_guessing() {
    let extra = "[recovery]\nfailed_confirm_budget = { requests = 2, window = \"1h\" }\n";
    let f = Flow::start(extra, &["a@example.com"]);
    let code = f.code_for("a@example.com");
    let from =
        |ip: &str, body: &str| request_from(ip.parse().unwrap(), f.service.public, CONFIRM, body);
    assert_error(
        &from("127.0.0.4", r#"{"resetToken": "1"}"#),
        400,
        "Invalid OTP",
    );
    assert_error(
        &from("127.0.0.5", r#"{"resetToken": "2"}"#),
        400,
        "Invalid OTP",
    );
    let r = from("127.0.0.6", &format!(r#"{{"resetToken": "{code}"}}"#));
    assert_error(&r, 429, "Too many requests");
    assert!(r.header("retry-after").is_some());
    // Naming the account still works: its own failure limit bounds that path.
    let again = from("127.0.0.7", r#"{"resetToken": "3"}"#);
    assert_error(&again, 429, "Too many requests");
    let r = from(
        "127.0.0.6",
        &format!(r#"{{"resetToken": "{code}", "email": "a@example.com"}}"#),
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The exhaustion is visible, once per window, not once per refused request.
    let metrics = f.service.admin_call(&f.setup, "GET", "/metrics", b"");
    assert!(
        metrics
            .raw_body
            .contains("resetgate_failed_confirm_budget_exhausted_total 1"),
        "{}",
        metrics.raw_body
    );
    let (_, log) = f.service.stop();
    let warnings = log
        .iter()
        .filter(|l| l.contains("budget of failed confirmations"))
        .count();
    assert_eq!(warnings, 1, "{log:?}");
}

#[test]
fn password_reset_errors() {
    let f = Flow::start("", &["ada.lovelace@example.com"]);
    for body in [
        json!({ "email": "ada.lovelace@example.com" }),
        json!({ "password": NEW_PASSWORD }),
        json!({ "email": "", "password": NEW_PASSWORD }),
        json!({ "email": "ada.lovelace@example.com", "password": null }),
    ] {
        assert_error(
            &f.post(RESET, &body),
            400,
            "Missing One or More Required Parameters",
        );
    }
    let r = f.post(
        RESET,
        &json!({ "email": "nobody@example.com", "password": NEW_PASSWORD }),
    );
    assert_error(&r, 400, "No Account found with this email address");
    let r = f.post(
        RESET,
        &json!({ "email": "ada.lovelace@example.com", "password": 42 }),
    );
    assert_error(&r, 400, "The field 'password' must be a string");

    f.confirm(&f.code_for("ada.lovelace@example.com"));
    let long = "x".repeat(257);
    let policy = [
        ("short", "Password must be at least 15 characters long"),
        (
            long.as_str(),
            "Password must be at most 256 characters long",
        ),
        (
            "correcthorsebatterystaple",
            "Password is too common; choose a less predictable one",
        ),
        (
            "aaaaaaaaaaaaaaaaaaaa",
            "Password is too common; choose a less predictable one",
        ),
        (
            "abcdefghijklmnopqrs",
            "Password is too common; choose a less predictable one",
        ),
        (
            "my ada.lovelace password",
            "Password must not contain the email address",
        ),
    ];
    for (password, message) in policy {
        let r = f.post(
            RESET,
            &json!({ "email": "ada.lovelace@example.com", "password": password }),
        );
        assert_error(&r, 400, message);
    }
    let r = f.post(
        RESET,
        &json!({ "email": "ada.lovelace@example.com", "password": NEW_PASSWORD }),
    );
    assert_eq!(
        r.status, 200,
        "the policy failures did not use the confirmation up: {r:?}"
    );
}

#[test]
fn deny_list_limits_and_unexpected_errors_on_both_endpoints() {
    let denied = Setup::new("[guard]\ndeny = [\"127.0.0.0/8\"]\n");
    let service = denied.start();
    let spec = Spec::load();
    for (path, body) in [
        (CONFIRM, r#"{"resetToken": "1"}"#),
        (RESET, r#"{"email": "a@b.org", "password": "x"}"#),
    ] {
        let r = service.post(path, body);
        spec.check("POST", path, &r);
        assert_eq!(
            (r.status, r.raw_body.as_str()),
            (403, r#"{"message":"Access denied"}"#)
        );
    }
    drop(service);

    let per_client = "per_client = { requests = 2, window = \"1h\" }\nper_email = { requests = 9, window = \"1h\" }\nglobal = { requests = 0, window = \"1m\" }\n";
    let limited = Setup::new(&format!(
        "[limits.confirm_otp_reset]\n{per_client}[limits.password_reset]\n{per_client}"
    ));
    let service = limited.start();
    let body = json!({ "email": "a@example.com", "password": NEW_PASSWORD }).to_string();
    for _ in 0..2 {
        let r = service.post(RESET, &body);
        assert_error(&r, 400, "No Account found with this email address");
        assert_error(
            &service.post(CONFIRM, r#"{"resetToken": "1"}"#),
            400,
            "Invalid OTP",
        );
    }
    for path in [RESET, CONFIRM] {
        let r = service.post(path, &body);
        spec.check("POST", path, &r);
        assert_error(&r, 429, "Too many requests");
        assert!(r.header("retry-after").is_some());
    }
    drop(service);

    let setup = Setup::new("");
    assert_eq!(setup.cli(&["users", "add", "a@example.com"]).code, Some(0));
    setup.write_raw("email_reset", "a@example.com", b"corrupt");
    let service = setup.start();
    let r = service.post(
        RESET,
        &json!({ "email": "a@example.com", "password": NEW_PASSWORD }).to_string(),
    );
    spec.check("POST", RESET, &r);
    assert_eq!(
        (r.status, r.raw_body.as_str()),
        (500, r#"{"message":"Unexpected Error"}"#)
    );
    let r = service.post(CONFIRM, r#"{"resetToken": "1", "email": "a@example.com"}"#);
    spec.check("POST", CONFIRM, &r);
    assert_eq!(
        (r.status, r.raw_body.as_str()),
        (500, r#"{"message":"Unexpected Error"}"#)
    );
}

#[test]
fn the_openapi_document_is_served_and_covers_the_contract() {
    let setup = Setup::new("");
    let service = setup.start();
    let r = request(service.public, "GET", "/openapi.json", &[], b"");
    assert_eq!(r.status, 200);
    let spec = Spec::load();
    assert_eq!(
        &r.json(),
        spec.document(),
        "the served document is the checked-in one"
    );
    let forgot = &spec.document()["paths"][FORGOT]["post"];
    assert_eq!(
        forgot["operationId"], "forgot-user-password",
        "the seed's operation id"
    );
    let seed_200 = &spec.document()["components"]["schemas"]
        ["user_forgot-password_Forgot User Password_Response_200"];
    assert_eq!(
        seed_200["required"],
        json!(["key_0", "key_1", "key_2", "key_3", "key_4"])
    );
    for path in [FORGOT, CONFIRM, RESET] {
        for status in ["200", "400", "403", "405", "413", "429", "500"] {
            assert!(
                spec.document()["paths"][path]["post"]["responses"][status].is_object(),
                "{path} {status}"
            );
        }
        let r = request(service.public, "GET", path, &[], b"");
        assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
        spec.check("POST", path, &r);
    }
}
