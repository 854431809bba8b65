//! Does the sending domain's DNS match what resetgate sends? The checks behind `resetgate
//! check-mail`, which `serve` also runs at start-up and once a day (docs/mail-auth.md).
//!
//! - [`dkim`]: the key at `<selector>._domainkey.<d>` verifies a probe signed with
//!   `mail.dkim`'s key (the outbox's own signer; mail-auth verifies);
//! - [`dmarc`]: a DMARC record exists for the From domain and the DKIM `d=` aligns with it;
//! - [`spf`]: the envelope sender's SPF record allows `mail.outbound_ips`, or at least
//!   parses and stays within 10 lookups;
//! - the relay: the outbox's own start-up probe (connect, TLS, EHLO, AUTH, QUIT).
//!
//! Records are parsed and verified by mail-auth over its hickory resolver ([`resolver`]);
//! nothing here parses a DNS record by hand.

pub mod dkim;
pub mod dmarc;
pub mod resolver;
pub mod spf;

use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, ConfigError, Transport};
use crate::outbox::catalog::Catalog;
use crate::outbox::templates::Letterhead;

/// How often `serve` checks again after its start-up check.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Mail goes out and is authenticated, but something should change (`p=none`, SPF not
    /// evaluated for want of `mail.outbound_ips`).
    Warn,
    Fail,
    /// Could not check: the DNS server did not answer, or answered with an error.
    Unknown,
    /// Does not apply (no relay with the file transport).
    Skip,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
            Status::Skip => "skip",
        }
    }

    /// The value of the gauge `resetgate_mail_auth`: 1 pass, 0 fail, -1 unknown.
    pub fn gauge(self) -> i64 {
        match self {
            Status::Pass | Status::Warn => 1,
            Status::Fail => 0,
            Status::Unknown | Status::Skip => -1,
        }
    }
}

/// A DNS record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

impl Record {
    pub fn txt(name: impl Into<String>, value: impl Into<String>) -> Record {
        Record {
            name: name.into(),
            kind: "TXT",
            value: value.into(),
        }
    }

    /// The record as a zone file line; the value in quoted strings of at most 255 bytes,
    /// as a TXT record's strings must be (receivers join them).
    pub fn zone_line(&self) -> String {
        let strings: Vec<String> = self
            .value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{}. IN {} {}", self.name, self.kind, strings.join(" "))
    }
}

/// One check's outcome: its verdict, the reason in one sentence, and what to publish.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub check: &'static str,
    pub status: Status,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<Record>,
}

impl Outcome {
    fn new(check: &'static str, status: Status, reason: impl Into<String>) -> Outcome {
        Outcome {
            check,
            status,
            reason: reason.into(),
            publish: None,
        }
    }

    fn publish(mut self, record: Record) -> Outcome {
        self.publish = Some(record);
        self
    }
}

/// The four outcomes, always in the order dkim, dmarc, spf, relay.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Outcome>,
}

impl Report {
    /// `check-mail`'s exit code: 1 when a check failed, else 3 when one could not be made,
    /// else 0 (warnings pass).
    pub fn exit_code(&self) -> u8 {
        let any = |s| self.checks.iter().any(|c| c.status == s);
        if any(Status::Fail) {
            1
        } else if any(Status::Unknown) {
            3
        } else {
            0
        }
    }
}

/// What the checks share: the resolver, the From domain, and a probe message signed as the
/// outbox signs (None without `mail.dkim`).
pub struct Context {
    pub resolver: Result<mail_auth::MessageAuthenticator, String>,
    /// The From address, which is also the envelope sender (SPF's identity).
    pub sender: String,
    pub from_domain: String,
    pub record: Option<Record>,
    pub probe: Option<Vec<u8>>,
}

impl Context {
    pub fn new(config: &Config) -> Result<Context, ConfigError> {
        let catalog = Arc::new(Catalog::load(&config.mail.templates_dir)?);
        let letterhead = Letterhead::new(config, "check-mail", catalog)?;
        let from = letterhead.from_addr.clone();
        let from_domain = from.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        let record = letterhead
            .dkim
            .as_ref()
            .map(|s| Record::txt(s.record_name(), s.record()));
        let probe = match letterhead.dkim {
            None => None,
            Some(_) => {
                let now = crate::store::unix_ms(std::time::SystemTime::now());
                let message = letterhead
                    .render_test(0, &from, now)
                    .map_err(|e| ConfigError(format!("`mail.dkim`: cannot sign a probe: {e}")))?;
                Some(message.bytes)
            }
        };
        Ok(Context {
            resolver: resolver::build(config.dns_resolver()?),
            sender: from,
            from_domain,
            record,
            probe,
        })
    }
}

/// Runs the four checks at once.
pub async fn run(config: &Config) -> Result<Report, ConfigError> {
    let context = Context::new(config)?;
    let (dkim, dmarc, spf, relay) = tokio::join!(
        dkim::check(&context),
        dmarc::check(&context),
        spf::check(&context, config),
        relay(config),
    );
    Ok(Report {
        checks: vec![dkim, dmarc, spf, relay],
    })
}

/// The relay: the outbox's start-up probe (connect, TLS as configured with the certificate
/// checked for the host's name, EHLO, AUTH when configured, QUIT).
async fn relay(config: &Config) -> Outcome {
    if config.mail.transport != Transport::Smtp {
        return Outcome::new(
            "relay",
            Status::Skip,
            "mail.transport is \"file\": no relay to check",
        );
    }
    let smtp = &config.mail.smtp;
    let probe = match crate::outbox::Transport::from_config(config) {
        Ok(transport) => transport.probe().await,
        Err(e) => Err(e.to_string()),
    };
    match probe {
        Ok(()) => Outcome::new(
            "relay",
            Status::Pass,
            format!(
                "{}:{} (security {}) accepted a connection{}",
                smtp.host,
                smtp.port,
                format!("{:?}", smtp.security).to_lowercase(),
                if smtp.username.is_empty() {
                    ""
                } else {
                    " and the login"
                }
            ),
        ),
        Err(e) => Outcome::new(
            "relay",
            Status::Fail,
            format!("{}:{} is not usable: {e}", smtp.host, smtp.port),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_split_into_strings_of_255_bytes() {
        let record = Record::txt("s._domainkey.example.com", "a".repeat(300));
        let line = record.zone_line();
        assert_eq!(
            line,
            format!(
                "s._domainkey.example.com. IN TXT \"{}\" \"{}\"",
                "a".repeat(255),
                "a".repeat(45)
            )
        );
    }

    #[test]
    fn a_failure_outweighs_an_unknown() {
        let report = |statuses: &[Status]| Report {
            checks: statuses
                .iter()
                .map(|s| Outcome::new("dkim", *s, ""))
                .collect(),
        };
        assert_eq!(
            report(&[Status::Pass, Status::Warn, Status::Skip]).exit_code(),
            0
        );
        assert_eq!(report(&[Status::Pass, Status::Unknown]).exit_code(), 3);
        assert_eq!(report(&[Status::Unknown, Status::Fail]).exit_code(), 1);
    }
}
