//! Background work beside the requests: the systemd watchdog and the sweeper (the store's
//! group-commit flusher is the store's own, see `store::flusher`).

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::Delivery;
use crate::store::Db;

/// Feeds systemd's watchdog (WATCHDOG=1 at half the period) while the outbox worker is
/// alive and shows signs of life: a dead or wedged worker means mail stops, and systemd
/// should restart the service.
pub async fn watchdog(
    period: std::time::Duration,
    db: Db,
    delivery: Delivery,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let trouble = db
            .fault()
            .map(|_| "the store cannot write")
            .or_else(|| delivery.trouble());
        match trouble {
            None => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
            Some(why) => tracing::error!(reason = why, "not feeding the watchdog"),
        }
    }
}

/// Removes expired reset state now and then: sled has no TTL.
pub struct Sweeper {
    pub db: Db,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
}

/// Account history past `history.keep` or `history.per_account` is deleted once in this
/// many sweeps (hourly at the default `storage.sweep_interval`): it reads every entry.
const HISTORY_EVERY: u64 = 60;

impl Sweeper {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let every = self.config.storage.sweep_interval;
        for round in 1u64.. {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if round % HISTORY_EVERY == 0 {
                self.trim_history().await;
            }
            let now = crate::store::unix_ms(std::time::SystemTime::now());
            let lockout = crate::recovery::lockout(&self.config.recovery);
            let swept = self.db.blocking(move |db| {
                db.scrub_dead(now)?;
                db.sweep_resets(|reset| crate::recovery::state::expire(reset, now, lockout))
            });
            match swept.await {
                Ok(0) => {}
                Ok(n) => {
                    self.metrics.codes_expired.inc_by(n);
                    tracing::debug!(changed = n, "swept expired codes");
                }
                Err(e) => tracing::error!(error = %e, "sweeping expired codes failed"),
            }
        }
    }

    async fn trim_history(&self) {
        let keep = self.config.history_keep();
        let now = crate::store::unix_ms(std::time::SystemTime::now());
        match self.db.blocking(move |db| db.trim_history(keep, now)).await {
            Ok(n) => tracing::debug!(removed = n, "trimmed account history"),
            Err(e) => tracing::error!(error = %e, "trimming account history failed"),
        }
    }
}
