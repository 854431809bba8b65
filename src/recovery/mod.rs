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
