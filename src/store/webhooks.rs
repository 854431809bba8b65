//! The webhook queue (`endpoint_webhook`), keyed by endpoint and id, and what an
//! endpoint's delivery task remembers of it between scans ([`Backlog`]).
//!
//! With one endpoint down for days, its backlog grows to the events of those days. Keyed by
//! id alone, every endpoint's scan read that backlog, and each endpoint's task scanned
//! again at every queued event, so that each password change cost O(backlog). Keyed by
//! endpoint, a scan reads its own endpoint's entries only; and a task that has scanned its
//! backlog once looks at the entries queued since (ids grow, so they are at the end of its
//! range) until something in the backlog falls due.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::Ordering;

use super::outbox::Queued;
use super::{decode, id_key, Db, Result, StoreError};

/// A full scan of an endpoint's entries at least this often, whatever the task remembers.
const FULL_EVERY_MS: u64 = 60_000;

/// How many of the soonest retries a task remembers, so that one falling due is read by
/// its key rather than by a scan (16 bytes each).
const UPCOMING: usize = 4_096;

/// How far past a delivered entry the next one of its account is looked for, before
/// the task settles for a full scan.
const FOLLOWER_SEARCH: usize = 4_096;

/// `endpoint`, a NUL byte (endpoint names are `[a-z0-9_-]`), the big-endian id.
pub(crate) fn webhook_key(endpoint: &str, id: u64) -> Vec<u8> {
    let mut key = endpoint_prefix(endpoint);
    key.extend_from_slice(&id_key(id));
    key
}

pub(crate) fn endpoint_prefix(endpoint: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(endpoint.len() + 9);
    prefix.extend_from_slice(endpoint.as_bytes());
    prefix.push(0);
    prefix
}

/// The id at the end of a `endpoint_webhook` key.
pub(crate) fn webhook_key_id(key: &[u8]) -> Result<u64> {
    key.len()
        .checked_sub(8)
        .and_then(|at| key[at..].try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("a webhook queue key is too short".into()))
}

/// What one endpoint's task knows of its queue since its last full scan: the newest id it
/// has looked at, the soonest entries in backoff (when each falls due, up to [`UPCOMING`]),
/// and how many entries each account has queued (by a keyed hash, 12 bytes and the map's
/// overhead per account), which orders a new entry behind an earlier one of its account.
#[derive(Debug, Default)]
pub struct Backlog {
    seen: Option<u64>,
    /// (when it falls due, id) of the soonest entries in backoff.
    upcoming: BTreeSet<(u64, u64)>,
    /// The earliest time of an entry left out of `upcoming` (it was full): from then on,
    /// only a full scan knows what is due.
    horizon: Option<u64>,
    accounts: HashMap<u64, u32>,
    hasher: RandomState,
    /// Entries that became their account's first (the one before was delivered).
    ready: Vec<u64>,
    /// Entries that left the queue (delivered, set aside), with their accounts.
    left: Vec<(u64, String)>,
    full_at: u64,
    epoch: u64,
    /// The last scan stopped at its limit: the next goes on from `seen`.
    more: bool,
    stale: bool,
}

impl Backlog {
    /// When the next entry of the backlog falls due (None: only a new entry will be).
    pub fn next_ms(&self) -> Option<u64> {
        let soonest = self.upcoming.first().map(|(at, _)| *at);
        match (soonest, self.horizon) {
            (Some(a), Some(h)) => Some(a.min(h)),
            (a, h) => a.or(h),
        }
    }

    /// Whether the last scan stopped at its limit, with more to look at.
    pub fn more(&self) -> bool {
        self.more
    }

    /// Entry `id`, of `account`, is no longer queued.
    pub fn left(&mut self, id: u64, account: &str) {
        self.left.push((id, account.to_string()));
    }

    /// Entry `id` falls due at `at_ms` (its next attempt, or its expiry if sooner).
    pub fn later(&mut self, id: u64, at_ms: u64) {
        self.upcoming.insert((at_ms, id));
        if self.upcoming.len() > UPCOMING {
            if let Some((dropped, _)) = self.upcoming.pop_last() {
                self.horizon = Some(self.horizon.map_or(dropped, |h| h.min(dropped)));
            }
        }
    }

    /// What the task knows may be wrong (a round broken off): scan everything next time.
    pub fn forget(&mut self) {
        self.stale = true;
    }

    fn account(&self, account: &str) -> Option<u64> {
        (!account.is_empty()).then(|| self.hasher.hash_one(account))
    }
}

impl Db {
    /// Entries of `endpoint`'s queue due at `now_ms` (at most `limit`, oldest first within
    /// what is looked at), a delivery waiting while an earlier one of its account is
    /// queued. Looks at the entries queued since the last call, unless `backlog` calls for
    /// a full scan: the first time, when an entry it saw falls due, a dead letter was
    /// retried, or a minute passed. A scan: run it off the async threads.
    pub fn webhooks_due(
        &self,
        endpoint: &str,
        now_ms: u64,
        limit: usize,
        b: &mut Backlog,
    ) -> Result<Vec<(u64, Queued)>> {
        let epoch = self.inner.webhook_epoch.load(Ordering::SeqCst);
        let full = b.stale
            || b.epoch != epoch
            || b.full_at + FULL_EVERY_MS <= now_ms
            || b.horizon.is_some_and(|t| t <= now_ms);
        let mut due = Vec::new();
        if full {
            *b = Backlog {
                hasher: std::mem::take(&mut b.hasher),
                epoch,
                full_at: now_ms,
                ..Backlog::default()
            };
        } else {
            self.follow_up(endpoint, now_ms, b, &mut due)?;
        }
        b.more = false;
        let prefix = endpoint_prefix(endpoint);
        let start = webhook_key(endpoint, b.seen.map_or(0, |s| s.saturating_add(1)));
        for entry in self.inner.webhooks.range(start..) {
            let (key, value) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            if due.len() == limit {
                b.more = true;
                break;
            }
            let id = webhook_key_id(&key)?;
            let message = self.read_webhook(&value)?;
            b.seen = Some(id);
            if let Some(h) = b.account(account_of(&message)) {
                let queued = b.accounts.entry(h).or_insert(0);
                *queued += 1;
                if *queued > 1 {
                    continue;
                }
            }
            consider(id, message, now_ms, b, &mut due);
        }
        Ok(due)
    }

    /// Accounts whose entries left: the next entry of each such account, if it has one,
    /// is its first now.
    fn follow_up(
        &self,
        endpoint: &str,
        now_ms: u64,
        b: &mut Backlog,
        due: &mut Vec<(u64, Queued)>,
    ) -> Result<()> {
        for (id, account) in std::mem::take(&mut b.left) {
            let Some(h) = b.account(&account) else {
                continue;
            };
            match b.accounts.get_mut(&h) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    b.accounts.remove(&h);
                    continue;
                }
            }
            match self.follower(endpoint, id, &account, b.seen)? {
                Some(next) => b.ready.push(next),
                None => b.stale = true,
            }
        }
        while let Some(&(at, id)) = b.upcoming.first() {
            if at > now_ms {
                break;
            }
            b.upcoming.pop_first();
            b.ready.push(id);
        }
        for id in std::mem::take(&mut b.ready) {
            if let Some(value) = self.inner.webhooks.get(webhook_key(endpoint, id))? {
                consider(id, self.read_webhook(&value)?, now_ms, b, due);
            }
        }
        Ok(())
    }

    /// The id of `account`'s next entry after `id`, up to `seen`, within
    /// [`FOLLOWER_SEARCH`] entries.
    fn follower(
        &self,
        endpoint: &str,
        id: u64,
        account: &str,
        seen: Option<u64>,
    ) -> Result<Option<u64>> {
        let prefix = endpoint_prefix(endpoint);
        let start = webhook_key(endpoint, id.saturating_add(1));
        let needle = serde_json::to_string(account).unwrap_or_default();
        for entry in self.inner.webhooks.range(start..).take(FOLLOWER_SEARCH) {
            let (key, value) = entry?;
            let next = webhook_key_id(&key)?;
            if !key.starts_with(&prefix) || seen.is_none_or(|s| next > s) {
                return Ok(None);
            }
            // Most entries are another account's: only a likely one is decoded.
            if !contains(&value, needle.as_bytes()) {
                continue;
            }
            let message = self.read_webhook(&value)?;
            if account_of(&message) == account {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// The endpoints with queued deliveries: a seek per endpoint, not a scan.
    pub fn webhook_endpoints(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut from = Vec::new();
        while let Some(entry) = self.inner.webhooks.range(from.as_slice()..).next() {
            let (key, _) = entry?;
            let end = key
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| StoreError::Corrupt("a webhook queue key has no endpoint".into()))?;
            names.push(String::from_utf8_lossy(&key[..end]).into_owned());
            from = key[..end].to_vec();
            from.push(1);
        }
        Ok(names)
    }

    /// Each endpoint's oldest queued delivery's age (endpoints with none are not named):
    /// the first entry of each endpoint, not a scan.
    pub fn oldest_webhooks(&self, now_ms: u64) -> Result<Vec<(String, u64)>> {
        let mut oldest = Vec::new();
        for name in self.webhook_endpoints()? {
            let first = self
                .inner
                .webhooks
                .scan_prefix(endpoint_prefix(&name))
                .next();
            if let Some(entry) = first {
                let m = self.read_webhook(&entry?.1)?;
                oldest.push((name, now_ms.saturating_sub(m.created_ms)));
            }
        }
        Ok(oldest)
    }

    /// Decodes a webhook queue entry, counting the read.
    fn read_webhook(&self, value: &[u8]) -> Result<Queued> {
        self.inner.webhook_reads.fetch_add(1, Ordering::Relaxed);
        decode("outbox entry", value)
    }

    /// Webhook queue entries decoded so far by the delivery tasks' scans and /metrics.
    pub fn webhook_queue_reads(&self) -> u64 {
        self.inner.webhook_reads.load(Ordering::Relaxed)
    }

    /// Removes webhook delivery `id` of `endpoint`.
    pub fn remove_webhook(&self, endpoint: &str, id: u64) -> Result<()> {
        let _gate = self.writing();
        self.inner.webhooks.remove(webhook_key(endpoint, id))?;
        Ok(())
    }

    /// Tells the endpoints' tasks that entries with older ids were queued (a dead letter
    /// retried): their next scan reads everything.
    pub(crate) fn note_webhooks_requeued(&self) {
        self.inner.webhook_epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// Puts `message` among the `due` or notes when it falls due.
fn consider(id: u64, message: Queued, now_ms: u64, b: &mut Backlog, due: &mut Vec<(u64, Queued)>) {
    if message.next_attempt_ms <= now_ms || message.expired(now_ms) {
        due.push((id, message));
    } else {
        b.later(id, message.falls_due());
    }
}

fn account_of(message: &Queued) -> &str {
    match &message.kind {
        super::outbox::Kind::Webhook { account, .. } => account,
        _ => "",
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// 3 → 4: the queue moves from `id_webhook` (id) to `endpoint_webhook` (endpoint, id).
/// Idempotent: an interrupted move starts again and writes the same keys.
pub(super) fn key_by_endpoint(db: &sled::Db) -> Result<u64> {
    let old = db.open_tree("id_webhook")?;
    let new = db.open_tree("endpoint_webhook")?;
    let mut moved = 0;
    for entry in old.iter() {
        let (key, value) = entry?;
        let message: Queued = decode("outbox entry", &value)?;
        new.insert(webhook_key(&message.to, super::key_id(&key)?), value)?;
        moved += 1;
    }
    // The moved entries reach the disk before the old tree goes.
    db.flush()?;
    db.drop_tree("id_webhook")?;
    Ok(moved)
}
