//! The recovery steps as plain functions of (store, key, config, now).
//!
//! No HTTP here: the caller decides how an outcome is answered, and waits for durability.

mod forgot;

pub use forgot::{forgot, Forgot};
