//! What an operator watches: /healthz, /readyz, Prometheus metrics, structured request logs.

mod support;

use support::{request, smtp_config, Setup, SmtpSink};

#[test]
fn metrics_count_what_happened() {
    let sink = SmtpSink::start();
    let setup = Setup::new(&smtp_config(sink.port));
    assert_eq!(
        setup.cli(&["users", "add", "ada@example.com"]).code,
        Some(0)
    );
    let mut service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        429,
        "cooldown"
    );
    assert_eq!(
        service.forgot(r#"{"email": "nobody@example.com"}"#).status,
        404
    );
    sink.next_mail();
    service.wait_for_log("message delivered");

    let unauthorized = request(service.admin, "GET", "/metrics", &[], b"");
    assert_eq!(unauthorized.status, 401, "metrics want the admin token");
    let r = service.admin_call(&setup, "GET", "/metrics", b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.raw_body;
    for line in [
        "resetgate_http_requests_total{listener=\"public\",endpoint=\"forgot-password\",status=\"200\"} 1",
        "resetgate_http_requests_total{listener=\"public\",endpoint=\"forgot-password\",status=\"429\"} 1",
        "resetgate_http_requests_total{listener=\"public\",endpoint=\"forgot-password\",status=\"404\"} 1",
        "resetgate_codes_issued_total 1",
        "resetgate_refusals_total{kind=\"cooldown\"} 1",
        "resetgate_outbox_sent_total 1",
        "resetgate_smtp_replies_total{class=\"2xx\"} 1",
        "resetgate_outbox_depth 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(text.contains("resetgate_http_request_duration_seconds_bucket{"));
    let size: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("resetgate_store_size_bytes "))
        .expect("store size")
        .parse()
        .unwrap();
    assert!(size > 0.0);
}

#[test]
fn health_readiness_and_request_logs() {
    let setup = Setup::new("[log]\nformat = \"json\"\n");
    let mut service = setup.start();
    let health = request(service.public, "GET", "/healthz", &[], b"");
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = request(service.public, "GET", "/readyz", &[], b"");
    assert_eq!(
        (ready.status, ready.json()["status"].as_str()),
        (200, Some("ready"))
    );

    let r = service.forgot(r#"{"email": "Grace.Hopper@example.com"}"#);
    let id = r.header("x-request-id").expect("a request id").to_string();
    assert_eq!(id.len(), 16);
    let line = service.wait_for_log(&id);
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["request_id"], id);
    assert_eq!(entry["endpoint"], "forgot-password");
    assert_eq!(entry["status"], 404);
    assert_eq!(entry["client"], "127.0.0.1");
    assert_eq!(entry["email"], "g***@example.com", "the address is masked");
    assert!(entry["micros"].is_u64());
    assert!(!line.contains("grace.hopper"), "{line}");
}
