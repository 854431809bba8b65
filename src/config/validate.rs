//! Validation: every rule a configuration must meet, each error naming its key.

use std::time::Duration;

use super::{bad, Config, ConfigError, Rate, Transport};

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
        self.validate_log()
    }

    fn validate_web(&self) -> Result<(), ConfigError> {
        let w = &self.web;
        let path_ok = w.path.len() > 1
            && w.path.starts_with('/')
            && !w.path.ends_with('/')
            && w.path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
            && !w.path.starts_with("/api/")
            && !["/healthz", "/readyz", "/openapi.json"].contains(&w.path.as_str());
        if !path_ok {
            return Err(bad(
                "web.path",
                "must be a path like \"/reset\" (letters, digits, / - _ .), not under /api/ or one of the service's own",
            ));
        }
        let url = w.public_url.as_str();
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !url.is_empty() && (!scheme_ok || url.contains(['#', '?', ' ', '"', '<', '>'])) {
            return Err(bad(
                "web.public_url",
                "must be empty or the page's public origin, like \"https://id.example.com\"",
            ));
        }
        let colour = w.accent_color.strip_prefix('#').unwrap_or_default();
        if colour.len() != 6 || !colour.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("web.accent_color", "must be a colour like \"#0b57d0\""));
        }
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        for (i, w) in self.webhooks.iter().enumerate() {
            let key = |k: &str| format!("webhooks[{i}].{k}");
            let name_ok = (1..=32).contains(&w.name.len())
                && w.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b));
            if !name_ok {
                return Err(bad(
                    &key("name"),
                    "must be 1 to 32 of a-z, 0-9, - and _ (it names the endpoint in metrics and commands)",
                ));
            }
            if self.webhooks[..i].iter().any(|o| o.name == w.name) {
                return Err(bad(&key("name"), format!("{:?} is used twice", w.name)));
            }
            let target =
                crate::outbox::webhook::Target::parse(&w.url).map_err(|e| bad(&key("url"), e))?;
            if w.include_password_hash && !target.private() {
                return Err(bad(
                    &key("include_password_hash"),
                    "needs an https:// url (or http:// to a loopback address): the hash would cross the network in clear",
                ));
            }
            for event in &w.events {
                if !crate::outbox::webhook::EVENTS.contains(&event.as_str()) {
                    return Err(bad(
                        &key("events"),
                        format!(
                            "{event:?} is not an event; the events are {}",
                            crate::outbox::webhook::EVENTS.join(", ")
                        ),
                    ));
                }
            }
            for (k, value) in [
                ("timeout", w.timeout),
                ("max_age", w.max_age),
                ("retry_initial", w.retry_initial),
            ] {
                nonzero(&key(k), value)?;
            }
            if w.retry_max < w.retry_initial {
                return Err(bad(
                    &key("retry_max"),
                    "must not be shorter than retry_initial",
                ));
            }
            // The secret itself is read where it is used (serve, check-config,
            // send-test-webhook): a systemd credential exists only for the service, and the
            // other commands need none. An inline one is checked here.
            if let Some(secret) = w.secret.as_ref().filter(|s| !s.expose().is_empty()) {
                crate::outbox::webhook::decode_secret(secret.expose())
                    .map_err(|e| bad(&key("secret"), e))?;
            }
        }
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
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
                "must be at least 1d (see README \"Guessing odds\")",
            ));
        }
        rate("recovery.failed_confirm_budget", r.failed_confirm_budget)
    }

    fn validate_mail(&self) -> Result<(), ConfigError> {
        nonzero("mail.retry_initial", self.mail.retry_initial)?;
        if self.mail.retry_max < self.mail.retry_initial {
            return Err(bad(
                "mail.retry_max",
                "must not be shorter than mail.retry_initial",
            ));
        }
        crate::mail_address::parse_mailbox(&self.mail.from).map_err(|e| bad("mail.from", e))?;
        self.dns_resolver()?;
        if !(1..=1000).contains(&self.mail.batch) {
            return Err(bad("mail.batch", "must be between 1 and 1000"));
        }
        Ok(())
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
        if p.min_guess_score > 4 {
            return Err(bad(
                "passwords.min_guess_score",
                "must be between 0 (off) and 4 (zxcvbn's scores)",
            ));
        }
        if !p.breach_api.is_empty() {
            let target = crate::outbox::webhook::Target::parse(&p.breach_api)
                .map_err(|e| bad("passwords.breach_api", e))?;
            if !target.private() {
                return Err(bad(
                    "passwords.breach_api",
                    "must be https:// (or http:// to a loopback address): the range API learns the first 5 hex digits of each new password's SHA-1, and its answer decides whether the password is refused",
                ));
            }
        }
        nonzero("passwords.breach_timeout", p.breach_timeout)?;
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
