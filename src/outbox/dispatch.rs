//! The outbox: one dispatcher claims due entries in FIFO order and hands them to
//! `mail.smtp.connections` lanes, each with its own transport (connection): render → send →
//! remove | retry | bury.
//!
//! The dispatcher wakes at once when a request queues mail (a `Notify` permit is never lost
//! between the scan and the wait), when a lane finishes, or when the next retry is due. An
//! entry is claimed by at most one lane at a time. Shutdown is checked between messages, so
//! every lane finishes the message it is sending.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use super::gate::{gate, Gate};
use super::lane::Lane;
use super::worker::{Claimed, Worker};
use super::Transport;
use crate::store::unix_ms;

/// How many due entries one scan takes.
const BATCH: usize = 64;

/// The longest the dispatcher sleeps without looking at the outbox.
const IDLE: Duration = Duration::from_secs(60);

/// Runs until `stop` turns true; dropping the future stops every lane. `transports`: one
/// per lane, and the prober's ([`super::revival`]).
pub async fn run(
    worker: Worker,
    transports: (Vec<Transport>, Transport),
    mut stop: watch::Receiver<bool>,
) {
    let (transports, prober) = transports;
    let worker = Arc::new(worker);
    let claimed: Claimed = Arc::default();
    let done = Arc::new(Notify::new());
    let (tx, rx) = mpsc::channel::<u64>(1);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut lanes = JoinSet::new();
    for transport in transports {
        let lane = Lane {
            worker: worker.clone(),
            transport,
            claimed: claimed.clone(),
            done: done.clone(),
        };
        lanes.spawn(lane.run(rx.clone(), stop.clone()));
    }
    // Only the lanes keep the receiver: when they are gone, a send fails instead of waiting.
    drop(rx);
    let probing = tokio::spawn(super::revival::watch(worker.clone(), prober, stop.clone()));
    dispatch(&worker, tx, &claimed, &done, &mut stop).await;
    while lanes.join_next().await.is_some() {}
    let _ = probing.await;
}

async fn dispatch(
    worker: &Worker,
    tx: mpsc::Sender<u64>,
    claimed: &Claimed,
    done: &Notify,
    stop: &mut watch::Receiver<bool>,
) {
    loop {
        let now = unix_ms(SystemTime::now());
        match gate(&worker.db, stop).await {
            Gate::Stop => break,
            Gate::WaitForRoom => {
                wait(&worker.wake, done, stop, Some(now + 1_000), now).await;
                worker.beat();
                continue;
            }
            Gate::Go => {}
        }
        let due = match worker
            .db
            .blocking(move |db| db.outbox_due(now, BATCH))
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "reading the outbox failed");
                wait(&worker.wake, done, stop, Some(now + 1_000), now).await;
                continue;
            }
        };
        worker.note_lag(&due.entries, now);
        let fresh = claim(claimed, due.entries.into_iter().map(|(id, _)| id));
        if fresh.is_empty() {
            // Everything due is with the lanes: wait for one of them (or new mail), not in a
            // busy loop.
            let next = due.next_ms.map(|t| t.max(now + 50));
            wait(&worker.wake, done, stop, next, now).await;
            worker.beat();
            continue;
        }
        hand_out(fresh, &tx, claimed, stop).await;
        worker.beat();
    }
}

/// The ids no lane has claimed yet, now claimed.
fn claim(claimed: &Claimed, due: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut claimed = claimed.lock().unwrap_or_else(|p| p.into_inner());
    due.filter(|id| claimed.insert(*id)).collect()
}

/// Gives each id to the next free lane; one that cannot be given (a stop) is unclaimed.
async fn hand_out(
    fresh: Vec<u64>,
    tx: &mpsc::Sender<u64>,
    claimed: &Claimed,
    stop: &mut watch::Receiver<bool>,
) {
    for id in fresh {
        // `wait_for` sees a stop that happened before this point too (`changed` would wait
        // for another one, and a send to busy or finished lanes would never end).
        let sent = tokio::select! {
            sent = tx.send(id) => sent.is_ok(),
            _ = stop.wait_for(|stop| *stop) => false,
        };
        if !sent {
            claimed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
    }
}

async fn wait(
    wake: &Notify,
    done: &Notify,
    stop: &mut watch::Receiver<bool>,
    next_ms: Option<u64>,
    now: u64,
) {
    // At most a minute: a wake-up that was never sent (a request dropped between queueing
    // and notifying) costs a minute, not a code's lifetime; it also keeps the heartbeat fresh.
    let sleep = next_ms.map_or(IDLE, |t| {
        Duration::from_millis(t.saturating_sub(now)).min(IDLE)
    });
    tokio::select! {
        () = wake.notified() => {}
        () = done.notified() => {}
        () = tokio::time::sleep(sleep) => {}
        _ = stop.changed() => {}
    }
}
