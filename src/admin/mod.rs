//! The operator's operations: users, blocks, the outbox and backups, one method each on
//! [`Admin`]. The admin API (`http::admin`) calls them in the running service; the CLI
//! calls them in-process when no service runs, and over the admin socket when one does.
//!
//! Each operation returns a typed result that serializes to the admin API's JSON body, so
//! the CLI reads the same type back from the socket. Each does its own follow-up: its
//! writes are durable before it returns, and in the running service a changed block list
//! reaches the guard and a retried message wakes the outbox.

pub mod backup;
pub mod blocks;
pub mod outbox;
pub mod paths;
pub mod users;

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::config::Passwords;
use crate::crypto::Hasher;
use crate::metrics::StoreGauges;
use crate::store::{unix_ms, Db, StoreError};
use crate::App;

/// The operations' handle: the store and the password hasher, and in the running service
/// the [`App`] whose guard and outbox worker follow the changes.
pub struct Admin {
    host: Host,
}

enum Host {
    /// Inside `resetgate serve`.
    Service(App),
    /// The CLI with no service running: this process owns the store.
    Direct { db: Db, hasher: Hasher },
}

/// Why an operation did not do what was asked. The texts are the admin API's; the CLI
/// shows them too, except where it words a refusal its own way.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// What the request names does not exist (404).
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// The request contradicts what is stored (409).
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    /// The email/password pair does not match (401).
    #[error("{}", crate::error::INVALID_CREDENTIALS)]
    InvalidCredentials,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Admin {
    /// The operations of the running service.
    pub fn service(app: App) -> Admin {
        Admin {
            host: Host::Service(app),
        }
    }

    /// The operations on a store this process opened (no service runs), hashing passwords
    /// as `[passwords]` says.
    pub fn direct(db: Db, passwords: &Passwords) -> Admin {
        let hasher = Hasher::new(passwords.pbkdf2_iterations, passwords.max_concurrent_hashes);
        Admin {
            host: Host::Direct { db, hasher },
        }
    }

    fn db(&self) -> &Db {
        match &self.host {
            Host::Service(app) => app.db(),
            Host::Direct { db, .. } => db,
        }
    }

    fn hasher(&self) -> &Hasher {
        match &self.host {
            Host::Service(app) => app.hasher(),
            Host::Direct { hasher, .. } => hasher,
        }
    }

    /// The running service, when this is it.
    fn app(&self) -> Option<&App> {
        match &self.host {
            Host::Service(app) => Some(app),
            Host::Direct { .. } => None,
        }
    }

    /// The store's gauges for `/metrics`, read now (the size is a scan: off the async threads).
    pub async fn store_gauges(&self) -> Result<StoreGauges, AdminError> {
        let now = now_ms();
        let (oldest, size, webhooks) = self
            .db()
            .blocking(move |db| {
                let oldest = db.oldest_queued_age_ms(now)?;
                Ok((oldest, db.size_on_disk()?, db.oldest_webhooks(now)?))
            })
            .await?;
        let configured = self.app().map_or(&[][..], |app| &app.config().webhooks[..]);
        let webhook_oldest = configured
            .iter()
            .map(|w| w.name.clone())
            .map(|name| {
                let age = webhooks
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0, |(_, a)| *a);
                (name, Duration::from_millis(age))
            })
            .collect();
        Ok(StoreGauges {
            depth: self.db().outbox_len(),
            oldest_age: Duration::from_millis(oldest),
            store_bytes: size,
            free_bytes: self.db().free_bytes().unwrap_or(0),
            code_mail_wait: match self.app().map(App::outbox_lag_since) {
                Some(queued) if queued > 0 => Duration::from_millis(now.saturating_sub(queued)),
                _ => Duration::ZERO,
            },
            webhook_oldest,
        })
    }
}

fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}
