//! Validation: every rule a configuration must meet, each error naming its key.

use std::time::Duration;

use super::{bad, Config, ConfigError, Rate};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_storage()?;
        self.validate_recovery()?;
        self.validate_guessing_odds()?;
        self.validate_mail()?;
        self.validate_smtp()?;
        self.validate_passwords()?;
        self.validate_limits()?;
        self.validate_guard()?;
        self.validate_web()?;
        self.validate_webhooks()?;
        self.validate_log()?;
        self.validate_history()
    }

    fn validate_history(&self) -> Result<(), ConfigError> {
        if !(1..=10_000).contains(&self.history.per_account) {
            return Err(bad("history.per_account", "must be between 1 and 10000"));
        }
        nonzero("history.keep", self.history.keep)
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        self.validate_admin()?;
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
        for origin in &self.server.cors_origins {
            if !is_origin(origin) {
                return Err(bad(
                    "server.cors_origins",
                    format!("{origin:?} is not an origin: write it as a browser sends it, like \"https://app.example.com\" (scheme, host, optional port; no path, no \"*\")"),
                ));
            }
        }
        Ok(())
    }

    /// TLS needs both files; an admin API reachable from other hosts needs TLS (the token
    /// and the operations' bodies must not cross a network in clear).
    fn validate_admin(&self) -> Result<(), ConfigError> {
        let a = &self.admin;
        let both = "set both admin.tls_cert_file and admin.tls_key_file (PEM), or neither";
        for (key, set, other) in [
            ("admin.tls_cert_file", &a.tls_cert_file, &a.tls_key_file),
            ("admin.tls_key_file", &a.tls_key_file, &a.tls_cert_file),
        ] {
            if !set.as_os_str().is_empty() && other.as_os_str().is_empty() {
                return Err(bad(key, both));
            }
        }
        if !a.listen.ip().to_canonical().is_loopback() && !a.tls() {
            return Err(bad(
                "admin.listen",
                "the admin API must listen on a loopback address, or speak TLS on another one: set admin.tls_cert_file and admin.tls_key_file (PEM)",
            ));
        }
        rate("admin.token_failures", a.token_failures)
    }

    fn validate_storage(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    fn validate_recovery(&self) -> Result<(), ConfigError> {
        let r = &self.recovery;
        if !(6..=12).contains(&r.code_length) {
            return Err(bad(
                "recovery.code_length",
                "must be between 6 and 12 digits",
            ));
        }
        for (key, value) in [
            ("recovery.code_ttl", r.code_ttl),
            ("recovery.confirm_window", r.confirm_window),
        ] {
            nonzero(key, value)?;
            if value > Duration::from_secs(24 * 3600) {
                return Err(bad(
                    key,
                    "must be at most 24h: a code or a confirmation must not live for days",
                ));
            }
        }
        if !(1..=100).contains(&r.max_account_failures) {
            return Err(bad(
                "recovery.max_account_failures",
                "must be between 1 and 100 (NIST SP 800-63B allows at most 100)",
            ));
        }
        if r.failures_forgotten_after < Duration::from_secs(24 * 3600) {
            return Err(bad(
                "recovery.failures_forgotten_after",
                "must be at least 1d (see docs/security.md, \"Guessing odds\")",
            ));
        }
        rate("recovery.failed_confirm_budget", r.failed_confirm_budget)
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (name, e) in [
            ("forgot_password", l.forgot_password),
            ("confirm_otp_reset", l.confirm_otp_reset),
            ("password_reset", l.password_reset),
        ] {
            rate(&format!("limits.{name}.per_client"), e.per_client)?;
            rate(&format!("limits.{name}.per_email"), e.per_email)?;
            let pair = format!("limits.{name}.per_email_per_client");
            rate(&pair, e.per_email_per_client)?;
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
            ("limits.mail_reserve", l.mail_reserve),
        ] {
            rate(key, r)?;
        }
        let n = l.networks;
        for (key, clients) in [
            ("limits.networks.ipv4_24", n.ipv4_24),
            ("limits.networks.ipv6_56", n.ipv6_56),
            ("limits.networks.ipv6_48", n.ipv6_48),
        ] {
            if clients > 1_000_000 {
                return Err(bad(key, "must be at most 1000000 clients (0 turns it off)"));
            }
        }
        Ok(())
    }

    fn validate_guard(&self) -> Result<(), ConfigError> {
        rate("guard.ban_after", self.guard.ban_after)?;
        nonzero("guard.ban_for", self.guard.ban_for)?;
        if self.guard.ban_max < self.guard.ban_for {
            return Err(bad(
                "guard.ban_max",
                "must not be shorter than guard.ban_for",
            ));
        }
        Ok(())
    }

    /// A directive is a level, or `module=level`; a bare word that is not a level would be
    /// read as a module name and silence everything else.
    fn validate_log(&self) -> Result<(), ConfigError> {
        let level = |l: &str| {
            ["off", "error", "warn", "info", "debug", "trace"]
                .contains(&l.to_ascii_lowercase().as_str())
        };
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
                "with code_length = {}, failed_confirm_budget = {} per {}, max_account_failures = {} and failures_forgotten_after = {}, a guesser succeeds within 30 days with probability up to {shown} (1,000 live codes; docs/security.md, \"Guessing odds\"); the limit is 1 %. Use longer codes or a smaller budget, or set recovery.accept_high_guessing_odds = true to accept the risk",
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
        if p.min_guess_score > 4 {
            return Err(bad(
                "passwords.min_guess_score",
                "must be between 0 (off) and 4 (zxcvbn's scores)",
            ));
        }
        if p.breach_api.is_set() && !p.breach_api.private() {
            return Err(bad(
                "passwords.breach_api",
                "must be https:// (or http:// to a loopback address): the range API learns the first 5 hex digits of each new password's SHA-1, and its answer decides whether the password is refused",
            ));
        }
        nonzero("passwords.breach_timeout", p.breach_timeout)?;
        Ok(())
    }
}

pub(super) fn nonzero(key: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(bad(key, "must be longer than zero"));
    }
    Ok(())
}

pub(super) fn rate(key: &str, r: Rate) -> Result<(), ConfigError> {
    if r.requests > 0 && r.window.is_zero() {
        return Err(bad(&format!("{key}.window"), "must be longer than zero"));
    }
    Ok(())
}

/// An origin as a browser sends it in `Origin`: `http(s)://host[:port]`, lowercase, nothing
/// after.
fn is_origin(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((v6, after)) => (
            v6,
            after
                .strip_prefix(':')
                .or(Some(after).filter(|a| !a.is_empty())),
        ),
        None => match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    host_ok && port_ok
}

#[cfg(test)]
mod origin_tests {
    #[test]
    fn origins_as_browsers_send_them() {
        for ok in [
            "https://app.example.com",
            "http://localhost:8080",
            "https://[::1]:8443",
            "https://[::1]",
        ] {
            assert!(super::is_origin(ok), "{ok}");
        }
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/",
            "https://App.example.com",
            "https://app.example.com:0",
            "https://[::1]x",
            "https://",
        ] {
            assert!(!super::is_origin(bad), "{bad}");
        }
    }
}
