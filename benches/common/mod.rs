//! What the benchmarks share: starting the release binary on a config with every limit raised,
//! reading its addresses from its log, its RSS and disk use, one keep-alive HTTP/1.1
//! connection that times forgot-password requests, 64 hyper connections that drive it, and
//! the percentiles of what they measured.
#![allow(dead_code)]

mod client;
mod flood;
mod sink;
mod stats;
// Not every benchmark drives load: the ones that do not leave these unused.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use flood::*;
#[allow(unused_imports)]
pub use sink::*;
pub use stats::*;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: this build's, or `BENCH_RESETGATE_BIN` (another build's, to
/// compare two versions with the same client in alternating runs).
pub fn bin() -> String {
    std::env::var("BENCH_RESETGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_resetgate").into())
}

/// The scenario numbers given on the command line (`cargo bench --bench load -- 2 5`);
/// none: all of them.
pub fn wanted() -> impl Fn(u32) -> bool {
    let only: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    move |n| only.is_empty() || only.contains(&n)
}

/// The public and the admin address from the "resetgate ready" log line.
fn ready_addresses(log: &mut impl BufRead) -> (SocketAddr, SocketAddr) {
    let field = |line: &str, name: &str| -> Option<SocketAddr> {
        let value = line.split(name).nth(1)?.split_whitespace().next()?;
        Some(value.parse().expect("address"))
    };
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            log.read_line(&mut line).expect("service log") > 0,
            "the service exited"
        );
        if let Some(public) = field(&line, "public=") {
            return (public, field(&line, "admin=").expect("the admin address"));
        }
    }
}

/// One keep-alive HTTP/1.1 connection, answers read by Content-Length.
pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream: BufReader::new(stream),
        }
    }

    pub fn forgot(&mut self, email: &str) -> Duration {
        let body = format!("{{\"email\": \"{email}\"}}");
        let req = format!(
            "POST /api/v1/user/forgot-password HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let started = Instant::now();
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .expect("send");
        let (status, length) = self.head();
        let mut rest = vec![0; length];
        self.stream.read_exact(&mut rest).expect("body");
        let took = started.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&rest));
        took
    }

    fn head(&mut self) -> (u16, usize) {
        let (mut status, mut length, mut line) = (0, 0, String::new());
        loop {
            line.clear();
            self.stream.read_line(&mut line).expect("header line");
            let l = line.trim_end();
            if l.is_empty() {
                return (status, length);
            }
            if let Some(code) = l.strip_prefix("HTTP/1.1 ") {
                status = code[..3].parse().expect("status");
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().expect("length");
                }
            }
        }
    }
}

/// The connections the load and soak benchmarks drive the service with.
pub const CONNECTIONS: usize = 64;

/// The release binary, started by [`start`].
pub struct Service {
    child: Child,
    /// The public listener.
    pub addr: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    pub data: PathBuf,
    /// From exec to the first successful request.
    pub started_in: Duration,
    /// RSS then.
    pub rss_start: u64,
}

impl Service {
    pub fn rss(&self) -> u64 {
        rss(self.child.id())
    }

    /// The process id, for /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(self) {
        // Dropping it stops it.
    }

    /// Stops it as systemd does (SIGTERM) and waits until it has exited.
    pub fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = self.child.wait().expect("the service exits");
        assert!(status.success(), "the service exited with {status}");
    }
}

/// A benchmark that panics does not leave the release binary running.
impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dir/users.jsonl` with the accounts `{local}0@example.com` … `{local}{n-1}@example.com`.
pub fn users_file(dir: &Path, local: &str, n: usize) -> PathBuf {
    let users = dir.join("users.jsonl");
    let lines: String = (0..n)
        .map(|i| format!("{{\"email\": \"{local}{i}@example.com\"}}\n"))
        .collect();
    std::fs::write(&users, lines).expect("users");
    users
}

/// The config every benchmark starts from: both listeners on free ports, every limit
/// raised far above any load a benchmark makes (each still runs, as it ships: a limit is
/// raised, never switched off), data in `data`, and the shipped defaults otherwise
/// (durability "fsync", the file transport). `extra` adds keys, or replaces those set
/// here, as (section, line), in a section here or a new one: `("storage", "durability = \"fsync\"")`,
/// `("mail.smtp", "port = 2525")`.
fn config(data: &Path, extra: &[(&str, &str)]) -> String {
    let mut sections = listeners_and_storage(data);
    sections.extend(raised_limits());
    render(sections, extra)
}

/// Both listeners on free ports, and the data in `data`.
fn listeners_and_storage(data: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "server",
            "listen = \"127.0.0.1:0\"\nmax_connections_per_client = 1024".into(),
        ),
        ("admin", "listen = \"127.0.0.1:0\"".into()),
        ("storage", format!("data_dir = \"{}\"", data.display())),
    ]
}

/// [`config`] with the limits, the cooldown, the failure budget and the bans as shipped
/// (`config.toml`'s defaults): for the scenarios about what an attack costs.
fn shipped_config(data: &Path, extra: &[(&str, &str)]) -> String {
    let mut sections = listeners_and_storage(data);
    sections.push(("log", "level = \"warn,resetgate=info\"".into()));
    render(sections, extra)
}

/// The sections that raise every limit far above any load.
fn raised_limits() -> Vec<(&'static str, String)> {
    let raised = "{ requests = 4000000000, window = \"1m\" }";
    let limits = format!(
        "per_client = {raised}\nper_email = {raised}\nper_email_per_client = {raised}\nglobal = {raised}"
    );
    let failures = format!(
        "confirm_failures_per_client = {raised}\nreset_failures_per_client = {raised}\nreset_failures_per_email = {raised}"
    );
    vec![
        (
            "recovery",
            // One address is asked for again only after every other account (the
            // benchmarks go through them in turn), so a millisecond's cooldown never
            // refuses. The raised budget raises the guessing bound: accepted for the
            // benchmark.
            format!(
                "resend_cooldown = \"1ms\"\nfailed_confirm_budget = {raised}\naccept_high_guessing_odds = true"
            ),
        ),
        ("limits", failures),
        ("limits.forgot_password", limits.clone()),
        ("limits.confirm_otp_reset", limits.clone()),
        ("limits.password_reset", limits),
        ("guard", format!("ban_after = {raised}")),
        ("log", "level = \"warn,resetgate=info\"".into()),
    ]
}

/// The config file's text: `sections`, with `extra`'s lines added (see [`config`]).
fn render<'a>(mut sections: Vec<(&'a str, String)>, extra: &[(&'a str, &str)]) -> String {
    for &(section, line) in extra {
        match sections.iter_mut().find(|(s, _)| *s == section) {
            Some((_, body)) => *body = with_line(body, line),
            None => sections.push((section, line.to_string())),
        }
    }
    sections
        .iter()
        .map(|(section, body)| format!("[{section}]\n{body}\n"))
        .collect()
}

/// `body` (a section's lines) with `line` added, or in place of the line that sets the same
/// key.
fn with_line(body: &str, line: &str) -> String {
    let key = |l: &str| l.split('=').next().unwrap_or_default().trim().to_string();
    let mut lines: Vec<&str> = body.lines().filter(|l| key(l) != key(line)).collect();
    lines.push(line);
    lines.join("\n")
}

/// Imports `users` and starts `resetgate serve` in `dir` on [`config`] with `extra` (which
/// may also replace the keys set there); returns once it answers /healthz.
pub fn start(dir: &Path, users: &Path, extra: &[(&str, &str)]) -> Service {
    launch(dir, users, &config(&dir.join("data"), extra))
}

/// [`start`] with the limits as shipped ([`shipped_config`]).
pub fn start_shipped(dir: &Path, users: &Path, extra: &[(&str, &str)]) -> Service {
    launch(dir, users, &shipped_config(&dir.join("data"), extra))
}

/// Writes `config` in `dir`, imports `users` and serves.
fn launch(dir: &Path, users: &Path, config: &str) -> Service {
    std::fs::create_dir_all(dir).unwrap();
    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, config).unwrap();
    let import = Command::new(bin())
        .args(["--config", config_file.to_str().unwrap(), "users", "import"])
        .arg(users)
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    serve(dir)
}

/// Starts `resetgate serve` on the config [`start`] wrote in `dir` (again, after
/// [`Service::terminate`]); returns once it answers /healthz.
pub fn serve(dir: &Path) -> Service {
    let data = dir.join("data");
    let config_file = dir.join("config.toml");
    let bin = bin();
    let c = config_file.to_str().unwrap();
    let exec = Instant::now();
    let mut child = Command::new(bin)
        .args(["--config", c, "serve"])
        .envs(unit_environment())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let (addr, admin) = ready_addresses(&mut log);
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                break;
            }
        }
    }
    let started_in = exec.elapsed();
    let rss_start = rss(child.id());
    Service {
        child,
        addr,
        admin,
        data,
        started_in,
        rss_start,
    }
}

/// The process environment the shipped systemd unit sets (`Environment=NAME=value` lines),
/// so that the service runs here as it ships: glibc's arena limit changes its RSS. The
/// unit's `RESETGATE_*` settings are left out: the benchmark's config file sets those.
fn unit_environment() -> Vec<(String, String)> {
    include_str!("../../systemd/resetgate.service")
        .lines()
        .filter_map(|line| line.strip_prefix("Environment=")?.split_once('='))
        .filter(|(name, _)| !name.starts_with("RESETGATE_"))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// A process's CPU time so far, user and system (/proc, in the kernel's 10 ms ticks).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are 14 and 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// VmRSS of process `pid`, in bytes (0 when it is gone).
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The files below a directory: their lengths, and the blocks allocated to them (sled's
/// files may be sparse).
#[derive(Clone, Copy, Default)]
pub struct DiskUse {
    pub bytes: u64,
    pub allocated: u64,
}

pub fn du(dir: &Path) -> DiskUse {
    use std::os::unix::fs::MetadataExt;
    let mut total = DiskUse::default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        // A file may be renamed away between the listing and this (the outbox writes on).
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let below = du(&entry.path());
            total.bytes += below.bytes;
            total.allocated += below.allocated;
        } else {
            total.bytes += meta.len();
            total.allocated += meta.blocks() * 512;
        }
    }
    total
}

/// The unlabelled series of the admin listener's /metrics, by name (empty if unavailable).
pub fn metrics(admin: SocketAddr, token: &str) -> HashMap<String, f64> {
    let mut text = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(admin) {
        let _ = write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        let _ = s.read_to_string(&mut text);
    }
    if !text.starts_with("HTTP/1.1 200") {
        return HashMap::new();
    }
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}
