//! DMARC: a record for the From domain (its own at `_dmarc.<domain>`, else a parent's, as
//! receivers walk the tree) with which the DKIM `d=` aligns under its `adkim`; `p=none`
//! is a warning. mail-auth decides: it evaluates the probe as a receiver would.

use mail_auth::common::cache::NoCache;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::{Alignment, Dmarc, Policy};
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcResult, MessageAuthenticator, SpfOutput, Txt,
};

use super::resolver::{classify, Failed};
use super::{Context, Outcome, Record, Status};

/// What `check-mail` suggests where there is no record: quarantine what fails, alignment
/// relaxed (a subdomain's signature aligns).
const SUGGESTED: &str = "v=DMARC1; p=quarantine; adkim=r; aspf=r";

pub async fn check(context: &Context) -> Outcome {
    let resolver = match &context.resolver {
        Ok(r) => r,
        Err(e) => return Outcome::new("dmarc", Status::Unknown, e.clone()),
    };
    let domain = context.from_domain.as_str();
    let suggested = Record::txt(format!("_dmarc.{domain}"), SUGGESTED);
    let (at, record) = match find(resolver, domain).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Outcome::new(
                "dmarc",
                Status::Fail,
                format!("no DMARC record at _dmarc.{domain} (nor at a parent domain)"),
            )
            .publish(suggested)
        }
        Err(e) => return Outcome::new("dmarc", Status::Unknown, e),
    };
    let Some(probe) = &context.probe else {
        return Outcome::new(
            "dmarc",
            Status::Fail,
            format!(
                "mail.dkim is not set: no DKIM signature to align with the From domain {domain}"
            ),
        );
    };
    let Some(message) = AuthenticatedMessage::parse(probe) else {
        return Outcome::new("dmarc", Status::Fail, "the signed probe does not parse");
    };
    let Some(signature) = message.dkim_headers.first().map(|h| &h.header) else {
        return Outcome::new("dmarc", Status::Fail, "the probe carries no DKIM signature");
    };
    // Whether the signature verifies is the DKIM check's question; this one asks whether a
    // valid one would align, so it counts the probe's signature as passing. The SPF side is
    // left out (result none): alignment through DKIM is what resetgate controls.
    let dkim = [DkimOutput::pass().with_signature(signature)];
    let spf = SpfOutput::new(domain.to_string());
    let output = resolver
        .verify_dmarc(DmarcParameters::new(&message, &dkim, domain, &spf))
        .await;
    let adkim = match record.adkim {
        Alignment::Strict => "s",
        Alignment::Relaxed => "r",
    };
    let d = &signature.d;
    match output.dkim_result() {
        DmarcResult::Pass if output.policy() == Policy::None => Outcome::new(
            "dmarc",
            Status::Warn,
            format!("d={d} aligns with {domain} (adkim={adkim}), but the policy at _dmarc.{at} is p=none: receivers act on nothing that fails"),
        ),
        DmarcResult::Pass => Outcome::new(
            "dmarc",
            Status::Pass,
            format!(
                "d={d} aligns with {domain} (adkim={adkim}); the policy at _dmarc.{at} is p={}",
                policy(output.policy())
            ),
        ),
        DmarcResult::Fail(_) => Outcome::new(
            "dmarc",
            Status::Fail,
            format!("the DKIM domain d={d} does not align with the From domain {domain} under adkim={adkim} (_dmarc.{at}): sign with mail.dkim.domain = \"{domain}\" or relax adkim"),
        ),
        DmarcResult::TempError(e) => Outcome::new(
            "dmarc",
            Status::Unknown,
            format!("could not evaluate DMARC for {domain}: {e}"),
        ),
        DmarcResult::PermError(_) | DmarcResult::None => Outcome::new(
            "dmarc",
            Status::Fail,
            format!("the DMARC record at _dmarc.{at} does not apply to {domain} (no p= tag)"),
        )
        .publish(suggested),
    }
}

/// The DMARC record that names the From domain's policy, and the domain it is published
/// for: the domain's own, else the nearest parent's (two labels at least). Err: the DNS
/// could not be asked.
async fn find(
    resolver: &MessageAuthenticator,
    domain: &str,
) -> Result<Option<(String, std::sync::Arc<Dmarc>)>, String> {
    let labels: Vec<&str> = domain.split('.').collect();
    for start in 0..labels.len().saturating_sub(1) {
        let name = labels[start..].join(".");
        let found = resolver
            .txt_lookup::<Dmarc>(format!("_dmarc.{name}."), None::<&NoCache<Box<str>, Txt>>)
            .await;
        match found.map_err(classify) {
            Ok(record) => return Ok(Some((name, record))),
            Err(Failed::Missing | Failed::Unusable(_)) => continue,
            Err(Failed::Unreachable(e)) => {
                return Err(format!("could not look up _dmarc.{name}: {e}"))
            }
        }
    }
    Ok(None)
}

fn policy(p: Policy) -> &'static str {
    match p {
        Policy::None | Policy::Unspecified => "none",
        Policy::Quarantine => "quarantine",
        Policy::Reject => "reject",
    }
}
