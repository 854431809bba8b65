//! POST /api/v1/user/forgot-password against the real binary and a real SMTP server:
//! every documented status and message (docs/api.md, forgot-password), and bad input.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::{exchange, request, smtp_config, Setup, SmtpSink, JSON};

const FORGOT: &str = "/api/v1/user/forgot-password";
const MISSING: &str = "Missing One or More Required Parameters";

#[test]
fn documented_200_body_and_the_mail_it_queues() {
    let sink = SmtpSink::start();
    let setup = Setup::new(&smtp_config(sink.port));
    assert_eq!(
        setup
            .cli(&["users", "add", "Ada.Lovelace@Example.com"])
            .code,
        Some(0)
    );
    let service = setup.start();

    // The documentation's own example request, byte for byte.
    let reply = service.forgot("{\n  \"email\": \"ada.lovelace@example.com\"\n}");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["message"], "OTP email queued successfully");
    assert_eq!(
        body["key_0"], 600,
        "key_0 is the code's lifetime in seconds"
    );
    assert_eq!(body["key_1"], body["message"]);
    assert_eq!(body["key_2"], 60, "key_2 is the resend cooldown");
    assert_eq!(
        body["key_3"],
        "Please check your email for the OTP to reset your password."
    );
    assert_eq!(body["key_4"], true);
    assert!(body["key_0"].is_u64() && body["key_2"].is_number() && body["key_4"].is_boolean());

    let mail = sink.next_mail();
    assert_eq!(
        mail.rcpt_tos,
        vec!["Ada.Lovelace@Example.com"],
        "mail goes to the stored address"
    );
    assert_eq!(mail.mail_from, "noreply@example.com");
    let code = mail.code();
    assert_eq!(code.len(), 12, "the default length: {code:?}");
    assert_eq!(
        mail.shown_code(),
        format!("{} {} {}", &code[..4], &code[4..8], &code[8..])
    );
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code:?}");
    assert!(
        mail.data.contains("10 minutes"),
        "the mail says how long the code is valid"
    );
    assert!(mail
        .header("message-id")
        .is_some_and(|id| id.ends_with("@example.com>")));

    let (status, log) = service.stop();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert!(
        log.iter().all(|l| !l.contains(&code)),
        "the code never appears in the log"
    );
}

#[test]
fn errors_404_400_429_with_documented_texts() {
    let sink = SmtpSink::start();
    let setup = Setup::new(&smtp_config(sink.port));
    assert_eq!(
        setup.cli(&["users", "add", "grace@example.com"]).code,
        Some(0)
    );
    let service = setup.start();

    let unknown = service.forgot(r#"{"email": "nobody@example.com"}"#);
    assert_eq!(
        (unknown.status, unknown.message()),
        (404, "No Account found with this email address".into())
    );

    for body in [
        r#"{}"#,
        r#"{"email": null}"#,
        r#"{"email": ""}"#,
        r#"{"email": "   "}"#,
        r#"{"mail": "grace@example.com"}"#,
    ] {
        let r = service.forgot(body);
        assert_eq!((r.status, r.message()), (400, MISSING.into()), "{body}");
    }

    assert_eq!(
        service.forgot(r#"{"email": " GRACE@example.com "}"#).status,
        200,
        "case and space do not matter"
    );
    // Within the resend cooldown, the same address is limited, with an honest Retry-After.
    let again = service.forgot(r#"{"email": "grace@example.com"}"#);
    assert_eq!(
        (again.status, again.message()),
        (429, "Too many requests".into())
    );
    let wait: u64 = again
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        (1..=60).contains(&wait),
        "Retry-After {wait} within the 60 s cooldown"
    );
    assert_eq!(sink.next_mail().rcpt_tos, vec!["grace@example.com"]);
}

#[test]
fn per_client_limit_and_deny_list() {
    let limited = Setup::new("[limits.forgot_password]\nper_client = { requests = 2, window = \"1h\" }\nper_email = { requests = 5, window = \"1h\" }\nglobal = { requests = 0, window = \"1m\" }\n");
    let service = limited.start();
    for n in 0..2 {
        assert_eq!(
            service
                .forgot(&format!(r#"{{"email": "x{n}@example.com"}}"#))
                .status,
            404
        );
    }
    let r = service.forgot(r#"{"email": "y@example.com"}"#);
    assert_eq!((r.status, r.message()), (429, "Too many requests".into()));
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        (3_500..=3_600).contains(&wait),
        "the window's remaining time, not a guess: {wait}"
    );

    let denied = Setup::new("[guard]\ndeny = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\n");
    let service = denied.start();
    let r = service.forgot(r#"{"email": "x@example.com"}"#);
    assert_eq!(
        (r.status, r.raw_body.as_str()),
        (403, r#"{"message":"Access denied"}"#)
    );
}

#[test]
fn unexpected_failure_is_a_bare_500() {
    let setup = Setup::new("");
    // A record that no longer parses, as after disk corruption: written while the service is down.
    setup.write_raw("email_user", "broken@example.com", b"{not json");
    let service = setup.start();
    let r = service.forgot(r#"{"email": "broken@example.com"}"#);
    assert_eq!(
        (r.status, r.raw_body.as_str()),
        (500, r#"{"message":"Unexpected Error"}"#)
    );
    assert_eq!(
        service.forgot(r#"{"email": "other@example.com"}"#).status,
        404,
        "the service goes on"
    );
}

#[test]
fn bad_input_gets_a_clear_4xx() {
    let setup = Setup::new("[server]\n");
    let service = setup.start();
    let cases: &[(&[u8], &str)] = &[
        (b"not json", "The request body is not valid JSON"),
        (b"", "The request body is empty; a JSON object is expected"),
        (b"[\"a@b.com\"]", "The request body must be a JSON object"),
        (b"\"a@b.com\"", "The request body must be a JSON object"),
        (br#"{"email": 42}"#, "The field 'email' must be a string"),
        (
            br#"{"email": ["a@b.com"]}"#,
            "The field 'email' must be a string",
        ),
        (br#"{"email": "no-at-sign"}"#, "email must contain an @"),
        (
            br#"{"email": "a@b.com\r\nBcc: victim@example.com"}"#,
            "email must not contain control characters",
        ),
        (
            br#"{"email": "a\u0000@b.com"}"#,
            "email must not contain control characters",
        ),
        (
            b"{\"email\": \"\xff\xfe@b.com\"}",
            "The request body is not valid JSON",
        ),
    ];
    for (body, message) in cases {
        let r = request(service.public, "POST", FORGOT, &[JSON], body);
        assert_eq!(
            (r.status, r.message()),
            (400, message.to_string()),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }

    let oversized = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = request(
        service.public,
        "POST",
        FORGOT,
        &[JSON],
        oversized.as_bytes(),
    );
    assert_eq!(r.status, 413, "larger than the 16 KiB limit");
    let nested = format!("{{\"email\": {}{}}}", "[".repeat(1_000), "]".repeat(1_000));
    assert_eq!(
        request(service.public, "POST", FORGOT, &[JSON], nested.as_bytes()).status,
        400
    );

    let r = request(service.public, "POST", FORGOT, &[JSON], &vec![b' '; 20_000]);
    assert_eq!(
        (r.status, r.message()),
        (413, "Request body is too large".into())
    );
    // The same without a Content-Length: chunked, and refused while streaming.
    let mut chunked = format!("POST {FORGOT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n").into_bytes();
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 8_000, " ".repeat(8_000)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(exchange(service.public, &chunked).status, 413);

    let r = request(
        service.public,
        "POST",
        "/api/v1/user/nothing-here",
        &[],
        b"{}",
    );
    assert_eq!((r.status, r.message()), (404, "Not Found".into()));
    let r = request(service.public, "GET", FORGOT, &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    assert_eq!(r.message(), "Method Not Allowed");
    let r = request(service.public, "GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));

    let (status, log) = service.stop();
    assert!(status.success());
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "no panic: {log:?}"
    );
}

#[test]
fn slow_clients_are_cut_off() {
    let setup = Setup::new("[server]\nheader_read_timeout = \"1s\"\nbody_timeout = \"1s\"\n");
    let service = setup.start();

    // Headers that never finish: the server closes the connection.
    let mut slow = TcpStream::connect(service.public).unwrap();
    slow.set_read_timeout(Some(support::PATIENCE)).unwrap();
    slow.write_all(format!("POST {FORGOT} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .unwrap();
    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    assert!(read.is_ok(), "closed, not left hanging: {read:?}");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );

    // A body that never finishes: 408 with a JSON message.
    let mut slow = TcpStream::connect(service.public).unwrap();
    slow.set_read_timeout(Some(support::PATIENCE)).unwrap();
    let head =
        format!("POST {FORGOT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":");
    slow.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).unwrap();
    let r = support::parse(&answer);
    assert_eq!(
        (r.status, r.message()),
        (408, "Request body was not received in time".into())
    );

    assert_eq!(
        service.forgot(r#"{"email": "x@example.com"}"#).status,
        404,
        "still serving"
    );
}
