//! Layered configuration: built-in defaults → TOML file → `RESETGATE_<SECTION>__<KEY>`.
//!
//! Every key a user can set is shown, with its default and a one-line comment, in the
//! shipped `config.toml`. Validation names the key in every error, so a typo or a bad
//! value stops the service at start-up (exit code 2) with a message a person can act on.

mod defaults;
mod duration;
mod net;
mod quantity;
mod secret;
mod sections;
pub mod size;
mod url;
mod validate;
mod validate_delivery;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;

pub use net::{nets, Net};
pub use secret::{
    check_private, decode_key, decode_secret, weak_secret, Secret, MIN_SECRET_BYTES,
    SPEC_EXAMPLE_SECRET,
};
pub use sections::*;
pub use url::HttpUrl;

/// A configuration problem, always naming the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The admin socket's name in the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

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

    /// How much account history is kept.
    pub fn history_keep(&self) -> crate::store::history::Keep {
        crate::store::history::Keep {
            per_account: self.history.per_account,
            keep_ms: self.history.keep.as_millis() as u64,
        }
    }

    /// The admin socket through which the CLI talks to the running service.
    /// Where the reset page's text files are: `web.templates_dir`, or `mail.templates_dir`.
    pub fn page_templates(&self) -> &std::path::Path {
        if self.web.templates_dir.as_os_str().is_empty() {
            &self.mail.templates_dir
        } else {
            &self.web.templates_dir
        }
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.storage.data_dir.join(ADMIN_SOCKET)
    }

    /// The directory the file transport writes `.eml` files into.
    pub fn mail_dir(&self) -> PathBuf {
        if self.mail.file.dir.as_os_str().is_empty() {
            self.storage.data_dir.join("mail")
        } else {
            self.mail.file.dir.clone()
        }
    }

    /// The DNS server of `mail.dns_resolver` (port 53 unless given); None: the system's.
    pub fn dns_resolver(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let text = self.mail.dns_resolver.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let addr = text
            .parse()
            .or_else(|_| text.parse().map(|ip| std::net::SocketAddr::new(ip, 53)));
        addr.map(Some).map_err(|_| {
            bad(
                "mail.dns_resolver",
                format!("{text:?} is not an address like \"192.0.2.53\", \"192.0.2.53:5353\" or \"[2001:db8::53]:53\""),
            )
        })
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
        let resolved = secret::resolve(
            "server.secret_file",
            self.server.secret.as_ref(),
            self.server.secret_file.as_deref(),
            "server_secret",
        )?;
        secret::strong_enough("server.secret", resolved)
    }

    /// The signing key of webhook `i`: its `secret` or `secret_file` (`whsec_` and the key
    /// in base64), decoded.
    pub fn webhook_key(&self, i: usize) -> Result<Vec<u8>, ConfigError> {
        let w = &self.webhooks[i];
        let file_key = format!("webhooks[{i}].secret_file");
        let credential = format!("webhook_{}", w.name);
        let secret = secret::resolve(
            &file_key,
            w.secret.as_ref(),
            w.secret_file.as_deref(),
            &credential,
        )?;
        let Some(secret) = secret else {
            return Err(bad(
                &format!("webhooks[{i}].secret"),
                "is required (or secret_file): \"whsec_\" and a key in base64",
            ));
        };
        decode_secret(secret.expose()).map_err(|e| bad(&format!("webhooks[{i}].secret"), e))
    }

    /// The admin token from `admin.token` or `admin.token_file`, if configured.
    pub fn admin_token(&self) -> Result<Option<Secret>, ConfigError> {
        let resolved = secret::resolve(
            "admin.token_file",
            self.admin.token.as_ref(),
            self.admin.token_file.as_deref(),
            "admin_token",
        )?;
        secret::strong_enough("admin.token", resolved)
    }
}

/// "`server.listen`: invalid socket address syntax (in config.toml TOML file)": the key as
/// written in the file, whichever layer it came from.
fn describe(e: figment::Error) -> String {
    // An array's index as the TOML table is written: `webhooks[0].url`.
    let mut key = String::new();
    for part in &e.path {
        match part.parse::<usize>() {
            Ok(i) => key.push_str(&format!("[{i}]")),
            Err(_) if key.is_empty() => key.push_str(&part.to_lowercase()),
            Err(_) => key.push_str(&format!(".{}", part.to_lowercase())),
        }
    }
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

/// An IP network; a bare address is a single-host network.
pub fn parse_net(entry: &str) -> Result<IpNet, String> {
    Net::parse(entry).map(|n| n.0)
}

#[cfg(test)]
mod tests;
