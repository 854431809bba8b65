//! The operator's operations: users, blocks, the outbox and backups, one method each on
//! [`Admin`]. The admin API (`http::admin`) calls them in the running service; the CLI
//! calls them in-process when no service runs, and over the admin socket when one does.
//!
//! Each operation returns a typed result that serializes to the admin API's JSON body, so
//! the CLI reads the same type back from the socket. Each does its own follow-up: its
//! writes are durable before it returns, and in the running service a changed block list
//! reaches the guard and a retried message wakes the outbox.

pub mod accounts;
pub mod backup;
pub mod blocks;
pub mod hashes;
pub mod outbox;
pub mod paths;
pub mod users;

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use std::sync::Arc;

use crate::config::Config;
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
    Direct {
        db: Db,
        hasher: Hasher,
        config: Arc<Config>,
        breach: Option<crate::breach::Breach>,
    },
}

/// What the operations use inside the running service: the store, the hasher, the guard
/// (whose copy of the runtime deny list follows `blocks`), the outbox's side (woken by a
/// retry, and its lag for the gauges), the configuration and the metrics.
pub struct Service {
    pub db: Db,
    pub hasher: Hasher,
    /// The online password check, when `passwords.breach_api` is set.
    pub breach: Option<crate::breach::Breach>,
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
    /// The request is not acceptable as it is (400): a password the policy refuses.
    #[error("{0}")]
    Refused(Cow<'static, str>),
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

    /// The operations on a store this process opened (no service runs), with passwords
    /// hashed and checked as `[passwords]` says.
    pub fn direct(db: Db, config: Config) -> Result<Admin, crate::config::ConfigError> {
        let passwords = &config.passwords;
        let hasher = Hasher::new(passwords.pbkdf2_iterations, passwords.max_concurrent_hashes);
        let breach = crate::breach::Breach::new(&config, Arc::new(Metrics::new()))?;
        let config = Arc::new(config);
        Ok(Admin {
            host: Arc::new(Host::Direct {
                db,
                hasher,
                config,
                breach,
            }),
        })
    }

    fn config(&self) -> &Config {
        match &*self.host {
            Host::Service(service) => &service.config,
            Host::Direct { config, .. } => config,
        }
    }

    fn breach(&self) -> Option<&crate::breach::Breach> {
        match &*self.host {
            Host::Service(service) => service.breach.as_ref(),
            Host::Direct { breach, .. } => breach.as_ref(),
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
        let origin = crate::outbox::webhook::Origin {
            client: String::new(),
            request_id: crate::events::current_request_id(),
        };
        let request_id = origin.request_id.clone();
        let (answer, events) = self
            .db()
            .blocking(move |db| {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                // The events of the run that committed (a conflict runs `decide` again).
                let committed = std::sync::Mutex::new(Vec::new());
                let route = |events: &[crate::events::Event]| {
                    *committed.lock().unwrap_or_else(|p| p.into_inner()) = events.to_vec();
                    hooks.deliveries_of(events, &origin, now_ms)
                };
                let answer = db.transact(None, &keys, route, decide)?;
                Ok((answer, committed.into_inner().unwrap_or_default()))
            })
            .await?;
        for event in &events {
            let entry = crate::store::history::Entry::of(event, "", &request_id, now_ms);
            if let Some(entry) = entry {
                self.db().note(event.account(), entry.detail_or("operator"));
            }
        }
        Ok(answer)
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
            webhook_queue_reads: self.db().webhook_queue_reads(),
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
