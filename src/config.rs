//! Layered configuration: built-in defaults → TOML file → `RESETGATE_<SECTION>__<KEY>`.
//!
//! Every key a user can set is shown, with its default and a one-line comment, in the
//! shipped `config.toml`. Validation names the key in every error, so a typo or a bad
//! value stops the service at start-up (exit code 2) with a message a person can act on.

mod duration;
mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use secret::Secret;

/// A configuration problem, always naming the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn bad(key: &str, what: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {what}"))
}

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
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub data_dir: PathBuf,
    pub cache_capacity_mb: u64,
    pub durability: Durability,
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
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
    pub product_name: String,
    #[serde(with = "duration")]
    pub retry_initial: Duration,
    #[serde(with = "duration")]
    pub retry_max: Duration,
    pub smtp: Smtp,
    pub file: FileMail,
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
    pub timeout: Duration,
    pub helo_name: String,
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
    pub failed_confirm_budget: Rate,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub per_client: Rate,
    pub per_email: Rate,
    pub confirm_failures_per_client: Rate,
    pub max_tracked_keys: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guard {
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub level: String,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:9000".parse().expect("literal address"),
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
            secret: None,
            secret_file: None,
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
            cache_capacity_mb: 64,
            durability: Durability::Flush,
            sweep_interval: Duration::from_secs(60),
        }
    }
}

impl Default for Mail {
    fn default() -> Self {
        Mail {
            transport: Transport::File,
            from: "resetgate <noreply@localhost>".into(),
            product_name: "your account".into(),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            smtp: Smtp::default(),
            file: FileMail::default(),
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
            timeout: Duration::from_secs(30),
            helo_name: String::new(),
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

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            code_length: 12,
            code_ttl: Duration::from_secs(600),
            resend_cooldown: Duration::from_secs(60),
            confirm_window: Duration::from_secs(600),
            require_session: false,
            max_account_failures: 100,
            failed_confirm_budget: Rate {
                requests: 10_000,
                window: Duration::from_secs(3600),
            },
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
        Limits {
            per_client: Rate {
                requests: 30,
                window: Duration::from_secs(60),
            },
            per_email: Rate {
                requests: 5,
                window: Duration::from_secs(3600),
            },
            confirm_failures_per_client: Rate {
                requests: 10,
                window: Duration::from_secs(900),
            },
            max_tracked_keys: 100_000,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
        }
    }
}

/// Which TOML file to read: `--config`, else `RESETGATE_CONFIG`, else `./config.toml` if present.
pub fn choose_file(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("RESETGATE_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("config.toml");
    local.exists().then_some(local)
}

impl Config {
    /// Reads and validates the configuration; `file` is the result of [`choose_file`].
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed("RESETGATE_")
            .filter(|key| !key.as_str().eq_ignore_ascii_case("config"))
            .split("__");
        let config: Config = figment.merge(env).extract().map_err(|errors| {
            let all: Vec<String> = errors.into_iter().map(describe).collect();
            ConfigError(all.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.admin.listen.ip().is_loopback() {
            return Err(bad(
                "admin.listen",
                "the admin API must listen on a loopback address",
            ));
        }
        if self.server.max_body_bytes < 64 {
            return Err(bad("server.max_body_bytes", "must be at least 64"));
        }
        if self.server.max_connections == 0 {
            return Err(bad("server.max_connections", "must be at least 1"));
        }
        nonzero(
            "server.header_read_timeout",
            self.server.header_read_timeout,
        )?;
        nonzero("server.body_timeout", self.server.body_timeout)?;
        nonzero("storage.sweep_interval", self.storage.sweep_interval)?;
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(bad("storage.data_dir", "must not be empty"));
        }
        if !(6..=12).contains(&self.recovery.code_length) {
            return Err(bad(
                "recovery.code_length",
                "must be between 6 and 12 digits",
            ));
        }
        for (key, value) in [
            ("recovery.code_ttl", self.recovery.code_ttl),
            ("recovery.confirm_window", self.recovery.confirm_window),
        ] {
            nonzero(key, value)?;
            if value > Duration::from_secs(24 * 3600) {
                return Err(bad(
                    key,
                    "must be at most 24h: a code or a confirmation must not live for days",
                ));
            }
        }
        if !(1..=100).contains(&self.recovery.max_account_failures) {
            return Err(bad(
                "recovery.max_account_failures",
                "must be between 1 and 100 (NIST SP 800-63B allows at most 100)",
            ));
        }
        rate(
            "recovery.failed_confirm_budget",
            self.recovery.failed_confirm_budget,
        )?;
        nonzero("mail.retry_initial", self.mail.retry_initial)?;
        if self.mail.retry_max < self.mail.retry_initial {
            return Err(bad(
                "mail.retry_max",
                "must not be shorter than mail.retry_initial",
            ));
        }
        crate::mail_address::parse_mailbox(&self.mail.from).map_err(|e| bad("mail.from", e))?;
        self.validate_smtp()?;
        self.validate_passwords()?;
        rate("limits.per_client", self.limits.per_client)?;
        rate("limits.per_email", self.limits.per_email)?;
        rate(
            "limits.confirm_failures_per_client",
            self.limits.confirm_failures_per_client,
        )?;
        self.deny_list()?;
        self.log
            .level
            .parse::<tracing_subscriber::filter::EnvFilter>()
            .map_err(|e| bad("log.level", e))?;
        Ok(())
    }

    fn validate_passwords(&self) -> Result<(), ConfigError> {
        let p = &self.passwords;
        if p.pbkdf2_iterations < 10_000 {
            return Err(bad("passwords.pbkdf2_iterations", "must be at least 10000"));
        }
        if p.min_length < 8 {
            return Err(bad(
                "passwords.min_length",
                "must be at least 8 (NIST SP 800-63B)",
            ));
        }
        if p.max_length < 64 || p.max_length < p.min_length {
            return Err(bad(
                "passwords.max_length",
                "must be at least 64 (NIST SP 800-63B) and at least passwords.min_length",
            ));
        }
        if p.max_concurrent_hashes == 0 {
            return Err(bad("passwords.max_concurrent_hashes", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_smtp(&self) -> Result<(), ConfigError> {
        let smtp = &self.mail.smtp;
        if self.mail.transport != Transport::Smtp {
            return Ok(());
        }
        if smtp.host.trim().is_empty() {
            return Err(bad("mail.smtp.host", "must not be empty"));
        }
        if smtp.port == 0 {
            return Err(bad("mail.smtp.port", "must be between 1 and 65535"));
        }
        nonzero("mail.smtp.timeout", smtp.timeout)?;
        if smtp.password.is_some() && smtp.password_file.is_some() {
            return Err(bad(
                "mail.smtp.password_file",
                "set either password or password_file",
            ));
        }
        Ok(())
    }

    /// The configured deny list, parsed; bare addresses are single-host networks.
    pub fn deny_list(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.guard
            .deny
            .iter()
            .map(|entry| parse_net(entry).map_err(|e| bad("guard.deny", e)))
            .collect()
    }

    /// The directory the file transport writes `.eml` files into.
    pub fn mail_dir(&self) -> PathBuf {
        if self.mail.file.dir.as_os_str().is_empty() {
            self.storage.data_dir.join("mail")
        } else {
            self.mail.file.dir.clone()
        }
    }

    /// The SMTP password from `mail.smtp.password` or `mail.smtp.password_file`.
    pub fn smtp_password(&self) -> Result<Option<Secret>, ConfigError> {
        let smtp = &self.mail.smtp;
        secret::resolve(
            "mail.smtp.password_file",
            smtp.password.as_ref(),
            smtp.password_file.as_deref(),
        )
    }

    /// The server secret from `server.secret` or `server.secret_file`, if configured.
    pub fn server_secret(&self) -> Result<Option<Secret>, ConfigError> {
        secret::resolve(
            "server.secret_file",
            self.server.secret.as_ref(),
            self.server.secret_file.as_deref(),
        )
    }

    /// The admin token from `admin.token` or `admin.token_file`, if configured.
    pub fn admin_token(&self) -> Result<Option<Secret>, ConfigError> {
        secret::resolve(
            "admin.token_file",
            self.admin.token.as_ref(),
            self.admin.token_file.as_deref(),
        )
    }
}

/// "`server.listen`: invalid socket address syntax (in config.toml TOML file)": the key as
/// written in the file, whichever layer it came from.
fn describe(e: figment::Error) -> String {
    let key = e.path.join(".").to_lowercase();
    let source = match e.metadata.as_ref() {
        Some(m) => match &m.source {
            Some(src) => format!(" (in {} {src})", m.name),
            None => format!(" (in {})", m.name),
        },
        None => String::new(),
    };
    if key.is_empty() {
        format!("{}{source}", e.kind)
    } else {
        format!("`{key}`: {}{source}", e.kind)
    }
}

fn nonzero(key: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(bad(key, "must be longer than zero"));
    }
    Ok(())
}

fn rate(key: &str, r: Rate) -> Result<(), ConfigError> {
    if r.requests > 0 && r.window.is_zero() {
        return Err(bad(&format!("{key}.window"), "must be longer than zero"));
    }
    Ok(())
}

fn parse_net(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{entry:?} is neither an IP address nor a CIDR network"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().expect("defaults are valid");
    }

    #[test]
    fn deny_entries_parse_as_networks() {
        assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
        assert!(parse_net("10.0.0.300").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.recovery.code_length = 40;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("recovery.code_length"), "{err}");
    }
}
