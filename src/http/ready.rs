//! `GET /readyz`: whether the service can do its job now.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::outbox::Delivery;
use crate::store::{unix_ms, Db};

/// The readiness check, its last answer reused for a second, so that polling it (it is
/// public) cannot force a flush per request.
pub struct Readiness {
    db: Db,
    delivery: Delivery,
    last: Mutex<Option<(Instant, Option<&'static str>)>>,
}

impl Readiness {
    pub fn new(db: Db, delivery: Delivery) -> Readiness {
        Readiness {
            db,
            delivery,
            last: Mutex::new(None),
        }
    }

    /// None when ready, else why not.
    pub async fn check(&self) -> Option<&'static str> {
        let now = Instant::now();
        let lock = || self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, reason)) = *lock() {
            if now.duration_since(at) < Duration::from_secs(1) {
                return reason;
            }
        }
        let reason = self.check_now().await;
        *lock() = Some((now, reason));
        reason
    }

    /// The store takes a durable write (and has room), and the outbox works.
    async fn check_now(&self) -> Option<&'static str> {
        let db = &self.db;
        if db.fault().is_some() {
            return Some("the store cannot write; the service is restarting");
        }
        if db.low_on_space().is_some() {
            return Some("free space is below storage.min_free; new codes are refused");
        }
        let now = unix_ms(std::time::SystemTime::now());
        if let Err(e) = db.blocking(move |db| db.probe_write(now)).await {
            tracing::error!(error = %e, "readiness: the store refused a write");
            return Some("the store is not writable");
        }
        if db.durable().await.is_err() {
            return Some("the store cannot flush");
        }
        self.delivery.trouble()
    }

    /// Forgets the last answer (tests).
    #[cfg(test)]
    pub fn forget(&self) {
        *self.last.lock().unwrap() = None;
    }
}
