//! Importing accounts with the hashes another system made (docs/integration.md, "Moving
//! your users in"), against the real binary. The hashes are made in the test run by the
//! reference implementations (tests/support/make_hashes.py: pyca's bcrypt, argon2-cffi,
//! Django, Python's hashlib), each checked there with that library's own verifier.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};
use support::webhook::{webhook_config, WebhookReceiver, TEST_SECRET};
use support::{smtp_config, Service, Setup, SmtpSink};

const VERIFY: &str = "/admin/v1/users/verify";
const IMPORT: &str = "/admin/v1/users/import";
/// The test config's `passwords.pbkdf2_iterations`: resetgate's own hashes start so.
const OWN: &str = "$pbkdf2-sha256$i=10000$";

/// Every format, with the password its account's hash is made from (not ASCII, so that
/// both sides must agree on UTF-8).
const ACCOUNTS: [(&str, &str); 8] = [
    ("bcrypt-2a", "grüne Äpfel im Korb"),
    ("bcrypt-2b", "café au lait, s'il vous plaît"),
    ("bcrypt-2y", "ночь, улица, фонарь"),
    ("argon2id", "argon two, eye dee: 🦀"),
    ("argon2i", "argon two, eye: ñandú"),
    ("django", "Django's own ünïcode"),
    ("scrypt", "scrypt in PHC form, ünïcode"),
    ("pbkdf2-sha256", "PBKDF2 as PHC, ünïcode"),
];

/// `{format: hash}` for `{format: password}`, from tests/support/make_hashes.py.
fn make_hashes(wanted: &[(&str, &str)]) -> HashMap<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make_hashes.py");
    let wanted: HashMap<_, _> = wanted.iter().copied().collect();
    let out = Command::new("python3")
        .arg(script)
        .arg(json!(wanted).to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "make_hashes.py failed (README's test command installs bcrypt, argon2-cffi and django): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("make_hashes.py prints a JSON object")
}

fn address(format: &str) -> String {
    format!("{format}@example.com")
}

/// POST `/admin/v1/users/verify`: the status and the JSON body.
fn verify(service: &Service, setup: &Setup, email: &str, password: &str) -> (u16, Value) {
    let body = json!({ "email": email, "password": password }).to_string();
    let r = service.admin_call(setup, "POST", VERIFY, body.as_bytes());
    (r.status, r.json())
}

fn refused() -> (u16, Value) {
    (401, json!({ "message": "Invalid email or password" }))
}

fn accepted() -> (u16, Value) {
    (200, json!({ "valid": true }))
}

/// Each account's stored hash, read from a `resetgate backup` file (its `email_user` lines:
/// the key and the JSON record, each in base64).
fn stored_hashes(setup: &Setup) -> HashMap<String, Option<String>> {
    let file = setup.dir.path().join("hashes.backup");
    let run = setup.cli(&["backup", file.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let mut hashes = HashMap::new();
    for line in text.lines().skip(1) {
        let line: Value = serde_json::from_str(line).unwrap();
        if line["tree"] != "email_user" {
            continue;
        }
        let key = b64.decode(line["key"].as_str().unwrap()).unwrap();
        let user: Value =
            serde_json::from_slice(&b64.decode(line["value"].as_str().unwrap()).unwrap()).unwrap();
        let hash = user["password_hash"].as_str().map(String::from);
        hashes.insert(String::from_utf8(key).unwrap(), hash);
    }
    hashes
}

fn import_file(setup: &Setup, lines: &[Value]) -> support::CliRun {
    let file = setup.dir.path().join("users.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    setup.cli(&["users", "import", file.to_str().unwrap()])
}

#[test]
fn every_format_verifies_its_password_only_and_is_replaced_by_resetgates_own_on_first_use() {
    let hashes = make_hashes(&ACCOUNTS);
    let setup = Setup::new("");
    let service = setup.start();
    let lines: Vec<Value> = ACCOUNTS
        .iter()
        .map(|(f, _)| json!({ "email": address(f), "password_hash": hashes[*f] }))
        .collect();
    let run = import_file(&setup, &lines);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("imported 8 new accounts"), "{run:?}");

    let list = setup.cli(&["--json", "users", "list"]);
    let with_password = list.stdout.matches("\"has_password\":true").count();
    assert_eq!(with_password, 8, "{list:?}");

    // A wrong password is refused, as for any account, and changes nothing.
    for (format, password) in ACCOUNTS {
        let wrong = format!("{password}!");
        assert_eq!(
            verify(&service, &setup, &address(format), &wrong),
            refused(),
            "{format}"
        );
    }
    let stored = stored_hashes(&setup);
    for (format, _) in ACCOUNTS {
        assert_eq!(
            stored[&address(format)].as_ref(),
            Some(&hashes[format]),
            "{format}"
        );
    }

    // The right one is accepted, and the stored hash is resetgate's own from then on.
    for (format, password) in ACCOUNTS {
        assert_eq!(
            verify(&service, &setup, &address(format), password),
            accepted(),
            "{format}"
        );
    }
    let upgraded = stored_hashes(&setup);
    for (format, password) in ACCOUNTS {
        let own = upgraded[&address(format)].clone().unwrap();
        assert!(own.starts_with(OWN), "{format}: {own}");
        assert_eq!(
            verify(&service, &setup, &address(format), password),
            accepted(),
            "{format}"
        );
        let wrong = format!("{password}!");
        assert_eq!(
            verify(&service, &setup, &address(format), &wrong),
            refused(),
            "{format}"
        );
    }
    assert_eq!(
        stored_hashes(&setup),
        upgraded,
        "replaced once, on first use"
    );

    let list = setup.cli(&["--json", "users", "list"]);
    assert_eq!(
        list.stdout.matches("\"has_password\":true").count(),
        8,
        "{list:?}"
    );
    let (status, log) = service.stop();
    assert!(status.success());
    for (format, password) in ACCOUNTS {
        assert!(
            log.iter()
                .all(|l| !l.contains(password) && !l.contains(&hashes[format][10..])),
            "neither the password nor the hash of {format} reaches the log"
        );
    }
}

#[test]
fn a_bad_or_too_costly_hash_refuses_the_whole_import_with_its_record_number() {
    let hashes = make_hashes(&[
        ("bcrypt-2b", "tiger lily"),
        ("argon2id", "water lily"),
        ("django", "calla lily"),
    ]);
    // A cost-16 bcrypt and a 4 GiB Argon2, written as those libraries would write them.
    let bcrypt_16 = hashes["bcrypt-2b"].replacen("$04$", "$16$", 1);
    let argon2_4g = hashes["argon2id"].replacen("m=8192,", "m=4194304,", 1);
    let good = json!({ "email": "good@example.com", "password_hash": hashes["django"] });
    let setup = Setup::new("");

    // The command line, with no service running.
    for (bad, expected) in [
        (
            json!({ "email": "b@example.com", "password_hash": bcrypt_16 }),
            "users.jsonl:2: \"password_hash\" is too costly to verify: the bcrypt cost is 16, over the limit of 14 (about 1 s of a core); nothing was imported",
        ),
        (
            json!({ "email": "b@example.com", "password_hash": &hashes["bcrypt-2b"][..40] }),
            "users.jsonl:2: \"password_hash\" is a malformed bcrypt hash (",
        ),
        (
            json!({ "email": "b@example.com", "password_hash": "{SSHA}c2FsdGVkIGhhc2g=" }),
            "users.jsonl:2: \"password_hash\" is not a format resetgate can import (PHC $argon2id$, $argon2i$, $scrypt$ or $pbkdf2-sha256$; bcrypt $2a$, $2b$ or $2y$; Django pbkdf2_sha256$)",
        ),
        (
            json!({ "email": "b@example.com", "password": "a long passphrase of mine", "password_hash": hashes["django"] }),
            "users.jsonl:2: \"password\" and \"password_hash\" exclude each other",
        ),
    ] {
        let run = import_file(&setup, &[good.clone(), bad]);
        assert_eq!(run.code, Some(3), "{run:?}");
        assert!(run.stderr.contains(expected), "{expected}\n{run:?}");
    }
    assert_eq!(
        setup.cli(&["users", "list"]).stdout,
        "",
        "nothing was imported"
    );
    let run = import_file(&setup, &[good]);
    assert_eq!(run.code, Some(0), "{run:?}");

    // The admin API, on the running service.
    let service = setup.start();
    let import = |users: Value| {
        let body = json!({ "users": users }).to_string();
        let r = service.admin_call(&setup, "POST", IMPORT, body.as_bytes());
        (r.status, r.json())
    };
    let (status, body) = import(json!([
        { "email": "a@example.com" },
        { "email": "b@example.com", "password_hash": argon2_4g },
    ]));
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (400, "record 2: \"password_hash\" is too costly to verify: Argon2 memory (KiB) × passes is 4194304, over the limit of 655360 (about 1 s of a core)")
    );
    let (status, body) = import(json!([{ "email": "a@example.com", "password_hash": 42 }]));
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (400, "record 1: \"password_hash\" must be a string")
    );
    let list = service
        .admin_call(&setup, "GET", "/admin/v1/users", b"")
        .json();
    assert_eq!(
        list["users"].as_array().unwrap().len(),
        1,
        "only the first import's account: {list}"
    );

    // The account the command line imported verifies with Django's password; the API's too.
    assert_eq!(
        verify(&service, &setup, "good@example.com", "calla lily"),
        accepted()
    );
    let (status, body) =
        import(json!([{ "email": "api@example.com", "password_hash": hashes["argon2id"] }]));
    assert_eq!((status, body), (200, json!({ "added": 1, "existing": 0 })));
    assert_eq!(
        verify(&service, &setup, "api@example.com", "tiger lily"),
        refused()
    );
    assert_eq!(
        verify(&service, &setup, "api@example.com", "water lily"),
        accepted()
    );

    // Adding one account takes a password, not a hash.
    let body = json!({ "email": "c@example.com", "password_hash": hashes["django"] }).to_string();
    let r = service.admin_call(&setup, "POST", "/admin/v1/users", body.as_bytes());
    assert_eq!(
        (r.status, r.message()),
        (400, "unknown field \"password_hash\"".to_string())
    );
}

/// A password change (here through the recovery flow) writes resetgate's own hash over an
/// imported one, as over any; the upgrade on first use sends no event, so the first event
/// an application hears of an upgraded account is its next password change.
#[test]
fn a_password_change_replaces_an_imported_hash_and_the_upgrade_sends_no_event() {
    const NEW_PASSWORD: &str = "purple elephant dances at noon";
    let hashes = make_hashes(&[
        ("bcrypt-2b", "old bcrypt passphrase"),
        ("argon2id", "old argon2 passphrase"),
    ]);
    let receiver = WebhookReceiver::start(TEST_SECRET);
    let sink = SmtpSink::start();
    let hooks = webhook_config(
        "app",
        &receiver.url(),
        TEST_SECRET,
        "include_password_hash = true\n",
    );
    let setup = Setup::new(&format!("{}{hooks}", smtp_config(sink.port)));
    let lines = [
        json!({ "email": "never@example.com", "password_hash": hashes["bcrypt-2b"] }),
        json!({ "email": "upgraded@example.com", "password_hash": hashes["argon2id"] }),
    ];
    assert_eq!(import_file(&setup, &lines).code, Some(0));
    let service = setup.start();
    assert_eq!(
        verify(
            &service,
            &setup,
            "upgraded@example.com",
            "old argon2 passphrase"
        ),
        accepted()
    );

    for (email, old) in [
        ("upgraded@example.com", "old argon2 passphrase"),
        ("never@example.com", "old bcrypt passphrase"),
    ] {
        let r = service.forgot(&json!({ "email": email }).to_string());
        assert_eq!(r.status, 200, "{r:?}");
        let code = sink.next_mail().code();
        let r = service.post(
            "/api/v1/user/confirm-otp-reset",
            &json!({ "resetToken": code }).to_string(),
        );
        assert_eq!(r.status, 200, "{r:?}");
        let body = json!({ "email": email, "password": NEW_PASSWORD });
        let r = service.post("/api/v1/user/password-reset", &body.to_string());
        assert_eq!(r.status, 200, "{r:?}");

        // Every event type goes to the endpoint, in order per account: nothing came before
        // the confirmation, so nothing came of the upgrade.
        let kind = |d: &support::webhook::Delivery| {
            (
                d.event_type().to_string(),
                d.data()["email"].as_str().map(String::from),
            )
        };
        let confirmed = receiver.next_delivery();
        assert_eq!(
            kind(&confirmed),
            ("code.confirmed".into(), Some(email.into()))
        );
        let event = receiver.next_delivery();
        assert_eq!(
            kind(&event),
            ("password.changed".into(), Some(email.into()))
        );
        let sent = event.data()["password_hash"].as_str().unwrap().to_string();
        assert_eq!(stored_hashes(&setup)[email].as_deref(), Some(sent.as_str()));
        assert!(sent.starts_with(OWN), "{sent}");
        assert_eq!(verify(&service, &setup, email, old), refused());
        assert_eq!(verify(&service, &setup, email, NEW_PASSWORD), accepted());
        assert!(sink.next_mail().data.contains("was changed"), "the notice");
    }
    assert!(receiver.pending().is_empty(), "two recoveries, four events");
}
