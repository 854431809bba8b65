//! Group commit: one thread runs `sled::Db::flush` for every caller waiting at that moment.
//!
//! sled 0.34's `flush_async` deadlocks with 7 or more concurrent callers (sled#1308), and a
//! `spawn_blocking(flush)` per request costs a thread hop and a flush each. Here a request
//! queues a oneshot; the thread takes everything queued, flushes once, and answers them all.
//! A write made before queueing is always covered, because its flush starts after the dequeue.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{Result, StoreError};
use crate::config::Durability;

type Waiter = oneshot::Sender<std::result::Result<(), String>>;

pub(super) struct Flusher {
    tx: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(db: sled::Db, path: PathBuf, durability: Durability) -> Flusher {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("resetgate-flush".into())
            .spawn(move || run(db, path, durability, rx))
            .expect("spawning a thread at start-up succeeds");
        Flusher {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub(super) async fn wait(&self) -> Result<()> {
        let (done, result) = oneshot::channel();
        let tx = self.tx.as_ref().expect("the sender lives until drop");
        tx.send(done)
            .map_err(|_| StoreError::Flush("the flush thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Flush("the flush thread has stopped".into()))?
            .map_err(StoreError::Flush)
    }
}

impl Drop for Flusher {
    /// Closing the channel ends the thread; joining it releases its handle on sled, so the
    /// data directory's lock is free once the last `Db` is gone.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(db: sled::Db, path: PathBuf, durability: Durability, rx: mpsc::Receiver<Waiter>) {
    let mut file = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let result = flush(&db, &path, durability, &mut file);
        if let Err(e) = &result {
            tracing::error!(error = %e, "flushing the store failed");
        }
        for waiter in batch {
            let _ = waiter.send(result.clone());
        }
    }
}

/// `flush` survives a process crash; sled uses sync_file_range, so only the extra fsync of
/// its `db` file makes the write survive a power loss as well.
fn flush(
    db: &sled::Db,
    path: &std::path::Path,
    durability: Durability,
    file: &mut Option<File>,
) -> std::result::Result<(), String> {
    db.flush().map_err(|e| e.to_string())?;
    if durability == Durability::Fsync {
        if file.is_none() {
            *file = Some(File::open(path.join("db")).map_err(|e| e.to_string())?);
        }
        file.as_ref()
            .expect("opened just above")
            .sync_all()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
