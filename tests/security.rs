//! The second security review's findings, each attacked against the real binary: the
//! page's confirmations (M1), cross-site posts to the JSON API (M2), a data directory open
//! to local users (M3), root's CLI under a directory another user owns (L1), unsafe
//! settings (L2), short secrets (L3) and the page's form parsing (L4). docs/security.md
//! "Security model" names these tests.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use support::{request, Reply, Service, Setup, JSON};

const FORGOT: &str = "/api/v1/user/forgot-password";
const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
const RESET: &str = "/api/v1/user/password-reset";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const PASSWORD: &str = "purple elephant dances at noon";

/// A form post as the page's own form sends it (same origin).
fn page_post(service: &Service, path: &str, body: &str) -> Reply {
    let headers = [FORM, ("origin", "null"), ("sec-fetch-site", "same-origin")];
    request(service.public, "POST", path, &headers, body.as_bytes())
}

/// The value of the hidden or text field `name` in a page.
fn field(page: &Reply, name: &str) -> String {
    let at = page
        .raw_body
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name}: {}", page.raw_body));
    let rest = &page.raw_body[at..];
    rest.split("value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

fn verify(service: &Service, setup: &Setup, password: &str) -> u16 {
    let body = serde_json::json!({ "email": "ada@example.com", "password": password });
    let path = "/admin/v1/users/verify";
    let body = body.to_string();
    service
        .admin_call(setup, "POST", path, body.as_bytes())
        .status
}

/// M1: while the owner types the new password on the page, a neighbour on the owner's
/// address sends one JSON password-reset without the session: refused. The owner's page
/// then sets the password.
#[test]
fn m1_a_confirmation_made_on_the_page_needs_its_session() {
    let (sink, setup, service) = support::started("", &["ada@example.com"]);
    let asked = page_post(&service, "/reset/email", "email=ada%40example.com");
    assert_eq!(asked.status, 200, "{asked:?}");
    let code = sink.next_mail().code();
    let confirmed = page_post(
        &service,
        "/reset/code",
        &format!("email=ada%40example.com&code={code}"),
    );
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let session = field(&confirmed, "resetSession");

    let neighbour = service.post(
        RESET,
        &format!(r#"{{"email": "ada@example.com", "password": "{PASSWORD} again"}}"#),
    );
    assert_eq!(
        (neighbour.status, neighbour.message()),
        (400, "Invalid Request".to_string()),
        "the same address without the page's session"
    );
    assert_eq!(verify(&service, &setup, &format!("{PASSWORD} again")), 401);

    let owner = page_post(
        &service,
        "/reset/password",
        &format!(
            "email=ada%40example.com&resetSession={session}&password={p}&password2={p}",
            p = PASSWORD.replace(' ', "+")
        ),
    );
    assert_eq!(owner.status, 200, "{owner:?}");
    assert_eq!(verify(&service, &setup, PASSWORD), 200);
}

/// M2: a body in any other type than `application/json` (a page's "simple" post, which
/// needs no CORS preflight) is refused with 415 before anything is done.
#[test]
fn m2_the_api_takes_only_json() {
    let (sink, setup, service) = support::started("", &["ada@example.com"]);
    let body = br#"{"email": "ada@example.com", "resetToken": "123456789012", "password": "x"}"#;
    for path in [FORGOT, CONFIRM, RESET] {
        for content_type in [
            None,
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let headers: Vec<(&str, &str)> = content_type
                .map(|c| ("content-type", c))
                .into_iter()
                .collect();
            let r = request(service.public, "POST", path, &headers, body);
            assert_eq!(
                (r.status, r.message()),
                (415, "Content-Type must be application/json".to_string()),
                "{path} {content_type:?}"
            );
        }
    }
    let outbox = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
    assert_eq!(outbox.json()["queued"], 0, "no code was issued");
    let with_charset = request(
        service.public,
        "POST",
        FORGOT,
        &[("content-type", "application/json; charset=utf-8")],
        br#"{"email": "ada@example.com"}"#,
    );
    assert_eq!(with_charset.status, 200, "charset parameters are allowed");
    assert_eq!(sink.next_mail().rcpt_tos, vec!["ada@example.com"]);
}

/// M2: what a browser marks as another site's is refused (403), whatever the type; clients
/// that send no `Origin` (the seed's snippets, generated clients) and the service's own
/// origin pass.
#[test]
fn m2_the_api_refuses_what_a_browser_marks_cross_site() {
    let (_sink, setup, service) = support::started("", &["ada@example.com"]);
    let body = br#"{"email": "ada@example.com"}"#;
    let host = service.public.to_string();
    let own = format!("http://{host}");
    let refused: [&[(&str, &str)]; 5] = [
        &[JSON, ("sec-fetch-site", "cross-site")],
        &[JSON, ("sec-fetch-site", "same-site")],
        &[JSON, ("origin", "https://evil.example")],
        &[JSON, ("origin", "null")],
        &[JSON, ("sec-fetch-site", "cross-site"), ("origin", &own)],
    ];
    for headers in refused {
        for path in [FORGOT, CONFIRM, RESET] {
            let r = request(service.public, "POST", path, headers, body);
            assert_eq!(
                (r.status, r.message()),
                (403, "Access denied".to_string()),
                "{path} {headers:?}"
            );
        }
    }
    let outbox = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
    assert_eq!(outbox.json()["queued"], 0, "no code was issued");
    let metrics = service.admin_call(&setup, "GET", "/metrics", b"").raw_body;
    assert!(
        metrics.contains("resetgate_refusals_total{kind=\"cross_site\"} 15"),
        "{metrics}"
    );

    let passing: [&[(&str, &str)]; 3] = [
        &[JSON],
        &[JSON, ("sec-fetch-site", "same-origin"), ("origin", "null")],
        &[JSON, ("origin", &own)],
    ];
    for (n, headers) in passing.into_iter().enumerate() {
        let body = format!(r#"{{"email": "nobody{n}@example.com"}}"#);
        let r = request(service.public, "POST", FORGOT, headers, body.as_bytes());
        assert_eq!(r.status, 404, "{headers:?}: answered, not refused");
    }
}

/// M2, the attack the review confirmed: the owner confirms through the API, then any page
/// they have open posts password-reset from their own address as a "simple" request. It
/// is refused, and the owner's own request still succeeds.
#[test]
fn m2_a_page_on_another_site_cannot_use_the_owners_confirmation() {
    let (sink, setup, service) = support::started("", &["ada@example.com"]);
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    let code = sink.next_mail().code();
    let confirmed = service.post(CONFIRM, &format!(r#"{{"resetToken": "{code}"}}"#));
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let forged = format!(r#"{{"email": "ada@example.com", "password": "{PASSWORD} forged"}}"#);
    for headers in [
        [
            ("content-type", "text/plain"),
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        [
            ("content-type", "text/plain"),
            ("origin", "https://evil.example"),
            ("accept", "*/*"),
        ],
    ] {
        let r = request(service.public, "POST", RESET, &headers, forged.as_bytes());
        assert!(matches!(r.status, 403 | 415), "{headers:?}: {r:?}");
    }
    assert_eq!(verify(&service, &setup, &format!("{PASSWORD} forged")), 401);
    let owner = service.post(
        RESET,
        &format!(r#"{{"email": "ada@example.com", "password": "{PASSWORD}"}}"#),
    );
    assert_eq!(owner.status, 200, "the documented flow: {owner:?}");
    assert_eq!(verify(&service, &setup, PASSWORD), 200);
}

/// M2's allow-list: an application's own front end on another origin gets the preflight
/// and may read the answer; any other origin gets neither.
#[test]
fn m2_a_listed_origin_gets_the_preflight_and_the_answer() {
    let extra = "[server]\ncors_origins = [\"https://app.example.com\"]\n";
    let (_sink, _setup, service) = support::started(extra, &["ada@example.com"]);
    let ask = |origin: &str| {
        request(
            service.public,
            "OPTIONS",
            FORGOT,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            b"",
        )
    };
    let preflight = ask("https://app.example.com");
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("POST")
    );
    assert!(preflight
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("content-type")));
    let other = ask("https://evil.example");
    assert_eq!(other.status, 405, "{other:?}");
    assert!(other.header("access-control-allow-origin").is_none());

    let from_app = request(
        service.public,
        "POST",
        FORGOT,
        &[
            JSON,
            ("origin", "https://app.example.com"),
            ("sec-fetch-site", "cross-site"),
        ],
        br#"{"email": "ada@example.com"}"#,
    );
    assert_eq!(from_app.status, 200, "{from_app:?}");
    assert_eq!(
        from_app.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let from_elsewhere = request(
        service.public,
        "POST",
        FORGOT,
        &[
            JSON,
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        br#"{"email": "ada@example.com"}"#,
    );
    assert_eq!(from_elsewhere.status, 403);
    assert!(from_elsewhere
        .header("access-control-allow-origin")
        .is_none());
}

/// M3: a data directory that group or others may enter, or a file in it they may read,
/// stops `serve`, the CLI and `check-config` with exit 2, naming the path and the `chmod`.
#[test]
fn m3_a_data_directory_open_to_others_is_refused() {
    let setup = Setup::new("");
    let added = setup.cli(&["users", "add", "ada@example.com"]);
    assert_eq!(added.code, Some(0), "{added:?}");
    let data = setup.data_dir();
    let chmod = format!("chmod -R go-rwx {}", data.display());
    let db = data.join("store/db");
    for (path, mode) in [(&data, 0o755), (&db, 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        let named = format!(
            "{} is open to other users (mode {mode:04o})",
            path.display()
        );
        let (status, log) = match Service::try_start(&setup.config, &[]) {
            Ok(service) => panic!("served from an open data directory: {:?}", service.log()),
            Err(failed) => failed,
        };
        let log = log.join("\n");
        assert_eq!(status.code(), Some(2), "{log}");
        assert!(log.contains(&named) && log.contains(&chmod), "{log}");
        for args in [&["users", "list"][..], &["check-config"]] {
            let run = setup.cli(args);
            assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
            assert!(run.stderr.contains(&named), "{args:?}: {run:?}");
            assert!(run.stderr.contains(&chmod), "{args:?}: {run:?}");
        }
        support::close_to_others(&data);
    }
    let list = setup.cli(&["users", "list"]);
    assert_eq!(list.stdout.trim(), "ada@example.com", "{list:?}");

    // A symbolic link inside would take the checks elsewhere.
    let link = data.join("mail");
    std::os::unix::fs::symlink(setup.dir.path(), &link).unwrap();
    let run = setup.cli(&["check-config"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("mail is a symbolic link"), "{run:?}");
    std::fs::remove_file(&link).unwrap();

    // The file transport's directory elsewhere is held to the same rules.
    let elsewhere = setup.dir.path().join("outgoing");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let moved = format!("[mail.file]\ndir = \"{}\"\n{text}", elsewhere.display());
    std::fs::write(&setup.config, moved).unwrap();
    let run = setup.cli(&["check-config"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("`mail.file.dir`"), "{run:?}");
}

/// M3, as root: a file in the data directory that another user owns (and could rewrite, or
/// read as it likes) stops the service.
#[test]
fn m3_a_file_another_user_owns_in_the_data_directory_is_refused() {
    assert_eq!(
        euid(),
        0,
        "this test runs as root (as CI does): it chowns a file"
    );
    let setup = Setup::new("");
    let added = setup.cli(&["users", "add", "ada@example.com"]);
    assert_eq!(added.code, Some(0), "{added:?}");
    let token = setup.data_dir().join("planted");
    std::fs::write(&token, "x").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&token, Some(65534), Some(65534)).unwrap();
    let run = setup.cli(&["users", "list"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let named = format!(
        "{} belongs to uid 65534, not to the data directory's owner",
        token.display()
    );
    assert!(run.stderr.contains(&named), "{run:?}");
    // A data directory another user owns, under /tmp (writable by all): root refuses it.
    std::os::unix::fs::chown(setup.data_dir(), Some(65534), Some(65534)).unwrap();
    let run = setup.cli(&["check-config"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("is writable by other users"), "{run:?}");
}

/// M3: whatever the caller's umask, the service and the CLI make nothing that another
/// local user may read: every file and directory in the data directory is closed to group
/// and others after a code was issued.
#[test]
fn m3_the_store_is_private_whatever_the_umask() {
    let setup = Setup::new("");
    let with_umask = |args: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 022 && exec {} --config {} {args}",
                support::BIN,
                setup.config.display()
            ))
            .output()
            .expect("sh runs")
    };
    let added = with_umask("users add ada@example.com");
    assert!(added.status.success(), "{added:?}");
    let service = Service::try_start_with(&setup.config, &[], |command| {
        let script = format!(
            "umask 022 && exec {} --config {} serve",
            support::BIN,
            setup.config.display()
        );
        *command = std::process::Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
    })
    .unwrap_or_else(|(status, log)| panic!("{status}: {log:?}"));
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
    let backup = setup.dir.path().join("copy.backup");
    let backed = with_umask(&format!("backup {}", backup.display()));
    assert!(backed.status.success(), "{backed:?}");
    let (status, _) = service.stop();
    assert!(status.success());
    let mut seen = 0;
    let mut pending = vec![setup.data_dir(), backup];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            meta.mode() & 0o077,
            0,
            "{} is {:o}",
            path.display(),
            meta.mode()
        );
        seen += 1;
        if meta.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(seen > 5, "the store's files were looked at ({seen})");
}

/// The effective user id of this test process.
fn euid() -> u32 {
    std::fs::metadata("/proc/self").expect("/proc/self").uid()
}

/// L1: root's CLI talks to a service running as another user only when every directory
/// above the data directory belongs to root: the owner of one could have swapped in their
/// own data directory and socket, and would receive `users add --password-stdin`'s
/// password. Needs root (as CI runs) and the `nobody` user (65534).
#[test]
fn l1_root_refuses_a_socket_under_a_directory_another_user_owns() {
    assert_eq!(
        euid(),
        0,
        "this test runs as root (as CI does): it starts the service as nobody"
    );
    const NOBODY: u32 = 65534;
    // /run and / belong to root and are closed to other writers, and nobody can enter them.
    let base = tempfile::Builder::new()
        .prefix("resetgate-l1-")
        .tempdir_in("/run")
        .expect("a directory in /run");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = base.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(NOBODY), Some(NOBODY)).unwrap();
    let config = base.path().join("config.toml");
    let port = support::free_port();
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\n\
             [storage]\ndata_dir = \"{}\"\n[passwords]\npbkdf2_iterations = 10000\n",
            shared.join("data").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let service = Service::start_as(&config, NOBODY, NOBODY);
    let cli = |args: &[&str]| {
        std::process::Command::new(support::BIN)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("the CLI runs")
    };
    let refused = cli(&["users", "list"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    let named = format!("{} belongs to uid {NOBODY}, not root", shared.display());
    assert!(stderr.contains(&named), "{stderr}");

    // The same service under a directory of root's: root's CLI talks to it.
    std::os::unix::fs::chown(&shared, Some(0), Some(0)).unwrap();
    let listed = cli(&["users", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    drop(service);
    std::os::unix::fs::chown(&shared, Some(0), Some(0)).unwrap();
}

fn check_config(setup_text: &str) -> support::CliRun {
    Setup::new(setup_text).cli(&["check-config"])
}

fn assert_refused(run: &support::CliRun, key: &str) {
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains(&format!("`{key}`")), "{run:?}");
}

/// L2: settings that would send a password hash or a password's hash prefix in clear, and
/// the Standard Webhooks specification's published example secret, fail `check-config`.
#[test]
fn l2_unsafe_settings_fail_check_config() {
    let secret = "whsec_EMjg+VvePl/wr3Kzx8CtNyK37fF7XUhhUivhUYtxQTU=";
    let hook = |url: &str, secret: &str, extra: &str| {
        format!("[[webhooks]]\nname = \"app\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n{extra}")
    };
    let with_hash = "include_password_hash = true\n";
    let run = check_config(&hook("http://192.0.2.10/hook", secret, with_hash));
    assert_refused(&run, "webhooks[0].include_password_hash");
    for fine in [
        hook("https://192.0.2.10/hook", secret, with_hash),
        hook("http://127.0.0.1:1/hook", secret, with_hash),
        hook("http://192.0.2.10/hook", secret, ""),
    ] {
        let run = check_config(&fine);
        assert_eq!(run.code, Some(0), "{fine}: {run:?}");
    }
    let example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let run = check_config(&hook("https://192.0.2.10/hook", example, ""));
    assert_refused(&run, "webhooks[0].secret");
    assert!(run.stderr.contains("published example"), "{run:?}");

    let run = check_config("[passwords]\nbreach_api = \"http://192.0.2.10/range/\"\n");
    assert_refused(&run, "passwords.breach_api");
    let run = check_config("[passwords]\nbreach_api = \"http://127.0.0.1:1/range/\"\n");
    assert_eq!(run.code, Some(0), "{run:?}");
}

/// L3: a server secret or admin token with less than 32 bytes of key material is refused,
/// inline, from a file, or found in the data directory; the value is never shown.
#[test]
fn l3_short_secrets_are_refused() {
    let run = check_config("[server]\nsecret = \"s3cr3t\"\n");
    assert_refused(&run, "server.secret");
    assert!(run.stderr.contains("32 bytes") && !run.stderr.contains("s3cr3t"));
    let hex16 = "00112233445566778899aabbccddeeff";
    let run = check_config(&format!("[admin]\ntoken = \"{hex16}\"\n"));
    assert_refused(&run, "admin.token");
    assert!(!run.stderr.contains(hex16), "{run:?}");
    let hex32 = hex16.repeat(2);
    let run = check_config(&format!("[admin]\ntoken = \"{hex32}\"\n"));
    assert_eq!(run.code, Some(0), "{run:?}");

    let setup = Setup::new("");
    setup.start().stop();
    let file = setup.data_dir().join("secret");
    std::fs::write(&file, "tiny\n").unwrap();
    let (status, log) = match Service::try_start(&setup.config, &[]) {
        Ok(service) => panic!("started with a short secret: {:?}", service.log()),
        Err(failed) => failed,
    };
    assert_eq!(status.code(), Some(2));
    let log = log.join("\n");
    assert!(
        log.contains(&format!("{}: must hold at least 32 bytes", file.display())),
        "{log}"
    );
    assert!(!log.contains("tiny"), "{log}");
    let run = setup.cli(&["check-config"]);
    assert_eq!(
        run.code,
        Some(2),
        "check-config reads the generated secrets too: {run:?}"
    );
}

/// L4: the page parses at most a few fields; a post with more is refused before it is
/// parsed further (it was parsed whole, with duplicates removed in quadratic time).
#[test]
fn l4_a_form_with_too_many_fields_is_refused() {
    let (_sink, setup, service) = support::started("", &["ada@example.com"]);
    let many: String = (0..2000).map(|i| format!("f{i}=&")).collect();
    let body = format!("{many}email=ada%40example.com");
    assert!(body.len() < 16 * 1024, "within server.max_body_bytes");
    let r = page_post(&service, "/reset/email", &body);
    assert_eq!(r.status, 400, "{r:?}");
    let nine = "a=&b=&c=&d=&e=&f=&g=&h=&email=ada%40example.com";
    assert_eq!(page_post(&service, "/reset/email", nine).status, 400);
    let outbox = service.admin_call(&setup, "GET", "/admin/v1/outbox", b"");
    assert_eq!(outbox.json()["queued"], 0, "no code was issued");
    let fine = page_post(&service, "/reset/email", "email=ada%40example.com&x=1");
    assert_eq!(fine.status, 200, "{fine:?}");
}
