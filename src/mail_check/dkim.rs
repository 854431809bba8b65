//! DKIM: the TXT record at `<selector>._domainkey.<d>` must hold the public half of
//! `mail.dkim`'s key, of the same type, not revoked and not in testing (`t=y`). The proof is
//! the strongest there is: mail-auth verifies a probe that the outbox's signer signed.

use mail_auth::common::cache::NoCache;
use mail_auth::common::crypto::CryptoError;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::DkimError;
use mail_auth::{AuthenticatedMessage, DkimResult, Error, Txt};

use super::resolver::{classify, Failed};
use super::{Context, Outcome, Status};

/// mail-auth's flag for `t=y` in a parsed key record's `f` (crate-private there; the
/// unit test below pins it).
const TESTING: u64 = 0x10;

pub async fn check(context: &Context) -> Outcome {
    let (Some(record), Some(probe)) = (&context.record, &context.probe) else {
        return Outcome::new(
            "dkim",
            Status::Fail,
            "mail.dkim is not set: mail goes out unsigned, which receivers trust less and DMARC cannot align with",
        );
    };
    let resolver = match &context.resolver {
        Ok(r) => r,
        Err(e) => return Outcome::new("dkim", Status::Unknown, e.clone()),
    };
    let name = &record.name;
    let fail = |reason: String| Outcome::new("dkim", Status::Fail, reason).publish(record.clone());
    let key = resolver
        .txt_lookup::<DomainKey>(format!("{name}."), None::<&NoCache<Box<str>, Txt>>)
        .await;
    if let Err(Error::Dkim(DkimError::RevokedPublicKey)) = key {
        return fail(format!("the key at {name} is revoked (empty p=)"));
    }
    match key.map_err(classify) {
        Err(Failed::Missing) => return fail(format!("no DKIM key is published at {name}")),
        Err(Failed::Unreachable(e)) => {
            return Outcome::new(
                "dkim",
                Status::Unknown,
                format!("could not look up {name}: {e}"),
            )
        }
        Err(Failed::Unusable(e)) => {
            return fail(format!("the TXT record at {name} is not a usable DKIM key ({e})"))
        }
        Ok(key) if key.f & TESTING != 0 => {
            return fail(format!(
                "the key at {name} is marked t=y (testing): receivers may treat signed mail as unsigned"
            ))
        }
        Ok(_) => {}
    }
    let Some(message) = AuthenticatedMessage::parse(probe) else {
        return Outcome::new("dkim", Status::Fail, "the signed probe does not parse");
    };
    let verified = resolver.verify_dkim(&message).await;
    match verified.first().map(|o| o.result()) {
        Some(DkimResult::Pass) => Outcome::new(
            "dkim",
            Status::Pass,
            format!("the key at {name} verifies a message signed with mail.dkim.key_file"),
        ),
        Some(DkimResult::TempError(e)) => Outcome::new(
            "dkim",
            Status::Unknown,
            format!("could not look up {name}: {e}"),
        ),
        Some(DkimResult::Fail(Error::Crypto(CryptoError::IncompatibleAlgorithms))) => fail(format!(
            "the key at {name} is of another type (k=) than mail.dkim.key_file"
        )),
        Some(DkimResult::Fail(_)) => fail(format!(
            "the key at {name} does not verify a message signed with mail.dkim.key_file: it is another key"
        )),
        other => fail(format!(
            "a message signed with mail.dkim.key_file does not verify against {name} ({other:?})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;

    // An Ed25519 public key from RFC 8463's example.
    const P: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    #[test]
    fn testing_flag_is_the_bit_mail_auth_sets() {
        let testing = DomainKey::parse(format!("v=DKIM1; k=ed25519; t=y; p={P}").as_bytes());
        assert_ne!(testing.expect("parses").f & super::TESTING, 0);
        let production = DomainKey::parse(format!("v=DKIM1; k=ed25519; p={P}").as_bytes());
        assert_eq!(production.expect("parses").f & super::TESTING, 0);
    }
}
