//! resetgate: a self-hosted, single-binary password-recovery service.
//!
//! It serves the CargoExtra gateway's recovery API (`POST /api/v1/user/forgot-password`, …)
//! from a sled store on local disk, with rate limits in moka and an in-process outbox that
//! delivers mail through SMTP (mail-send) or into `.eml` files.
//!
//! # Layout (a request flows http → steps → guard, recovery → store; the outbox drains
//! the store; every import points down, and no two modules import each other)
//! - `app`: wiring only, the handles and [`run`]; `tasks`: watchdog, sweeper, heap trim.
//! - `http`: hyper server, the JSON API, the reset page's forms, the admin API; translates
//!   requests and answers. `web`: the reset page's texts and rendering.
//! - `steps`: the three public steps in order (limits, decision, events, flush).
//! - `guard`: deny lists, bans and rate limits, before any work is done.
//! - `recovery`: every decision of the three steps, as functions over plain values.
//! - `store`: sled trees, typed records, atomic read-modify-write, durability; no rules.
//! - `admin`: the operator's operations (users, blocks, outbox, backup), for the admin API
//!   and the CLI alike.
//! - `outbox`: the delivery thread (mail and webhooks) and its transports.
//! - `breach`: the optional online check of a new password (Have I Been Pwned's range API).
//! - `events`: the one typed enum of events for the application.
//! - `mail_check`: does the sending domain's DNS (DKIM, DMARC, SPF) match what is sent, and
//!   is the relay usable (`check-mail`, and `serve` daily).
//! - `config`, `crypto`, `mail_address`, `metrics`, `secrets`, `throttle`, `error`: shared
//!   pieces; `cli`: the command line; `heap`: glibc's `malloc_trim`, the crate's one
//!   `unsafe` call (so `unsafe_code` is denied, not forbidden: `heap` allows it for that call).
//!
//! [`run`] serves until a shutdown future resolves; the binary passes the signals, tests a
//! oneshot.
#![deny(unsafe_code)]

pub mod admin;
mod app;
pub mod breach;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod events;
pub mod guard;
mod heap;
pub mod http;
pub mod mail_address;
pub mod mail_check;
pub mod metrics;
pub mod outbox;
pub mod recovery;
pub mod secrets;
pub mod steps;
pub mod store;
mod tasks;
pub mod throttle;
pub mod web;

pub use app::{bind_admin_socket, run, App, Listeners, StartError};
