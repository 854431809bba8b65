//! One connection's worth of delivery: a lane takes the entries the dispatcher hands out,
//! delivers each through its own transport, and makes the removals of the messages it sent
//! durable once per batch (`mail.batch`), or when no further message is waiting.

use std::sync::Arc;

use tokio::sync::{mpsc, watch, Notify};

use super::worker::{Claimed, Worker};
use super::Transport;

/// One connection's worth of delivery.
pub(super) struct Lane {
    pub(super) worker: Arc<Worker>,
    pub(super) transport: Transport,
    pub(super) claimed: Claimed,
    pub(super) done: Arc<Notify>,
}

impl Lane {
    pub(super) async fn run(
        mut self,
        rx: Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Sent and removed, but the removals not yet flushed.
        let mut unflushed = 0;
        loop {
            // Another message is taken at once while the batch has room; with none waiting
            // (or a full batch), the removals are made durable first.
            let mut next = None;
            if unflushed > 0 && unflushed < self.worker.batch {
                next = rx.lock().await.try_recv().ok();
            }
            if next.is_none() && unflushed > 0 {
                self.worker.flush_removals(unflushed).await;
                unflushed = 0;
            }
            if next.is_none() {
                let mut rx = rx.lock().await;
                next = tokio::select! {
                    next = rx.recv() => next,
                    _ = stop.changed() => None,
                };
            }
            let Some(id) = next else { break };
            unflushed += usize::from(self.take(id, &stop).await);
            if *stop.borrow() {
                break;
            }
        }
        if unflushed > 0 {
            self.worker.flush_removals(unflushed).await;
        }
        self.transport.close().await;
    }

    /// Delivers entry `id` if it is still due; true if it was sent and its removal awaits a
    /// flush. Then gives the entry back to the dispatcher.
    async fn take(&mut self, id: u64, stop: &watch::Receiver<bool>) -> bool {
        let mut unflushed = false;
        if !*stop.borrow() && self.worker.db.fault().is_none() {
            // The dispatcher's scan may predate another lane's work on this entry (sent
            // and removed, or rescheduled): act only on what the store says now.
            // Off the async threads: the check may wait for a backup or an account lock.
            let worker = self.worker.clone();
            let due = tokio::task::spawn_blocking(move || worker.still_due(id)).await;
            // A fault met meanwhile (another lane's removal failed) stops sending too.
            if let (Ok(Some(message)), None) = (due, self.worker.db.fault()) {
                unflushed = self.worker.deliver(&mut self.transport, id, message).await;
            }
        }
        self.worker.beat();
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.done.notify_one();
        unflushed
    }
}
