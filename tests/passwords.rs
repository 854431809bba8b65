//! The password policy against the real binary: guessable passwords refused offline (zxcvbn),
//! and the optional online check against a local server that speaks Have I Been Pwned's
//! range API (tests/support/range_api.py), which checks every request it gets.

mod support;

use std::io::BufRead;
use std::sync::mpsc::{channel, Receiver};

use serde_json::{json, Value};
use support::{Python, Service, Setup, SmtpSink, PATIENCE};

const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";
const LEAKED: &str = "a perfectly fine looking passphrase";
const FRESH: &str = "purple elephant dances at noon";

/// The range API server; each request it got, as it reported it.
struct RangeApi {
    /// Stops the server when dropped.
    _child: Python,
    port: u16,
    requests: Receiver<Value>,
}

impl RangeApi {
    fn start(args: &[&str]) -> RangeApi {
        let (child, port, out) = Python::start("range_api.py", args, "python3");
        let (tx, requests) = channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap());
            }
        });
        RangeApi {
            _child: child,
            port,
            requests,
        }
    }

    fn next_request(&self) -> Value {
        self.requests
            .recv_timeout(PATIENCE)
            .expect("a request reached the range API")
    }
}

/// SHA-1 in upper-case hex, as the range API knows passwords.
fn sha1(password: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

struct Flow {
    sink: SmtpSink,
    setup: Setup,
    service: Service,
}

impl Flow {
    fn start(extra: &str) -> Flow {
        let (sink, setup, service) = support::started(extra, &["ada@example.com"]);
        Flow {
            sink,
            setup,
            service,
        }
    }

    /// A confirmation for ada@example.com: its `resetSession`.
    fn confirmed(&self) -> String {
        let r = self.service.post(FORGOT, r#"{"email": "ada@example.com"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        let code = self.sink.next_mail().code();
        let r = self
            .service
            .post(CONFIRM, &json!({ "resetToken": code }).to_string());
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["resetSession"].as_str().unwrap().to_string()
    }

    fn reset(&self, session: &str, password: &str) -> support::Reply {
        let body = json!({
            "email": "ada@example.com", "password": password,
            "confirmPassword": password, "resetSession": session,
        });
        self.service.post(RESET, &body.to_string())
    }

    fn metrics(&self) -> String {
        let r = self.service.admin_call(&self.setup, "GET", "/metrics", b"");
        r.raw_body
    }
}

#[test]
fn guessable_passwords_are_refused_with_their_reason_and_a_passphrase_is_not() {
    let f = Flow::start("");
    let session = f.confirmed();
    for (password, message) in [
        (
            "password1234567",
            "Password is too easy to guess: This is similar to a commonly used password.",
        ),
        (
            "qwertyuiopasdfg",
            "Password is too easy to guess: This is similar to a commonly used password.",
        ),
    ] {
        let r = f.reset(&session, password);
        assert_eq!(r.status, 400, "{password}: {r:?}");
        assert_eq!(r.message(), message, "{password}");
    }
    // The refusals left the confirmation usable.
    assert_eq!(f.reset(&session, FRESH).status, 200);
}

#[test]
fn a_password_the_range_api_lists_is_refused_and_only_five_hex_digits_leave() {
    let api = RangeApi::start(&["--listed", &sha1(LEAKED)]);
    let f = Flow::start(&format!(
        "[passwords]\nbreach_api = \"http://127.0.0.1:{}\"\n",
        api.port
    ));
    let session = f.confirmed();
    let r = f.reset(&session, LEAKED);
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.message(),
        "Password has appeared in a data breach; choose one you have not used before"
    );
    let asked = api.next_request();
    assert_eq!(asked["path"], format!("/range/{}", &sha1(LEAKED)[..5]));
    assert_eq!(asked["prefix_ok"], true, "{asked}");
    assert_eq!(asked["padding"], "true");
    assert_eq!(asked["body_bytes"], 0);

    assert_eq!(f.reset(&session, FRESH).status, 200, "an unlisted one");
    let asked = api.next_request();
    assert_eq!(asked["path"], format!("/range/{}", &sha1(FRESH)[..5]));
    let metrics = f.metrics();
    assert!(
        metrics.contains(r#"resetgate_breach_checks_total{outcome="listed"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"resetgate_breach_checks_total{outcome="clear"} 1"#));
}

#[test]
fn a_range_api_that_never_answers_costs_the_timeout_and_the_reset_goes_on() {
    let api = RangeApi::start(&["--hang"]);
    let mut f = Flow::start(&format!(
        "[passwords]\nbreach_api = \"http://127.0.0.1:{}\"\nbreach_timeout = \"300ms\"\n",
        api.port
    ));
    let session = f.confirmed();
    assert_eq!(f.reset(&session, FRESH).status, 200);
    assert_eq!(api.next_request()["hung"], true, "it was asked");
    f.service.wait_for_log("the online password check");
    assert!(f
        .metrics()
        .contains(r#"resetgate_breach_checks_total{outcome="skipped"} 1"#));
}

#[test]
fn a_stranger_without_the_confirmation_makes_resetgate_ask_nothing() {
    let api = RangeApi::start(&[]);
    let f = Flow::start(&format!(
        "[passwords]\nbreach_api = \"http://127.0.0.1:{}\"\n",
        api.port
    ));
    // Another password than the confirmed request's below, so that its query would show.
    let r = f.reset("not-a-session", LEAKED);
    assert_eq!(r.status, 400, "{r:?}");
    // A confirmed reset asks; had the stranger's asked, its request would come first.
    let session = f.confirmed();
    assert_eq!(f.reset(&session, FRESH).status, 200);
    assert_eq!(
        api.next_request()["path"],
        format!("/range/{}", &sha1(FRESH)[..5])
    );
}
