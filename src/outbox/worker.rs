//! The outbox task: claim due entries in FIFO order → render → send → remove | retry | bury.
//!
//! It wakes at once when a request queues mail (a `Notify` permit is never lost between the
//! scan and the wait), else when the next retry is due. Shutdown is checked between messages,
//! so the message being sent is finished first.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Notify};

use super::templates::Letterhead;
use super::{SendError, Stats, Transport};
use crate::store::outbox::{Dead, Kind, Queued};
use crate::store::{unix_ms, Db};

/// How many due entries one scan takes.
const BATCH: usize = 64;

pub struct Worker {
    pub db: Db,
    pub transport: Transport,
    pub letterhead: Letterhead,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub wake: Arc<Notify>,
    pub stats: Arc<Stats>,
}

/// Runs until `stop` turns true.
pub async fn run(mut worker: Worker, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        let now = unix_ms(SystemTime::now());
        let db = worker.db.clone();
        let due = match tokio::task::spawn_blocking(move || db.outbox_due(now, BATCH)).await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "reading the outbox failed");
                wait(&worker.wake, &mut stop, Some(now + 1_000), now).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox scan task failed");
                continue;
            }
        };
        let had_work = !due.entries.is_empty();
        for (id, message) in due.entries {
            if *stop.borrow() {
                break;
            }
            worker.deliver(id, message).await;
        }
        if !had_work {
            wait(&worker.wake, &mut stop, due.next_ms, now).await;
        }
    }
    worker.transport.close().await;
}

async fn wait(wake: &Notify, stop: &mut watch::Receiver<bool>, next_ms: Option<u64>, now: u64) {
    let sleep = next_ms.map_or(Duration::from_secs(3600), |t| {
        Duration::from_millis(t.saturating_sub(now))
    });
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(sleep) => {}
        _ = stop.changed() => {}
    }
}

impl Worker {
    async fn deliver(&mut self, id: u64, mut message: Queued) {
        let now = unix_ms(SystemTime::now());
        if message.kind == Kind::Decoy {
            // Enumeration-safe mode's stand-in for a mail to an unknown address.
            return self.store(self.db.outbox_remove(id));
        }
        if message.expired(now) {
            self.store(self.db.outbox_remove(id));
            Stats::count(&self.stats.expired);
            tracing::warn!(
                id,
                attempts = message.attempts,
                "dropping a message whose code expired before it could be sent"
            );
            return;
        }
        let rendered = match self.letterhead.render(id, &message) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .bury(id, message, format!("rendering failed: {e}"), now)
                    .await
            }
        };
        match self.transport.send(&rendered).await {
            Ok(()) => {
                // Durable before the next message: a crash can then repeat at most the one
                // message in flight (with the same Message-ID), not everything sent since
                // sled's last background flush.
                self.store(self.db.outbox_remove(id));
                self.store(self.db.durable().await);
                Stats::count(&self.stats.sent);
                tracing::info!(id, attempts = message.attempts + 1, "message delivered");
            }
            Err(SendError::Permanent(reason)) => self.bury(id, message, reason, now).await,
            Err(SendError::Transient(reason)) => {
                message.attempts += 1;
                let delay = backoff(self.retry_initial, self.retry_max, message.attempts);
                message.next_attempt_ms = now + delay.as_millis() as u64;
                message.last_error = Some(reason);
                self.store(self.db.outbox_reschedule(id, &message));
                Stats::count(&self.stats.retried);
                tracing::warn!(
                    id,
                    attempts = message.attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    error = message.last_error.as_deref().unwrap_or_default(),
                    "delivery failed; will retry"
                );
            }
        }
    }

    /// Sets a message aside, durably: an operator must find it after a crash too.
    /// It keeps its code while the code is live, so that an operator can retry it; the
    /// sweeper scrubs the code when it expires. No view of a dead letter shows the code.
    async fn bury(&self, id: u64, message: Queued, error: String, now: u64) {
        let dead = Dead {
            message,
            error,
            failed_ms: now,
        };
        self.store(self.db.outbox_bury(id, &dead));
        self.store(self.db.durable().await);
        Stats::count(&self.stats.dead);
        tracing::error!(id, error = %dead.error, "message refused permanently; kept as a dead letter");
    }

    fn store(&self, result: crate::store::Result<()>) {
        if let Err(e) = result {
            tracing::error!(error = %e, "updating the outbox failed");
        }
    }
}

/// `initial · 2^(attempt-1)`, capped at `max`.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    initial.checked_mul(factor).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let (i, m) = (Duration::from_secs(5), Duration::from_secs(300));
        let got: Vec<u64> = (1..=8).map(|a| backoff(i, m, a).as_secs()).collect();
        assert_eq!(got, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(i, m, 200), m);
    }
}
