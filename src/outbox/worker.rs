//! What the outbox's lanes share ([`Worker`]): the store, the letterhead, the retry policy,
//! and the delivery of one message (render → send → remove | retry | bury). The dispatcher
//! (`dispatch`) hands entries to the lanes (`lane`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::templates::Letterhead;
use super::{SendError, Transport};
use crate::mail_address::validate;
use crate::store::history::{Entry, What};
use crate::store::outbox::{Dead, Kind, Queued};
use crate::store::{unix_ms, Db};

/// A dead letter's error when the relay did not answer after taking a message's content.
pub const UNCONFIRMED: &str = "the relay did not answer after the whole message was sent, so it may have been delivered; not sent again automatically, to avoid a second copy (retry it if it did not arrive)";

/// What the lanes share.
pub struct Worker {
    pub db: Db,
    pub letterhead: Letterhead,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Messages a lane sends before one flush records their removal (`mail.batch`): a
    /// crash can repeat at most that many per lane.
    pub batch: usize,
    pub wake: Arc<Notify>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Unix ms of the dispatcher's or a lane's last sign of life (the watchdog reads it).
    pub heartbeat: Arc<std::sync::atomic::AtomicU64>,
    /// When the oldest code mail that is due (waiting for a connection, or on one now) was
    /// queued, as of the last scan; 0: none. Forgot-password's admission signal.
    pub lag: Arc<std::sync::atomic::AtomicU64>,
    /// Retries may be waiting for the relay (`Queued::waits_for_relay`): the next success,
    /// or a probe that gets through, pulls them forward. True at start-up, for entries
    /// queued before it.
    pub relay_retries: AtomicBool,
    /// Notified when a retry starts waiting for the relay: the prober's cue ([`super::revival`]).
    pub relay_trouble: Notify,
}

pub(super) type Claimed = Arc<Mutex<HashSet<u64>>>;

impl Worker {
    /// Notes when the oldest code mail among the due entries was queued. A message in a
    /// retry's backoff is not due, so one recipient's greylisting does not count; a
    /// connection that is slow or busy does.
    pub(super) fn note_lag(&self, due: &[(u64, Queued)], now: u64) {
        let oldest = due
            .iter()
            .filter(|(_, m)| matches!(m.kind, Kind::Otp { .. }) && !m.expired(now))
            .map(|(_, m)| m.created_ms)
            .min()
            .unwrap_or(0);
        self.lag.store(oldest, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn beat(&self) {
        let now = unix_ms(SystemTime::now());
        self.heartbeat
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// The entry as stored now, if it is still queued, due, and (a code's mail) still
    /// carries the account's current code.
    pub(super) fn still_due(&self, id: u64) -> Option<Queued> {
        let now = unix_ms(SystemTime::now());
        let wanted = |m: &Queued| -> crate::store::Result<bool> {
            match (&m.kind, validate(&m.to)) {
                (Kind::Otp { .. }, Ok(to)) => {
                    let wanted = self.db.code_mail_wanted(&to.key, id)?;
                    if !wanted {
                        tracing::debug!(id, "dropped a code's mail: the code was replaced or used");
                    }
                    Ok(wanted)
                }
                _ => Ok(true),
            }
        };
        let found = self.db.queued_message(id).and_then(|m| match m {
            Some(m) if m.next_attempt_ms <= now || m.expired(now) => Ok(wanted(&m)?.then_some(m)),
            _ => Ok(None),
        });
        found.unwrap_or_else(|e| {
            tracing::error!(id, error = %e, "reading an outbox entry failed");
            None
        })
    }

    /// Makes the removals of the messages sent since the last flush durable: a crash can
    /// then repeat at most those (with the same Message-IDs), not everything sent since
    /// sled's last background flush.
    pub(super) async fn flush_removals(&self, sent: usize) {
        self.store(self.db.durable().await);
        tracing::debug!(sent, "removals of sent messages flushed");
    }

    /// Tries to deliver one message; true if it was sent and removed, and its removal must
    /// still be flushed (only where a repeat makes a second copy).
    pub(super) async fn deliver(
        &self,
        transport: &mut Transport,
        id: u64,
        mut message: Queued,
    ) -> bool {
        let now = unix_ms(SystemTime::now());
        if message.kind == Kind::Decoy {
            // Enumeration-safe mode's stand-in for a mail to an unknown address.
            self.store(self.db.blocking(move |db| db.outbox_remove(id)).await);
            return false;
        }
        if message.expired(now) {
            self.store(self.db.blocking(move |db| db.outbox_remove(id)).await);
            self.metrics.outbox_expired.inc();
            tracing::warn!(
                id,
                attempts = message.attempts,
                "dropping a message whose code expired before it could be sent"
            );
            return false;
        }
        let rendered = match self.letterhead.render(id, &message) {
            Ok(r) => r,
            Err(e) => {
                self.bury(id, message, format!("rendering failed: {e}"), now)
                    .await;
                return false;
            }
        };
        let sent = transport.send(&rendered).await;
        self.metrics.smtp_reply(transport.last_reply_class());
        match sent {
            Ok(reply) => {
                // Removed now, made durable with the lane's batch (see `flush_removals`).
                self.store(self.db.blocking(move |db| db.outbox_remove(id)).await);
                self.note(&message, Entry::new(What::MailAccepted, now).detail(reply));
                self.metrics.outbox_sent.inc();
                tracing::info!(id, attempts = message.attempts + 1, "message delivered");
                self.relay_is_back().await;
                return transport.repeats_are_duplicates();
            }
            Err(SendError::Permanent(reason)) => self.bury(id, message, reason, now).await,
            Err(SendError::Unconfirmed(reason)) => {
                // At most one copy: a retry would repeat a message the relay may have.
                let reason = format!("{UNCONFIRMED} ({reason})");
                self.bury(id, message, reason, now).await
            }
            Err(SendError::Transient(reason)) => {
                message.attempts += 1;
                let delay = backoff(self.retry_initial, self.retry_max, message.attempts);
                message.next_attempt_ms = now + delay.as_millis() as u64;
                message.last_error = Some(reason);
                message.waits_for_relay = transport.failed_for_relay();
                let update = message.clone();
                let rescheduled = self
                    .db
                    .blocking(move |db| db.outbox_reschedule(id, &update));
                self.store(rescheduled.await);
                if message.waits_for_relay {
                    self.relay_retries.store(true, Ordering::SeqCst);
                    self.relay_trouble.notify_one();
                }
                self.metrics.outbox_retried.inc();
                tracing::warn!(
                    id,
                    attempts = message.attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    error = message.last_error.as_deref().unwrap_or_default(),
                    "delivery failed; will retry"
                );
            }
        }
        false
    }

    /// The relay answers again (a message went through, or a probe did): every retry that
    /// waits for it is due now, rather than after its backoff (up to `mail.retry_max`).
    /// Only when such retries may exist, so a steady stream of successes costs no scans.
    pub(super) async fn relay_is_back(&self) {
        if !self.relay_retries.swap(false, Ordering::SeqCst) {
            return;
        }
        let now = unix_ms(SystemTime::now());
        match self
            .db
            .blocking(move |db| db.outbox_pull_forward(now))
            .await
        {
            Ok(0) => {}
            Ok(pulled) => {
                tracing::info!(
                    retries = pulled,
                    "the mail relay answers again: retries waiting for it are due now"
                );
                self.wake.notify_one();
            }
            Err(e) => {
                self.relay_retries.store(true, Ordering::SeqCst);
                tracing::error!(error = %e, "pulling retries forward failed");
            }
        }
    }

    /// Notes `entry` in the history of the account a code or notice went to.
    fn note(&self, message: &Queued, entry: Entry) {
        let about_an_account = matches!(
            message.kind,
            Kind::Otp { .. } | Kind::PasswordChanged { .. }
        );
        if let (true, Ok(email)) = (about_an_account, validate(&message.to)) {
            let detail = match &message.kind {
                Kind::PasswordChanged { .. } => format!("notice: {}", entry.detail),
                _ => entry.detail.clone(),
            };
            self.db.note(&email.key, entry.detail(detail));
        }
    }

    /// Sets a message aside, durably: an operator must find it after a crash too.
    /// It keeps its code while the code is live, so that an operator can retry it; the
    /// sweeper scrubs the code when it expires. No view of a dead letter shows the code.
    async fn bury(&self, id: u64, message: Queued, error: String, now: u64) {
        self.note(
            &message,
            Entry::new(What::MailDead, now).detail(error.clone()),
        );
        let dead = Dead {
            message,
            error,
            failed_ms: now,
        };
        let buried = dead.clone();
        self.store(
            self.db
                .blocking(move |db| db.outbox_bury(id, &buried))
                .await,
        );
        self.store(self.db.durable().await);
        self.metrics.outbox_dead.inc();
        tracing::error!(id, error = %dead.error, "message not delivered and not retried; kept as a dead letter");
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
