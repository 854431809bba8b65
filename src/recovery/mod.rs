//! The recovery steps as plain functions of (store, key, config, now).
//!
//! No HTTP here: the caller decides how an outcome is answered, and waits for durability.

mod confirm;
mod forgot;
pub mod policy;
mod reset;

pub use confirm::{confirm, normalize_code, Confirm};
pub use forgot::{forgot, Forgot};
pub use reset::{refused_reset, reset_password, reset_ready, Reset, ResetRequest};

/// The lock on confirmations that name an account (`recovery.max_account_failures`,
/// `recovery.failures_forgotten_after`).
pub fn lockout(config: &crate::config::Recovery) -> crate::store::resets::Lockout {
    crate::store::resets::Lockout {
        max_failures: config.max_account_failures,
        forget_after_ms: config.failures_forgotten_after.as_millis() as u64,
    }
}
