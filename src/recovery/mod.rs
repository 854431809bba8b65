//! Every decision of the three recovery steps, as functions over plain values: the records
//! read, the request, `now`, and codes or tokens drawn by the caller. They answer with the
//! new records, the effects (mail to queue, codes to retire, events) and the answer
//! ([`Decided`]); the store applies the changes atomically. No HTTP here, no sled and no
//! outbox: `steps` runs the decisions against the store, decides how an outcome is
//! answered, and waits for durability.
//!
//! - `admission`: whether forgot-password may issue a code now.
//!
//! - `forgot`: step 1, issuing a code (or a decoy's) and its mail.
//! - `confirm`: step 2, exchanging a code for a confirmation.
//! - `reset`: step 3, setting the password; who holds a confirmation.
//! - `state`: the rules of a reset record (live, locked, expired, refused clients).
//! - `policy`: what a new password must not be.

pub mod accounts;
pub mod admission;
pub mod confirm;
pub mod forgot;
pub mod policy;
pub mod reset;
pub mod state;

pub use confirm::{normalize_code, Confirm, ConfirmRequest};
pub use forgot::{Admission, Forgot};
pub use reset::{Reset, ResetRequest};
pub use state::Lockout;

pub use crate::store::resets::Decided;

/// The account `key` as the recovery steps see it: a disabled account is no account, so its
/// answers are an unknown address's, in both modes.
pub fn account<'a>(
    records: &'a crate::store::resets::Records,
    key: &str,
) -> Option<&'a crate::store::users::User> {
    records.user(key).filter(|user| !user.disabled)
}

/// The reset record on which enumeration-safe mode counts failed confirmations naming
/// unknown addresses, and the prefix of the records it issues their codes to
/// ([`decoy_key`]). It starts with NUL, which no valid address does, so no request can name
/// one.
pub const DECOY: &str = "\u{0}decoy";

/// The decoy record standing in for unknown address `key`: one per address, like a known
/// account's record, so that an unknown address costs what a known one does in every
/// respect (a first request inserts a record, a repeated one replaces its code). A single
/// shared record was cheaper than a known account's first request (an update of one hot
/// record against an insert): the enumeration benchmark measured unknown addresses 27–74 µs
/// faster. Decoy records expire with their codes and are swept like any other.
pub fn decoy_key(key: &str) -> String {
    format!("{DECOY}:{key}")
}

/// The lock on confirmations that name an account (`recovery.max_account_failures`,
/// `recovery.failures_forgotten_after`).
pub fn lockout(config: &crate::config::Recovery) -> Lockout {
    Lockout {
        max_failures: config.max_account_failures,
        forget_after_ms: config.failures_forgotten_after.as_millis() as u64,
    }
}

/// Clears account `key`'s failed-confirmation count (`resetgate users unlock`); false if
/// it had none.
pub fn unlock(records: &crate::store::resets::Records, key: &str) -> Decided<bool> {
    use crate::store::resets::Changes;
    let mut reset = records.reset(key);
    if reset.failures == 0 {
        return (false, Changes::default(), Vec::new());
    }
    state::clear_failures(&mut reset);
    let changes = Changes {
        resets: vec![(key.to_string(), reset)],
        ..Changes::default()
    };
    (true, changes, Vec::new())
}
