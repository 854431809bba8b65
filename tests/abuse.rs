//! Abuse resistance against the running binary: who the client is, limits with honest
//! Retry-After, deny/allow lists, runtime blocks, bans, enumeration-safe mode, hostile input.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, SystemTime};

use serde_json::json;
use support::{exchange, request, request_from, smtp_config, Reply, Service, Setup, SmtpSink};

const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";

fn forgot_limits(per_client: &str) -> String {
    format!(
        "[limits.forgot_password]\nper_client = {per_client}\n\
         per_email = {{ requests = 100, window = \"1h\" }}\nglobal = {{ requests = 0, window = \"1m\" }}\n"
    )
}

fn forgot_via(service: &Service, forwarded_for: &str, n: usize) -> Reply {
    let body = format!(r#"{{"email": "x{n}@example.com"}}"#);
    request(
        service.public,
        "POST",
        FORGOT,
        &[("X-Forwarded-For", forwarded_for), support::JSON],
        body.as_bytes(),
    )
}

fn from(ip: &str, service: &Service, n: usize) -> Reply {
    let body = format!(r#"{{"email": "x{n}@example.com"}}"#);
    request_from(ip.parse::<IpAddr>().unwrap(), service.public, FORGOT, &body)
}

/// Waits until the wall clock has passed `t`: these tests are about windows and bans that
/// end, so time passing is the precondition (with second-long settings, not long sleeps).
fn wait_past(t: SystemTime) {
    while let Ok(left) = t.duration_since(SystemTime::now()) {
        std::thread::sleep(left + Duration::from_millis(5));
    }
}

#[test]
fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let limit = r#"{ requests = 2, window = "1h" }"#;
    let setup = Setup::new(&forgot_limits(limit));
    let service = setup.start();
    // An untrusted peer cannot escape its limit by naming other clients.
    assert_eq!(forgot_via(&service, "203.0.113.1", 0).status, 404);
    assert_eq!(forgot_via(&service, "203.0.113.2", 1).status, 404);
    assert_eq!(forgot_via(&service, "203.0.113.3", 2).status, 429);
    drop(service);

    let setup = Setup::new(&format!(
        "{}[server]\ntrusted_proxies = [\"127.0.0.1\"]\n",
        forgot_limits(limit)
    ));
    let mut service = setup.start();
    assert_eq!(forgot_via(&service, "203.0.113.5", 0).status, 404);
    assert_eq!(forgot_via(&service, "203.0.113.5", 1).status, 404);
    assert_eq!(
        forgot_via(&service, "203.0.113.5", 2).status,
        429,
        "the proxy named the same client"
    );
    assert_eq!(
        forgot_via(&service, "203.0.113.6", 3).status,
        404,
        "another client"
    );
    // What the client prepends is ignored: the right-most untrusted hop counts.
    assert_eq!(
        forgot_via(&service, "198.51.100.9, 203.0.113.5", 4).status,
        429
    );
    // Hops the trusted proxies added themselves are skipped.
    assert_eq!(
        forgot_via(&service, "203.0.113.7, 127.0.0.1", 5).status,
        404
    );
    service.wait_for_log("client=203.0.113.7");
}

#[test]
fn a_limited_client_succeeds_once_retry_after_has_passed() {
    let setup = Setup::new(&forgot_limits(r#"{ requests = 1, window = "1s" }"#));
    let service = setup.start();
    assert_eq!(service.forgot(r#"{"email": "a@example.com"}"#).status, 404);
    let limited = service.forgot(r#"{"email": "b@example.com"}"#);
    assert_eq!(
        (limited.status, limited.message()),
        (429, "Too many requests".to_string())
    );
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(wait, 1, "the rest of a one-second window, rounded up");
    wait_past(SystemTime::now() + Duration::from_secs(wait));
    assert_eq!(service.forgot(r#"{"email": "c@example.com"}"#).status, 404);
}

#[test]
fn allow_only_mode() {
    let setup = Setup::new("[guard]\nallow_only = [\"127.0.0.2/32\"]\n");
    let service = setup.start();
    let r = service.forgot(r#"{"email": "a@example.com"}"#);
    assert_eq!(
        (r.status, r.raw_body.as_str()),
        (403, r#"{"message":"Access denied"}"#)
    );
    assert_eq!(from("127.0.0.2", &service, 0).status, 404);
}

/// Deny lists, allow-only and bans cover every path of the public listener, not only the
/// three endpoints: a denied client cannot hold connections busy with health checks.
#[test]
fn the_guard_applies_to_every_public_path() {
    let setup = Setup::new("[guard]\ndeny = [\"127.0.0.21\"]\n");
    let service = setup.start();
    for path in ["/healthz", "/readyz", "/openapi.json", "/no/such/path"] {
        let denied = support::get_from("127.0.0.21".parse().unwrap(), service.public, path);
        assert_eq!(
            (denied.status, denied.raw_body.as_str()),
            (403, r#"{"message":"Access denied"}"#),
            "{path}"
        );
        let other = support::get_from("127.0.0.22".parse().unwrap(), service.public, path);
        assert_ne!(other.status, 403, "{path}");
    }
}

#[test]
fn runtime_blocks_take_effect_at_once_and_survive_restarts() {
    let setup = Setup::new("");
    let service = setup.start();
    let add = setup.cli(&["blocks", "add", "127.0.0.3", "--reason", "inbox flooding"]);
    assert_eq!(add.code, Some(0), "{add:?}");
    assert_eq!(from("127.0.0.3", &service, 0).status, 403);
    assert_eq!(
        from("127.0.0.4", &service, 1).status,
        404,
        "only that address"
    );
    let listed = setup.cli(&["blocks", "list"]);
    assert_eq!(listed.stdout.trim(), "127.0.0.3/32\tinbox flooding");
    let (status, _) = service.stop();
    assert!(status.success());

    let service = setup.start();
    assert_eq!(
        from("127.0.0.3", &service, 2).status,
        403,
        "kept in the store"
    );
    assert_eq!(setup.cli(&["blocks", "remove", "127.0.0.3"]).code, Some(0));
    assert_eq!(from("127.0.0.3", &service, 3).status, 404);
    assert_eq!(
        setup.cli(&["blocks", "remove", "127.0.0.3"]).code,
        Some(3),
        "not blocked any more"
    );
    assert_eq!(setup.cli(&["blocks", "add", "not-a-network"]).code, Some(3));
}

#[test]
fn clients_that_keep_hitting_limits_are_banned_for_a_while() {
    let extra = format!(
        "{}[guard]\nban_after = {{ requests = 2, window = \"1h\" }}\nban_for = \"1s\"\nban_max = \"1h\"\n",
        forgot_limits(r#"{ requests = 1, window = "1h" }"#)
    );
    let setup = Setup::new(&extra);
    let mut service = setup.start();
    assert_eq!(from("127.0.0.5", &service, 0).status, 404);
    assert_eq!(from("127.0.0.5", &service, 1).status, 429);
    assert_eq!(from("127.0.0.5", &service, 2).status, 429);
    assert_eq!(
        from("127.0.0.5", &service, 3).status,
        429,
        "the refusal that earns the ban"
    );
    let banned = from("127.0.0.5", &service, 4);
    assert_eq!(
        (banned.status, banned.raw_body.as_str()),
        (403, r#"{"message":"Access denied"}"#)
    );
    assert_eq!(
        from("127.0.0.5", &service, 5).status,
        403,
        "on every endpoint"
    );
    assert_eq!(
        from("127.0.0.6", &service, 6).status,
        404,
        "another client is not affected"
    );
    let health = support::get_from("127.0.0.5".parse().unwrap(), service.public, "/healthz");
    assert_eq!(health.status, 403, "and on every other path");
    let line = service.wait_for_log("client banned");
    assert!(line.contains("ban_secs=1"), "{line}");

    wait_past(SystemTime::now() + Duration::from_secs(1));
    assert_eq!(
        from("127.0.0.5", &service, 7).status,
        429,
        "the ban expired; the limit did not"
    );
    let line = service.wait_for_log("client banned");
    assert!(
        line.contains("ban_secs=2") && line.contains("offence=2"),
        "a repeat offence doubles: {line}"
    );
    // A banned client never locks an account: the address it asked for still works elsewhere.
    assert_eq!(from("127.0.0.7", &service, 4).status, 404);
}

#[test]
fn enumeration_safe_mode_answers_known_and_unknown_alike() {
    let sink = SmtpSink::start();
    let extra = format!(
        "{}[recovery]\nhide_unknown_accounts = true\n",
        smtp_config(sink.port)
    );
    let setup = Setup::new(&extra);
    assert_eq!(
        setup.cli(&["users", "add", "known@example.com"]).code,
        Some(0)
    );
    let service = setup.start();
    let without_date = |r: &Reply| {
        let headers: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("date") && !k.eq_ignore_ascii_case("x-request-id")
            })
            .cloned()
            .collect();
        (r.status, headers, r.raw_body.clone())
    };
    let known = service.forgot(r#"{"email": "known@example.com"}"#);
    let unknown = service.forgot(r#"{"email": "unknown@example.com"}"#);
    assert_eq!(known.status, 200);
    assert_eq!(
        without_date(&known),
        without_date(&unknown),
        "byte-identical but for Date and X-Request-Id"
    );
    let known = service.forgot(r#"{"email": "known@example.com"}"#);
    let unknown = service.forgot(r#"{"email": "unknown@example.com"}"#);
    assert_eq!(known.status, 429, "the cooldown");
    assert_eq!(without_date(&known), without_date(&unknown));
    assert_eq!(
        sink.next_mail().rcpt_tos,
        vec!["known@example.com"],
        "only the known address gets mail"
    );

    let reset = |email: &str| {
        let body = json!({ "email": email, "password": "purple elephant dances at noon" });
        service.post(RESET, &body.to_string())
    };
    assert_eq!(
        without_date(&reset("known@example.com")),
        without_date(&reset("unknown@example.com"))
    );
    assert_eq!(reset("unknown@example.com").message(), "Invalid Request");
    let confirm = |email: &str| {
        let body = json!({ "resetToken": "123412341234", "email": email });
        service.post(CONFIRM, &body.to_string())
    };
    assert_eq!(
        without_date(&confirm("known@example.com")),
        without_date(&confirm("unknown@example.com"))
    );
}

#[test]
fn hostile_input_gets_a_4xx_and_the_service_goes_on() {
    let setup = Setup::new("");
    let service = setup.start();
    let r = service.forgot(r#"{"email": "a@example.com", "email": "b@example.com"}"#);
    assert_eq!(
        (r.status, r.message()),
        (
            400,
            "The request body has a field more than once".to_string()
        )
    );
    let r = service.post(CONFIRM, r#"{"resetToken": 123412341234}"#);
    assert_eq!(r.status, 400);
    let nested = format!(
        "{{\"email\": \"a@b.org\", \"x\": {}{}}}",
        "[".repeat(500),
        "]".repeat(500)
    );
    assert_eq!(
        service.forgot(&nested).status,
        400,
        "too deep for the parser"
    );

    let mut many = format!("POST {FORGOT} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    many.push_str("Content-Length: 2\r\n\r\n{}");
    assert_eq!(
        exchange(service.public, many.as_bytes()).status,
        431,
        "too many headers"
    );
    let huge = format!(
        "POST {FORGOT} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "a".repeat(20_000)
    );
    assert_eq!(
        exchange(service.public, huge.as_bytes()).status,
        431,
        "headers too large"
    );
    let bad_length =
        format!("POST {FORGOT} HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n{{}}");
    assert_eq!(exchange(service.public, bad_length.as_bytes()).status, 400);

    assert_eq!(
        service.forgot(r#"{"email": "a@example.com"}"#).status,
        404,
        "still serving"
    );
    let (status, log) = service.stop();
    assert!(status.success());
    assert!(!log.iter().any(|l| l.contains("panicked")));
}

#[test]
fn slow_and_idle_connections_are_closed_while_others_are_served() {
    let setup = Setup::new("[server]\nheader_read_timeout = \"1s\"\n");
    let service = setup.start();
    let mut slow = TcpStream::connect(service.public).unwrap();
    slow.set_read_timeout(Some(support::PATIENCE)).unwrap();
    slow.write_all(format!("POST {FORGOT} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .unwrap();
    for n in 0..5 {
        let r = service.forgot(&format!(r#"{{"email": "x{n}@example.com"}}"#));
        assert_eq!(r.status, 404, "served while a slow client hangs");
    }
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest)
        .expect("the server closes the slow connection");

    // An idle keep-alive connection is closed by the same timeout.
    let mut idle = TcpStream::connect(service.public).unwrap();
    idle.set_read_timeout(Some(support::PATIENCE)).unwrap();
    let body = r#"{"email": "idle@example.com"}"#;
    let first = format!(
        "POST {FORGOT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    idle.write_all(first.as_bytes()).unwrap();
    let mut all = Vec::new();
    idle.read_to_end(&mut all)
        .expect("answered, then closed when idle");
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 404"));
}

#[test]
fn a_client_that_stops_reading_loses_its_connection_slot() {
    // One connection slot: while a client pipelines requests and never reads the answers,
    // nobody else is served, until server.write_timeout cuts it off.
    let setup = Setup::new("[server]\nmax_connections = 1\nwrite_timeout = \"1s\"\n");
    let service = setup.start();
    let mut greedy = TcpStream::connect(service.public).unwrap();
    let one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let writer = std::thread::spawn(move || {
        for _ in 0..200_000 {
            if greedy.write_all(one).is_err() {
                return true; // the server closed the connection
            }
        }
        false
    });
    let r = service.forgot(r#"{"email": "patient@example.com"}"#);
    assert_eq!(r.status, 404, "served once the greedy client was cut off");
    assert!(writer.join().unwrap(), "the greedy connection was closed");
}

/// One client key may hold `server.max_connections_per_client` connections; a further one
/// takes the place of its oldest idle connection, and other clients are not affected.
#[test]
fn connections_per_client_are_capped() {
    let setup =
        Setup::new("[server]\nmax_connections_per_client = 2\nheader_read_timeout = \"1h\"\n");
    let service = setup.start();
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| keep_alive(service.public, "127.0.0.1"))
        .collect();
    // The third connection from the same address is served...
    let mut third = keep_alive(service.public, "127.0.0.1");
    // ...in place of the oldest idle one, which the server closed.
    let mut buf = [0u8; 1];
    assert_eq!(
        held[0].read(&mut buf).unwrap_or(0),
        0,
        "the oldest was closed"
    );
    assert_eq!(ask_healthz(&mut third), 200);
    assert_eq!(
        ask_healthz(&mut held[1]),
        200,
        "the younger one still works"
    );
    assert_eq!(from("127.0.0.8", &service, 0).status, 404, "another client");
}

/// The security review's attack: clients hold every connection slot with keep-alive
/// connections they use now and then. A new client is still served (not left in the listen
/// backlog), because the oldest idle connection makes room. The header timeout is an hour,
/// so nothing else would close the held connections while the test runs.
#[test]
fn held_idle_connections_make_room_for_a_new_client() {
    let setup = Setup::new(
        "[server]\nmax_connections = 8\nmax_connections_per_client = 4\nheader_read_timeout = \"1h\"\n",
    );
    let service = setup.start();
    let mut held: Vec<TcpStream> = ["127.0.0.11", "127.0.0.12"]
        .iter()
        .flat_map(|ip| (0..4).map(move |_| *ip))
        .map(|ip| keep_alive(service.public, ip))
        .collect();
    let fresh = from("127.0.0.13", &service, 0);
    assert_eq!(fresh.status, 404, "the new client was answered");
    let closed = held
        .iter_mut()
        .filter(|s: &&mut TcpStream| {
            let mut buf = [0u8; 1];
            s.set_nonblocking(true).unwrap();
            let eof = matches!((&**s).read(&mut buf), Ok(0));
            s.set_nonblocking(false).unwrap();
            eof
        })
        .count();
    assert!(closed >= 1, "an idle connection gave way");
}

/// A keep-alive connection from `local` that has been used for one request and is now idle.
fn keep_alive(addr: std::net::SocketAddr, local: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(std::net::SocketAddr::new(local.parse().unwrap(), 0))?;
            socket.connect(addr).await?.into_std()
        })
        .unwrap();
    stream.set_nonblocking(false).unwrap();
    let mut stream = stream;
    stream.set_read_timeout(Some(support::PATIENCE)).unwrap();
    assert_eq!(ask_healthz(&mut stream), 200);
    stream
}

/// `GET /healthz` on a kept-alive connection; the status.
fn ask_healthz(stream: &mut TcpStream) -> u16 {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") || !answer.ends_with(b"}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed before the answer");
        answer.extend_from_slice(&buf[..n]);
    }
    support::parse(&answer).status
}

/// A reverse proxy that `server.trusted_proxies` does not name makes every client one
/// client. A local peer sending X-Forwarded-For or Forwarded with no trusted proxies is
/// counted in a metric and warned about once, not once per request.
#[test]
fn forwarded_headers_nobody_trusts_are_counted_and_warned_about() {
    let setup = Setup::new("");
    let mut service = setup.start();
    for n in 0..3 {
        assert_eq!(forgot_via(&service, "198.51.100.7", n).status, 404);
    }
    let forwarded = request(
        service.public,
        "POST",
        FORGOT,
        &[("Forwarded", "for=198.51.100.8"), support::JSON],
        br#"{"email": "y@example.com"}"#,
    );
    assert_eq!(forwarded.status, 404);
    assert_eq!(service.forgot(r#"{"email": "z@example.com"}"#).status, 404);
    let metrics = service.admin_call(&setup, "GET", "/metrics", b"").raw_body;
    assert!(
        metrics.contains("resetgate_untrusted_forwarded_headers_total 4"),
        "{metrics}"
    );
    service.wait_for_log("server.trusted_proxies is empty");
    let (_, log) = service.stop();
    let warnings = log
        .iter()
        .filter(|l| l.contains("server.trusted_proxies is empty"))
        .count();
    assert_eq!(warnings, 1, "rate-limited");
}

/// The security review's denial: strangers asking for codes for the owner's address from
/// a few addresses of their own must not spend the address's whole allowance. Each client
/// may spend `per_email_per_client` (3 an hour) of the address's ceiling (`per_email`, 30):
/// nine strangers spend 27, and the owner still gets a code. Their refusals are about the
/// address, so they earn no ban strikes.
#[test]
fn strangers_cannot_deny_the_owner_a_code() {
    let setup = Setup::new(
        "[recovery]\nresend_cooldown = \"0s\"\n[guard]\nban_after = { requests = 2, window = \"1h\" }\n",
    );
    assert_eq!(
        setup.cli(&["users", "add", "owner@example.com"]).code,
        Some(0)
    );
    let service = setup.start();
    let ask = |ip: &str| {
        let body = r#"{"email": "owner@example.com"}"#;
        request_from(ip.parse::<IpAddr>().unwrap(), service.public, FORGOT, body).status
    };
    for n in 41..50 {
        let stranger = format!("127.0.0.{n}");
        let answers: Vec<u16> = (0..5).map(|_| ask(&stranger)).collect();
        assert_eq!(answers, [200, 200, 200, 429, 429], "{stranger}");
    }
    assert_eq!(ask("127.0.0.50"), 200, "the owner still gets a code");
    assert_eq!(
        from("127.0.0.41", &service, 0).status,
        404,
        "five refusals about the address did not ban the stranger"
    );
}

/// A request refused by one limit is charged to none: a refusal by the resend cooldown
/// does not spend the client's per-client allowance, nor earn it a ban strike.
#[test]
fn a_request_refused_by_one_limit_is_charged_to_none() {
    let setup = Setup::new(&format!(
        "{}[guard]\nban_after = {{ requests = 2, window = \"1h\" }}\n",
        forgot_limits(r#"{ requests = 2, window = "1h" }"#)
    ));
    let service = setup.start();
    let body = |n: usize| format!(r#"{{"email": "x{n}@example.com"}}"#);
    assert_eq!(service.forgot(&body(0)).status, 404);
    for _ in 0..3 {
        let r = service.forgot(&body(0));
        assert_eq!(r.status, 429, "the cooldown: {r:?}");
    }
    assert_eq!(
        service.forgot(&body(1)).status,
        404,
        "not charged, not banned"
    );
    assert_eq!(service.forgot(&body(2)).status, 429, "the per-client limit");
}

/// A connection that sent part of a request head and stopped is idle too: it makes room
/// at once, not after the header timeout (an hour here).
#[test]
fn half_sent_request_heads_make_room_for_a_new_client() {
    let setup = Setup::new("[server]\nmax_connections = 4\nheader_read_timeout = \"1h\"\n");
    let service = setup.start();
    let held: Vec<TcpStream> = ["127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64"]
        .iter()
        .map(|ip| {
            let mut stream = support::connect_from(ip.parse().unwrap(), service.public);
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            stream
        })
        .collect();
    assert_eq!(from("127.0.0.65", &service, 0).status, 404, "answered");
    drop(held);
}

/// A trusted proxy carries many clients: its connections are not capped per client (the
/// guard tells its clients apart by the header it writes).
#[test]
fn a_trusted_proxy_is_not_capped_per_client() {
    let setup = Setup::new(
        "[server]\nmax_connections_per_client = 1\nheader_read_timeout = \"1h\"\ntrusted_proxies = [\"127.0.0.71\"]\n",
    );
    let service = setup.start();
    let mut first = keep_alive(service.public, "127.0.0.71");
    let mut second = keep_alive(service.public, "127.0.0.71");
    assert_eq!(ask_healthz(&mut first), 200, "both stay open");
    assert_eq!(ask_healthz(&mut second), 200);
}
