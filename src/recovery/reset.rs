//! Step 3: the password is set, once, by the holder of the confirmation.
//!
//! Who holds it is [`Acceptor`]'s rule: the `resetSession` from step 2, or else the client
//! address that confirmed (the same-client fallback), unless sessions are required or a
//! refused password-reset from that address marked the confirmation `session_only`.
//! [`check`] is the cheap test before any hashing; [`set_password`] the change made
//! atomically with the test repeated; [`refused_reset`] what a refusal leaves behind.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::{policy, state, Announce};
use crate::config::Config;
use crate::crypto::{CodeKey, Hasher};
use crate::mail_address::Email;
use crate::outbox::webhook::event::rfc3339;
use crate::outbox::webhook::Hooks;
use crate::store::outbox::{Kind, Queued};
use crate::store::records::{Confirmation, Reset as Record};
use crate::store::resets::{Changes, Records};
use crate::store::users::User;
use crate::store::{unix_ms, Db, Result};

/// How long the "your password was changed" notice may wait for delivery.
const NOTICE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, PartialEq, Eq)]
pub enum Reset {
    Done,
    NoAccount,
    /// No live confirmation that this request may use.
    NotConfirmed,
    /// The password breaks the policy; the text is for the end user.
    Policy(super::policy::Weak),
}

/// What password-reset needs besides the store.
pub struct ResetRequest<'a> {
    pub email: &'a Email,
    pub password: &'a str,
    pub session: Option<&'a str>,
    pub client: IpAddr,
    /// The catalog locale of the "password changed" notice.
    pub locale: Option<String>,
    /// The request's id, named in the `password.changed` event.
    pub request_id: String,
}

/// Who may use a confirmation.
#[derive(Clone)]
pub struct Acceptor {
    key: CodeKey,
    session: Option<String>,
    require_session: bool,
    client: String,
}

impl Acceptor {
    pub fn new(key: &CodeKey, config: &Config, req: &ResetRequest<'_>) -> Acceptor {
        Acceptor {
            key: key.clone(),
            session: req.session.map(str::to_string),
            require_session: config.recovery.require_session,
            client: req.client.to_canonical().to_string(),
        }
    }

    pub fn accepts(&self, c: &Confirmation) -> bool {
        match &self.session {
            Some(session) => self.key.verify(session, &c.session_mac),
            None => !self.require_session && !c.session_only && c.client == self.client,
        }
    }
}

/// The cheap test, before any hashing: `None` when the request may go on to
/// [`reset_password`], else the answer. Only a request that holds the confirmation gets
/// past this, so what the caller counts after it (a per-account limit) cannot be spent by
/// someone who merely knows the address.
pub fn check(
    user: Option<&User>,
    record: &Record,
    accept: &Acceptor,
    config: &Config,
    req: &ResetRequest<'_>,
    now_ms: u64,
) -> Option<Reset> {
    if user.is_none() {
        return Some(Reset::NoAccount);
    }
    let confirmation = state::live_confirmation(record, now_ms);
    if !confirmation.is_some_and(|c| accept.accepts(c)) {
        return Some(Reset::NotConfirmed);
    }
    let why = policy::check(req.password, &req.email.stored, &config.passwords).err()?;
    Some(Reset::Policy(why))
}

/// [`check`] on the account as stored now (two reads, no lock).
pub fn reset_ready(
    db: &Db,
    key: &CodeKey,
    config: &Config,
    req: &ResetRequest<'_>,
    now: SystemTime,
) -> Result<Option<Reset>> {
    let k = &req.email.key;
    let Some(user) = db.user(k)? else {
        return Ok(Some(Reset::NoAccount));
    };
    let record = db.reset(k)?.unwrap_or_default();
    let accept = Acceptor::new(key, config, req);
    Ok(check(
        Some(&user),
        &record,
        &accept,
        config,
        req,
        unix_ms(now),
    ))
}

/// The change of step 3 over the records of account `key`: the new password hash, the
/// confirmation used up, any outstanding code retired, the notice queued, and the
/// `password.changed` event's deliveries with it.
pub fn set_password(
    records: &Records,
    key: &str,
    accept: &Acceptor,
    hash: &str,
    notice: &Queued,
    changed: &Announce,
    now_ms: u64,
) -> (Reset, Changes) {
    let Some(user) = records.user(key) else {
        return (Reset::NoAccount, Changes::default());
    };
    let mut record = records.reset(key);
    if !state::live_confirmation(&record, now_ms).is_some_and(|c| accept.accepts(c)) {
        return (Reset::NotConfirmed, Changes::default());
    }
    let user = User {
        password_hash: Some(hash.to_string()),
        updated_ms: now_ms,
        ..user.clone()
    };
    record.code = None;
    record.confirmation = None;
    let queue = Queued {
        to: user.email.clone(),
        ..notice.clone()
    };
    let changes = Changes {
        retire: vec![key.to_string()],
        resets: vec![(key.to_string(), record)],
        events: changed.deliveries("password.changed", key, &user.email, now_ms, |e| {
            let mut e = e.with("changed_at", rfc3339(now_ms));
            e.password_hash = Some(hash.to_string());
            e
        }),
        user: Some((key.to_string(), user)),
        queue: Some(queue),
    };
    (Reset::Done, changes)
}

/// The "your password was changed" notice: when, and from which client address.
fn notice(req: &ResetRequest<'_>, now: SystemTime) -> Queued {
    let now_ms = unix_ms(now);
    let kind = Kind::PasswordChanged {
        at_ms: now_ms,
        client: req.client.to_canonical().to_string(),
    };
    let expires = Some(unix_ms(now + NOTICE_TTL));
    Queued::new(String::new(), kind, now_ms, expires).in_locale(req.locale.clone())
}

/// Sets the password if the account's confirmation allows this request (tested again,
/// atomically with the change, on a blocking thread). Call [`reset_ready`] first: hashing
/// costs ~0.1 s of CPU.
pub async fn reset_password(
    db: &Db,
    key: &CodeKey,
    hasher: &Hasher,
    config: &Config,
    hooks: &Hooks,
    req: ResetRequest<'_>,
    now: SystemTime,
) -> Result<Reset> {
    let accept = Acceptor::new(key, config, &req);
    let k = req.email.key.clone();
    let notice = notice(&req, now);
    let changed = Announce::new(hooks, req.client, &req.request_id);
    let hash = hasher.hash(req.password.to_string()).await;
    let now_ms = unix_ms(now);
    db.blocking(move |db| {
        let decide = |r: &Records| set_password(r, &k, &accept, &hash, &notice, &changed, now_ms);
        db.transact(None, &[&k], decide)
    })
    .await
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
    let record = match (known, config.recovery.hide_unknown_accounts) {
        (true, _) => email_key.to_string(),
        (false, true) => super::decoy_key(email_key),
        (false, false) => return Ok(()),
    };
    let client = client.to_canonical().to_string();
    let now_ms = unix_ms(now);
    let noted = db
        .blocking(move |db| {
            db.transact(None, &[&record], |r| {
                let mut reset = r.reset(&record);
                if !state::remember_refused(&mut reset, &client, now_ms) {
                    return (false, Changes::default());
                }
                let resets = vec![(record.clone(), reset)];
                (
                    true,
                    Changes {
                        resets,
                        ..Changes::default()
                    },
                )
            })
        })
        .await?;
    if noted {
        db.durable().await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "reset_tests.rs"]
mod tests;
