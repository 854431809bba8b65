//! DKIM signatures made by resetgate, verified by an independent implementation (dkimpy)
//! on the message as the SMTP server received it.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use support::{dkim_key, smtp_config, Setup, SmtpSink};

fn verify(record: &str, message: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(record)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with dkimpy (see .ci/run)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn rsa_and_ed25519_signatures_verify_independently() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["rsa", "ed25519"] {
        let (key_file, record) = dkim_key(dir.path(), kind);
        let sink = SmtpSink::start();
        let extra = format!(
            "{}[mail.dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nkey_file = \"{key_file}\"\n",
            smtp_config(sink.port)
        );
        let setup = Setup::new(&extra);
        assert_eq!(
            setup.cli(&["users", "add", "ada@example.com"]).code,
            Some(0)
        );
        let service = setup.start();
        assert_eq!(
            service.forgot(r#"{"email": "ada@example.com"}"#).status,
            200
        );
        let mail = sink.next_mail();
        let signature = mail
            .header("dkim-signature")
            .expect("a DKIM-Signature header");
        let algorithm = if kind == "rsa" {
            "a=rsa-sha256"
        } else {
            "a=ed25519-sha256"
        };
        assert!(
            signature.contains(algorithm) && signature.contains("d=example.com; s=s1"),
            "{signature}"
        );
        assert_eq!(verify(&record, &mail.data), "pass", "{kind}: {}", mail.data);

        let tampered = mail.data.replacen("Subject:", "Subject: [altered]", 1);
        assert!(
            verify(&record, &tampered).starts_with("fail"),
            "{kind}: a changed subject must not verify"
        );
        // A fresh key of the same kind (the service has signed already) must not verify it.
        let (_, other) = dkim_key(dir.path(), kind);
        assert!(
            verify(&other, &mail.data).starts_with("fail"),
            "{kind}: another key must not verify"
        );
    }
}

#[test]
fn a_bad_key_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    let setup = Setup::new(&format!(
        "[mail.dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nkey_file = \"{}\"\n",
        junk.display()
    ));
    let out = setup.cli(&["check-config"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("mail.dkim.key_file"), "{out:?}");
}
