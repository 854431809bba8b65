//! SPF: the envelope sender's domain (resetgate's envelope sender is the From address) has
//! exactly one SPF record, which mail-auth parses, that needs at most 10 DNS lookups
//! (RFC 7208 §4.6.4), and that mail-auth evaluates to pass for each of `mail.outbound_ips`.
//! Without them the record's authorisation cannot be judged, and the outcome says so.

use std::net::IpAddr;
use std::sync::Arc;

use mail_auth::common::cache::NoCache;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::{Macro, Mechanism, Spf};
use mail_auth::{MessageAuthenticator, SpfResult, Txt};

use super::resolver::{classify, Failed};
use super::{Context, Outcome, Record, Status};
use crate::config::Config;

/// RFC 7208 §4.6.4: the terms that cause DNS lookups, counted over the whole evaluation.
const MAX_LOOKUPS: usize = 10;

pub async fn check(context: &Context, config: &Config) -> Outcome {
    let resolver = match &context.resolver {
        Ok(r) => r,
        Err(e) => return Outcome::new("spf", Status::Unknown, e.clone()),
    };
    let domain = context.from_domain.as_str();
    let suggested = Record::txt(domain, suggestion(config));
    let record = match record(resolver, domain).await {
        Ok(record) => record,
        Err(Failed::Missing) => {
            return Outcome::new("spf", Status::Fail, format!("no SPF record at {domain}"))
                .publish(suggested)
        }
        Err(Failed::Unusable(e)) => {
            return Outcome::new(
                "spf",
                Status::Fail,
                format!("the SPF record of {domain} is not valid: {e}"),
            )
        }
        Err(Failed::Unreachable(e)) => {
            return Outcome::new(
                "spf",
                Status::Unknown,
                format!("could not look up the SPF record of {domain}: {e}"),
            )
        }
    };
    let lookups = match count_lookups(resolver, &record).await {
        Ok(n) => n,
        Err(e) => return Outcome::new("spf", Status::Unknown, e),
    };
    if lookups > MAX_LOOKUPS {
        return Outcome::new(
            "spf",
            Status::Fail,
            format!("the SPF record of {domain} needs more than {MAX_LOOKUPS} DNS lookups (includes, a, mx, ptr, exists, redirect): receivers stop there and answer permerror"),
        );
    }
    let ips = &config.mail.outbound_ips;
    if ips.is_empty() {
        return Outcome::new(
            "spf",
            Status::Warn,
            format!("the SPF record of {domain} is valid and needs {lookups} of {MAX_LOOKUPS} lookups; not evaluated, as mail.outbound_ips is empty"),
        );
    }
    let helo = match config.mail.smtp.helo_name.as_str() {
        "" => "localhost",
        name => name,
    };
    for ip in ips {
        let params = SpfParameters::verify_mail_from(*ip, helo, "localhost", &context.sender);
        match resolver.verify_spf(params).await.result() {
            SpfResult::Pass => {}
            SpfResult::TempError => {
                return Outcome::new(
                    "spf",
                    Status::Unknown,
                    format!("could not evaluate the SPF record of {domain} for {ip} (temperror)"),
                )
            }
            other => {
                return Outcome::new(
                    "spf",
                    Status::Fail,
                    format!(
                        "the SPF record of {domain} does not allow {ip} ({})",
                        other.to_string().to_ascii_lowercase()
                    ),
                )
                .publish(suggested)
            }
        }
    }
    let list: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    Outcome::new(
        "spf",
        Status::Pass,
        format!(
            "the SPF record of {domain} allows {} ({lookups} of {MAX_LOOKUPS} lookups)",
            list.join(", ")
        ),
    )
}

/// The domain's one SPF record, parsed: none is Missing, two or one that does not parse
/// are Unusable (receivers answer permerror).
async fn record(resolver: &MessageAuthenticator, domain: &str) -> Result<Spf, Failed> {
    let lookup = resolver
        .resolver()
        .txt_lookup(format!("{domain}."))
        .await
        .map_err(|e| classify(e.into()))?;
    let records: Vec<Vec<u8>> = lookup
        .answers()
        .iter()
        .filter_map(|answer| match &answer.data {
            mail_auth::hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect(),
            ),
            _ => None,
        })
        .filter(|text: &Vec<u8>| is_spf(text))
        .collect();
    match records.as_slice() {
        [] => Err(Failed::Missing),
        [one] => Spf::parse(one)
            .map_err(|e| Failed::Unusable(format!("{e} in {:?}", String::from_utf8_lossy(one)))),
        _ => Err(Failed::Unusable(format!(
            "{} TXT records start with v=spf1, and a domain may have one",
            records.len()
        ))),
    }
}

/// RFC 7208 §4.5: a record starts with "v=spf1" followed by a space or its end.
fn is_spf(text: &[u8]) -> bool {
    text.len() >= 6
        && text[..6].eq_ignore_ascii_case(b"v=spf1")
        && text.get(6).is_none_or(|b| *b == b' ')
}

/// The DNS lookups an evaluation may make, following includes and redirects whose target
/// is a plain name (one with a macro counts once, as its target depends on the sender).
/// Counting stops past the limit. Err: the DNS could not be asked.
async fn count_lookups(resolver: &MessageAuthenticator, top: &Spf) -> Result<usize, String> {
    let mut count = 0;
    let mut pending: Vec<Arc<Spf>> = Vec::new();
    let mut next = Some(top.clone());
    while let Some(record) = next.take().map(Arc::new).or_else(|| pending.pop()) {
        let mut targets = Vec::new();
        for directive in record.directives.iter() {
            match &directive.mechanism {
                Mechanism::Include { macro_string } => {
                    count += 1;
                    targets.extend(literal(macro_string));
                }
                Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr { .. }
                | Mechanism::Exists { .. } => count += 1,
                Mechanism::All | Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. } => {}
            }
        }
        if let Some(redirect) = &record.redirect {
            count += 1;
            targets.extend(literal(redirect));
        }
        if count > MAX_LOOKUPS {
            return Ok(count);
        }
        for target in targets {
            let found = resolver
                .txt_lookup::<Spf>(format!("{target}."), None::<&NoCache<Box<str>, Txt>>)
                .await;
            match found.map_err(classify) {
                Ok(spf) => pending.push(spf),
                // A missing target is the receiver's permerror, not a lookup more.
                Err(Failed::Missing | Failed::Unusable(_)) => {}
                Err(Failed::Unreachable(e)) => {
                    return Err(format!("could not look up the SPF record of {target}: {e}"))
                }
            }
        }
    }
    Ok(count)
}

fn literal(m: &Macro) -> Option<String> {
    match m {
        Macro::Literal(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

/// The record suggested where there is none: the configured outbound addresses; else the
/// relay's own address (`a:`) when it is named; else the domain's MX hosts.
fn suggestion(config: &Config) -> String {
    let ips = &config.mail.outbound_ips;
    let host = config.mail.smtp.host.as_str();
    let terms: Vec<String> = if !ips.is_empty() {
        ips.iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => format!("ip4:{v4}"),
                IpAddr::V6(v6) => format!("ip6:{v6}"),
            })
            .collect()
    } else if host.parse::<IpAddr>().is_err() && host != "localhost" {
        vec![format!("a:{host}")]
    } else {
        vec!["mx".to_string()]
    };
    format!("v=spf1 {} ~all", terms.join(" "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn spf_records_are_told_by_their_version() {
        assert!(super::is_spf(b"v=spf1 -all"));
        assert!(super::is_spf(b"V=SPF1"));
        assert!(!super::is_spf(b"v=spf10 -all"));
        assert!(!super::is_spf(b"google-site-verification=x"));
    }
}
