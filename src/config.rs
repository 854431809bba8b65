//! Layered configuration: built-in defaults → TOML file → `RESETGATE_<SECTION>__<KEY>`.
//!
//! Every key a user can set is shown, with its default and a one-line comment, in the
//! shipped `config.toml`. Validation names the key in every error, so a typo or a bad
//! value stops the service at start-up (exit code 2) with a message a person can act on.

mod duration;
mod secret;
mod sections;
pub mod size;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;

pub use secret::{check_private, Secret};
pub use sections::*;

/// A configuration problem, always naming the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn bad(key: &str, what: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {what}"))
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
        nonzero("storage.flush_every", self.storage.flush_every)?;
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(bad("storage.data_dir", "must not be empty"));
        }
        let socket = self.admin_socket();
        if socket.as_os_str().len() > 107 {
            return Err(bad(
                "storage.data_dir",
                format!(
                    "the admin socket {} would be {} bytes long, and a Unix socket's path may have 107: use a shorter data directory",
                    socket.display(),
                    socket.as_os_str().len()
                ),
            ));
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
        if self.recovery.failures_forgotten_after < Duration::from_secs(24 * 3600) {
            return Err(bad(
                "recovery.failures_forgotten_after",
                "must be at least 1d (see README \"Guessing odds\")",
            ));
        }
        rate(
            "recovery.failed_confirm_budget",
            self.recovery.failed_confirm_budget,
        )?;
        self.validate_guessing_odds()?;
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
        let l = &self.limits;
        for (name, e) in [
            ("forgot_password", l.forgot_password),
            ("confirm_otp_reset", l.confirm_otp_reset),
            ("password_reset", l.password_reset),
        ] {
            rate(&format!("limits.{name}.per_client"), e.per_client)?;
            rate(&format!("limits.{name}.per_email"), e.per_email)?;
            rate(
                &format!("limits.{name}.per_email_per_client"),
                e.per_email_per_client,
            )?;
            rate(&format!("limits.{name}.global"), e.global)?;
        }
        for (key, r) in [
            (
                "limits.confirm_failures_per_client",
                l.confirm_failures_per_client,
            ),
            (
                "limits.reset_failures_per_client",
                l.reset_failures_per_client,
            ),
            (
                "limits.reset_failures_per_email",
                l.reset_failures_per_email,
            ),
        ] {
            rate(key, r)?;
        }
        self.deny_list()?;
        self.allow_list()?;
        self.trusted_proxies()?;
        rate("guard.ban_after", self.guard.ban_after)?;
        nonzero("guard.ban_for", self.guard.ban_for)?;
        if self.guard.ban_max < self.guard.ban_for {
            return Err(bad(
                "guard.ban_max",
                "must not be shorter than guard.ban_for",
            ));
        }
        let level = |l: &str| {
            ["off", "error", "warn", "info", "debug", "trace"]
                .contains(&l.to_ascii_lowercase().as_str())
        };
        // A directive is a level, or `module=level`; a bare word that is not a level would
        // be read as a module name and silence everything else.
        let directives = self.log.directives();
        for directive in directives.split(',') {
            let (module, given) = directive.rsplit_once('=').unwrap_or(("", directive));
            let path = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
            if !level(given) || !module.chars().all(path) {
                return Err(bad(
                    "log.level",
                    format!("{directive:?} is not a level (off, error, warn, info, debug, trace) or module=level"),
                ));
            }
        }
        directives
            .parse::<tracing_subscriber::filter::Targets>()
            .map_err(|e| bad("log.level", e))?;
        Ok(())
    }

    /// Refuses a configuration whose guessing bound (README "Guessing odds") for 1,000
    /// live codes over 30 days exceeds 1 %, unless the operator accepts it knowingly.
    fn validate_guessing_odds(&self) -> Result<(), ConfigError> {
        let r = &self.recovery;
        let odds = r.guessing_odds();
        if odds <= 0.01 || r.accept_high_guessing_odds {
            return Ok(());
        }
        let shown = if odds.is_finite() {
            format!("{:.2} %", odds * 100.0)
        } else {
            "unbounded (the budget is off)".into()
        };
        Err(bad(
            "recovery.code_length",
            format!(
                "with code_length = {}, failed_confirm_budget = {} per {}, max_account_failures = {} and failures_forgotten_after = {}, a guesser succeeds within 30 days with probability up to {shown} (1,000 live codes; README \"Guessing odds\"); the limit is 1 %. Use longer codes or a smaller budget, or set recovery.accept_high_guessing_odds = true to accept the risk",
                r.code_length,
                r.failed_confirm_budget.requests,
                humantime::format_duration(r.failed_confirm_budget.window),
                r.max_account_failures,
                humantime::format_duration(r.failures_forgotten_after),
            ),
        ))
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
        nonzero("mail.smtp.connect_timeout", smtp.connect_timeout)?;
        if !(1..=64).contains(&smtp.connections) {
            return Err(bad("mail.smtp.connections", "must be between 1 and 64"));
        }
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
        nets("guard.deny", &self.guard.deny)
    }

    /// The allow-only list (empty: everyone not denied may call).
    pub fn allow_list(&self) -> Result<Vec<IpNet>, ConfigError> {
        nets("guard.allow_only", &self.guard.allow_only)
    }

    /// The proxies whose `X-Forwarded-For`/`Forwarded` headers are believed.
    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        nets("server.trusted_proxies", &self.server.trusted_proxies)
    }

    /// The admin socket through which the CLI talks to the running service.
    pub fn admin_socket(&self) -> PathBuf {
        self.storage.data_dir.join("admin.sock")
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
            "smtp_password",
        )
    }

    /// The server secret from `server.secret` or `server.secret_file`, if configured.
    pub fn server_secret(&self) -> Result<Option<Secret>, ConfigError> {
        secret::resolve(
            "server.secret_file",
            self.server.secret.as_ref(),
            self.server.secret_file.as_deref(),
            "server_secret",
        )
    }

    /// The admin token from `admin.token` or `admin.token_file`, if configured.
    pub fn admin_token(&self) -> Result<Option<Secret>, ConfigError> {
        secret::resolve(
            "admin.token_file",
            self.admin.token.as_ref(),
            self.admin.token_file.as_deref(),
            "admin_token",
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

fn nets(key: &str, entries: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    entries
        .iter()
        .map(|entry| parse_net(entry).map_err(|e| bad(key, e)))
        .collect()
}

/// An IP network; a bare address is a single-host network.
pub fn parse_net(entry: &str) -> Result<IpNet, String> {
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

    /// Every key a user can set is shown in the shipped config.toml, with its default
    /// (secrets and their `*_file` keys, which default to nothing, are shown commented out).
    #[test]
    fn the_shipped_config_shows_every_key_with_its_default() {
        // Durations compare by value: "24h" and "1day" are the same default.
        fn norm(v: &serde_json::Value) -> serde_json::Value {
            match v {
                serde_json::Value::String(s) => humantime::parse_duration(s)
                    .map_or_else(|_| v.clone(), |d| serde_json::json!(d.as_millis() as u64)),
                serde_json::Value::Object(m) => {
                    m.iter().map(|(k, v)| (k.clone(), norm(v))).collect()
                }
                other => other.clone(),
            }
        }
        fn flatten(
            prefix: &str,
            v: &serde_json::Value,
            out: &mut Vec<(String, serde_json::Value)>,
        ) {
            match v {
                serde_json::Value::Object(map) if !map.contains_key("requests") => {
                    for (k, v) in map {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        flatten(&key, v, out);
                    }
                }
                other => out.push((prefix.to_string(), norm(other))),
            }
        }
        let text = include_str!("../config.toml");
        let shipped: serde_json::Value = Figment::from(Toml::string(text))
            .extract()
            .expect("config.toml parses");
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let (mut want, mut have) = (Vec::new(), Vec::new());
        flatten("", &defaults, &mut want);
        flatten("", &shipped, &mut have);
        let have: std::collections::HashMap<_, _> = have.into_iter().collect();
        for (key, default) in want {
            if default.is_null() {
                assert!(
                    text.contains(&format!("# {}", key.rsplit('.').next().unwrap())),
                    "{key} is not shown (commented)"
                );
                continue;
            }
            let shown = have
                .get(&key)
                .unwrap_or_else(|| panic!("{key} is missing from config.toml"));
            assert_eq!(
                shown, &default,
                "{key}: config.toml shows another value than the default"
            );
        }
    }

    #[test]
    fn the_guessing_bound_is_checked() {
        let mut c = Config::default();
        let odds = c.recovery.guessing_odds();
        assert!(
            (odds - 0.00771).abs() < 1e-9,
            "README's 0.721 % + 0.05 %: {odds}"
        );
        c.recovery.code_length = 6;
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("recovery.code_length") && err.contains("accept_high_guessing_odds"),
            "{err}"
        );
        c.recovery.accept_high_guessing_odds = true;
        assert!(c.validate().is_ok(), "accepted knowingly");
        c.recovery.accept_high_guessing_odds = false;
        c.recovery.code_length = 12;
        c.recovery.failed_confirm_budget.requests = 0;
        assert!(c.recovery.guessing_odds().is_infinite());
        assert!(c.validate().unwrap_err().to_string().contains("unbounded"));
    }

    #[test]
    fn the_admin_socket_path_must_fit() {
        let mut c = Config::default();
        c.storage.data_dir = std::path::PathBuf::from("/").join("d".repeat(120));
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("storage.data_dir") && err.contains("107"),
            "{err}"
        );
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.recovery.code_length = 40;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("recovery.code_length"), "{err}");
    }

    #[test]
    fn log_levels_take_per_module_directives() {
        let mut c = Config::default();
        for good in [
            "debug",
            "warn, resetgate=info",
            "resetgate::outbox=trace",
            "info ",
        ] {
            c.log.level = good.into();
            assert!(c.validate().is_ok(), "{good}");
        }
        for bad in ["loud", "foo[{field}]=info", "info,"] {
            c.log.level = bad.into();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("log.level"), "{bad}: {err}");
        }
    }
}
