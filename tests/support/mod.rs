//! Test harness: the real `resetgate` binary, a real SMTP server (aiosmtpd), raw HTTP.
//!
//! Synchronisation is by events, never by sleeping: the service's "resetgate ready" and
//! "message delivered" log lines, the SMTP server's one line per accepted message, and EOF.
#![allow(dead_code)]

pub mod flood;
pub mod openapi;
pub mod tls;
pub mod webhook;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// How long any event may take before a test gives up: generous, since CI is slow and shared.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub const BIN: &str = env!("CARGO_BIN_EXE_resetgate");

/// A test server written in Python (`tests/support/<script>`), stopped when dropped: its
/// standard input closed, then killed.
pub struct Python(Child);

impl Python {
    /// Starts `script` with `args`; the port from its first line ("PORT <n>"), and its
    /// later output. `needs` names what a failed start most likely lacks.
    pub fn start(
        script: &str,
        args: &[&str],
        needs: &str,
    ) -> (Python, u16, BufReader<std::process::ChildStdout>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support")
            .join(script);
        let mut child = Command::new("python3")
            .arg(path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("python3 runs ({e}; README's test command installs {needs})")
            });
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        out.read_line(&mut first)
            .expect("reading the server's first line");
        let port = first
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not start (is {needs} installed?): {first:?}"));
        (Python(child), port, out)
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port that was free a moment ago, for configs that must name one before a server binds it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding port 0 on loopback")
}

// ---------------------------------------------------------------------------------------
// SMTP

#[derive(Debug, Clone)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub data: String,
    /// Whether its RCPT and DATA commands came with its MAIL command (`--pipelining`).
    pub pipelined: bool,
}

impl Mail {
    /// The one-time code as shown on the line after "Your one-time code is:" (grouped).
    pub fn shown_code(&self) -> String {
        let mut lines = self.data.lines().map(str::trim).filter(|l| !l.is_empty());
        lines.find(|l| l.starts_with("Your one-time code is:"));
        let line = lines.next().expect("a line after the code's label");
        line.to_string()
    }

    /// The one-time code without its grouping spaces.
    pub fn code(&self) -> String {
        self.shown_code().replace(' ', "")
    }

    /// The one-time code of a mail in any language: its line of digit groups.
    pub fn code_in_any_language(&self) -> String {
        self.data
            .lines()
            .map(|l| l.trim().replace(' ', ""))
            .find(|l| l.len() >= 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .expect("a line with the code")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

pub struct SmtpSink {
    child: Python,
    pub port: u16,
    mails: Receiver<Mail>,
    events: Receiver<String>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(&[])
    }

    /// `args` go to tests/support/smtp_sink.py (`--port N`, `--fail-first N`, `--fail-reply R`).
    pub fn start_with(args: &[&str]) -> SmtpSink {
        let (child, port, out) = Python::start("smtp_sink.py", args, "aiosmtpd");
        let (tx, mails) = channel();
        let (event_tx, events) = channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("the sink prints JSON lines");
                if let Some(event) = v["event"].as_str() {
                    let _ = event_tx.send(event.to_string());
                    continue;
                }
                let mail = Mail {
                    mail_from: v["mail_from"].as_str().unwrap_or_default().to_string(),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|r| r.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    data: v["data"].as_str().unwrap_or_default().to_string(),
                    pipelined: v["pipelined"].as_bool().unwrap_or_default(),
                };
                if tx.send(mail).is_err() {
                    break;
                }
            }
        });
        SmtpSink {
            child,
            port,
            mails,
            events,
        }
    }

    /// The next event (`--stall`: "connected"); panics if none comes within [`PATIENCE`].
    pub fn next_event(&self) -> String {
        self.events
            .recv_timeout(PATIENCE)
            .expect("an event from the SMTP sink in time")
    }

    /// The next accepted message; panics if none arrives within [`PATIENCE`].
    pub fn next_mail(&self) -> Mail {
        self.mails
            .recv_timeout(PATIENCE)
            .expect("a message reached the SMTP server in time")
    }

    /// The next accepted message, if one arrives within `wait`.
    pub fn mail_within(&self, wait: Duration) -> Option<Mail> {
        self.mails.recv_timeout(wait).ok()
    }

    /// Messages already received and not yet taken.
    pub fn pending(&self) -> Vec<Mail> {
        self.mails.try_iter().collect()
    }
}

// ---------------------------------------------------------------------------------------
// The service

/// A data directory and config file for one test; the TempDir lives as long as this.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Setup {
    /// A config with loopback listeners on free ports, fast hashing, and `extra` TOML.
    /// Where `extra` has one of the sections set here, the key is added to its section.
    pub fn new(extra: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.toml");
        let base = [
            ("server", "listen = \"127.0.0.1:0\"".to_string()),
            ("admin", format!("listen = \"127.0.0.1:{}\"", free_port())),
            (
                "storage",
                format!("data_dir = \"{}\"", dir.path().join("data").display()),
            ),
            ("passwords", "pbkdf2_iterations = 10000".to_string()),
        ];
        let mut text = format!("{extra}\n");
        for (section, line) in base {
            let header = format!("[{section}]\n");
            if text.contains(&header) {
                text = text.replacen(&header, &format!("{header}{line}\n"), 1);
            } else {
                text.push_str(&format!("{header}{line}\n"));
            }
        }
        std::fs::write(&config, text).expect("writing the test config");
        Setup { dir, config }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `resetgate --config <this> ARGS` to completion.
    pub fn cli(&self, args: &[&str]) -> CliRun {
        self.cli_with_stdin(args, "")
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> CliRun {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the resetgate binary runs");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin.as_bytes())
            .expect("writing stdin");
        let out = child.wait_with_output().expect("waiting for the CLI");
        CliRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn start(&self) -> Service {
        Service::start(&self.config, &[])
    }

    /// Imports `n` accounts named by `email(i)` through `resetgate users import`.
    pub fn import(&self, n: usize, email: impl Fn(usize) -> String) {
        let file = self.dir.path().join("users.jsonl");
        let lines: String = (0..n)
            .map(|i| format!("{{\"email\": \"{}\"}}\n", email(i)))
            .collect();
        std::fs::write(&file, lines).expect("writing the import file");
        let imported = self.cli(&["users", "import", file.to_str().expect("utf-8 path")]);
        assert_eq!(imported.code, Some(0), "{imported:?}");
    }

    /// `Bearer <token>` with the admin token the service generated in the data directory.
    pub fn admin_auth(&self) -> String {
        let token =
            std::fs::read_to_string(self.data_dir().join("admin.token")).expect("the admin token");
        format!("Bearer {}", token.trim())
    }

    /// Writes raw bytes into a sled tree while no service runs, as disk corruption would.
    pub fn write_raw(&self, tree: &str, key: &str, value: &[u8]) {
        // sled's I/O threads let go of the previous handle's file lock a moment after it is
        // dropped (it offers no way to wait for that): try until it is free.
        let path = self.data_dir().join("store");
        let deadline = std::time::Instant::now() + PATIENCE;
        let db = loop {
            match sled::open(&path) {
                Ok(db) => break db,
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    assert!(std::time::Instant::now() < deadline, "{e}");
                    std::thread::yield_now();
                }
                Err(e) => panic!("opening the store directly: {e}"),
            }
        };
        db.open_tree(tree)
            .expect("a tree")
            .insert(key, value)
            .expect("an insert");
        db.flush().expect("a flush");
        drop(db);
        // sled made its new files with this test's umask; the service's own are private.
        close_to_others(&self.data_dir());
    }
}

/// `chmod -R go-rwx dir`: what the service requires of its data directory.
pub fn close_to_others(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir).expect("reading a mode");
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o700;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).expect("listing a directory") {
            close_to_others(&entry.expect("an entry").path());
        }
    }
}

#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub struct Service {
    child: Child,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// Lines logged before "resetgate ready" (the outbox's start, for one), not yet waited
    /// for: [`Service::wait_for_log`] looks at them first.
    early: std::collections::VecDeque<String>,
    lines: Receiver<String>,
    /// Reads stderr until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Starts `resetgate --config FILE serve` and waits for its "resetgate ready" line.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Service {
        match Service::try_start(config, env) {
            Ok(service) => service,
            Err((status, log)) => panic!("resetgate exited ({status}):\n{}", log.join("\n")),
        }
    }

    /// Like [`Service::start`], but a process that exits before it is ready is an answer:
    /// its status and log.
    pub fn try_start(
        config: &Path,
        env: &[(&str, &str)],
    ) -> Result<Service, (ExitStatus, Vec<String>)> {
        Service::try_start_with(config, env, |_| {})
    }

    /// [`Service::start`] as another user (the caller is root).
    pub fn start_as(config: &Path, uid: u32, gid: u32) -> Service {
        use std::os::unix::process::CommandExt;
        let started = Service::try_start_with(config, &[], |command| {
            command.uid(uid).gid(gid);
        });
        match started {
            Ok(service) => service,
            Err((status, log)) => panic!("resetgate exited ({status}):\n{}", log.join("\n")),
        }
    }

    /// [`Service::try_start`], with `prepare` applied to the command first.
    pub fn try_start_with(
        config: &Path,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut Command),
    ) -> Result<Service, (ExitStatus, Vec<String>)> {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        prepare(&mut command);
        let mut child = command.spawn().expect("the resetgate binary runs");
        let err = BufReader::new(child.stderr.take().expect("piped stderr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        let keep = log.clone();
        let reader = std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                keep.lock().expect("log lock").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut service = Service {
            child,
            public: "0.0.0.0:0".parse().expect("literal"),
            admin: "0.0.0.0:0".parse().expect("literal"),
            log,
            early: Default::default(),
            lines,
            reader: Some(reader),
        };
        let ready = loop {
            match service.lines.recv_timeout(PATIENCE) {
                Ok(line) if line.contains("resetgate ready") => break line,
                Ok(line) => service.early.push_back(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = service.child.wait().expect("waiting for resetgate");
                    if let Some(reader) = service.reader.take() {
                        reader.join().expect("the log reader");
                    }
                    return Err((status, service.log()));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "resetgate neither got ready nor exited:\n{}",
                        service.log().join("\n")
                    )
                }
            }
        };
        service.public = field(&ready, "public=")
            .parse()
            .expect("public address in the ready line");
        service.admin = field(&ready, "admin=")
            .parse()
            .expect("admin address in the ready line");
        Ok(service)
    }

    /// Waits for the next log line containing `needle` (earlier lines are consumed), among
    /// the lines logged before "resetgate ready" first.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.wait_for_any_log(&[needle])
    }

    /// Waits for the next log line containing any of `needles` (earlier lines are consumed).
    pub fn wait_for_any_log(&mut self, needles: &[&str]) -> String {
        let wanted = |line: &str| needles.iter().any(|n| line.contains(n));
        while let Some(line) = self.early.pop_front() {
            if wanted(&line) {
                return line;
            }
        }
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => continue,
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "no log line with {needles:?} (exit status {status:?}); log so far:\n{}",
                        self.log().join("\n")
                    );
                }
            }
        }
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        request(self.public, "POST", path, &[JSON], body.as_bytes())
    }

    /// A request to the admin API with the token from `setup`'s data directory.
    pub fn admin_call(&self, setup: &Setup, method: &str, path: &str, body: &[u8]) -> Reply {
        request(
            self.admin,
            method,
            path,
            &[("Authorization", &setup.admin_auth())],
            body,
        )
    }

    pub fn forgot(&self, body: &str) -> Reply {
        self.post("/api/v1/user/forgot-password", body)
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "sending SIGTERM");
        let status = self.child.wait().expect("waiting for resetgate");
        // The last lines (written as the process exits) may still be in the pipe: read to
        // the end before looking at the log.
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader");
        }
        (status, self.log())
    }

    /// Waits for the process to exit by itself (its log ends, at most [`PATIENCE`] after
    /// the last line); its status and log.
    pub fn wait_exit(mut self) -> (ExitStatus, Vec<String>) {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("resetgate did not exit; log:\n{}", self.log().join("\n"))
                }
            }
        }
        let status = self.child.wait().expect("waiting for resetgate");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the log reader");
        }
        (status, self.log())
    }

    /// SIGKILL: a crash, with no chance to flush anything.
    pub fn crash(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("waiting for resetgate");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of a log line: `name=value` in text logs, or the JSON key in JSON logs.
fn field(line: &str, name: &str) -> String {
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).expect("a JSON log line");
        let key = name.trim_end_matches('=');
        return v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
            .to_string();
    }
    text_field(line, name).to_string()
}

fn text_field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(name)
        .unwrap_or_else(|| panic!("{name} in {line:?}"))
        + name.len();
    line[start..].split_whitespace().next().expect("a value")
}

// ---------------------------------------------------------------------------------------
// HTTP, raw, so that tests control every byte

/// The header every JSON API request carries.
pub const JSON: (&str, &str) = ("Content-Type", "application/json");

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub raw_body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.raw_body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.raw_body))
    }

    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .expect("a message field")
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw)
}

/// Like [`request`], but a connection that breaks (the server died) is an error, not a panic.
pub fn try_request(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(raw.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    if !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(std::io::Error::other(
            "the connection closed before a complete answer",
        ));
    }
    Ok(parse(&answer))
}

/// Sends raw bytes, reads the whole answer until the server closes, and parses it.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let stream = TcpStream::connect(addr).expect("connecting to resetgate");
    exchange_on(stream, raw)
}

/// The same request from another loopback address (say 127.0.0.2): another client.
pub fn request_from(local: std::net::IpAddr, addr: SocketAddr, path: &str, body: &str) -> Reply {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange_on(connect_from(local, addr), raw.as_bytes())
}

/// `GET path` from another loopback address.
pub fn get_from(local: std::net::IpAddr, addr: SocketAddr, path: &str) -> Reply {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    exchange_on(connect_from(local, addr), raw.as_bytes())
}

/// A connection to `addr` from the loopback address `local`.
pub fn connect_from(local: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a small runtime");
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(local, 0))?;
            socket.connect(addr).await?.into_std()
        })
        .expect("connecting from another loopback address");
    stream.set_nonblocking(false).expect("blocking mode");
    stream
}

fn exchange_on(mut stream: TcpStream, raw: &[u8]) -> Reply {
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream.write_all(raw).expect("sending the request");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("reading the answer to EOF");
    parse(&answer)
}

pub fn parse(answer: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        raw_body: body.to_string(),
    }
}

/// Runs the openssl command; its standard output.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A fresh DKIM key of `kind` ("rsa", 2048 bits, or "ed25519") in a new file in `dir`, made
/// with the openssl command (not with resetgate's code): its file and the DNS TXT record
/// value that publishes its public key.
pub fn dkim_key(dir: &Path, kind: &str) -> (String, String) {
    use base64::Engine;
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{kind}-{n}.pem"));
    let p = path.to_str().unwrap();
    match kind {
        "rsa" => openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            p,
        ]),
        _ => openssl(&["genpkey", "-algorithm", "ed25519", "-out", p]),
    };
    let spki = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let record = match kind {
        "rsa" => format!("v=DKIM1; k=rsa; p={}", b64.encode(&spki)),
        // Ed25519: the raw 32-byte key, the end of its SubjectPublicKeyInfo.
        _ => format!(
            "v=DKIM1; k=ed25519; p={}",
            b64.encode(&spki[spki.len() - 32..])
        ),
    };
    (p.to_string(), record)
}

/// A private CA and a certificate it signed for 127.0.0.1, made with the openssl command:
/// (CA file, certificate file, key file) in `dir`.
pub fn private_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let ext = p("ext.cnf");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext file");
    let run = |args: &[&str]| {
        openssl(args);
    };
    let s = |p: &PathBuf| p.to_str().expect("utf-8 path").to_string();
    let (ca_key, ca, key, csr, cert) = (
        p("ca.key"),
        p("ca.pem"),
        p("key.pem"),
        p("req.csr"),
        p("cert.pem"),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=resetgate test CA",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    (ca, cert, key)
}

/// A real SMTP server, and the service started on its config plus `extra` TOML, with the
/// accounts `users` (no password).
pub fn started(extra: &str, users: &[&str]) -> (SmtpSink, Setup, Service) {
    let sink = SmtpSink::start();
    let setup = Setup::new(&format!("{}{extra}", smtp_config(sink.port)));
    for user in users {
        let added = setup.cli(&["users", "add", user]);
        assert_eq!(added.code, Some(0), "{added:?}");
    }
    let service = setup.start();
    (sink, setup, service)
}

/// The SMTP section for a sink on `port`, plain, with quick retries. The service's
/// mail-authentication checks ask a loopback port where no DNS server listens (they come
/// out unknown), never the machine's resolver; tests/mail_auth.rs gives them its own.
pub fn smtp_config(port: u16) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nfrom = \"resetgate <noreply@example.com>\"\n\
         retry_initial = \"100ms\"\nretry_max = \"500ms\"\ndns_resolver = \"127.0.0.1:9\"\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout = \"10s\"\n"
    )
}
