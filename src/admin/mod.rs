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

use std::sync::Arc;

use crate::config::{Config, Passwords};
use crate::crypto::Hasher;
use crate::guard::Guard;
use crate::metrics::{Metrics, StoreGauges};
use crate::outbox::Delivery;
use crate::store::resets::{Decided, Records};
use crate::store::{unix_ms, Db, StoreError};

/// The operations' handle: the store and the password hasher, and in the running service
/// the parts that follow the changes (the guard, the outbox). Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    host: Arc<Host>,
}

enum Host {
    /// Inside `resetgate serve`.
    Service(Service),
    /// The CLI with no service running: this process owns the store.
    Direct { db: Db, hasher: Hasher },
}

/// What the operations use inside the running service: the store, the hasher, the guard
/// (whose copy of the runtime deny list follows `blocks`), the outbox's side (woken by a
/// retry, and its lag for the gauges), the configuration and the metrics.
pub struct Service {
    pub db: Db,
    pub hasher: Hasher,
    pub guard: Arc<Guard>,
    /// Who wants the events the operations emit.
    pub hooks: crate::outbox::webhook::Hooks,
    pub delivery: Delivery,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
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
    pub fn service(service: Service) -> Admin {
        Admin {
            host: Arc::new(Host::Service(service)),
        }
    }

    /// The operations on a store this process opened (no service runs), hashing passwords
    /// as `[passwords]` says.
    pub fn direct(db: Db, passwords: &Passwords) -> Admin {
        let hasher = Hasher::new(passwords.pbkdf2_iterations, passwords.max_concurrent_hashes);
        Admin {
            host: Arc::new(Host::Direct { db, hasher }),
        }
    }

    fn db(&self) -> &Db {
        match &*self.host {
            Host::Service(service) => &service.db,
            Host::Direct { db, .. } => db,
        }
    }

    fn hasher(&self) -> &Hasher {
        match &*self.host {
            Host::Service(service) => &service.hasher,
            Host::Direct { hasher, .. } => hasher,
        }
    }

    /// The running service, when this is it.
    fn running(&self) -> Option<&Service> {
        match &*self.host {
            Host::Service(service) => Some(service),
            Host::Direct { .. } => None,
        }
    }

    /// Runs `decide` over the records `keys` in one store transaction, off the async
    /// threads, with the events it emits queued as deliveries (in the service, to the
    /// endpoints that want them) in the same transaction.
    async fn decide<T: Send + 'static>(
        &self,
        keys: Vec<String>,
        decide: impl Fn(&Records) -> Decided<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let hooks = self.running().map(|s| s.hooks.clone()).unwrap_or_default();
        let now_ms = now_ms();
        self.db()
            .blocking(move |db| {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let route = |events: &[crate::events::Event]| {
                    hooks.deliveries_of(events, &Default::default(), now_ms)
                };
                db.transact(None, &keys, route, decide)
            })
            .await
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
        let configured = self.running().map_or(&[][..], |s| &s.config.webhooks[..]);
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
            code_mail_wait: match self.running().map(|s| s.delivery.lag_since()) {
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
