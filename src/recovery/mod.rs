//! Every decision of the three recovery steps, as functions over plain values: the records
//! read, the request, `now`, and codes or tokens drawn by the caller. They answer with the
//! new records, the effects (mail to queue, codes to retire) and the answer; the store
//! applies the changes atomically. No HTTP here, and no sled: the caller decides how an
//! outcome is answered, and waits for durability.
//!
//! - `forgot`: step 1, issuing a code (or a decoy's) and its mail.
//! - `confirm`: step 2, exchanging a code for a confirmation.
//! - `reset`: step 3, setting the password; who holds a confirmation.
//! - `state`: the rules of a reset record (live, locked, expired, refused clients).
//! - `policy`: what a new password must not be.

pub mod confirm;
pub mod forgot;
pub mod policy;
pub mod reset;
pub mod state;

pub use confirm::{confirm, normalize_code, Confirm, ConfirmRequest};
pub use forgot::{forgot, Admission, Forgot, ForgotRequest};
pub use reset::{refused_reset, reset_password, reset_ready, Reset, ResetRequest};
pub use state::Lockout;

/// The events a step may cause: who wants them, the `webhook-id` the step's event gets,
/// and what every account event tells (the client, the request's id).
#[derive(Debug, Clone)]
pub struct Announce {
    hooks: crate::outbox::webhook::Hooks,
    id: String,
    client: String,
    request_id: String,
}

impl Announce {
    pub fn new(
        hooks: &crate::outbox::webhook::Hooks,
        client: std::net::IpAddr,
        request_id: &str,
    ) -> Announce {
        if hooks.is_empty() {
            // No endpoint: no id to draw (a system call) on every confirmation.
            return Announce::unwanted();
        }
        Announce {
            hooks: hooks.clone(),
            id: crate::outbox::webhook::event::new_id(),
            client: client.to_canonical().to_string(),
            request_id: request_id.to_string(),
        }
    }

    /// No endpoint wants anything (tests).
    pub fn unwanted() -> Announce {
        Announce {
            hooks: Default::default(),
            id: String::new(),
            client: String::new(),
            request_id: String::new(),
        }
    }

    /// The deliveries of event `kind` about account `key` (stored address `email`): its
    /// `email`, `client` and `request_id`, and what `more` adds.
    pub fn deliveries(
        &self,
        kind: &'static str,
        key: &str,
        email: &str,
        now_ms: u64,
        more: impl FnOnce(crate::outbox::webhook::Event) -> crate::outbox::webhook::Event,
    ) -> Vec<crate::store::outbox::Queued> {
        if !self.hooks.wants(kind) {
            return Vec::new();
        }
        let event = crate::outbox::webhook::Event::new(kind, self.id.clone(), key, now_ms)
            .with("email", email)
            .with("client", self.client.clone())
            .with("request_id", self.request_id.clone());
        self.hooks.deliveries(&more(event), now_ms)
    }
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

/// Clears an account's failed-confirmation count (`resetgate users unlock`); false if it
/// had none.
pub fn unlock(db: &crate::store::Db, key: &str) -> crate::store::Result<bool> {
    use crate::store::resets::Changes;
    db.transact(None, &[key], |records| {
        let mut reset = records.reset(key);
        if reset.failures == 0 {
            return (false, Changes::default());
        }
        state::clear_failures(&mut reset);
        let resets = vec![(key.to_string(), reset)];
        (
            true,
            Changes {
                resets,
                ..Changes::default()
            },
        )
    })
}
