//! The reset record (`email_reset`) and the values it holds: the live code, the
//! confirmation, and the count of failed confirmations. What they mean for a request is
//! `recovery`'s business; the store keeps them, and drops a record that holds nothing.

use serde::{Deserialize, Serialize};

/// Per-account (or decoy) recovery state; absent when there is nothing to remember.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reset {
    /// The live code, if any.
    pub code: Option<LiveCode>,
    /// Consecutive failed confirmations naming this account.
    pub failures: u32,
    /// When the last of `failures` happened (schema 2; see `store::migrate`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_failure_ms: u64,
    /// A confirmed code opens a window in which the password may be set.
    pub confirmation: Option<Confirmation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveCode {
    /// HMAC-SHA256 of the code under the server secret; the code itself is never stored.
    pub mac: Vec<u8>,
    pub issued_ms: u64,
    pub expires_ms: u64,
    /// The outbox entry carrying this code: when the code dies, its unsent mail goes too.
    #[serde(default)]
    pub outbox_id: Option<u64>,
    /// Clients whose password-reset for the account was refused while this code was live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_clients: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// MAC of the `resetSession` handed out by confirm-otp-reset.
    pub session_mac: Vec<u8>,
    /// The client address that confirmed (exact, not its /64).
    pub client: String,
    pub until_ms: u64,
    /// Only the `resetSession` may use this confirmation, not the same-client fallback.
    #[serde(default, skip_serializing_if = "is_false")]
    pub session_only: bool,
}

impl Reset {
    /// True when nothing is worth keeping: no code, no confirmation, no failures. Such a
    /// record is deleted rather than written.
    pub fn is_empty(&self) -> bool {
        self.code.is_none() && self.confirmation.is_none() && self.failures == 0
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}
