//! Step 3: the password is set, once, by the holder of the confirmation.
//!
//! Who holds it is [`Acceptor`]'s rule: the `resetSession` from step 2, or else the client
//! address that confirmed (the same-client fallback), unless sessions are required or a
//! refused password-reset from that address marked the confirmation `session_only`.
//! [`check`] is the cheap test before any hashing; [`set_password`] the change made
//! atomically with the test repeated; [`refused`] what a refusal leaves behind.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::{policy, state, Decided};
use crate::config::Config;
use crate::crypto::CodeKey;
use crate::events::Event;
use crate::mail_address::Email;
use crate::store::outbox::{Kind, Queued};
use crate::store::records::{Confirmation, Reset as Record};
use crate::store::resets::{Changes, Records};
use crate::store::unix_ms;
use crate::store::users::User;

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
/// [`set_password`], else the answer. Only a request that holds the confirmation gets
/// past this, so what the caller counts after it (a per-account limit) cannot be spent by
/// someone who merely knows the address. `record` is the account's reset record (None:
/// no such account).
pub fn check(
    record: Option<&Record>,
    accept: &Acceptor,
    config: &Config,
    req: &ResetRequest<'_>,
    now_ms: u64,
) -> Option<Reset> {
    let Some(record) = record else {
        return Some(Reset::NoAccount);
    };
    let confirmation = state::live_confirmation(record, now_ms);
    if !confirmation.is_some_and(|c| accept.accepts(c)) {
        return Some(Reset::NotConfirmed);
    }
    let why = policy::check(req.password, &req.email.stored, &config.passwords).err()?;
    Some(Reset::Policy(why))
}

/// What step 3 sets once the password is hashed: the account `key`, who may use its
/// confirmation, the new hash and the "password changed" notice.
pub struct PasswordChange {
    pub key: String,
    pub accept: Acceptor,
    pub hash: String,
    pub notice: Queued,
}

impl PasswordChange {
    /// The change `req` asks for, with `hash` of its password.
    pub fn new(
        key: &CodeKey,
        config: &Config,
        req: &ResetRequest<'_>,
        hash: String,
        now: SystemTime,
    ) -> PasswordChange {
        PasswordChange {
            key: req.email.key.clone(),
            accept: Acceptor::new(key, config, req),
            hash,
            notice: notice(req, now),
        }
    }
}

/// The change of step 3 over the account's records: the new password hash, the
/// confirmation used up, any outstanding code retired, the notice queued, and the
/// `password.changed` event.
pub fn set_password(records: &Records, change: &PasswordChange, now_ms: u64) -> Decided<Reset> {
    let key = &change.key;
    let Some(user) = super::account(records, key) else {
        return (Reset::NoAccount, Changes::default(), Vec::new());
    };
    let mut record = records.reset(key);
    if !state::live_confirmation(&record, now_ms).is_some_and(|c| change.accept.accepts(c)) {
        return (Reset::NotConfirmed, Changes::default(), Vec::new());
    }
    let user = User {
        password_hash: Some(change.hash.clone()),
        updated_ms: now_ms,
        ..user.clone()
    };
    record.code = None;
    record.confirmation = None;
    let queue = Queued {
        to: user.email.clone(),
        ..change.notice.clone()
    };
    let changed = Event::PasswordChanged {
        account: key.clone(),
        email: user.email.clone(),
        at_ms: now_ms,
        hash: Some(change.hash.clone()),
        source: crate::events::Source::Reset,
    };
    let changes = Changes {
        retire: vec![key.clone()],
        resets: vec![(key.clone(), record)],
        user: Some((key.clone(), user)),
        queue: Some(queue),
        ..Changes::default()
    };
    (Reset::Done, changes, vec![changed])
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

/// The record on which a password-reset refused for want of a usable confirmation leaves
/// its mark: the account's, in enumeration-safe mode an unknown address's decoy record
/// (the same work, so the answer costs the same), else none.
pub fn refused_record(email_key: &str, known: bool, hide_unknown_accounts: bool) -> Option<String> {
    match (known, hide_unknown_accounts) {
        (true, _) => Some(email_key.to_string()),
        (false, true) => Some(super::decoy_key(email_key)),
        (false, false) => None,
    }
}

/// After a password-reset was refused for want of a usable confirmation: the record's
/// live code remembers the refused `client`, and if that client confirms the code, its
/// confirmation offers only the `resetSession`, not the same-client fallback. So a poller
/// who knows only the address and shares the owner's (NAT, a proxy) spoils its own attack,
/// while a stranger elsewhere changes nothing for the owner, whose documented client never
/// asks before it has confirmed. True when something was written.
pub fn refused(records: &Records, record: &str, client: &str, now_ms: u64) -> Decided<bool> {
    let mut reset = records.reset(record);
    if !state::remember_refused(&mut reset, client, now_ms) {
        return (false, Changes::default(), Vec::new());
    }
    let changes = Changes {
        resets: vec![(record.to_string(), reset)],
        ..Changes::default()
    };
    (true, changes, Vec::new())
}

#[cfg(test)]
#[path = "reset_tests.rs"]
mod tests;
