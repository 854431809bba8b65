//! After a relay outage: while retries wait for the relay (`Queued::waits_for_relay`), a
//! probe (connect, greet, QUIT) every [`PROBE_EVERY`] tells when it answers again, and
//! the retries are then due at once instead of after their backoff (up to
//! `mail.retry_max`). A message that goes through does the same (`Worker::deliver`).
//! Retries of refused messages (a 4xx at RCPT or DATA: greylisting, a full mailbox) keep
//! their backoff: the relay answering says nothing about them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::worker::Worker;
use super::Transport;

/// How often the relay is probed while retries wait for it: a relay that comes back gets
/// its queued mail within about this long (docs/operations.md).
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(3);

/// Probes the relay through `prober` whenever retries wait for it, until `stop`.
pub(super) async fn watch(worker: Arc<Worker>, prober: Transport, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = worker.relay_trouble.notified() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        while worker.relay_retries.load(Ordering::SeqCst) {
            tokio::select! {
                () = tokio::time::sleep(PROBE_EVERY) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            // A success meanwhile has pulled them forward already.
            if !worker.relay_retries.load(Ordering::SeqCst) {
                break;
            }
            match prober.probe().await {
                Ok(()) => worker.relay_is_back().await,
                Err(e) => tracing::debug!(error = %e, "the mail relay is still unavailable"),
            }
        }
    }
}
