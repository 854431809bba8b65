//! Step 2: a code is exchanged for a short window in which the password may be set.
//!
//! [`decide`] is the whole rule, over the records read: a lock on an account named by the
//! request, a code that is not the named account's (counted against it, or against the
//! shared decoy record in enumeration-safe mode), a code that is no longer live, and the
//! success that uses the code up and opens the window. [`attempt`] is what a request
//! brings to it; the caller reads and writes around it (`steps::confirm`).

use std::net::IpAddr;
use std::time::SystemTime;

use super::state::{self, Lockout};
use super::Decided;
use crate::config::Recovery;
use crate::crypto::CodeKey;
use crate::events::Event;
use crate::store::records::Confirmation;
use crate::store::resets::{Changes, Records};
use crate::store::unix_ms;

#[derive(Debug, PartialEq, Eq)]
pub enum Confirm {
    /// The code was used up. `session` (≥128 bits, stored only as a MAC) binds step 3 to
    /// this confirmation.
    Confirmed { email: String, session: String },
    /// No live code matches.
    Invalid,
    /// The account has reached `recovery.max_account_failures`; nothing was checked.
    Locked,
}

/// What [`decide`] answers; the caller adds the session it drew.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Confirmed { email: String },
    Invalid,
    Locked,
}

/// A confirmation as [`decide`] needs it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// HMAC of the code.
    pub mac: [u8; 32],
    /// The request's optional `email`, normalized.
    pub claimed: Option<String>,
    /// Stored on success.
    pub confirmation: Confirmation,
    pub lockout: Lockout,
    /// Enumeration-safe mode: failures naming unknown addresses count on the decoy record.
    pub decoy: bool,
}

/// The request: the code as typed, the optional `email` (normalized), the client, and
/// whether the confirmation may be used only with its `resetSession`.
pub struct ConfirmRequest<'a> {
    pub code: &'a str,
    pub claimed: Option<&'a str>,
    pub client: IpAddr,
    /// The reset page always carries the session, so a confirmation made there offers no
    /// same-client fallback: a neighbour on the owner's address cannot cash it in while the
    /// owner types the new password. The JSON API's documented flow keeps the fallback.
    pub session_only: bool,
}

/// Codes are shown in groups ("1234 5678 9012"): spaces and dashes are not part of them.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// The records a confirmation reads besides the code's owner: the named account and, in
/// enumeration-safe mode, the shared decoy record.
pub fn records_to_read(attempt: &Attempt) -> Vec<String> {
    let claimed = attempt.claimed.iter().cloned();
    let decoy = (attempt.claimed.is_some() && attempt.decoy).then(|| super::DECOY.to_string());
    claimed.chain(decoy).collect()
}

/// The rule of step 2 over the records read (`records.owner` is the code index entry).
pub fn decide(records: &Records, attempt: &Attempt, now_ms: u64) -> Decided<Outcome> {
    if let Some(claimed) = &attempt.claimed {
        let reset = records.reset(claimed);
        let known = super::account(records, claimed).is_some();
        if known && state::locked(&reset, now_ms, attempt.lockout) {
            return (Outcome::Locked, Changes::default(), Vec::new());
        }
        let live = state::live_code(&reset, &attempt.mac, now_ms).is_some();
        if records.owner.as_deref() != Some(claimed.as_str()) || !live {
            let (changes, events) = count_failure(records, attempt, now_ms);
            return (Outcome::Invalid, changes, events);
        }
    }
    let Some(owner) = &records.owner else {
        return (Outcome::Invalid, Changes::default(), Vec::new());
    };
    let mut reset = records.reset(owner);
    let (Some(code), Some(user)) = (
        state::live_code(&reset, &attempt.mac, now_ms),
        super::account(records, owner),
    ) else {
        return (Outcome::Invalid, Changes::default(), Vec::new());
    };
    // A password-reset refused from this client while the code was live: a poller at the
    // confirming address, so the same-client fallback is not offered to it.
    let polled = code.refused_clients.contains(&attempt.confirmation.client);
    reset.code = None;
    state::clear_failures(&mut reset);
    reset.confirmation = Some(Confirmation {
        session_only: polled || attempt.confirmation.session_only,
        ..attempt.confirmation.clone()
    });
    let changes = Changes {
        retire: vec![owner.clone()],
        resets: vec![(owner.clone(), reset)],
        ..Changes::default()
    };
    let email = user.email.clone();
    let confirmed = Event::CodeConfirmed {
        account: owner.clone(),
        email: email.clone(),
    };
    (Outcome::Confirmed { email }, changes, vec![confirmed])
}

/// A failure naming an account counts against it; one naming an unknown address counts on
/// the shared decoy record in enumeration-safe mode (failure counts are kept for days, and
/// unknown addresses are the attacker's to choose, so not one record per address).
fn count_failure(records: &Records, attempt: &Attempt, now_ms: u64) -> (Changes, Vec<Event>) {
    let claimed = attempt.claimed.as_deref().unwrap_or_default();
    let counted = match super::account(records, claimed) {
        Some(_) => claimed,
        None if attempt.decoy => super::DECOY,
        None => return (Changes::default(), Vec::new()),
    };
    let mut reset = records.reset(counted);
    let was_locked = state::locked(&reset, now_ms, attempt.lockout);
    state::fail(&mut reset, now_ms, attempt.lockout);
    let mut events = Vec::new();
    if let (Some(user), false, true) = (
        super::account(records, counted),
        was_locked,
        state::locked(&reset, now_ms, attempt.lockout),
    ) {
        events.push(Event::AccountLocked {
            account: counted.to_string(),
            email: user.email.clone(),
            failures: reset.failures,
        });
    }
    let changes = Changes {
        resets: vec![(counted.to_string(), reset)],
        ..Changes::default()
    };
    (changes, events)
}

/// What a confirmation brings to [`decide`]: the code's MAC, the named account, and the
/// confirmation it would store, with the session `session` (drawn by the caller only for a
/// request that may succeed) and the client; a confirmation made on the reset page offers
/// only its session (`session_only`).
pub fn attempt(
    key: &CodeKey,
    config: &Recovery,
    req: &ConfirmRequest<'_>,
    session: &str,
    now: SystemTime,
) -> Attempt {
    Attempt {
        mac: key.mac(&normalize_code(req.code)),
        claimed: req.claimed.map(str::to_string),
        confirmation: Confirmation {
            session_mac: key.mac(session).to_vec(),
            client: req.client.to_canonical().to_string(),
            until_ms: unix_ms(now + config.confirm_window),
            session_only: req.session_only,
        },
        lockout: super::lockout(config),
        decoy: config.hide_unknown_accounts,
    }
}

#[cfg(test)]
#[path = "confirm_tests.rs"]
mod tests;
