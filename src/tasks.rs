//! Background work beside the requests: the systemd watchdog and the sweeper (the store's
//! group-commit writer is the store's own, see `store::writer`).

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
                let scrubbed = db.scrub_dead(now)?;
                if scrubbed > 0 {
                    tracing::info!(
                        dead_letters = scrubbed,
                        "scrubbed expired codes and replaced password hashes from dead letters"
                    );
                }
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

/// The mail-authentication checks of `check-mail` (with the SMTP transport), at start-up
/// and once a day: each outcome sets the gauge `resetgate_mail_auth`, and each failure is a
/// warning in the log. Readiness does not wait for them: mail may arrive all the same.
pub struct MailChecks {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
}

impl MailChecks {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            match crate::mail_check::run(&self.config).await {
                Ok(report) => log_mail_auth(&self.metrics, &report),
                Err(e) => {
                    tracing::error!(error = %e, "the mail-authentication checks cannot run")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(crate::mail_check::EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

fn log_mail_auth(metrics: &Metrics, report: &crate::mail_check::Report) {
    use crate::mail_check::Status;
    for c in &report.checks {
        metrics.mail_auth(c.check, c.status.gauge());
        let publish = c
            .publish
            .as_ref()
            .map(|r| r.zone_line())
            .unwrap_or_default();
        match (c.status, c.check) {
            // The outbox's start-up probe said this before the other checks existed.
            (Status::Fail, "relay") => tracing::warn!(
                check = %c.check,
                error = %c.reason,
                "the mail transport is not usable right now; mail stays queued until it is"
            ),
            (Status::Fail, _) => tracing::warn!(
                check = %c.check,
                reason = %c.reason,
                publish = %publish,
                "mail authentication check failed; mail may land in spam or be refused (resetgate check-mail)"
            ),
            (Status::Unknown, _) => tracing::warn!(
                check = %c.check,
                reason = %c.reason,
                "mail authentication could not be checked"
            ),
            (Status::Warn, _) => {
                tracing::info!(check = %c.check, reason = %c.reason, "mail authentication check warns")
            }
            (Status::Pass | Status::Skip, _) => {}
        }
    }
    let status = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.check == name)
            .map_or("unknown", |c| c.status.name())
    };
    tracing::info!(
        dkim = %status("dkim"),
        dmarc = %status("dmarc"),
        spf = %status("spf"),
        relay = %status("relay"),
        "mail authentication checked"
    );
}

/// Hands the pages that glibc's malloc keeps free back to the kernel, every five seconds
/// or less often: the next trim waits at least a hundred times as long as the last one
/// took, so trimming holds the allocator's arenas at most 1 % of the time. glibc returns memory
/// only from the top of a heap by itself; the memory a burst freed below live allocations
/// (sled's node copies, the requests' buffers) stays resident until a trim
/// (`docs/performance.md`, "Trimming the heap": 6–8 MB less RSS after scenario 3 and the
/// flood; a trim took 1–7 ms).
pub async fn trim_heap(mut stop: watch::Receiver<bool>) {
    let mut wait = TRIM_EVERY;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let took = tokio::task::spawn_blocking(|| {
            let started = std::time::Instant::now();
            crate::heap::trim();
            started.elapsed()
        })
        .await
        .unwrap_or_default();
        wait = TRIM_EVERY.max(took * 100);
    }
}

/// How often [`trim_heap`] trims, at the most.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
