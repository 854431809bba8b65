//! Step 1: issue a code and queue the email that carries it.
//!
//! [`target`] decides whose record gets the code: the account's, or in enumeration-safe
//! mode an unknown address's decoy record ([`super::decoy_key`]), which gets the same work
//! and a mail that is never sent; [`admitted`] what a spent mail budget changes. [`issue_of`]
//! builds the code and its mail from a drawn code; the caller draws until the store accepts
//! one (a drawn code may already be taken: [`DRAWS`]).

use std::time::SystemTime;

use crate::config::Recovery;
use crate::crypto::CodeKey;
use crate::store::outbox::{Kind, Queued};
use crate::store::records::LiveCode;
use crate::store::unix_ms;
use crate::store::users::User;

#[derive(Debug, PartialEq, Eq)]
pub enum Forgot {
    /// The code is stored (as a MAC) and its email is in the outbox, not yet flushed.
    Queued,
    NoAccount,
    /// The mail budget (and, for an account, the reserve) is spent: no code, and the
    /// request may be repeated after this wait. Never in enumeration-safe mode.
    Spent {
        retry_after_secs: u64,
    },
}

/// What the mail budget answers for a code: `guard::Guard::admit_mail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Mail,
    Spent { retry_after_secs: u64 },
}

/// Whose record a new code goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No account, and nothing to do (the documented 404).
    NoAccount,
    /// The account; its mail goes to the stored address.
    Account { to: String },
    /// Enumeration-safe mode: the unknown address's decoy record.
    Decoy,
}

/// A code to issue: the key its MAC is made with, the rules, whose record gets it, for
/// which submitted address (normalized) and in which catalog locale its mail is written,
/// and when.
#[derive(Clone)]
pub struct Plan {
    pub key: CodeKey,
    pub config: Recovery,
    pub target: Target,
    pub email_key: String,
    pub locale: Option<String>,
    pub now: SystemTime,
}

/// How many fresh codes to draw when the drawn one is taken. With 10^12 codes and thousands
/// live, one collision is already rare; eight in a row means the code space is too small
/// for the load, which is an operator's problem, not a client's.
pub const DRAWS: usize = 8;

/// Whose record gets the code, given the account as read (`user`; a disabled one counts
/// as none).
pub fn target(user: Option<&User>, hide_unknown_accounts: bool) -> Target {
    match user.filter(|user| !user.disabled) {
        Some(user) => Target::Account {
            to: user.email.clone(),
        },
        None if hide_unknown_accounts => Target::Decoy,
        None => Target::NoAccount,
    }
}

/// The target once the mail budget has answered: an account's code needs the budget's (or
/// the reserve's) consent, asked with `account = true`. Enumeration-safe mode asks for an
/// unknown address's decoy too, so that both spend the budget alike, and answers an
/// account refused by a spent budget as an unknown address (the decoy's work, the same 200,
/// no mail); otherwise the refusal is the answer.
pub fn admitted(
    target: Target,
    hide_unknown_accounts: bool,
    admit: impl FnOnce(bool) -> Admission,
) -> std::result::Result<Target, Forgot> {
    match target {
        Target::NoAccount => Err(Forgot::NoAccount),
        Target::Decoy => {
            let _ = admit(false);
            Ok(Target::Decoy)
        }
        Target::Account { .. } => match admit(true) {
            Admission::Mail => Ok(target),
            Admission::Spent { .. } if hide_unknown_accounts => Ok(Target::Decoy),
            Admission::Spent { retry_after_secs } => Err(Forgot::Spent { retry_after_secs }),
        },
    }
}

/// A code to issue: the record that holds it, the account that must still exist, the live
/// code (its MAC, never the code) and the mail that carries the code.
#[derive(Debug, PartialEq, Eq)]
pub struct Issue {
    pub record: String,
    pub account: Option<String>,
    pub code: LiveCode,
    pub message: Queued,
}

/// The issue of the drawn `code` as `plan` says (its target not [`Target::NoAccount`]).
pub fn issue_of(code: &str, plan: &Plan) -> Issue {
    let Plan {
        key,
        config,
        target,
        email_key,
        locale,
        now,
    } = plan;
    let (now_ms, expires_ms) = (unix_ms(*now), unix_ms(*now + config.code_ttl));
    let live = LiveCode {
        mac: key.mac(code).to_vec(),
        issued_ms: now_ms,
        expires_ms,
        outbox_id: None, // set by the store to the entry it queues
        refused_clients: Vec::new(),
    };
    let (record, account, to, kind) = match target {
        Target::Account { to } => {
            let kind = Kind::Otp {
                code: code.to_string(),
                ttl_secs: config.code_ttl.as_secs(),
            };
            (email_key.clone(), Some(email_key.clone()), to.clone(), kind)
        }
        _ => (
            super::decoy_key(email_key),
            None,
            User::decoy().email,
            Kind::Decoy,
        ),
    };
    let message = Queued::new(to, kind, now_ms, Some(expires_ms)).in_locale(locale.clone());
    Issue {
        record,
        account,
        code: live,
        message,
    }
}

#[cfg(test)]
#[path = "forgot_tests.rs"]
mod tests;
