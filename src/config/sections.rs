//! The configuration's sections, with their defaults. Every key is shown in `config.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{duration, size, HttpUrl, Net, Secret};

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
    pub web: Web,
    pub log: Log,
    pub history: History,
    /// `[[webhooks]]`: where events go (none by default).
    pub webhooks: Vec<Webhook>,
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
    pub trusted_proxies: Vec<Net>,
    /// Origins (`https://app.example.com`) whose pages may call the JSON API from a
    /// browser (CORS); empty: none but this service's own.
    pub cors_origins: Vec<String>,
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
    /// PEM certificate chain and private key: with both, the admin listener speaks TLS
    /// (required for a non-loopback `listen`); empty: plain HTTP on loopback.
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    /// Wrong or missing tokens one client key may send over TCP before it gets 429.
    pub token_failures: Rate,
}

impl Admin {
    /// Whether the admin listener speaks TLS (both files are set).
    pub fn tls(&self) -> bool {
        !self.tls_cert_file.as_os_str().is_empty() && !self.tls_key_file.as_os_str().is_empty()
    }
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
    /// Messages a connection sends before one flush records their removal.
    pub batch: usize,
    pub smtp: Smtp,
    pub file: FileMail,
    pub dkim: Dkim,
    /// The DNS server the mail-authentication checks ask (`check-mail`): an address, with an
    /// optional port; empty: the system's (/etc/resolv.conf).
    pub dns_resolver: String,
    /// The addresses the relay sends from, for evaluating SPF; empty: SPF is checked for
    /// syntax and the 10-lookup limit only.
    pub outbound_ips: Vec<std::net::IpAddr>,
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
    /// Start even though the guessing bound (docs/security.md, "Guessing odds") exceeds 1 %.
    pub accept_high_guessing_odds: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Passwords {
    pub pbkdf2_iterations: u32,
    pub min_length: usize,
    pub max_length: usize,
    pub max_concurrent_hashes: usize,
    /// zxcvbn's score (0–4) a new password must reach; 0 turns the estimate off.
    pub min_guess_score: u8,
    /// The Have I Been Pwned range API's base URL; empty: no online check.
    /// Empty: no online check.
    pub breach_api: HttpUrl,
    #[serde(with = "duration")]
    pub breach_timeout: Duration,
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
    /// Codes past a spent `forgot_password.global` (the mail budget), for accounts only.
    pub mail_reserve: Rate,
    pub networks: Networks,
    pub max_tracked_keys: u64,
}

/// The networks above the client key: how many clients' worth of each endpoint's
/// `per_client` limit (and of the mail reserve) one network may spend. 0 turns a level off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Networks {
    pub ipv4_24: u32,
    pub ipv6_56: u32,
    pub ipv6_48: u32,
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
    pub deny: Vec<Net>,
    pub allow_only: Vec<Net>,
    pub ban_after: Rate,
    #[serde(with = "duration")]
    pub ban_for: Duration,
    #[serde(with = "duration")]
    pub ban_max: Duration,
}

/// Each account's recent history, for support (`resetgate users show`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct History {
    /// The most entries kept per account.
    pub per_account: usize,
    /// Entries older than this go.
    #[serde(with = "duration")]
    pub keep: Duration,
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

impl Recovery {
    /// docs/security.md's bound on the chance that guessing succeeds within `T = 30` days, with
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

/// The built-in reset page (docs/reset-page.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    pub enabled: bool,
    pub path: String,
    pub public_url: String,
    pub product_name: String,
    pub accent_color: String,
    pub logo_file: PathBuf,
    pub templates_dir: PathBuf,
}

/// One `[[webhooks]]` endpoint: events signed as Standard Webhooks, through the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webhook {
    pub name: String,
    pub url: HttpUrl,
    /// `whsec_` and the key in base64.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub events: Vec<crate::events::Kind>,
    pub include_password_hash: bool,
    #[serde(with = "duration")]
    pub timeout: Duration,
    #[serde(with = "duration")]
    pub max_age: Duration,
    #[serde(with = "duration")]
    pub retry_initial: Duration,
    #[serde(with = "duration")]
    pub retry_max: Duration,
    pub ca_file: PathBuf,
}
