//! Validation of what delivers: the mail transport, SMTP, webhooks and the reset page.

use super::validate::nonzero;
use super::{bad, Config, ConfigError, Transport};

impl Config {
    pub(super) fn validate_web(&self) -> Result<(), ConfigError> {
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

    pub(super) fn validate_webhooks(&self) -> Result<(), ConfigError> {
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
            if !w.url.is_set() {
                return Err(bad(&key("url"), "is required: http:// or https://"));
            }
            if w.include_password_hash && !w.url.private() {
                return Err(bad(
                    &key("include_password_hash"),
                    "needs an https:// url (or http:// to a loopback address): the hash would cross the network in clear",
                ));
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
                super::decode_secret(secret.expose()).map_err(|e| bad(&key("secret"), e))?;
            }
        }
        Ok(())
    }

    pub(super) fn validate_mail(&self) -> Result<(), ConfigError> {
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

    pub(super) fn validate_smtp(&self) -> Result<(), ConfigError> {
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
