//! Background work beside the requests: the systemd watchdog and the sweeper (the store's
//! group-commit flusher is the store's own, see `store::flusher`).

use tokio::sync::watch;

use crate::App;

/// Feeds systemd's watchdog (WATCHDOG=1 at half the period) while the outbox worker is
/// alive and shows signs of life: a dead or wedged worker means mail stops, and systemd
/// should restart the service.
pub async fn watchdog(period: std::time::Duration, app: App, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let trouble = app
            .db()
            .fault()
            .map(|_| "the store cannot write")
            .or_else(|| app.outbox_trouble());
        match trouble {
            None => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
            Some(why) => tracing::error!(reason = why, "not feeding the watchdog"),
        }
    }
}

/// Removes expired reset state now and then: sled has no TTL.
pub async fn sweep(app: App, mut stop: watch::Receiver<bool>) {
    let every = app.config().storage.sweep_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let now = crate::store::unix_ms(std::time::SystemTime::now());
        let lockout = crate::recovery::lockout(&app.config().recovery);
        let swept = app.db().blocking(move |db| {
            db.scrub_dead(now)?;
            db.sweep_resets(|reset| crate::recovery::state::expire(reset, now, lockout))
        });
        match swept.await {
            Ok(0) => {}
            Ok(n) => {
                app.metrics().codes_expired.inc_by(n);
                tracing::debug!(changed = n, "swept expired codes");
            }
            Err(e) => tracing::error!(error = %e, "sweeping expired codes failed"),
        }
    }
}
