//! The three public recovery steps as the service runs them, whatever the request's format
//! (the JSON API, `http::public`, or the reset page, `http::page`): the guard's limits, the
//! recovery rules run over the store's records, the events they cause, the metrics, and
//! the flush before the answer. Both callers get the same limits, answers and enumeration
//! behaviour. The rules themselves are `recovery`'s; what a refusal gives back is the
//! guard's ([`Ticket`]); this module only puts them in order.
//!
//! - `forgot`: step 1, a code and its mail.
//! - `confirm`: step 2, a code exchanged for a confirmation.
//! - `reset`: step 3, the password set.

mod confirm;
mod forgot;
mod reset;

use std::net::IpAddr;
use std::sync::Arc;

pub use confirm::Confirmed;
pub use reset::NewPassword;

use crate::breach::Breach;
use crate::config::Config;
use crate::crypto::{CodeKey, Hasher};
use crate::error::ApiError;
use crate::events::Event;
use crate::guard::{Endpoint, Guard, Ticket};
use crate::metrics::Metrics;
use crate::outbox::webhook::{Hooks, Origin};
use crate::outbox::Delivery;
use crate::store::history::Entry;
use crate::store::outbox::Queued;
use crate::store::resets::{Decided, Records};
use crate::store::Db;

/// Where a step was asked for: the JSON API, or the reset page (whose password form always
/// carries the `resetSession`, so its confirmations offer no same-client fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Page,
}

/// Who asks: the client (after the trusted proxies), the request's id (for the events it
/// causes), the catalog locale of the mail it causes, and through which door.
#[derive(Debug, Clone)]
pub struct Asker {
    pub client: IpAddr,
    pub request_id: String,
    pub locale: Option<String>,
    pub via: Via,
}

impl Asker {
    /// Who caused an event this request's step emits.
    fn origin(&self) -> Origin {
        Origin {
            client: self.client.to_canonical().to_string(),
            request_id: self.request_id.clone(),
        }
    }
}

/// What the steps are run with. Cheap to clone.
#[derive(Clone)]
pub struct Steps {
    inner: Arc<Parts>,
}

/// What [`Steps`] holds: the configuration, the store, the code key, the password hasher,
/// the guard, who wants which events, the online password check, the metrics and the
/// outbox's side.
pub struct Parts {
    pub config: Arc<Config>,
    pub db: Db,
    pub key: CodeKey,
    pub hasher: Hasher,
    pub guard: Arc<Guard>,
    pub hooks: Hooks,
    pub breach: Option<Breach>,
    pub metrics: Arc<Metrics>,
    pub delivery: Delivery,
}

impl Steps {
    pub fn new(parts: Parts) -> Steps {
        Steps {
            inner: Arc::new(parts),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The client's limits on `endpoint`, before its body is read: a ticket that gives them
    /// back unless the step keeps them. forgot-password first asks whether a code may be
    /// issued at all now (`recovery::admission`).
    pub fn admit(&self, client: IpAddr, endpoint: Endpoint) -> Result<Ticket, ApiError> {
        if endpoint == Endpoint::Forgot {
            self.admissible()?;
        }
        Ok(self.inner.guard.ticket(client, endpoint)?)
    }

    /// Runs `decide` over the records `keys` (and the code `mac`'s owner) in one store
    /// transaction on the store's writer, with the events it emits queued as deliveries
    /// in the same transaction, as caused by `origin`; answers after the flush that covers
    /// it when `flush_if` says the answer wrote something that must survive a restart.
    async fn decide<T: Send + 'static>(
        &self,
        on: Decision,
        decide: impl Fn(&Records) -> Decided<T> + Send + 'static,
        flush_if: impl FnOnce(&T) -> bool + Send + 'static,
    ) -> crate::store::Result<T> {
        let hooks = self.inner.hooks.clone();
        let origin = on.origin.clone();
        let now_ms = on.now_ms;
        let (answer, events) = self
            .db()
            .write(
                move |db| {
                    let Decision {
                        mac,
                        keys,
                        origin,
                        now_ms,
                    } = on;
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    // The events of the run that committed (a conflict runs `decide` again).
                    let committed = std::sync::Mutex::new(Vec::new());
                    let route = |events: &[Event]| -> Vec<Queued> {
                        *committed.lock().unwrap_or_else(|p| p.into_inner()) = events.to_vec();
                        hooks.deliveries_of(events, &origin, now_ms)
                    };
                    let answer = db.transact(mac.as_ref(), &keys, route, decide)?;
                    Ok((answer, committed.into_inner().unwrap_or_default()))
                },
                move |(answer, _)| flush_if(answer),
            )
            .await?;
        for event in &events {
            if let Some(entry) = Entry::of(event, &origin.client, &origin.request_id, now_ms) {
                self.db().note(event.account(), entry);
            }
        }
        Ok(answer)
    }
}

/// What a decision reads, and where its events come from: the code `mac`'s owner (if a
/// code was named), the records `keys`, who caused it, and when.
struct Decision {
    mac: Option<[u8; 32]>,
    keys: Vec<String>,
    origin: Origin,
    now_ms: u64,
}

/// Wakes the outbox when dropped: at the end of a request, or when the request is dropped.
struct WakeOnDrop<'a>(&'a Delivery);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.wake();
    }
}
