//! Step 3: the password is set, once, by the client that confirmed.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::crypto::{CodeKey, Hasher};
use crate::mail_address::Email;
use crate::store::confirm::NotReset;
use crate::store::outbox::{Kind, Queued};
use crate::store::resets::{decoy_key, Confirmation};
use crate::store::users::User;
use crate::store::{unix_ms, Db, Result};

use super::policy;

/// How long the "your password was changed" notice may wait for delivery.
const NOTICE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, PartialEq, Eq)]
pub enum Reset {
    Done,
    NoAccount,
    /// No live confirmation that this request may use.
    NotConfirmed,
    /// The password breaks the policy; the text is for the end user.
    Policy(String),
}

/// What password-reset needs besides the store.
pub struct ResetRequest<'a> {
    pub email: &'a Email,
    pub password: &'a str,
    pub session: Option<&'a str>,
    pub client: IpAddr,
    /// The catalog locale of the "password changed" notice.
    pub locale: Option<String>,
}

/// Who may use a confirmation: the holder of its `resetSession`, or else (unless sessions
/// are required, or a password-reset was refused from the confirming address while the
/// code was live: `session_only`) the client address that confirmed.
#[derive(Clone)]
struct Acceptor {
    key: CodeKey,
    session: Option<String>,
    require_session: bool,
    client: String,
}

impl Acceptor {
    fn new(key: &CodeKey, config: &Config, req: &ResetRequest<'_>) -> Acceptor {
        Acceptor {
            key: key.clone(),
            session: req.session.map(str::to_string),
            require_session: config.recovery.require_session,
            client: req.client.to_canonical().to_string(),
        }
    }

    fn accepts(&self, c: &Confirmation) -> bool {
        match &self.session {
            Some(session) => self.key.verify(session, &c.session_mac),
            None => !self.require_session && !c.session_only && c.client == self.client,
        }
    }
}

/// The cheap checks, before any hashing: `None` when the request may go on to
/// [`reset_password`], else the answer. Only a request that holds the confirmation gets
/// past this, so what the caller counts after it (a per-account limit) cannot be spent by
/// someone who merely knows the address.
pub fn reset_ready(
    db: &Db,
    key: &CodeKey,
    config: &Config,
    req: &ResetRequest<'_>,
) -> Result<Option<Reset>> {
    let k = &req.email.key;
    if db.user(k)?.is_none() {
        return Ok(Some(Reset::NoAccount));
    }
    let accept = Acceptor::new(key, config, req);
    if !db
        .confirmation(k, unix_ms(SystemTime::now()))?
        .is_some_and(|c| accept.accepts(&c))
    {
        return Ok(Some(Reset::NotConfirmed));
    }
    if let Err(why) = policy::check(req.password, &req.email.stored, &config.passwords) {
        return Ok(Some(Reset::Policy(why)));
    }
    Ok(None)
}

/// After a password-reset was refused for want of a usable confirmation: the account's
/// live code remembers the refused client, and if that client confirms the code, its
/// confirmation offers only the `resetSession`, not the same-client fallback. So a poller
/// who knows only the address and shares the owner's (NAT, a proxy) spoils its own attack,
/// while a stranger elsewhere changes nothing for the owner, whose documented client never
/// asks before it has confirmed. In enumeration-safe mode an unknown address does the same
/// work on its decoy record, so the answer costs the same. Flushed only when written.
pub async fn refused_reset(
    db: &Db,
    config: &Config,
    email_key: &str,
    known: bool,
    client: IpAddr,
    now: SystemTime,
) -> Result<()> {
    let key = match (known, config.recovery.hide_unknown_accounts) {
        (true, _) => email_key.to_string(),
        (false, true) => decoy_key(email_key),
        (false, false) => return Ok(()),
    };
    let client = client.to_canonical().to_string();
    let noted = db
        .blocking(move |db| db.note_refused_reset(&key, &client, unix_ms(now)))
        .await?;
    if noted {
        db.durable().await?;
    }
    Ok(())
}

/// Sets the password if the account's confirmation allows this request (checked again,
/// atomically with the change, on a blocking thread). Call [`reset_ready`] first: hashing
/// costs ~0.1 s of CPU.
pub async fn reset_password(
    db: &Db,
    key: &CodeKey,
    hasher: &Hasher,
    config: &Config,
    req: ResetRequest<'_>,
) -> Result<Reset> {
    let client = req.client.to_canonical().to_string();
    let accept = Acceptor::new(key, config, &req);
    let k = req.email.key.clone();
    let hash = hasher.hash(req.password.to_string()).await;
    let now = SystemTime::now();
    let now_ms = unix_ms(now);
    let locale = req.locale;
    let message = move |user: &User| {
        let kind = Kind::PasswordChanged {
            at_ms: now_ms,
            client: client.clone(),
        };
        let expires = Some(unix_ms(now + NOTICE_TTL));
        Queued::new(user.email.clone(), kind, now_ms, expires).in_locale(locale.clone())
    };
    let outcome = db
        .blocking(move |db| db.complete_reset(&k, now_ms, |c| accept.accepts(c), &hash, message))
        .await?;
    Ok(match outcome {
        Ok(()) => Reset::Done,
        Err(NotReset::NoAccount) => Reset::NoAccount,
        Err(NotReset::NoConfirmation) => Reset::NotConfirmed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmation(client: &str, session_only: bool) -> Confirmation {
        Confirmation {
            session_mac: CodeKey::new(b"k").mac("the-session").to_vec(),
            client: client.into(),
            until_ms: 1,
            session_only,
        }
    }

    fn acceptor(session: Option<&str>, require_session: bool) -> Acceptor {
        Acceptor {
            key: CodeKey::new(b"k"),
            session: session.map(str::to_string),
            require_session,
            client: "192.0.2.1".into(),
        }
    }

    #[test]
    fn the_session_always_works_the_fallback_only_when_allowed() {
        let open = confirmation("192.0.2.1", false);
        let marked = confirmation("192.0.2.1", true);
        let elsewhere = confirmation("192.0.2.9", false);
        assert!(acceptor(Some("the-session"), false).accepts(&marked));
        assert!(acceptor(Some("the-session"), true).accepts(&elsewhere));
        assert!(!acceptor(Some("a-guess"), false).accepts(&open));
        assert!(acceptor(None, false).accepts(&open), "the same client");
        assert!(!acceptor(None, false).accepts(&elsewhere), "another client");
        assert!(
            !acceptor(None, false).accepts(&marked),
            "a poller spoilt it"
        );
        assert!(!acceptor(None, true).accepts(&open), "sessions required");
    }
}
