//! The reset page in a real browser: Debian's Chromium driven over WebDriver
//! (`tests/support/browser.py`, selenium and chromedriver), against the real binary with a
//! real SMTP server; axe-core checks each step. Screenshots go to `target/screenshots/`.
//! README's test command installs Chromium, chromedriver, selenium and axe-core.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use support::{Service, Setup, SmtpSink};

const PASSWORD: &str = "purple elephant dances at noon";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn axe() -> PathBuf {
    let axe = root().join("target/axe/node_modules/axe-core/axe.min.js");
    assert!(
        axe.exists(),
        "axe-core is missing: npm install --prefix target/axe axe-core@4.10.2 (README's test command does)"
    );
    axe
}

fn shots() -> PathBuf {
    let dir = root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn setup(email: &str, extra: &str) -> (SmtpSink, Setup, Service) {
    support::started(extra, &[email])
}

/// Runs the browser script with `args`; answers its "NEED_CODE" with the code of the next
/// mail, and its "NEED_EXPIRED_CODE" with that code once `code_ttl` has passed since the
/// mail arrived (the code was issued before). Ok when it said "OK"; its output otherwise. A failed check (AssertionError) panics
/// at once; anything else is the browser's trouble, for [`attempt_twice`].
fn run_browser(args: &[&str], sink: &SmtpSink) -> Result<(), String> {
    run_browser_with(args, sink, Duration::ZERO)
}

fn run_browser_with(args: &[&str], sink: &SmtpSink, code_ttl: Duration) -> Result<(), String> {
    // One browser at a time: two Chromiums and two services on two cores made the driver
    // race (an element found "does not belong to the document").
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let script = root().join("tests/support/browser.py");
    let axe = axe();
    let shots = shots();
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .args([
            "--axe",
            axe.to_str().unwrap(),
            "--shots",
            shots.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with selenium (README's test command installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut said = Vec::new();
    for line in out.lines().map_while(Result::ok) {
        if line == "NEED_CODE" {
            writeln!(stdin, "{}", sink.next_mail().code_in_any_language()).unwrap();
        }
        if line == "NEED_EXPIRED_CODE" {
            let code = sink.next_mail().code_in_any_language();
            let expired = SystemTime::now() + code_ttl;
            while let Ok(left) = expired.duration_since(SystemTime::now()) {
                std::thread::sleep(left + Duration::from_millis(5));
            }
            writeln!(stdin, "{code}").unwrap();
        }
        said.push(line);
    }
    let finished = child.wait_with_output().unwrap();
    if finished.status.success() && said.last().map(String::as_str) == Some("OK") {
        return Ok(());
    }
    let failure = format!(
        "the browser script failed: {said:?}\n{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(!failure.contains("AssertionError"), "{failure}");
    Err(failure)
}

/// Runs `flow` (a fresh service and browser each time); once more if the browser, not a
/// check, failed the first time: chromedriver sometimes loses an element it has just found
/// ("does not belong to the document") on this busy two-core machine.
fn attempt_twice(flow: impl Fn() -> Result<(), String>) {
    if let Err(first) = flow() {
        eprintln!("the browser failed; once more. {first}");
        flow().unwrap_or_else(|second| panic!("{second}"));
    }
}

fn verify(service: &Service, setup: &Setup, email: &str) -> u16 {
    let body = format!(r#"{{"email": "{email}", "password": "{PASSWORD}"}}"#);
    service
        .admin_call(setup, "POST", "/admin/v1/users/verify", body.as_bytes())
        .status
}

#[test]
fn a_person_resets_their_password_in_chromium_in_three_languages_with_and_without_javascript() {
    let flows = [
        ("ada@example.com", false, "en"),
        ("grace@example.com", true, "de"),
        ("lin@example.com", false, "fr"),
    ];
    for (email, no_js, lang) in flows {
        attempt_twice(|| {
            let (sink, setup, service) = setup(email, "");
            let base = format!("http://{}", service.public);
            let mut args = vec![
                "--base",
                &base,
                "--email",
                email,
                "--password",
                PASSWORD,
                "--lang",
                lang,
            ];
            if no_js {
                args.push("--no-js");
            }
            run_browser(&args, &sink)?;
            let works = verify(&service, &setup, email);
            assert_eq!(works, 200, "{email}: the new password works");
            Ok(())
        });
    }
}

#[test]
fn the_mails_link_opens_the_code_step_with_the_code_filled_in() {
    let (sink, _setup, service) = setup(
        "ada@example.com",
        "[web]\npublic_url = \"https://id.example.test\"\n",
    );
    let r = service.post(
        "/api/v1/user/forgot-password",
        r#"{"email": "ada@example.com"}"#,
    );
    assert_eq!(r.status, 200);
    let mail = sink.next_mail();
    let data = mail.data.replace("=\r\n", "").replace("=3D", "=");
    let link = data
        .split_whitespace()
        .find(|w| w.contains("#code="))
        .expect("the link in the mail");
    assert!(link.ends_with(&format!("#code={}", mail.code())), "{link}");
    // The same path and fragment, at the address the service listens on here.
    let here = link.replace(
        "https://id.example.test",
        &format!("http://{}", service.public),
    );
    attempt_twice(|| run_browser(&["--link", &here], &sink));
}

#[test]
fn an_expired_code_shows_its_sentence_and_keeps_the_address() {
    attempt_twice(|| {
        let email = "ada@example.com";
        let (sink, _setup, service) = setup(email, "[recovery]\ncode_ttl = \"2s\"\n");
        let base = format!("http://{}", service.public);
        let args = ["--base", &base, "--email", email, "--expired"];
        run_browser_with(&args, &sink, Duration::from_secs(2))
    });
}
