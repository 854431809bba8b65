//! Step 3: the password is set, once, by the client that confirmed.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::crypto::{CodeKey, Hasher};
use crate::mail_address::Email;
use crate::store::confirm::NotReset;
use crate::store::outbox::{Kind, Queued};
use crate::store::resets::Confirmation;
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

/// Whether the confirmation allows this request to be accepted by `client` (its session,
/// or else, unless sessions are required, the confirming address).
fn acceptor<'a>(
    key: &'a CodeKey,
    config: &'a Config,
    req: &'a ResetRequest<'_>,
) -> impl Fn(&Confirmation) -> bool + 'a {
    let client = req.client.to_canonical().to_string();
    move |c: &Confirmation| match req.session {
        Some(session) => key.verify(session, &c.session_mac),
        None => !config.recovery.require_session && c.client == client,
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
    let accept = acceptor(key, config, req);
    if !db
        .confirmation(k, unix_ms(SystemTime::now()))?
        .is_some_and(|c| accept(&c))
    {
        return Ok(Some(Reset::NotConfirmed));
    }
    if let Err(why) = policy::check(req.password, &req.email.stored, &config.passwords) {
        return Ok(Some(Reset::Policy(why)));
    }
    Ok(None)
}

/// Sets the password if the account's confirmation allows this request (checked again,
/// atomically with the change). Call [`reset_ready`] first: hashing costs ~0.1 s of CPU.
pub async fn reset_password(
    db: &Db,
    key: &CodeKey,
    hasher: &Hasher,
    config: &Config,
    req: ResetRequest<'_>,
) -> Result<Reset> {
    let client = req.client.to_canonical().to_string();
    let accept = acceptor(key, config, &req);
    let k = &req.email.key;
    let hash = hasher.hash(req.password.to_string()).await;
    let now = SystemTime::now();
    let now_ms = unix_ms(now);
    let outcome = db.complete_reset(k, now_ms, accept, &hash, |user| {
        let kind = Kind::PasswordChanged {
            at_ms: now_ms,
            client: client.clone(),
        };
        Queued::new(
            user.email.clone(),
            kind,
            now_ms,
            Some(unix_ms(now + NOTICE_TTL)),
        )
        .in_locale(req.locale.clone())
    })?;
    Ok(match outcome {
        Ok(()) => Reset::Done,
        Err(NotReset::NoAccount) => Reset::NoAccount,
        Err(NotReset::NoConfirmation) => Reset::NotConfirmed,
    })
}
