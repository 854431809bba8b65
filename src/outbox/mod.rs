//! Delivery: a task on a thread of its own ([`thread`]) drains the durable outbox through
//! a transport.
//!
//! Two real transports exist (SMTP and `.eml` files), so this is the one place with a
//! choice of implementation; an enum keeps it concrete.

pub mod catalog;
mod dispatch;
pub mod dkim;
mod file;
mod gate;
mod health;
mod lane;
mod revival;
mod smtp;
pub mod templates;
pub mod thread;
pub mod tls;
pub mod webhook;
mod worker;

use crate::config::{Config, ConfigError, Transport as Kind};

pub use dispatch::run;
pub use health::Delivery;
pub use worker::Worker;

/// A rendered message, ready for any transport.
pub struct Rendered {
    pub id: u64,
    pub envelope_from: String,
    pub to: String,
    pub bytes: Vec<u8>,
}

/// How a delivery attempt failed.
#[derive(Debug)]
pub enum SendError {
    /// Try again later: network trouble, 4xx replies, timeouts, configuration problems.
    Transient(String),
    /// The server refused the message itself (5xx): set it aside for an operator.
    Permanent(String),
    /// The whole message went out and no answer came (a timeout, a dropped connection):
    /// the relay may have queued it, so sending it again may make a second copy. Set aside
    /// for an operator, not retried.
    Unconfirmed(String),
}

pub enum Transport {
    Smtp(Box<smtp::Smtp>),
    File(file::FileDir),
}

impl Transport {
    pub fn from_config(config: &Config) -> Result<Transport, ConfigError> {
        Ok(match config.mail.transport {
            Kind::Smtp => {
                let smtp = smtp::Smtp::new(&config.mail.smtp, config.smtp_password()?)?;
                Transport::Smtp(Box::new(smtp))
            }
            Kind::File => {
                let fsync = config.storage.durability == crate::config::Durability::Fsync;
                Transport::File(file::FileDir::new(config.mail_dir(), fsync))
            }
        })
    }

    /// One line for the start-up log: where the mail goes.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(s) => s.describe(),
            Transport::File(f) => f.describe(),
        }
    }

    /// Can mail go out this way at all? (SMTP: connect, greet, authenticate, quit.)
    pub async fn probe(&self) -> Result<(), String> {
        match self {
            Transport::Smtp(s) => s.probe().await,
            Transport::File(f) => f.probe(),
        }
    }

    /// Whether sending a message again makes a second copy. Over SMTP it does, so the
    /// worker flushes each removal before the next message; the file transport rewrites the
    /// same file (named by the outbox id), so it need not.
    pub fn repeats_are_duplicates(&self) -> bool {
        matches!(self, Transport::Smtp(_))
    }

    /// The class of the last attempt's outcome, for metrics: `2xx`, `4xx`, `5xx`, `none`
    /// (no reply: connection, TLS, timeout) or `file`.
    pub fn last_reply_class(&self) -> &'static str {
        match self {
            Transport::Smtp(s) => s.last_class,
            Transport::File(_) => "file",
        }
    }

    /// Whether the last failed attempt failed for want of the relay (or the mail
    /// directory), not because this message or its sender was refused: such a retry is
    /// pulled forward as soon as the relay answers again (`Worker::relay_is_back`).
    pub fn failed_for_relay(&self) -> bool {
        match self {
            Transport::Smtp(s) => s.last_about_relay,
            Transport::File(_) => true,
        }
    }

    /// Sends `message`; what the relay answered ("250 2.0.0 Ok: queued as …"), or where
    /// the file went.
    pub async fn send(&mut self, message: &Rendered) -> Result<String, SendError> {
        match self {
            Transport::Smtp(s) => s.send(message).await,
            Transport::File(f) => f.send(message).await,
        }
    }

    /// Ends an open connection politely (shutdown).
    pub async fn close(&mut self) {
        if let Transport::Smtp(s) = self {
            s.close().await;
        }
    }
}
