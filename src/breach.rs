//! The optional online check of a new password against Have I Been Pwned's range API
//! (`passwords.breach_api`), with k-anonymity: only the first 5 hex digits of the password's
//! SHA-1 leave the machine, the answer lists every known suffix under that prefix, and
//! `Add-Padding: true` makes every answer about the same size. It runs only for a
//! password-reset that holds its confirmation and passed the offline policy, so a stranger
//! cannot make resetgate query anything. Availability wins: an answer that does not come
//! within `passwords.breach_timeout`, or any failure, skips the check (logged at most once a
//! minute, counted as `resetgate_breach_checks_total{outcome="skipped"}`).
//!
//! The connection is the webhooks' (`outbox::webhook::client`): hyper's client over rustls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio_rustls::TlsConnector;

use crate::config::HttpUrl as Target;
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::outbox::webhook::client::connect;

/// A range answer is about 800–1,000 lines of 40 bytes; anything past this is refused.
const MAX_ANSWER: usize = 1024 * 1024;

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The range lists the password's hash (with a count above zero).
    Listed,
    Clear,
    /// No usable answer; the reason.
    Skipped(String),
}

pub struct Breach {
    target: Target,
    tls: Option<TlsConnector>,
    timeout: Duration,
    metrics: Arc<Metrics>,
    warned: crate::throttle::Throttle,
}

impl Breach {
    /// The check `passwords.breach_api` asks for, if any.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Option<Breach>, ConfigError> {
        let p = &config.passwords;
        if !p.breach_api.is_set() {
            return Ok(None);
        }
        let target = p.breach_api.clone();
        let tls = match target.tls {
            true => Some(crate::outbox::tls::connector(
                std::path::Path::new(""),
                "passwords.breach_api",
            )?),
            false => None,
        };
        Ok(Some(Breach {
            target,
            tls,
            timeout: p.breach_timeout,
            metrics,
            warned: Default::default(),
        }))
    }

    /// Whether the range API lists `password`; counted, and a skip logged.
    pub async fn check(&self, password: &str) -> Verdict {
        let (prefix, suffix) = split_sha1(password);
        let verdict = match tokio::time::timeout(self.timeout, self.ask(&prefix)).await {
            Ok(Ok(range)) if listed(&range, &suffix) => Verdict::Listed,
            Ok(Ok(_)) => Verdict::Clear,
            Ok(Err(reason)) => Verdict::Skipped(reason),
            Err(_) => Verdict::Skipped(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )),
        };
        let outcome = match &verdict {
            Verdict::Listed => "listed",
            Verdict::Clear => "clear",
            Verdict::Skipped(reason) => {
                if self.warned.ready() {
                    tracing::warn!(reason = reason.as_str(), "the online password check (passwords.breach_api) was skipped; the password-reset goes on");
                }
                "skipped"
            }
        };
        self.metrics.breach_check(outcome);
        verdict
    }

    /// `GET <base>/range/<prefix>`: the answer's text.
    async fn ask(&self, prefix: &str) -> Result<String, String> {
        let mut conn = connect(&self.target, self.tls.as_ref()).await?;
        let base = self.target.path.split('?').next().unwrap_or("/");
        let path = format!("{}/range/{prefix}", base.trim_end_matches('/'));
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, self.target.authority())
            .header(
                hyper::header::USER_AGENT,
                concat!("resetgate/", env!("CARGO_PKG_VERSION")),
            )
            .header("add-padding", "true")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("request: {e}"))?;
        let answer = conn
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        if answer.status() != hyper::StatusCode::OK {
            return Err(format!("HTTP {}", answer.status().as_u16()));
        }
        let body = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| "the answer is not text".into())
    }
}

/// The password's SHA-1 in upper-case hex: the 5 digits that are sent, the 35 that are not.
fn split_sha1(password: &str) -> (String, String) {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    (hex[..5].to_string(), hex[5..].to_string())
}

/// Whether `range` (lines `SUFFIX:COUNT`) lists `suffix` with a count above zero (padding
/// lines have count 0).
fn listed(range: &str, suffix: &str) -> bool {
    range.lines().any(|line| match line.trim().split_once(':') {
        Some((s, count)) => {
            s.eq_ignore_ascii_case(suffix) && count.trim().parse().unwrap_or(0u64) > 0
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_five_digits_of_the_sha1_are_sent_and_padding_does_not_count() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8.
        let (prefix, suffix) = split_sha1("password");
        assert_eq!(prefix, "5BAA6");
        assert_eq!(suffix, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
        let range = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n1e4c9b93f3f0682250b6cf8331b7ee68fd8:52256179\r\n";
        assert!(listed(range, &suffix), "upper or lower case");
        let padded = "1E4C9B93F3F0682250B6CF8331B7EE68FD8:0\r\n";
        assert!(!listed(padded, &suffix), "a padding line");
        assert!(!listed("", &suffix));
    }
}
