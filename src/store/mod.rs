//! The sled store: one list of trees, typed records, and the durability point.
//!
//! Trees are named `key_value`:
//! - `email_user`:    normalized email → [`users::User`] (JSON)
//! - `email_reset`:   normalized email (or a decoy's NUL-prefixed key) → [`records::Reset`] (JSON)
//! - `id_outbox`:     big-endian u64 id (FIFO) → [`outbox::Queued`] (JSON)
//! - `id_dead`:       big-endian u64 id → [`outbox::Dead`] (JSON), mail or webhook
//! - `endpoint_webhook`: endpoint name, `0x00`, big-endian u64 id (FIFO per endpoint) →
//!   [`outbox::Queued`] (JSON), a webhook delivery (schema 3 kept them in `id_webhook` by
//!   id alone; opening moves them: [`webhooks`])
//! - `cidr_block`:    network ("203.0.113.0/24") → [`blocks::Block`] (JSON), the runtime deny list
//! - `account_history`: normalized email, `0xff`, big-endian u64 ms, u32 sequence →
//!   [`history::Entry`] (JSON): each account's recent history, for support
//! - `meta`:          `schema_version` → big-endian u32; `instance_id` → 8 random bytes;
//!   `ready_probe` → the time of the last readiness check
//!
//! The code index (HMAC-SHA256(code) → the record holding it), which confirm-otp-reset
//! needs, is kept in memory and rebuilt from `email_reset` at open ([`code_index`]); stores
//! written before 2026-12-02 had it as a tree, `codemac_email`, which opening drops.
//!
//! The store keeps records and knows no recovery rule. A step that changes records reads
//! them, lets the caller's pure function decide, and writes the changes as one sled
//! transaction ([`Db::transact`], `resets`). Issuing a code, the request path under load,
//! is the exception: sled 0.34 runs every transaction alone under one global lock (about
//! 110 µs each here), so [`Db::issue_code`] orders plain writes and commits with one
//! compare-and-swap (`codes`). A 200 goes out only after [`Db::durable`] returned, which
//! shares one flush among all concurrent callers.
//!
//! Files: `records` (the reset record's types), `resets` (read, decide, write), `codes`
//! (issuing), `code_index` (the index in memory), `users`, `outbox`, `dead` (dead letters),
//! `history` (each account's history), `blocks`, `backup`, `migrate`, `tx`
//! (transaction helpers), `writer` (the writer thread's group commit), `health` (write faults, free space).

pub mod backup;
pub mod blocks;
mod code_index;
pub mod codes;
pub mod dead;
mod health;
pub mod history;
pub mod migrate;
pub mod outbox;
pub mod records;
pub mod resets;
#[cfg(test)]
pub(crate) mod test_support;
mod tx;
pub mod users;
pub mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{Durability, Storage};

pub(crate) use migrate::SCHEMA_VERSION;

/// Every tree, by name (the layout is described above).
const TREES: [&str; 8] = [
    "email_user",
    "email_reset",
    "id_outbox",
    "id_dead",
    "endpoint_webhook",
    "cidr_block",
    "account_history",
    "meta",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another resetgate process")]
    Locked(PathBuf),
    #[error("the store was written by a newer resetgate (schema {found}, this build reads {SCHEMA_VERSION})")]
    TooNew { found: u32 },
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("durability: {0}")]
    Flush(String),
    #[error("a store task failed: {0}")]
    Task(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The store handle: cheap to clone, shared by the HTTP handlers and the workers.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    users: sled::Tree,
    resets: sled::Tree,
    codes: code_index::CodeIndex,
    outbox: sled::Tree,
    dead: sled::Tree,
    webhooks: sled::Tree,
    blocks: sled::Tree,
    meta: sled::Tree,
    history_tree: sled::Tree,
    /// Account history noted and not yet written, and its writer thread.
    history: history::Log,
    instance_id: String,
    writer: writer::Writer,
    /// `storage.durability = "background"`: no flush before answering.
    background: bool,
    /// Writers share it; a backup takes it alone, so that its copy of all trees is
    /// consistent (sled has no snapshot across trees).
    gate: std::sync::RwLock<()>,
    /// Held from taking a step's ids to its commit ([`Db::transact`]): ids, and so the order
    /// of webhook deliveries, follow the order in which the changes committed.
    commit_order: std::sync::Mutex<()>,
    /// Changed after each commit that queued webhook deliveries: wakes their tasks.
    webhooks_queued: tokio::sync::watch::Sender<u64>,
    /// Raised when webhook deliveries come back under old ids (a retried dead letter):
    /// the endpoints' tasks then scan their whole range ([`webhooks::Backlog`]).
    webhook_epoch: std::sync::atomic::AtomicU64,
    /// Webhook queue entries decoded by scans (the delivery tasks', /metrics'), for the
    /// counter that shows a scan's cost ([`webhooks`]).
    webhook_reads: std::sync::atomic::AtomicU64,
    /// What opening did to an older store.
    migrated: Option<migrate::Migrated>,
    /// Striped per-account locks: see [`Db::account`].
    accounts: Box<[std::sync::Mutex<()>]>,
    stripe_key: std::hash::RandomState,
    health: health::Health,
}

/// How many per-account lock stripes there are.
const ACCOUNT_STRIPES: usize = 256;

impl Db {
    /// Opens (or creates) the store under `data_dir/store`.
    pub fn open(data_dir: &Path, cache_mb: u64, durability: Durability) -> Result<Db> {
        Db::open_with(&Storage {
            data_dir: data_dir.to_path_buf(),
            cache_capacity_mb: cache_mb,
            durability,
            ..Storage::default()
        })
    }

    /// Opens (or creates) the store as `[storage]` says, migrating an older one (see
    /// [`migrate`]).
    pub fn open_with(storage: &Storage) -> Result<Db> {
        let (data_dir, durability) = (&storage.data_dir, storage.durability);
        let path = data_dir.join("store");
        let open = || {
            sled::Config::new()
                .path(&path)
                .cache_capacity(storage.cache_capacity_mb * 1024 * 1024)
                .flush_every_ms(Some(storage.flush_every.as_millis().max(1) as u64))
                .open()
        };
        let db = match open() {
            // sled 0.34 reads an unfinished snapshot (`snap.*.generating`, left when it ran
            // out of space while writing one) as the newest one, and then refuses to open.
            // It held the directory's lock when it said so: nobody else is writing one.
            Err(sled::Error::Corruption { .. }) if remove_unfinished_snapshots(&path) > 0 => open(),
            other => other,
        };
        let db = db.map_err(|e| match e {
            sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked(data_dir.to_path_buf())
            }
            other => StoreError::Sled(other),
        })?;
        let migrated = migrate::upgrade(&db, unix_ms(SystemTime::now()))?;
        if let Some(m) = &migrated {
            tracing::info!(
                from = m.from,
                to = SCHEMA_VERSION,
                records = m.records,
                "migrated the store to the current schema"
            );
        }
        // The code index used to be a tree; it is rebuilt from the records now.
        db.drop_tree("codemac_email")?;
        let resets = db.open_tree("email_reset")?;
        let codes = code_index::CodeIndex::build(&resets)?;
        let meta = db.open_tree("meta")?;
        let instance_id = instance_id(&meta)?;
        let writer = writer::Writer::start(db.clone(), path, durability);
        let background = durability == Durability::Background;
        let inner = Inner {
            users: db.open_tree("email_user")?,
            resets,
            codes,
            outbox: db.open_tree("id_outbox")?,
            dead: db.open_tree("id_dead")?,
            webhooks: db.open_tree("endpoint_webhook")?,
            blocks: db.open_tree("cidr_block")?,
            meta,
            history: history::Log::start(db.open_tree("account_history")?),
            history_tree: db.open_tree("account_history")?,
            db,
            instance_id,
            writer,
            background,
            gate: std::sync::RwLock::new(()),
            commit_order: std::sync::Mutex::new(()),
            webhooks_queued: tokio::sync::watch::channel(0).0,
            webhook_epoch: std::sync::atomic::AtomicU64::new(0),
            webhook_reads: std::sync::atomic::AtomicU64::new(0),
            migrated,
            accounts: (0..ACCOUNT_STRIPES)
                .map(|_| std::sync::Mutex::new(()))
                .collect(),
            stripe_key: std::hash::RandomState::new(),
            health: health::Health::new(data_dir.clone(), storage.min_free),
        };
        Ok(Db {
            inner: Arc::new(inner),
        })
    }

    /// Waits until every write made before this call is on disk (group commit).
    /// With `storage.durability = "background"` this returns at once, and the write is on
    /// disk within `storage.flush_every`.
    pub async fn durable(&self) -> Result<()> {
        if self.inner.background {
            return Ok(());
        }
        self.write(|_| Ok(()), |_| true).await
    }

    /// Runs `work` on the store's writer thread and answers once it is on disk, if
    /// `flush_if` says its result needs that: one hop for a step's writes and their flush,
    /// shared with every job queued beside it (see [`writer`]). `work` must not wait for
    /// anything but the store's own locks (a backup's gate, an account lock): every writer
    /// waits behind it.
    pub async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T> + Send + 'static,
        flush_if: impl FnOnce(&T) -> bool + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let db = self.clone();
        let job: writer::Job = Box::new(move || {
            let done = work(&db);
            drop(db);
            let flush = done.as_ref().is_ok_and(flush_if);
            let answer: writer::Answer = Box::new(move |flushed| {
                let _ = tx.send(done.and_then(|t| match flushed {
                    Ok(()) => Ok(t),
                    Err(e) if flush => Err(StoreError::Flush(e)),
                    Err(_) => Ok(t),
                }));
            });
            (flush, answer)
        });
        self.inner.writer.send(job)?;
        let done = rx.await.unwrap_or_else(|_| Err(writer::stopped()));
        self.observe(done)
    }

    /// Runs `work` on a blocking thread. Every call that may wait (for the write gate while a
    /// backup holds it, for an account lock, for a transaction's retries, or through a
    /// scan) goes through here from async code, so that no tokio worker ever waits on the
    /// store: with two cores, two parked workers would freeze both listeners and the outbox.
    /// Single-key reads (`user`, `code_owner`, `reset`) stay on the async threads: they
    /// take no lock (sled serves them from its cache or the OS page cache), and they are
    /// what the common refusals cost.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.clone();
        let done = tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        self.observe(done)
    }

    /// Notes a write fault in `result` (see [`health`]) and passes it on.
    fn observe<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.inner.health.observe(e);
        }
        result
    }

    /// The write fault that stopped the store, if one did: sled refuses every write after
    /// its first I/O error, so only a new process can write again.
    pub fn fault(&self) -> Option<&str> {
        self.inner.health.fault()
    }

    /// Resolves once the store met a write fault.
    pub async fn faulted(&self) {
        self.inner.health.faulted().await
    }

    /// The free bytes when they are below `storage.min_free` (warned about once a minute).
    pub fn low_on_space(&self) -> Option<u64> {
        self.inner.health.low_on_space()
    }

    /// Free bytes on the data directory's file system, for the metrics.
    pub fn free_bytes(&self) -> Option<u64> {
        self.inner.health.free_bytes()
    }

    /// A blocking flush, for shutdown and for the CLI's direct mode: what account history
    /// is noted is written first.
    pub fn flush_blocking(&self) -> Result<()> {
        self.inner.history.settle(&self.inner.history_tree)?;
        self.inner.db.flush()?;
        Ok(())
    }

    /// Held by every write: see `Inner::gate`.
    /// Changes after each commit that queued webhook deliveries (the delivery tasks flush
    /// before they send, so they may look at once).
    pub fn webhooks_queued(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.webhooks_queued.subscribe()
    }

    pub(crate) fn note_webhooks_queued(&self) {
        self.inner
            .webhooks_queued
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn writing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.inner.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Serializes the multi-step writes that name one account (issuing a code, removing the
    /// account) and the outbox's check that a code's mail is still wanted, so that neither
    /// sees another half done. Held for a few sled operations at most, never across an await.
    pub(crate) fn account(&self, key: &[u8]) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::BuildHasher;
        let stripe = self.inner.stripe_key.hash_one(key) as usize % ACCOUNT_STRIPES;
        self.inner.accounts[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A small write to `meta` (not flushed): does the store take writes?
    pub fn probe_write(&self, now_ms: u64) -> Result<()> {
        let _gate = self.writing();
        self.inner
            .meta
            .insert("ready_probe", &now_ms.to_be_bytes())?;
        Ok(())
    }

    /// The migration this open ran, if the store was older.
    pub fn migrated(&self) -> Option<&migrate::Migrated> {
        self.inner.migrated.as_ref()
    }

    /// Random per-store id, part of every Message-ID.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.inner.db.size_on_disk()?)
    }
}

/// Removes `snap.*.generating` files from sled's directory; returns how many.
fn remove_unfinished_snapshots(store: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(store) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.")
            && name.ends_with(".generating")
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::warn!(file = %name, "removed an unfinished sled snapshot (left when the disk was full)");
            removed += 1;
        }
    }
    removed
}

fn instance_id(meta: &sled::Tree) -> Result<String> {
    let fresh = crate::crypto::random_bytes::<8>();
    let stored =
        match meta.compare_and_swap("instance_id", None as Option<&[u8]>, Some(&fresh[..]))? {
            Ok(()) => fresh.to_vec(),
            Err(existing) => existing.current.map(|v| v.to_vec()).unwrap_or_default(),
        };
    Ok(stored.iter().map(|b| format!("{b:02x}")).collect())
}

/// Milliseconds since the Unix epoch: the unit of every stored timestamp.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("stored records serialize infallibly")
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Big-endian keys keep ids in FIFO order in scans.
pub(crate) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn key_id(key: &[u8]) -> Result<u64> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("an outbox key is not 8 bytes".into()))
}

/// Opens a store that this process had open a moment ago: sled's I/O threads let go of the
/// directory's lock a little after the last handle is dropped, with no way to wait for it.
#[cfg(test)]
pub(crate) fn reopen(dir: &Path) -> Result<Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match Db::open(dir, 8, Durability::Flush) {
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::yield_now()
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests;
