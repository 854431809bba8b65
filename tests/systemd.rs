//! The service as systemd runs it: the notify protocol (READY, WATCHDOG, STOPPING) over a
//! real NOTIFY_SOCKET, and socket activation through systemd-socket-activate.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};

use support::{free_port, Service, Setup, PATIENCE};

fn next_state(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_watchdog_and_stopping_are_notified() {
    let setup = Setup::new("");
    let path = setup.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let env = [
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
    ];
    let service = Service::start(&setup.config, &env);
    assert_eq!(
        next_state(&socket).trim(),
        "READY=1",
        "ready once the listeners are bound"
    );
    // The service answers as soon as READY=1 was sent.
    assert_eq!(service.forgot(r#"{"email": "a@example.com"}"#).status, 404);
    assert_eq!(
        next_state(&socket).trim(),
        "WATCHDOG=1",
        "the outbox worker is alive"
    );
    let (status, _) = service.stop();
    assert!(status.success());
    let states: Vec<String> = std::iter::from_fn(|| {
        let mut buf = [0u8; 512];
        socket.set_nonblocking(true).unwrap();
        socket
            .recv(&mut buf)
            .ok()
            .map(|n| String::from_utf8_lossy(&buf[..n]).trim().to_string())
    })
    .collect();
    assert!(states.iter().any(|s| s == "STOPPING=1"), "{states:?}");
}

/// `resetgate serve` under systemd-socket-activate, listening on `addresses` (passed in
/// that order); returns once it listens on all of them, with its log.
fn activate(
    setup: &Setup,
    addresses: &[&str],
) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    let mut command = Command::new("systemd-socket-activate");
    for address in addresses {
        command.args(["-l", address]);
    }
    let mut activator = command
        .args(["-E", "NO_COLOR=1", "--", support::BIN])
        .args(["--config", setup.config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate runs");
    let mut log = BufReader::new(activator.stderr.take().unwrap());
    // systemd-socket-activate says when it listens; the service starts on the first connection.
    let mut listening = 0;
    while listening < addresses.len() {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "systemd-socket-activate exited"
        );
        listening += usize::from(line.contains("Listening on"));
    }
    (activator, log)
}

#[test]
fn socket_activation_uses_the_passed_listener() {
    let setup = Setup::new("");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (mut activator, mut log) = activate(&setup, &[&listen]);
    let addr = listen.parse().unwrap();
    let r = support::request(
        addr,
        "POST",
        "/api/v1/user/forgot-password",
        &[support::JSON],
        br#"{"email": "a@example.com"}"#,
    );
    assert_eq!(r.status, 404, "served by resetgate on the passed socket");
    let mut used_socket = false;
    let mut rest = String::new();
    while !used_socket {
        rest.clear();
        if log.read_line(&mut rest).unwrap() == 0 {
            break;
        }
        used_socket = rest.contains("using the listening socket passed by systemd");
    }
    let _ = activator.kill();
    let _ = activator.wait();
    assert!(
        used_socket,
        "the service said it took the socket from LISTEN_FDS"
    );
}

/// A second socket passed by systemd becomes the admin listener, and gets the same check as
/// `admin.listen`: an admin API on a non-loopback address without TLS is refused at
/// start-up, and the message names the keys that would allow it.
#[test]
fn a_passed_admin_socket_must_be_on_loopback() {
    let setup = Setup::new("");
    let public = format!("127.0.0.1:{}", free_port());
    let admin = format!("0.0.0.0:{}", free_port());
    let (mut activator, mut log) = activate(&setup, &[&public, &admin]);
    // The first connection starts the service, which refuses the admin socket and exits.
    let _ = std::net::TcpStream::connect(public.as_str());
    let mut outcome = String::new();
    while !outcome.contains("loopback") && !outcome.contains("resetgate ready") {
        outcome.clear();
        assert!(
            log.read_line(&mut outcome).unwrap() > 0,
            "no outcome logged"
        );
    }
    if !outcome.contains("must listen on a loopback address") {
        let _ = activator.kill();
        panic!("refused, not started: {outcome}");
    }
    let status = activator.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{outcome}");
    assert!(
        outcome.contains("admin.tls_cert_file") && outcome.contains("admin.tls_key_file"),
        "{outcome}"
    );
}

/// With TLS configured, the same rule lets a non-loopback admin socket passed by systemd
/// through, and it speaks TLS like a bound one.
#[test]
fn a_passed_admin_socket_off_loopback_is_taken_with_tls() {
    let (setup, certs) = support::tls::setup("", "127.0.0.1");
    let public = format!("127.0.0.1:{}", free_port());
    let port = free_port();
    let admin = format!("0.0.0.0:{port}");
    let (mut activator, _log) = activate(&setup, &[&public, &admin]);
    // The first connection (this one) starts the service: it waits in the admin socket's
    // backlog until the service accepts it.
    let health = support::tls::call(&certs, port, support::tls::Call::get("/healthz", None));
    let token = support::tls::token(&setup);
    let users = support::tls::Call::get("/admin/v1/users", Some(&token));
    let listed = support::tls::call(&certs, port, users);
    let _ = activator.kill();
    let _ = activator.wait();
    assert_eq!(
        (health.status, listed.status),
        (200, 200),
        "{health:?} {listed:?}"
    );
    assert!(listed.version.starts_with("TLSv1."), "{listed:?}");
}
