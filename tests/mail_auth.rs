//! `resetgate check-mail`, and the same checks in `serve`, against a real DNS server that
//! serves the zones each test writes (tests/support/dns_server.py, dnslib), a real SMTP
//! server as the relay, and dkimpy as an independent DKIM verifier resolving through the
//! same DNS server. No test sleeps: a zone is rewritten before the command that reads it.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{dkim_key, free_port, private_ca, smtp_config, CliRun, Python, Setup, SmtpSink};

/// The test's DNS server and the zone file it answers from.
struct Dns {
    _server: Python,
    port: u16,
    zone: PathBuf,
}

impl Dns {
    fn start(dir: &Path) -> Dns {
        let zone = dir.join("zone");
        std::fs::write(&zone, "").unwrap();
        let path = zone.to_str().unwrap().to_string();
        let (server, port, _) = Python::start("dns_server.py", &[&path], "dnslib");
        Dns {
            _server: server,
            port,
            zone,
        }
    }

    /// Replaces the zone: each line a zone file line. The server reads the file for every
    /// query, and the rename makes the change whole.
    fn publish(&self, lines: &[String]) {
        let next = self.zone.with_extension("next");
        std::fs::write(&next, lines.join("\n") + "\n").unwrap();
        std::fs::rename(&next, &self.zone).unwrap();
    }
}

/// A TXT record as a zone file line, its value in strings of at most 255 bytes.
fn txt(name: &str, value: &str) -> String {
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!("{name}. IN TXT {}", strings.join(" "))
}

/// A sending domain under test: the DNS server, the relay, the key, and the configuration
/// (From `noreply@<from>`, signed as `d=<signing>; s=s1`, `mail_lines` added to [mail]).
struct Domain {
    dns: Dns,
    sink: SmtpSink,
    setup: Setup,
    /// The key's record value as openssl derives it.
    record: String,
    dir: tempfile::TempDir,
}

impl Domain {
    fn new(kind: &str, from: &str, signing: &str, mail_lines: &str) -> Domain {
        let dir = tempfile::tempdir().unwrap();
        let dns = Dns::start(dir.path());
        let sink = SmtpSink::start();
        let (key_file, record) = dkim_key(dir.path(), kind);
        let config = mail_config(sink.port, &format!("127.0.0.1:{}", dns.port), mail_lines)
            .replace("noreply@example.com", &format!("noreply@{from}"));
        let setup = Setup::new(&format!(
            "{config}[mail.dkim]\ndomain = \"{signing}\"\nselector = \"s1\"\nkey_file = \"{key_file}\"\n"
        ));
        Domain {
            dns,
            sink,
            setup,
            record,
            dir,
        }
    }

    /// example.com, signing as example.com, SPF evaluated for 127.0.0.1.
    fn example(kind: &str) -> Domain {
        Domain::new(
            kind,
            "example.com",
            "example.com",
            "outbound_ips = [\"127.0.0.1\"]\n",
        )
    }

    /// The records that make every check pass, from openssl's view of the key.
    fn good_zone(&self, from: &str, signing: &str) -> Vec<String> {
        vec![
            txt(&format!("s1._domainkey.{signing}"), &self.record),
            txt(&format!("_dmarc.{from}"), "v=DMARC1; p=reject; adkim=r"),
            txt(from, "v=spf1 ip4:127.0.0.1 -all"),
        ]
    }

    fn check(&self) -> (CliRun, HashMap<String, Value>) {
        check(&self.setup)
    }
}

/// The SMTP section for the relay on `port`, with `mail.dns_resolver` set and `lines`
/// added to [mail].
fn mail_config(port: u16, resolver: &str, lines: &str) -> String {
    let config = smtp_config(port);
    let start = config
        .find("dns_resolver = ")
        .expect("smtp_config sets a resolver");
    let end = start + config[start..].find('\n').unwrap() + 1;
    format!(
        "{}dns_resolver = \"{resolver}\"\n{lines}{}",
        &config[..start],
        &config[end..]
    )
}

/// `check-mail --json`: the run, and each check's object by name.
fn check(setup: &Setup) -> (CliRun, HashMap<String, Value>) {
    let run = setup.cli(&["check-mail", "--json"]);
    let report: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {run:?}"));
    assert_eq!(
        report["exit_code"].as_i64(),
        run.code.map(i64::from),
        "{run:?}"
    );
    let checks = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| (c["check"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    (run, checks)
}

/// Asserts a check's status and that its reason contains `words`.
fn assert_check(checks: &HashMap<String, Value>, name: &str, status: &str, words: &str) {
    let c = &checks[name];
    assert_eq!(c["status"], status, "{name}: {c}");
    let reason = c["reason"].as_str().unwrap();
    assert!(reason.contains(words), "{name}: {reason:?} lacks {words:?}");
}

/// The record a check asks to publish, as a zone file line.
fn published(checks: &HashMap<String, Value>, name: &str) -> String {
    let record = &checks[name]["publish"];
    assert_eq!(record["type"], "TXT", "{name}: {record}");
    txt(
        record["name"].as_str().unwrap(),
        record["value"].as_str().unwrap(),
    )
}

/// dkimpy's verdict on `message`, its key looked up through the test's DNS server.
fn dkimpy(dns: &Dns, message: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify_dns.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(dns.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with dkimpy and dnslib (README's test command)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(message.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_domain_set_up_from_the_printed_records_passes_and_dkimpy_agrees() {
    for kind in ["rsa", "ed25519"] {
        let d = Domain::example(kind);
        let (run, checks) = d.check();
        assert_eq!(run.code, Some(1), "{kind}: {run:?}");
        assert_check(
            &checks,
            "dkim",
            "fail",
            "no DKIM key is published at s1._domainkey.example.com",
        );
        assert_check(
            &checks,
            "dmarc",
            "fail",
            "no DMARC record at _dmarc.example.com",
        );
        assert_check(&checks, "spf", "fail", "no SPF record at example.com");
        assert_check(&checks, "relay", "pass", "accepted a connection");

        // --print-dkim-record prints the record alone, the same one the check asks for,
        // holding the key openssl sees in the key file.
        let printed = d.setup.cli(&["check-mail", "--print-dkim-record"]);
        assert_eq!(printed.code, Some(0), "{printed:?}");
        let printed = printed.stdout.trim().to_string();
        assert_eq!(printed, published(&checks, "dkim"));
        assert_eq!(
            printed,
            txt("s1._domainkey.example.com", &d.record),
            "{kind}"
        );
        let spf = published(&checks, "spf");
        assert!(spf.contains("v=spf1 ip4:127.0.0.1 ~all"), "{spf}");
        d.dns
            .publish(&[printed.clone(), published(&checks, "dmarc"), spf.clone()]);

        let (run, checks) = d.check();
        assert_eq!(run.code, Some(0), "{kind}: {run:?}");
        assert_check(
            &checks,
            "dkim",
            "pass",
            "verifies a message signed with mail.dkim.key_file",
        );
        assert_check(
            &checks,
            "dmarc",
            "pass",
            "d=example.com aligns with example.com (adkim=r)",
        );
        assert_check(&checks, "spf", "pass", "allows 127.0.0.1");
        let table = d.setup.cli(&["check-mail"]);
        assert_eq!(table.code, Some(0));
        for line in ["dkim   pass", "dmarc  pass", "spf    pass", "relay  pass"] {
            assert!(table.stdout.contains(line), "{line}: {}", table.stdout);
        }

        // The independent verifier, on a message resetgate signed and sent, agrees.
        let sent = d.setup.cli(&["send-test-mail", "ada@example.com"]);
        assert_eq!(sent.code, Some(0), "{sent:?}");
        let mail = d.sink.next_mail();
        assert_eq!(dkimpy(&d.dns, &mail.data), "pass", "{kind}: {}", mail.data);
        // ... and it does ask the test's DNS: another key published there makes it fail.
        let (_, other) = dkim_key(d.dir.path(), kind);
        d.dns
            .publish(&[txt("s1._domainkey.example.com", &other), spf]);
        assert!(dkimpy(&d.dns, &mail.data).starts_with("fail"), "{kind}");
    }
}

#[test]
fn dkim_records_that_do_not_match_the_key_fail_with_their_reason() {
    let d = Domain::example("rsa");
    let good = d.good_zone("example.com", "example.com");
    let with_key = |value: &str| {
        let mut zone = good[1..].to_vec();
        zone.push(txt("s1._domainkey.example.com", value));
        zone
    };
    let (_, other_rsa) = dkim_key(d.dir.path(), "rsa");
    let (_, ed25519) = dkim_key(d.dir.path(), "ed25519");
    let cases = [
        ("v=DKIM1; k=rsa; p=".to_string(), "is revoked (empty p=)"),
        (
            d.record.replace("k=rsa; ", "k=rsa; t=y; "),
            "is marked t=y (testing)",
        ),
        (
            other_rsa,
            "does not verify a message signed with mail.dkim.key_file: it is another key",
        ),
        (ed25519, "is of another type (k=) than mail.dkim.key_file"),
        ("hello, world".to_string(), "is not a usable DKIM key"),
    ];
    for (value, reason) in cases {
        d.dns.publish(&with_key(&value));
        let (run, checks) = d.check();
        assert_eq!(run.code, Some(1), "{value}: {run:?}");
        assert_check(&checks, "dkim", "fail", reason);
        assert_eq!(
            published(&checks, "dkim"),
            txt("s1._domainkey.example.com", &d.record),
            "the record to publish instead"
        );
        assert_check(&checks, "dmarc", "pass", "aligns");
    }
    d.dns.publish(&good);
    assert_eq!(d.check().0.code, Some(0));
}

#[test]
fn without_a_dkim_key_dkim_and_dmarc_fail_and_no_record_can_be_printed() {
    let dir = tempfile::tempdir().unwrap();
    let dns = Dns::start(dir.path());
    dns.publish(&[
        txt("_dmarc.example.com", "v=DMARC1; p=reject"),
        txt("example.com", "v=spf1 ip4:127.0.0.1 -all"),
    ]);
    let sink = SmtpSink::start();
    let setup = Setup::new(&mail_config(
        sink.port,
        &format!("127.0.0.1:{}", dns.port),
        "outbound_ips = [\"127.0.0.1\"]\n",
    ));
    let (run, checks) = check(&setup);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_check(&checks, "dkim", "fail", "mail.dkim is not set");
    assert_check(&checks, "dmarc", "fail", "no DKIM signature to align");
    assert_check(&checks, "spf", "pass", "allows 127.0.0.1");
    let printed = setup.cli(&["check-mail", "--print-dkim-record"]);
    assert_eq!(printed.code, Some(2), "{printed:?}");
    assert!(
        printed.stderr.contains("mail.dkim is not set"),
        "{printed:?}"
    );
}

#[test]
fn dmarc_missing_unaligned_or_p_none_is_told_and_a_parent_record_counts() {
    let d = Domain::example("rsa");
    let good = d.good_zone("example.com", "example.com");
    d.dns.publish(&[good[0].clone(), good[2].clone()]);
    let (run, checks) = d.check();
    assert_eq!(run.code, Some(1));
    assert_check(
        &checks,
        "dmarc",
        "fail",
        "no DMARC record at _dmarc.example.com",
    );
    assert_eq!(
        published(&checks, "dmarc"),
        txt(
            "_dmarc.example.com",
            "v=DMARC1; p=quarantine; adkim=r; aspf=r"
        )
    );

    d.dns.publish(&[
        good[0].clone(),
        good[2].clone(),
        txt("_dmarc.example.com", "v=DMARC1; p=none"),
    ]);
    let (run, checks) = d.check();
    assert_eq!(run.code, Some(0), "a warning passes: {run:?}");
    assert_check(&checks, "dmarc", "warn", "is p=none");

    // Signed as a subdomain: aligned under relaxed alignment, not under strict.
    let sub = Domain::new(
        "rsa",
        "example.com",
        "mail.example.com",
        "outbound_ips = [\"127.0.0.1\"]\n",
    );
    let mut zone = sub.good_zone("example.com", "mail.example.com");
    sub.dns.publish(&zone);
    let (run, checks) = sub.check();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_check(
        &checks,
        "dmarc",
        "pass",
        "d=mail.example.com aligns with example.com (adkim=r)",
    );
    zone[1] = txt("_dmarc.example.com", "v=DMARC1; p=reject; adkim=s");
    sub.dns.publish(&zone);
    let (run, checks) = sub.check();
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_check(
        &checks,
        "dmarc",
        "fail",
        "d=mail.example.com does not align with the From domain example.com under adkim=s",
    );

    // From a subdomain with no record of its own: the organizational domain's applies.
    let news = Domain::new(
        "rsa",
        "news.example.com",
        "example.com",
        "outbound_ips = [\"127.0.0.1\"]\n",
    );
    news.dns.publish(&[
        txt("s1._domainkey.example.com", &news.record),
        txt("_dmarc.example.com", "v=DMARC1; p=quarantine"),
        txt("news.example.com", "v=spf1 ip4:127.0.0.1 -all"),
    ]);
    let (run, checks) = news.check();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_check(
        &checks,
        "dmarc",
        "pass",
        "aligns with news.example.com (adkim=r); the policy at _dmarc.example.com is p=quarantine",
    );
}

#[test]
fn spf_missing_invalid_over_ten_lookups_or_not_allowing_the_relay_fails() {
    let d = Domain::example("rsa");
    let good = d.good_zone("example.com", "example.com");
    let with_spf = |records: &[String]| {
        let mut zone = good[..2].to_vec();
        zone.extend_from_slice(records);
        zone
    };
    d.dns.publish(&with_spf(&[]));
    let (_, checks) = d.check();
    assert_check(&checks, "spf", "fail", "no SPF record at example.com");
    assert_eq!(
        published(&checks, "spf"),
        txt("example.com", "v=spf1 ip4:127.0.0.1 ~all")
    );

    let cases = [
        (
            vec![txt("example.com", "v=spf1 ip4:192.0.2.1 -all")],
            "does not allow 127.0.0.1 (fail)",
        ),
        (
            vec![txt("example.com", "v=spf1 ip4:not-an-address -all")],
            "is not valid",
        ),
        (
            vec![
                txt("example.com", "v=spf1 ip4:127.0.0.1 -all"),
                txt("example.com", "v=spf1 -all"),
            ],
            "2 TXT records start with v=spf1",
        ),
    ];
    for (records, reason) in cases {
        d.dns.publish(&with_spf(&records));
        let (run, checks) = d.check();
        assert_eq!(run.code, Some(1), "{records:?}: {run:?}");
        assert_check(&checks, "spf", "fail", reason);
    }

    // Ten includes are ten lookups, the most a receiver makes; one `a` more, nested in an
    // include, is eleven.
    let includes: Vec<String> = (1..=10)
        .map(|i| format!("include:i{i}.example.com"))
        .collect();
    let mut records = vec![txt(
        "example.com",
        &format!("v=spf1 {} -all", includes.join(" ")),
    )];
    records.push(txt("i1.example.com", "v=spf1 ip4:127.0.0.1 -all"));
    for i in 2..=10 {
        records.push(txt(&format!("i{i}.example.com"), "v=spf1 -all"));
    }
    d.dns.publish(&with_spf(&records));
    let (run, checks) = d.check();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_check(
        &checks,
        "spf",
        "pass",
        "allows 127.0.0.1 (10 of 10 lookups)",
    );
    records[2] = txt("i2.example.com", "v=spf1 a -all");
    d.dns.publish(&with_spf(&records));
    let (run, checks) = d.check();
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_check(&checks, "spf", "fail", "needs more than 10 DNS lookups");

    // Without mail.outbound_ips the record is checked, not evaluated, and the output says so.
    let unlisted = Domain::new("rsa", "example.com", "example.com", "");
    unlisted
        .dns
        .publish(&unlisted.good_zone("example.com", "example.com"));
    let (run, checks) = unlisted.check();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_check(
        &checks,
        "spf",
        "warn",
        "is valid and needs 0 of 10 lookups; not evaluated, as mail.outbound_ips is empty",
    );
}

#[test]
fn an_unreachable_dns_server_exits_3_and_serve_reports_unknown() {
    // A loopback port nobody listens on: no answer.
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let (key_file, _) = dkim_key(dir.path(), "rsa");
    let setup = Setup::new(&format!(
        "{}[mail.dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nkey_file = \"{key_file}\"\n",
        mail_config(sink.port, &format!("127.0.0.1:{}", free_port()), "")
    ));
    let (run, checks) = check(&setup);
    assert_eq!(run.code, Some(3), "{run:?}");
    for name in ["dkim", "dmarc", "spf"] {
        assert_check(&checks, name, "unknown", "could not look up");
    }
    assert_check(&checks, "relay", "pass", "accepted a connection");

    let mut service = setup.start();
    service.wait_for_log("mail authentication checked");
    let metrics = service.admin_call(&setup, "GET", "/metrics", b"").raw_body;
    for line in [
        "resetgate_mail_auth{check=\"dkim\"} -1",
        "resetgate_mail_auth{check=\"relay\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
}

#[test]
fn the_relay_check_is_the_start_up_probe_with_tls_and_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, tls_key) = private_ca(dir.path(), "relay");
    let (other_ca, _, _) = private_ca(dir.path(), "other");
    let sink = SmtpSink::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        tls_key.to_str().unwrap(),
    ]);
    let dns = Dns::start(dir.path());
    let config = |ca: &Path| {
        mail_config(sink.port, &format!("127.0.0.1:{}", dns.port), "").replace(
            "security = \"none\"",
            &format!("security = \"starttls\"\nca_file = \"{}\"", ca.display()),
        )
    };
    let (_, checks) = check(&Setup::new(&config(&ca)));
    assert_check(
        &checks,
        "relay",
        "pass",
        "(security starttls) accepted a connection",
    );
    let (run, checks) = check(&Setup::new(&config(&other_ca)));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_check(&checks, "relay", "fail", "is not usable");
    let reason = checks["relay"]["reason"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("certificate"), "{reason}");

    let closed = Setup::new(&mail_config(
        free_port(),
        &format!("127.0.0.1:{}", dns.port),
        "",
    ));
    let (run, checks) = check(&closed);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_check(&checks, "relay", "fail", "is not usable");
}

#[test]
fn serve_checks_at_start_up_warns_sets_the_gauge_and_stays_ready() {
    let d = Domain::example("rsa");
    let good = d.good_zone("example.com", "example.com");
    d.dns.publish(&[good[0].clone(), good[2].clone()]);
    let mut service = d.setup.start();
    let summary = service.wait_for_log("mail authentication checked");
    assert!(summary.contains("dmarc=fail"), "{summary}");
    let warning = service
        .log()
        .into_iter()
        .find(|l| l.contains("mail authentication check failed"))
        .expect("a warning for the failed check");
    assert!(
        warning.contains("WARN") && warning.contains("check=dmarc"),
        "{warning}"
    );
    assert!(
        warning.contains("_dmarc.example.com"),
        "the record to publish: {warning}"
    );
    let metrics = service
        .admin_call(&d.setup, "GET", "/metrics", b"")
        .raw_body;
    for line in [
        "resetgate_mail_auth{check=\"dkim\"} 1",
        "resetgate_mail_auth{check=\"dmarc\"} 0",
        "resetgate_mail_auth{check=\"spf\"} 1",
        "resetgate_mail_auth{check=\"relay\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    let ready = support::request(service.public, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "mail may still arrive: {ready:?}");
}
