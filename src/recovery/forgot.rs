//! Step 1: issue a code and queue the email that carries it.

use std::time::SystemTime;

use crate::config::Recovery;
use crate::crypto::{random_code, CodeKey};
use crate::store::outbox::{Kind, Queued};
use crate::store::resets::{IssueRefused, LiveCode};
use crate::store::users::User;
use crate::store::{unix_ms, Db, Result, StoreError};

#[derive(Debug, PartialEq, Eq)]
pub enum Forgot {
    /// The code is stored (as a MAC) and its email is in the outbox, not yet flushed.
    Queued,
    NoAccount,
}

/// How many fresh codes to draw when the drawn one is live for another account. With
/// 10^8 codes and thousands live, one collision is already rare; eight in a row means the
/// code space is too small for the load, which is an operator's problem, not a client's.
const DRAWS: usize = 8;

/// Replaces the account's code with a fresh one and queues its email (see `store::resets`).
/// An unknown address is answered after one read; issuing runs on a blocking thread.
pub async fn forgot(
    db: &Db,
    key: &CodeKey,
    config: &Recovery,
    email_key: &str,
    locale: Option<&str>,
    now: SystemTime,
) -> Result<Forgot> {
    // Most unknown addresses are answered by a plain read; issuing would refuse them
    // too, only more slowly. (Enumeration-safe mode wants the slow, equal work instead.)
    if !config.hide_unknown_accounts && db.user(email_key)?.is_none() {
        return Ok(Forgot::NoAccount);
    }
    let (key, config) = (key.clone(), config.clone());
    let (email_key, locale) = (email_key.to_string(), locale.map(str::to_string));
    db.blocking(move |db| issue(db, &key, &config, &email_key, locale.as_deref(), now))
        .await
}

/// Draws codes until one is free, and issues it (or, for an unknown address in
/// enumeration-safe mode, its decoy). May wait for the store: call it off the async threads.
fn issue(
    db: &Db,
    key: &CodeKey,
    config: &Recovery,
    email_key: &str,
    locale: Option<&str>,
    now: SystemTime,
) -> Result<Forgot> {
    let now_ms = unix_ms(now);
    let expires_ms = unix_ms(now + config.code_ttl);
    let mut decoy = false;
    for _ in 0..DRAWS {
        let code = random_code(config.code_length);
        let live = LiveCode {
            mac: key.mac(&code).to_vec(),
            issued_ms: now_ms,
            expires_ms,
            outbox_id: None, // set by the store to the entry it queues
            refused_clients: Vec::new(),
        };
        let kind = match decoy {
            false => Kind::Otp {
                code: code.clone(),
                ttl_secs: config.code_ttl.as_secs(),
            },
            true => Kind::Decoy,
        };
        let message = |user: &User| {
            Queued::new(user.email.clone(), kind.clone(), now_ms, Some(expires_ms))
                .in_locale(locale.map(str::to_string))
        };
        let issued = match decoy {
            false => db.issue_code(email_key, live, message)?,
            true => db.issue_decoy(email_key, live, message)?,
        };
        match issued {
            Ok(()) if decoy => return Ok(Forgot::NoAccount),
            Ok(()) => return Ok(Forgot::Queued),
            // Enumeration-safe mode: do the same work for the decoy record instead.
            Err(IssueRefused::NoAccount) if config.hide_unknown_accounts => decoy = true,
            Err(IssueRefused::NoAccount) => return Ok(Forgot::NoAccount),
            Err(IssueRefused::CodeTaken) => continue,
        }
    }
    Err(StoreError::Corrupt(format!(
        "{DRAWS} codes in a row were already live; raise recovery.code_length"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::mail_address::validate;
    use crate::store::users::User;

    #[tokio::test]
    async fn issues_a_code_whose_mac_is_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        let email = validate("Ada@Example.com").unwrap();
        db.add_user(&email.key, &User::new(&email, None, 0))
            .unwrap();
        let key = CodeKey::new(b"secret");
        let config = Recovery::default();
        let now = SystemTime::now();
        let nobody = forgot(&db, &key, &config, "nobody@example.com", None, now);
        assert_eq!(nobody.await.unwrap(), Forgot::NoAccount);
        let ada = forgot(&db, &key, &config, &email.key, None, now);
        assert_eq!(ada.await.unwrap(), Forgot::Queued);
        let due = db.outbox_due(unix_ms(now), 10).unwrap();
        let (_, message) = &due.entries[0];
        assert_eq!(
            message.to, "Ada@Example.com",
            "mail goes to the stored address"
        );
        let Kind::Otp { code, ttl_secs } = &message.kind else {
            panic!("an OTP message was queued, not {:?}", message.kind);
        };
        assert_eq!(*ttl_secs, 600);
        assert_eq!(
            db.code_owner(&key.mac(code)).unwrap().as_deref(),
            Some("ada@example.com")
        );
        let reset = db.reset(&email.key).unwrap().unwrap();
        assert_eq!(
            reset.code.unwrap().expires_ms,
            unix_ms(now + config.code_ttl)
        );
    }
}
