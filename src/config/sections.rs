//! The configuration's sections, with their defaults. Every key is shown in `config.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration, size, Secret};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub admin: Admin,
    pub storage: Storage,
    pub mail: Mail,
    pub recovery: Recovery,
    pub passwords: Passwords,
    pub limits: Limits,
    pub guard: Guard,
    pub log: Log,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: SocketAddr,
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    #[serde(with = "duration")]
    pub write_timeout: Duration,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub trusted_proxies: Vec<String>,
    /// The header the trusted proxies write: `x-forwarded-for` or `forwarded`.
    pub client_ip_header: ClientIpHeader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    XForwardedFor,
    Forwarded,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `sled::Db::flush` before the 200: survives a crash of the process.
    Flush,
    /// Flush, then fsync sled's files: also survives a power loss.
    Fsync,
    /// No flush before the 200: sled writes in the background every `storage.flush_every`,
    /// which is the window of acknowledged requests a crash can lose.
    Background,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub data_dir: PathBuf,
    pub cache_capacity_mb: u64,
    pub durability: Durability,
    #[serde(with = "duration")]
    pub flush_every: Duration,
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
    /// Below this much free space on the data directory's file system, forgot-password
    /// refuses new codes and delivery waits (0: no check).
    #[serde(with = "size")]
    pub min_free: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Smtp,
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    pub transport: Transport,
    pub from: String,
    pub reply_to: String,
    pub product_name: String,
    pub support_contact: String,
    /// Empty: the built-in texts only.
    pub templates_dir: PathBuf,
    #[serde(with = "duration")]
    pub retry_initial: Duration,
    #[serde(with = "duration")]
    pub retry_max: Duration,
    pub smtp: Smtp,
    pub file: FileMail,
    pub dkim: Dkim,
}

/// DKIM signing; off while `domain` is empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    pub domain: String,
    pub selector: String,
    /// A PKCS#8 PEM private key: RSA (rsa-sha256) or Ed25519 (ed25519-sha256).
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    #[serde(with = "duration")]
    pub timeout: Duration,
    pub helo_name: String,
    /// Empty: the system's trust roots.
    pub ca_file: PathBuf,
    /// Connections used at once (lanes of the outbox).
    pub connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileMail {
    /// Empty means `<storage.data_dir>/mail`.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recovery {
    pub code_length: u32,
    #[serde(with = "duration")]
    pub code_ttl: Duration,
    #[serde(with = "duration")]
    pub resend_cooldown: Duration,
    #[serde(with = "duration")]
    pub confirm_window: Duration,
    pub require_session: bool,
    pub max_account_failures: u32,
    #[serde(with = "duration")]
    pub failures_forgotten_after: Duration,
    pub failed_confirm_budget: Rate,
    pub hide_unknown_accounts: bool,
    /// Start even though the guessing bound (README "Guessing odds") exceeds 1 %.
    pub accept_high_guessing_odds: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Passwords {
    pub pbkdf2_iterations: u32,
    pub min_length: usize,
    pub max_length: usize,
    pub max_concurrent_hashes: usize,
}

/// `requests` per fixed `window`; `requests = 0` switches the limit off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    #[serde(with = "duration")]
    pub window: Duration,
}

impl Rate {
    /// A limit that is switched off.
    pub fn off() -> Rate {
        Rate {
            requests: 0,
            window: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub forgot_password: EndpointLimits,
    pub confirm_otp_reset: EndpointLimits,
    pub password_reset: EndpointLimits,
    pub confirm_failures_per_client: Rate,
    pub reset_failures_per_client: Rate,
    pub reset_failures_per_email: Rate,
    pub max_tracked_keys: u64,
}

/// The three limits every public endpoint has.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointLimits {
    /// Per client address (IPv6: per /64).
    pub per_client: Rate,
    /// Per normalized submitted address, whether or not it has an account: the ceiling.
    pub per_email: Rate,
    /// Per (address, client key): how much of the address's allowance one client may spend.
    #[serde(default = "Rate::off")]
    pub per_email_per_client: Rate,
    /// All clients together.
    pub global: Rate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guard {
    pub deny: Vec<String>,
    pub allow_only: Vec<String>,
    pub ban_after: Rate,
    #[serde(with = "duration")]
    pub ban_for: Duration,
    #[serde(with = "duration")]
    pub ban_max: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub level: String,
    pub format: LogFormat,
}

impl Log {
    /// `level` without whitespace ("warn, resetgate=info" means "warn,resetgate=info"):
    /// what both the check and the filter read.
    pub fn directives(&self) -> String {
        self.level.split_whitespace().collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `key=value` pairs after the message (logfmt-like), one line per event.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:9000".parse().expect("literal address"),
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_client: 64,
            write_timeout: Duration::from_secs(10),
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(10),
            secret: None,
            secret_file: None,
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::XForwardedFor,
        }
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: "127.0.0.1:9001".parse().expect("literal address"),
            max_body_bytes: 64 * 1024 * 1024,
            token: None,
            token_file: None,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            data_dir: PathBuf::from("./data"),
            cache_capacity_mb: 16,
            durability: Durability::Flush,
            flush_every: Duration::from_millis(500),
            sweep_interval: Duration::from_secs(60),
            min_free: 64_000_000,
        }
    }
}

impl Default for Mail {
    fn default() -> Self {
        Mail {
            transport: Transport::File,
            from: "resetgate <noreply@localhost>".into(),
            reply_to: String::new(),
            product_name: "your account".into(),
            support_contact: String::new(),
            templates_dir: PathBuf::new(),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            smtp: Smtp::default(),
            file: FileMail::default(),
            dkim: Dkim::default(),
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: "localhost".into(),
            port: 587,
            security: Security::Starttls,
            username: String::new(),
            password: None,
            password_file: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            helo_name: String::new(),
            ca_file: PathBuf::new(),
            connections: 1,
        }
    }
}

impl Default for FileMail {
    fn default() -> Self {
        FileMail {
            dir: PathBuf::new(),
        }
    }
}

impl Recovery {
    /// README's bound on the chance that guessing succeeds within `T = 30` days, with
    /// `L = 1,000` live codes and `A = 1,000,000` attacked accounts:
    /// `(⌊T / W⌋ + 1) · B · L / 10^n + A · F · (⌊T / D⌋ + 1) / 10^n` (a span of `T` touches
    /// at most `⌊T / W⌋ + 1` fixed windows). Infinite when the budget is off.
    pub fn guessing_odds(&self) -> f64 {
        const T: f64 = 30.0 * 24.0 * 3600.0;
        const LIVE: f64 = 1_000.0;
        const ACCOUNTS: f64 = 1_000_000.0;
        let budget = self.failed_confirm_budget;
        if budget.requests == 0 || budget.window.is_zero() {
            return f64::INFINITY;
        }
        let space = 10f64.powi(self.code_length as i32);
        let windows = (T / budget.window.as_secs_f64()).floor() + 1.0;
        let code_only = windows * f64::from(budget.requests) * LIVE / space;
        let forgotten = (T / self.failures_forgotten_after.as_secs_f64()).floor() + 1.0;
        let named = ACCOUNTS * f64::from(self.max_account_failures) * forgotten / space;
        code_only + named
    }
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            code_length: 12,
            code_ttl: Duration::from_secs(600),
            resend_cooldown: Duration::from_secs(60),
            confirm_window: Duration::from_secs(600),
            require_session: false,
            max_account_failures: 100,
            failures_forgotten_after: Duration::from_secs(7 * 24 * 3600),
            failed_confirm_budget: Rate {
                requests: 10_000,
                window: Duration::from_secs(3600),
            },
            hide_unknown_accounts: false,
            accept_high_guessing_odds: false,
        }
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords {
            pbkdf2_iterations: 600_000,
            min_length: 15,
            max_length: 256,
            max_concurrent_hashes: 2,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let rate = |requests, secs| Rate {
            requests,
            window: Duration::from_secs(secs),
        };
        Limits {
            forgot_password: EndpointLimits {
                per_client: rate(30, 60),
                per_email: rate(30, 3600),
                per_email_per_client: rate(3, 3600),
                global: rate(3_000, 60),
            },
            confirm_otp_reset: EndpointLimits {
                per_client: rate(30, 60),
                per_email: rate(20, 3600),
                per_email_per_client: Rate::off(),
                global: rate(6_000, 60),
            },
            password_reset: EndpointLimits {
                per_client: rate(30, 60),
                per_email: rate(10, 3600),
                per_email_per_client: Rate::off(),
                global: rate(3_000, 60),
            },
            confirm_failures_per_client: rate(10, 900),
            reset_failures_per_client: rate(10, 900),
            reset_failures_per_email: rate(10, 3600),
            max_tracked_keys: 100_000,
        }
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            deny: Vec::new(),
            allow_only: Vec::new(),
            ban_after: Rate {
                requests: 20,
                window: Duration::from_secs(600),
            },
            ban_for: Duration::from_secs(900),
            ban_max: Duration::from_secs(24 * 3600),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}
