//! The admin API from another host: TLS on a non-loopback `admin.listen`, still behind the
//! bearer token, with a limit on wrong tokens per client and the guard's bans; the
//! configurations that would expose it without TLS are refused. Against the real binary,
//! a certificate made in the test run and Python's TLS client (support::tls).

mod support;

use std::io::{Read, Write};
use std::time::Instant;

use support::tls::{self, Call};
use support::{Service, Setup};

/// `admin.listen = "0.0.0.0:<port>"`: reachable from other hosts, so TLS only. The token
/// works, over TLS 1.3 and 1.2 (a client offering only 1.1 gets no answer); no token or a
/// wrong one gets 401; `/healthz` needs none;
/// what was added over TLS is in the store the CLI reaches through the admin socket.
#[test]
fn the_admin_api_over_tls_from_another_host_takes_the_token() {
    let (setup, certs) = tls::setup("", "0.0.0.0");
    let service = setup.start();
    assert!(service.admin.ip().is_unspecified(), "{}", service.admin);
    let port = service.admin.port();
    let token = tls::token(&setup);
    let add = Call {
        method: "POST",
        path: "/admin/v1/users",
        token: Some(&token),
        body: r#"{"email": "ada@example.com"}"#,
        ..Call::default()
    };
    let answers = tls::calls(
        &certs,
        port,
        &[
            Call::get("/admin/v1/users", Some(&token)),
            Call {
                version: Some("1.2"),
                ..Call::get("/admin/v1/users", Some(&token))
            },
            Call {
                version: Some("1.1"),
                ..Call::get("/admin/v1/users", Some(&token))
            },
            add,
            Call::get("/admin/v1/users", None),
            Call::get("/admin/v1/users", Some("not-the-token")),
            Call::get("/healthz", None),
        ],
    );
    let [tls13, tls12, tls11, added, no_token, wrong, health] = &answers[..] else {
        unreachable!()
    };
    assert_eq!((tls13.status, tls13.version.as_str()), (200, "TLSv1.3"));
    assert_eq!((tls12.status, tls12.version.as_str()), (200, "TLSv1.2"));
    let refused = tls11.error.as_deref().unwrap_or_default();
    assert!(
        refused.contains("ALERT"),
        "the server refuses TLS 1.1: {tls11:?}"
    );
    assert_eq!(added.status, 201, "{added:?}");
    for refused in [no_token, wrong] {
        assert_eq!(refused.status, 401, "{refused:?}");
        assert!(refused.body.contains("Unauthorized"), "{refused:?}");
    }
    assert_eq!(health.status, 200, "{health:?}");
    let list = setup.cli(&["users", "list"]);
    assert_eq!(
        (list.code, list.stdout.trim()),
        (Some(0), "ada@example.com"),
        "the admin socket is unchanged: {list:?}"
    );
}

/// With TLS configured the admin listener speaks nothing else, on loopback too: a plain
/// HTTP request gets no HTTP answer (at most a TLS alert) and the connection closes.
#[test]
fn plain_http_to_the_tls_listener_gets_no_answer() {
    let (setup, certs) = tls::setup("", "127.0.0.1");
    let service = setup.start();
    let mut stream = std::net::TcpStream::connect(service.admin).expect("connecting");
    stream
        .set_read_timeout(Some(support::PATIENCE))
        .expect("timeout");
    let token = tls::token(&setup);
    let head = format!(
        "GET /admin/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("sending");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/"),
        "no HTTP answer: {answer:?}"
    );
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "nothing but a TLS alert record: {answer:?}"
    );
    let over_tls = tls::call(
        &certs,
        service.admin.port(),
        Call::get("/admin/v1/users", Some(&token)),
    );
    assert_eq!(over_tls.status, 200, "{over_tls:?}");
}

/// Prometheus scrapes `/metrics` over TLS with the token (`authorization` and `tls_config:
/// ca_file` in its scrape config).
#[test]
fn metrics_over_tls_for_prometheus() {
    let (setup, certs) = tls::setup("", "0.0.0.0");
    let service = setup.start();
    let token = tls::token(&setup);
    let port = service.admin.port();
    let scrape = tls::call(&certs, port, Call::get("/metrics", Some(&token)));
    assert_eq!(scrape.status, 200, "{scrape:?}");
    assert_eq!(
        scrape.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        scrape.body.contains("resetgate_outbox_depth"),
        "{}",
        scrape.body
    );
    let refused = tls::call(&certs, port, Call::get("/metrics", None));
    assert_eq!(refused.status, 401);
}

/// After `admin.token_failures` wrong or missing tokens from one client, 429 with the
/// window's `Retry-After` whatever token it sends; each 429 is a ban strike, and past
/// `guard.ban_after` the client gets 403 `Access denied` on the admin listener and the
/// public one. Right tokens before never counted; another client and the admin socket are
/// not affected, and the admin listener's `/healthz` stays open.
#[test]
fn wrong_tokens_get_429_with_retry_after_then_a_ban() {
    let extra = "[admin]\ntoken_failures = { requests = 3, window = \"15m\" }\n\
                 [guard]\nban_after = { requests = 2, window = \"10m\" }\n";
    let (setup, certs) = tls::setup(extra, "0.0.0.0");
    let service = setup.start();
    let port = service.admin.port();
    let token = tls::token(&setup);
    let from = |source, token| Call {
        source: Some(source),
        ..Call::get("/admin/v1/users", token)
    };
    let guesser = "127.0.0.7";
    let right = vec![from(guesser, Some(&token)); 12];
    let answers = tls::calls(&certs, port, &right);
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");

    let started = Instant::now();
    let mut calls = vec![from(guesser, Some("wrong")), from(guesser, None)];
    calls.push(from(guesser, Some("wrong")));
    // Now the right token too is refused, and every 429 is a strike: the third is one too
    // many for ban_after = 2, and the next request is banned.
    calls.push(from(guesser, Some(&token)));
    calls.extend([from(guesser, Some("wrong")), from(guesser, Some("wrong"))]);
    calls.push(from(guesser, Some(&token)));
    let answers = tls::calls(&certs, port, &calls);
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 403], "{answers:?}");
    let elapsed = started.elapsed().as_secs();
    for limited in &answers[3..6] {
        let wait: u64 = limited.headers["retry-after"].parse().expect("seconds");
        assert!(
            (900 - elapsed - 1..=900).contains(&wait),
            "the window's end, {elapsed} s after it opened: {wait}"
        );
        assert!(limited.body.contains("Too many requests"), "{limited:?}");
    }
    assert!(
        answers[6].body.contains("Access denied"),
        "{:?}",
        answers[6]
    );

    let public = support::get_from(guesser.parse().unwrap(), service.public, "/healthz");
    assert_eq!(
        public.status, 403,
        "the guard's ban closes the public listener too"
    );
    let health = tls::call(&certs, port, from(guesser, None).with_path("/healthz"));
    assert_eq!(
        health.status, 200,
        "the admin listener's /healthz is not guarded"
    );
    let other = from("127.0.0.8", Some(&token));
    let scrape = Call {
        source: Some("127.0.0.8"),
        ..Call::get("/metrics", Some(&token))
    };
    let answers = tls::calls(&certs, port, &[other, scrape]);
    assert_eq!(answers[0].status, 200, "another client is not limited");
    let refusals = "resetgate_refusals_total{kind=\"admin_token_failures\"} 3";
    assert!(
        answers[1].body.lines().any(|l| l == refusals),
        "{}",
        answers[1].body
    );
    assert_eq!(
        setup.cli(&["users", "list"]).code,
        Some(0),
        "nor the socket"
    );
}

/// `check-config` on `setup`'s file.
fn check(setup: &Setup) -> support::CliRun {
    setup.cli(&["check-config"])
}

/// A configuration that would expose the admin API without TLS, or with a broken TLS
/// setting, is refused by check-config and by serve (exit 2), naming the keys.
#[test]
fn configurations_that_would_expose_the_admin_api_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let both = ["admin.tls_cert_file", "admin.tls_key_file"];
    // Off loopback without TLS.
    let setup = Setup::new("");
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let open = text.replacen(
        "[admin]\nlisten = \"127.0.0.1:",
        "[admin]\nlisten = \"0.0.0.0:",
        1,
    );
    std::fs::write(&setup.config, open).unwrap();
    refused(&setup, &["`admin.listen`", both[0], both[1]]);

    // One file without the other.
    let (setup, certs) = tls::setup("", "0.0.0.0");
    let text = std::fs::read_to_string(&setup.config).unwrap();
    for dropped in ["tls_key_file", "tls_cert_file"] {
        let one: String = text
            .lines()
            .filter(|l| !l.starts_with(dropped))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&setup.config, one).unwrap();
        refused(&setup, &both);
    }
    std::fs::write(&setup.config, &text).unwrap();

    // A key file that others may read.
    std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(&setup, &["`admin.tls_key_file`", "chmod 600"]);
    // A key that is not the certificate's.
    std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ca_key = setup.dir.path().join("admin-ca.key");
    std::fs::copy(&ca_key, &certs.key).unwrap();
    std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    refused(&setup, &["`admin.tls_key_file`"]);
    // Loopback with TLS files that are right: accepted.
    let (fine, _) = tls::setup("", "127.0.0.1");
    let run = check(&fine);
    assert_eq!(run.code, Some(0), "{run:?}");
}

/// check-config and serve both exit 2, and the message names each of `words`.
fn refused(setup: &Setup, words: &[&str]) {
    let run = check(setup);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        words.iter().all(|w| run.stderr.contains(w)),
        "{words:?}: {run:?}"
    );
    let (status, log) = match Service::try_start(&setup.config, &[]) {
        Ok(service) => panic!("started: {:?}", service.log()),
        Err(failed) => failed,
    };
    assert_eq!(status.code(), Some(2), "{log:?}");
    let log = log.join("\n");
    assert!(words.iter().all(|w| log.contains(w)), "{words:?}: {log}");
}
