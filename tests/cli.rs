//! The command line: `users …` while the service runs and while it does not, and
//! configuration errors that name their key.

mod support;

use support::{Service, Setup};

#[test]
fn users_commands_work_while_the_service_runs() {
    let setup = Setup::new("");
    let service = setup.start();

    let add = setup.cli(&["users", "add", " Ada@Example.com "]);
    assert_eq!(
        (add.code, add.stdout.trim()),
        (Some(0), "added Ada@Example.com"),
        "{add:?}"
    );
    let again = setup.cli(&["users", "add", "ada@example.COM"]);
    assert_eq!(
        again.code,
        Some(3),
        "an existing account is refused: {again:?}"
    );
    let with_password = setup.cli_with_stdin(
        &["users", "add", "bob@example.com", "--password-stdin"],
        "correct horse battery\n",
    );
    assert_eq!(with_password.code, Some(0), "{with_password:?}");
    let bad = setup.cli(&["users", "add", "not-an-address"]);
    assert_eq!(bad.code, Some(3));
    assert!(bad.stderr.contains("@"), "{bad:?}");

    // A bad line anywhere means nothing is imported, and the line is named.
    let file = setup.dir.path().join("users.jsonl");
    std::fs::write(
        &file,
        "{\"email\": \"c@example.com\"}\n\n{\"email\": \"d@example.com\", \"password\": 7}\n",
    )
    .unwrap();
    let import = setup.cli(&["users", "import", file.to_str().unwrap()]);
    assert_eq!(import.code, Some(3), "{import:?}");
    assert!(
        import.stderr.contains("users.jsonl:3:"),
        "names the line: {}",
        import.stderr
    );
    std::fs::write(
        &file,
        "{\"email\": \"c@example.com\"}\n{\"email\": \"D@example.com\", \"password\": \"a long enough passphrase\"}\n{\"email\": \"ada@example.com\"}\n",
    )
    .unwrap();
    let import = setup.cli(&["users", "import", file.to_str().unwrap()]);
    assert_eq!(import.code, Some(0), "{import:?}");
    assert!(
        import
            .stdout
            .contains("imported 2 new accounts (1 existed already)"),
        "{import:?}"
    );

    let list = setup.cli(&["users", "list"]);
    let mut emails: Vec<&str> = list.stdout.lines().collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "Ada@Example.com",
            "D@example.com",
            "bob@example.com",
            "c@example.com"
        ]
    );
    let json = setup.cli(&["users", "list", "--json"]);
    let bob: serde_json::Value = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .find(|v: &serde_json::Value| v["email"] == "bob@example.com")
        .unwrap();
    assert_eq!(bob["has_password"], true);
    assert!(!json.stdout.contains("pbkdf2"), "hashes are never listed");

    // The running service sees the accounts the CLI added.
    assert_eq!(service.forgot(r#"{"email": "d@example.com"}"#).status, 200);

    let remove = setup.cli(&["users", "remove", "C@EXAMPLE.COM"]);
    assert_eq!(remove.code, Some(0), "{remove:?}");
    let remove = setup.cli(&["users", "remove", "c@example.com"]);
    assert_eq!(remove.code, Some(3), "already gone: {remove:?}");
    assert_eq!(service.forgot(r#"{"email": "c@example.com"}"#).status, 404);

    let (status, log) = service.stop();
    assert!(status.success());
    assert!(
        log.iter().all(|l| !l.contains("correct horse")),
        "passwords never reach the log"
    );
}

#[test]
fn users_commands_open_the_store_when_no_service_runs() {
    let setup = Setup::new("");
    assert_eq!(
        setup.cli(&["users", "add", "ada@example.com"]).code,
        Some(0)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(setup.data_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "the data directory the CLI made is private"
    );
    let list = setup.cli(&["users", "list"]);
    assert_eq!(
        (list.code, list.stdout.trim()),
        (Some(0), "ada@example.com")
    );
    // And the service then starts on that store.
    let service = setup.start();
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200
    );
}

/// The security review's attack: while the service is stopped (say for a restore), any
/// local user may bind `admin.listen`. The CLI must hand it nothing: no token, no password,
/// no request at all, and must not take a backup from it.
#[test]
fn the_cli_never_talks_to_an_impostor_on_the_admin_address() {
    let setup = Setup::new("[admin]\ntoken = \"the-admin-token-of-this-test-0123456789\"\n");
    let admin = {
        let service = setup.start();
        let admin = service.admin;
        let (status, _) = service.stop();
        assert!(status.success());
        admin
    };
    let impostor = std::net::TcpListener::bind(admin).expect("the impostor takes the address");
    let users = setup.dir.path().join("users.jsonl");
    std::fs::write(&users, "{\"email\": \"b@example.com\"}\n").unwrap();
    let backup = setup.dir.path().join("copy.backup");
    let runs = [
        setup.cli_with_stdin(
            &["users", "add", "a@example.com", "--password-stdin"],
            "a long and secret passphrase\n",
        ),
        setup.cli(&["users", "list"]),
        setup.cli(&["users", "import", users.to_str().unwrap()]),
        setup.cli(&["blocks", "list"]),
        setup.cli(&["outbox", "list"]),
        setup.cli(&["backup", backup.to_str().unwrap()]),
    ];
    for run in &runs {
        assert_eq!(run.code, Some(0), "the store was used directly: {run:?}");
    }
    assert!(runs[1].stdout.contains("a@example.com"), "{:?}", runs[1]);
    let copy = std::fs::read_to_string(&backup).unwrap();
    assert_eq!(
        copy.matches(r#""tree":"email_user""#).count(),
        2,
        "the backup holds both accounts: {copy}"
    );
    // Every CLI process has exited: a connection it made would be waiting to be accepted.
    impostor.set_nonblocking(true).unwrap();
    match impostor.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the CLI connected to the impostor: {other:?}"),
    }
}

/// While the service runs, the CLI reaches it through the socket in the data directory,
/// which the file system protects: no token is needed or sent, and the TCP admin API
/// still wants one.
#[test]
fn the_cli_talks_to_the_running_service_through_its_private_socket() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let setup = Setup::new("[admin]\ntoken = \"the-right-token-of-this-test-0123456789\"\n");
    let service = setup.start();
    let socket = setup.data_dir().join("admin.sock");
    let meta = std::fs::metadata(&socket).expect("the admin socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // A configuration without the token (or with a wrong one) does not matter to the socket.
    let wrong = setup.dir.path().join("wrong.toml");
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        "the-right-token-of-this-test-0123456789",
        "a-wrong-token-of-this-test-0123456789",
    );
    std::fs::write(&wrong, text).unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(support::BIN)
            .args(["--config", wrong.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(cli(&["users", "add", "ada@example.com"]).0, Some(0));
    assert_eq!(
        service.forgot(r#"{"email": "ada@example.com"}"#).status,
        200,
        "added to the running service's store"
    );
    let tcp = support::request(
        service.admin,
        "GET",
        "/admin/v1/users",
        &[(
            "Authorization",
            "Bearer a-wrong-token-of-this-test-0123456789",
        )],
        b"",
    );
    assert_eq!(tcp.status, 401, "the TCP admin API still checks the token");
    let (status, log) = service.stop();
    assert!(status.success());
    assert!(
        log.iter().any(|l| l.contains("listener=\"admin_socket\"")),
        "the CLI's request came through the socket"
    );
    assert!(!socket.exists(), "a clean stop removes the socket");
}

/// A service killed without a chance to clean up leaves its socket file behind: the CLI
/// sees that nothing answers and uses the store, and the next start replaces the file.
#[test]
fn a_stale_socket_after_a_crash_is_no_obstacle() {
    let setup = Setup::new("");
    setup.start().crash();
    assert!(setup.data_dir().join("admin.sock").exists());
    let add = setup.cli(&["users", "add", "ada@example.com"]);
    assert_eq!(add.code, Some(0), "{add:?}");
    let service = setup.start();
    let list = setup.cli(&["users", "list"]);
    assert_eq!(
        (list.code, list.stdout.trim()),
        (Some(0), "ada@example.com")
    );
    drop(service);
}

fn config_error(toml: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["--config", file.to_str().unwrap(), "check-config"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_fails_with_the_key_name() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "[recovery]\ncode_length = 40\n",
            &[],
            "recovery.code_length",
        ),
        ("[recovery]\ncode_ttl = \"10 parsecs\"\n", &[], "code_ttl"),
        ("[server]\nlisen = \"127.0.0.1:9000\"\n", &[], "lisen"),
        ("[server]\nlisten = \"not an address\"\n", &[], "listen"),
        ("[mail]\ntransport = \"pigeon\"\n", &[], "transport"),
        ("[admin]\nlisten = \"0.0.0.0:9001\"\n", &[], "admin.listen"),
        ("[guard]\ndeny = [\"10.0.0.300/8\"]\n", &[], "guard.deny"),
        ("", &[("RESETGATE_SERVER__LISTEN", "nowhere")], "listen"),
        ("", &[("RESETGATE_SMTP_PORT", "25")], "smtp_port"),
        (
            "[mail.smtp]\npassword_file = \"/nonexistent/pw\"\n",
            &[],
            "mail.smtp.password_file",
        ),
    ];
    for (toml, env, key) in cases {
        let (code, stderr) = config_error(toml, env);
        assert_eq!(code, Some(2), "{toml} {env:?}: {stderr}");
        assert!(
            stderr.contains(key),
            "{key} named for {toml} {env:?}: {stderr}"
        );
    }
    let (code, _) = config_error("[server]\nlisten = \"127.0.0.1:9100\"\n", &[]);
    assert_eq!(code, Some(0));
}

/// docs/security.md's guessing bound is computed from the configured values: 6-digit codes with the
/// default budget make a successful guess certain, and are refused by check-config and at
/// start-up, unless the operator accepts the risk by name.
#[test]
fn a_configuration_that_makes_guessing_likely_is_refused() {
    let (code, stderr) = config_error("[recovery]\ncode_length = 6\n", &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("recovery.code_length") && stderr.contains("accept_high_guessing_odds"),
        "{stderr}"
    );
    let (code, stderr) = config_error("[recovery]\ncode_length = 11\n", &[]);
    assert_eq!(code, Some(2), "0.1 of the space is too much: {stderr}");
    let accepted = "[recovery]\ncode_length = 6\naccept_high_guessing_odds = true\n";
    assert_eq!(config_error(accepted, &[]).0, Some(0));
    let smaller_budget =
        "[recovery]\ncode_length = 11\nfailed_confirm_budget = { requests = 100, window = \"1h\" }\n";
    assert_eq!(config_error(smaller_budget, &[]).0, Some(0));

    let setup = Setup::new("[recovery]\ncode_length = 6\n");
    let out = std::process::Command::new(support::BIN)
        .args(["--config", setup.config.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "start-up refuses it too");
}

/// Secret files that other users may read are refused, as ssh refuses a private key that
/// is "too open", with the command that fixes it; backups are 0600 even over a wider file.
#[test]
fn secrets_and_backups_stay_private() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new("");
    let token = setup.dir.path().join("token");
    std::fs::write(&token, "a-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file_key = format!("[admin]\ntoken_file = \"{}\"\n", token.display());
    let (code, stderr) = config_error(&file_key, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", token.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("a-token"), "{stderr}");

    // The generated admin token, opened up by mistake: the service refuses to start, as
    // it does for anything in the data directory that others may read.
    setup.start().stop();
    let generated = setup.data_dir().join("admin.token");
    std::fs::set_permissions(&generated, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["--config", setup.config.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("admin.token is open to other users (mode 0640)"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod -R go-rwx"), "{stderr}");
    std::fs::set_permissions(&generated, std::fs::Permissions::from_mode(0o600)).unwrap();

    let backup = setup.dir.path().join("copy.backup");
    std::fs::write(&backup, "an older file").unwrap();
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = setup.cli(&["backup", backup.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup replaced the wider file");
    assert!(std::fs::read_to_string(&backup)
        .unwrap()
        .starts_with("{\"created_ms\""));
}

#[test]
fn serve_refuses_a_bad_config_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[storage]\ndurability = \"sometimes\"\n").unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["--config", file.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("durability"));
    // A missing file is an error too, not a silent fall-back to defaults.
    let out = std::process::Command::new(support::BIN)
        .args(["--config", "/nonexistent/resetgate.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn environment_overrides_the_file() {
    let setup = Setup::new("");
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let service = Service::start(&setup.config, &[("RESETGATE_SERVER__LISTEN", &listen)]);
    assert_eq!(service.public.port(), port);
}

#[test]
fn json_output_for_scripts() {
    let setup = Setup::new("");
    let added = setup.cli(&["--json", "users", "add", "ada@example.com"]);
    assert_eq!(added.code, Some(0));
    let v: serde_json::Value = serde_json::from_str(added.stdout.trim()).unwrap();
    assert_eq!(v["added"], "ada@example.com");
    let again = setup.cli(&["users", "add", "ada@example.com", "--json"]);
    assert_eq!(again.code, Some(3));
    let v: serde_json::Value = serde_json::from_str(again.stdout.trim()).unwrap();
    assert_eq!(v["exit_code"], 3);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("already has an account"));
    let blocked = setup.cli(&["--json", "blocks", "add", "192.0.2.0/24"]);
    let v: serde_json::Value = serde_json::from_str(blocked.stdout.trim()).unwrap();
    assert_eq!(v["blocked"], "192.0.2.0/24");
    let outbox = setup.cli(&["--json", "outbox", "list"]);
    let v: serde_json::Value = serde_json::from_str(outbox.stdout.trim()).unwrap();
    assert_eq!(v["queued"], 0);
    let checked = setup.cli(&["--json", "check-config"]);
    assert_eq!(checked.stdout.trim(), r#"{"ok":true}"#);
    for command in [
        &["users", "--help"][..],
        &["blocks", "--help"],
        &["outbox", "--help"],
        &["send-test-mail", "--help"],
    ] {
        assert_eq!(setup.cli(command).code, Some(0), "{command:?}");
    }
}

/// Root running the CLI from a place others can write to (a relative `./data` in /tmp, say)
/// must not talk to a socket another user put there: the impostor, running as nobody,
/// receives not a byte, and the CLI says why. (Needs root to run the impostor as another
/// user; as another user the test says so and passes.)
#[test]
fn root_does_not_talk_to_another_users_socket_in_a_shared_place() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("SKIPPED: running an impostor as another user needs root (CI runs as root)");
        return;
    }
    let shared = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let data = shared.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["65534:65534", data.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chown.success());
    let impostor = r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
print("listening", flush=True)
got = 0
while True:
    c, _ = s.accept()
    while True:
        b = c.recv(65536)
        if not b: break
        got += len(b)
    print("received", got, flush=True)
"#;
    // The system's Python: a per-user one (pyenv) may be out of nobody's reach.
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap();
    let mut child = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            python,
            "-c",
            impostor,
        ])
        .arg(data.join("admin.sock"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "listening");

    let config = shared.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[storage]\ndata_dir = \"{}\"\n", data.display()),
    )
    .unwrap();
    let mut cli = std::process::Command::new(support::BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "users",
            "add",
            "a@example.com",
        ])
        .arg("--password-stdin")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut cli.stdin.take().unwrap(),
        b"a long and secret passphrase\n",
    )
    .unwrap();
    let done = cli.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writable by other users"), "{stderr}");
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(line.trim(), "received 0", "the impostor got nothing");
}

#[test]
fn the_version_names_the_git_revision_it_was_built_from() {
    let out = std::process::Command::new(support::BIN)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    let want = format!(
        "resetgate {} ({})\n",
        env!("CARGO_PKG_VERSION"),
        head.trim()
    );
    assert_eq!(version, want);
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_command() {
    let complete = |shell: &str| {
        let out = std::process::Command::new(support::BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        String::from_utf8(out.stdout).unwrap()
    };
    for shell in ["bash", "zsh", "fish"] {
        let script = complete(shell);
        for command in [
            "serve",
            "check-config",
            "send-test-webhook",
            "users",
            "outbox",
        ] {
            assert!(script.contains(command), "{shell}: {command}");
        }
    }
    // Sourced in bash, it completes resetgate's commands.
    let script = complete("bash");
    let bash = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{script}\nCOMP_WORDS=(resetgate send-test-w); COMP_CWORD=1; _resetgate resetgate send-test-w resetgate; echo \"${{COMPREPLY[@]}}\"; complete -p resetgate"
        ))
        .output()
        .unwrap();
    let said = String::from_utf8(bash.stdout).unwrap();
    assert!(said.starts_with("send-test-webhook\n"), "{said}");
    assert!(said.contains("-F _resetgate resetgate"), "{said}");
    let refused = std::process::Command::new(support::BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}
