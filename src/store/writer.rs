//! The store's writer: one thread applies the writes that requests send it and makes them
//! durable together (group commit).
//!
//! A request used to hop twice before its 200: to a blocking thread for its writes, then to
//! a flusher thread for the flush. Now it sends its write set here once: the thread takes
//! every job queued at that moment, runs them one after another (sled serializes its
//! transactions anyway), flushes once if any of them wants it, and answers them all.
//! `Db::durable` is a job with nothing to write: a write made on another thread before it
//! was queued is covered, because the batch's flush starts after the dequeue.
//!
//! sled 0.34's `flush_async` deadlocks with 7 or more concurrent callers (sled#1308), so a
//! single thread calls the blocking `flush` for everyone.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{Result, StoreError};
use crate::config::Durability;

/// How a job is answered, once the batch's flush (if any) is done.
pub(super) type Answer = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

/// A job's writes, run on the writer thread: whether it waits for a flush, and its answer.
pub(super) type Job = Box<dyn FnOnce() -> (bool, Answer) + Send>;

/// At most this many jobs share a flush, so that a steady stream still gets answers.
const BATCH: usize = 512;

pub(super) struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(db: sled::Db, path: PathBuf, durability: Durability) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("resetgate-write".into())
            .spawn(move || run(db, path, durability, rx))
            .expect("spawning a thread at start-up succeeds");
        Writer {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues `job`; its answer tells the caller the rest.
    pub(super) fn send(&self, job: Job) -> Result<()> {
        let tx = self.tx.as_ref().expect("the sender lives until drop");
        tx.send(job).map_err(|_| stopped())
    }
}

pub(super) fn stopped() -> StoreError {
    StoreError::Flush("the store's writer has stopped".into())
}

impl Drop for Writer {
    /// Closing the channel ends the thread; joining it releases its handle on sled, so the
    /// data directory's lock is free once the last `Db` is gone. (The last `Db` may be
    /// dropped by a job on the writer itself, which then must not wait for itself.)
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

fn run(db: sled::Db, path: PathBuf, durability: Durability, rx: mpsc::Receiver<Job>) {
    let mut file = None;
    let mut answers = Vec::with_capacity(BATCH);
    while let Ok(first) = rx.recv() {
        let mut wants_flush = false;
        for job in std::iter::once(first).chain(rx.try_iter().take(BATCH - 1)) {
            // A job that panics drops its answer: its caller hears that the writer stopped,
            // and the others are answered as usual. (The release build aborts on a panic,
            // as everywhere else in the process; this keeps the tests' builds honest.)
            if let Ok((flush, answer)) = catch_unwind(AssertUnwindSafe(job)) {
                wants_flush |= flush;
                answers.push(answer);
            }
        }
        let result = match wants_flush && durability != Durability::Background {
            true => flush(&db, &path, durability, &mut file),
            false => Ok(()),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "flushing the store failed");
        }
        for answer in answers.drain(..) {
            answer(result.clone());
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
