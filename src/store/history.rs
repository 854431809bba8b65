//! Each account's recent history, for support (`account_history`): what happened to it (a
//! code asked for; its mail accepted by the relay, with the relay's reply, or set aside; a
//! confirmation; refused confirmations, counted per hour; a password change; a lock; the
//! operator's changes), when, and from which client. Never a code, a password or a hash.
//!
//! Entries are noted in memory ([`Db::note`]) and written by a thread of their own every
//! 100 ms (no request waits for them, and forgot-password's writes stay what they were);
//! the next flush makes them durable (a request's, sled's own every `storage.flush_every`,
//! or the last one at shutdown, which writes what is noted first). A crash can lose the
//! last such moment of history, never an acknowledged code or mail.
//!
//! Keys: the account's key, `0xff`, the time (u64 ms, big-endian) and a sequence number
//! (u32): one account's entries are a prefix scan in time order. What a storm repeats
//! (codes asked for, their mail accepted, refused confirmations) has one entry per kind and
//! hour, keyed at the hour's start with the kind's slot for a sequence number, whose count
//! grows: a storm of requests neither evicts the rest of an account's history nor grows it
//! by more than those three entries an hour. Reading orders entries by their latest time
//! and keeps the newest `per_account` no older than `keep`; the sweeper deletes the rest
//! ([`Db::trim_history`]).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{decode, encode, Db, Result};
use crate::events::Event;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    CodeRequested,
    MailAccepted,
    MailDead,
    CodeConfirmed,
    ConfirmationsRefused,
    PasswordChanged,
    Locked,
    Unlocked,
    Disabled,
    Enabled,
    EmailChanged,
}

/// The longest detail kept, in bytes: an entry stays small whatever the relay answers.
pub const DETAIL_MAX: usize = 200;

/// One line of an account's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at_ms: u64,
    pub what: What,
    /// The client address that caused it, if a request did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The relay's reply, a dead letter's reason, who set a password, the other address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// How many in the hour, for the kinds counted per hour (the other fields are the
    /// latest's).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u32,
    /// When the latest of them happened, for the kinds counted per hour.
    #[serde(default, skip_serializing_if = "is_zero_ms")]
    pub last_ms: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_ms(n: &u64) -> bool {
    *n == 0
}

/// The kinds a storm repeats, counted in one entry per account and hour: the entry's
/// sequence number (above any other's).
fn hourly_slot(what: What) -> Option<u32> {
    match what {
        What::CodeRequested => Some(u32::MAX - 2),
        What::MailAccepted => Some(u32::MAX - 1),
        What::ConfirmationsRefused => Some(u32::MAX),
        _ => None,
    }
}

impl Entry {
    pub fn new(what: What, at_ms: u64) -> Entry {
        Entry {
            at_ms,
            what,
            client: String::new(),
            request_id: String::new(),
            detail: String::new(),
            count: 0,
            last_ms: 0,
        }
    }

    /// When it last happened: the latest of an hour's counted entry.
    pub fn latest_ms(&self) -> u64 {
        self.at_ms.max(self.last_ms)
    }

    /// This hour's entry with `newer` counted in: the first's time, the latest's details.
    fn and(self, newer: Entry) -> Entry {
        let keep = |newer: String, old: String| if newer.is_empty() { old } else { newer };
        Entry {
            count: self.count.max(1).saturating_add(1),
            last_ms: newer.at_ms,
            client: keep(newer.client, self.client),
            request_id: keep(newer.request_id, self.request_id),
            detail: keep(newer.detail, self.detail),
            ..self
        }
    }

    /// The entry `event` leaves in its account's history, if any, caused by `client`'s
    /// request `request_id` (empty: the operator).
    pub fn of(event: &Event, client: &str, request_id: &str, now_ms: u64) -> Option<Entry> {
        let entry = match event {
            Event::PasswordChanged { source, .. } => {
                Entry::new(What::PasswordChanged, now_ms).detail(source.name())
            }
            Event::AccountLocked { failures, .. } => Entry::new(What::Locked, now_ms)
                .detail(format!("{failures} failed confirmations in a row")),
            Event::CodeConfirmed { .. } => Entry::new(What::CodeConfirmed, now_ms),
            Event::EmailChanged { previous, .. } => {
                Entry::new(What::EmailChanged, now_ms).detail(format!("from {previous}"))
            }
            Event::AccountDisabled { .. } => Entry::new(What::Disabled, now_ms),
            Event::AccountEnabled { .. } => Entry::new(What::Enabled, now_ms),
            Event::BudgetExhausted { .. } => return None,
        };
        Some(entry.client(client).request_id(request_id))
    }

    pub fn client(mut self, client: impl Into<String>) -> Entry {
        self.client = client.into();
        self
    }

    pub fn request_id(mut self, id: impl Into<String>) -> Entry {
        self.request_id = id.into();
        self
    }

    /// `detail` when the entry has none yet.
    pub fn detail_or(self, detail: &str) -> Entry {
        if self.detail.is_empty() {
            return self.detail(detail);
        }
        self
    }

    /// The detail, cut to [`DETAIL_MAX`] bytes (a relay's reply can be of any length).
    pub fn detail(mut self, detail: impl Into<String>) -> Entry {
        let mut detail = detail.into();
        if detail.len() > DETAIL_MAX {
            let cut = (0..=DETAIL_MAX - 3)
                .rev()
                .find(|&i| detail.is_char_boundary(i))
                .unwrap_or(0);
            detail.truncate(cut);
            detail.push('…');
        }
        self.detail = detail;
        self
    }
}

/// The entries noted and not yet written, and the writer thread.
pub(super) struct Log {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    seq: AtomicU32,
}

#[derive(Default)]
struct Pending {
    entries: Vec<(String, Entry)>,
    stop: bool,
}

const EVERY: Duration = Duration::from_millis(100);
const HOUR_MS: u64 = 3_600_000;

impl Log {
    pub(super) fn start(tree: sled::Tree) -> Log {
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            wake: Condvar::new(),
            seq: AtomicU32::new(1),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("resetgate-history".into())
            .spawn(move || writer.run(&tree))
            .expect("spawning a thread at start-up succeeds");
        Log {
            shared,
            thread: Some(thread),
        }
    }

    fn note(&self, account: &str, entry: Entry) {
        let mut pending = self.shared.lock();
        pending.entries.push((account.to_string(), entry));
    }

    /// Writes what is noted now (before a shutdown's last flush, a backup, a read).
    pub(super) fn settle(&self, tree: &sled::Tree) -> Result<()> {
        let entries = std::mem::take(&mut self.shared.lock().entries);
        self.shared.write(tree, entries)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, tree: &sled::Tree) {
        loop {
            let pending = self.lock();
            let (mut pending, _) = self
                .wake
                .wait_timeout(pending, EVERY)
                .unwrap_or_else(|p| p.into_inner());
            let entries = std::mem::take(&mut pending.entries);
            let stop = pending.stop;
            drop(pending);
            if let Err(e) = self.write(tree, entries) {
                tracing::error!(error = %e, "writing account history failed");
            }
            if stop {
                return;
            }
        }
    }

    fn write(&self, tree: &sled::Tree, entries: Vec<(String, Entry)>) -> Result<()> {
        for (account, entry) in entries {
            if let Some(slot) = hourly_slot(entry.what) {
                let hour = entry.at_ms - entry.at_ms % HOUR_MS;
                tree.update_and_fetch(key(&account, hour, slot), |old| {
                    let counted = match old.and_then(|v| serde_json::from_slice::<Entry>(v).ok()) {
                        Some(old) => old.and(entry.clone()),
                        None => Entry {
                            count: 1,
                            last_ms: entry.at_ms,
                            ..entry.clone()
                        },
                    };
                    Some(encode(&counted))
                })?;
            } else {
                // Below the hourly slots, which a wrapped sequence number must not hit.
                let seq = self.seq.fetch_add(1, Relaxed) % (u32::MAX - 2);
                tree.insert(key(&account, entry.at_ms, seq), encode(&entry))?;
            }
        }
        Ok(())
    }
}

fn prefix(account: &str) -> Vec<u8> {
    let mut key = account.as_bytes().to_vec();
    key.push(0xff);
    key
}

fn key(account: &str, at_ms: u64, seq: u32) -> Vec<u8> {
    let mut key = prefix(account);
    key.extend_from_slice(&at_ms.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// How much history is kept: per account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub per_account: usize,
    pub keep_ms: u64,
}

impl Db {
    /// Notes `entry` in account `account`'s history (written within 100 ms).
    pub fn note(&self, account: &str, entry: Entry) {
        self.inner.history.note(account, entry);
    }

    /// Account `account`'s history, oldest first: its newest entries within `keep`.
    pub fn history(&self, account: &str, keep: Keep, now_ms: u64) -> Result<Vec<Entry>> {
        self.inner.history.settle(&self.inner.history_tree)?;
        let mut entries = Vec::new();
        for item in self.inner.history_tree.scan_prefix(prefix(account)) {
            let (_, value) = item?;
            let entry: Entry = decode("history entry", &value)?;
            if entry.at_ms.saturating_add(keep.keep_ms) > now_ms {
                entries.push(entry);
            }
        }
        // An hour's counted entry (keyed at the hour's start) takes its latest's place.
        entries.sort_by_key(Entry::latest_ms);
        let skip = entries.len().saturating_sub(keep.per_account);
        Ok(entries.split_off(skip))
    }

    /// Moves account `from`'s history to `to` (a changed address).
    pub fn move_history(&self, from: &str, to: &str) -> Result<()> {
        let _gate = self.writing();
        self.inner.history.settle(&self.inner.history_tree)?;
        let tree = &self.inner.history_tree;
        let old = prefix(from);
        for item in tree.scan_prefix(&old) {
            let (k, value) = item?;
            let mut moved = prefix(to);
            moved.extend_from_slice(&k[old.len()..]);
            tree.insert(moved, value)?;
            tree.remove(k)?;
        }
        Ok(())
    }

    /// Deletes an account's history (a removed account).
    pub fn forget_history(&self, account: &str) -> Result<()> {
        let _gate = self.writing();
        self.inner.history.settle(&self.inner.history_tree)?;
        let tree = &self.inner.history_tree;
        for item in tree.scan_prefix(prefix(account)) {
            tree.remove(item?.0)?;
        }
        Ok(())
    }

    /// Deletes what [`Db::history`] would not show: entries older than `keep`, and each
    /// account's older entries beyond `per_account`. Returns how many went.
    pub fn trim_history(&self, keep: Keep, now_ms: u64) -> Result<u64> {
        let _gate = self.writing();
        let tree = &self.inner.history_tree;
        // An account's entries that stay, with their latest times: the oldest by that time
        // go, as `history` orders them (an hour's counted entry is keyed at the hour's start).
        let (mut removed, mut account, mut kept): (u64, Vec<u8>, Vec<(u64, sled::IVec)>) =
            (0, Vec::new(), Vec::new());
        let finish = |kept: &mut Vec<(u64, sled::IVec)>| -> Result<u64> {
            kept.sort_by_key(|(latest, _)| *latest);
            let extra = kept.len().saturating_sub(keep.per_account);
            for (_, k) in kept.drain(..extra) {
                tree.remove(k)?;
            }
            kept.clear();
            Ok(extra as u64)
        };
        for item in tree.iter() {
            let (k, value) = item?;
            let split = k.iter().position(|b| *b == 0xff).unwrap_or(k.len());
            if k[..split] != account[..] {
                removed += finish(&mut kept)?;
                account = k[..split].to_vec();
            }
            let entry = decode::<Entry>("history entry", &value).ok();
            let at_ms = entry.as_ref().map_or(0, |e| e.at_ms);
            if at_ms.saturating_add(keep.keep_ms) <= now_ms {
                tree.remove(&k)?;
                removed += 1;
            } else {
                kept.push((entry.map_or(0, |e| e.latest_ms()), k));
            }
        }
        removed += finish(&mut kept)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::db_with;

    const KEEP: Keep = Keep {
        per_account: 3,
        keep_ms: 10_000,
    };

    #[test]
    fn an_accounts_newest_entries_within_the_time_kept() {
        let (_d, db) = db_with(&[]);
        for at in 1..=5 {
            db.note(
                "a@x",
                Entry::new(What::CodeConfirmed, at * 1_000).client("192.0.2.1"),
            );
        }
        db.note("b@x", Entry::new(What::Locked, 4_000));
        let seen = db.history("a@x", KEEP, 6_000).unwrap();
        let times: Vec<u64> = seen.iter().map(|e| e.at_ms).collect();
        assert_eq!(times, [3_000, 4_000, 5_000], "the newest three");
        assert_eq!(
            db.history("a@x", KEEP, 13_500).unwrap().len(),
            2,
            "two are too old"
        );
        assert_eq!(
            db.history("b@x", KEEP, 6_000).unwrap()[0].what,
            What::Locked
        );
        assert_eq!(db.trim_history(KEEP, 13_500).unwrap(), 3);
        db.move_history("a@x", "c@x").unwrap();
        assert!(db.history("a@x", KEEP, 13_500).unwrap().is_empty());
        assert_eq!(db.history("c@x", KEEP, 13_500).unwrap().len(), 2);
    }

    #[test]
    fn a_long_detail_is_cut_at_a_character() {
        let reply = format!("250 {}", "é".repeat(500));
        let entry = Entry::new(What::MailAccepted, 1).detail(reply.clone());
        assert!(entry.detail.len() <= DETAIL_MAX, "{}", entry.detail.len());
        assert!(entry.detail.ends_with('…'));
        assert!(reply.starts_with(entry.detail.trim_end_matches('…')));
        let short = Entry::new(What::MailAccepted, 1).detail("250 2.0.0 Ok: queued as X1");
        assert_eq!(short.detail, "250 2.0.0 Ok: queued as X1");
    }

    #[test]
    fn a_storm_of_requests_is_one_entry_an_hour_and_evicts_nothing() {
        let (_d, db) = db_with(&[]);
        db.note("a@x", Entry::new(What::Disabled, 500));
        for at in 1..=100 {
            let client = format!("192.0.2.{at}");
            db.note(
                "a@x",
                Entry::new(What::CodeRequested, at * 1_000).client(client),
            );
            db.note(
                "a@x",
                Entry::new(What::MailAccepted, at * 1_000 + 10)
                    .detail(format!("250 queued as {at}")),
            );
        }
        db.note("a@x", Entry::new(What::CodeRequested, HOUR_MS + 5));
        let keep = Keep {
            per_account: 4,
            keep_ms: 10 * HOUR_MS,
        };
        let seen = db.history("a@x", keep, HOUR_MS + 6).unwrap();
        let rows: Vec<(What, u64, u32, u64)> = seen
            .iter()
            .map(|e| (e.what, e.at_ms, e.count, e.last_ms))
            .collect();
        assert_eq!(
            rows,
            [
                (What::Disabled, 500, 0, 0),
                (What::CodeRequested, 1_000, 100, 100_000),
                (What::MailAccepted, 1_010, 100, 100_010),
                (What::CodeRequested, HOUR_MS + 5, 1, HOUR_MS + 5),
            ],
            "{seen:?}"
        );
        assert_eq!(seen[1].client, "192.0.2.100", "the latest client");
        assert_eq!(seen[2].detail, "250 queued as 100", "the latest reply");
        // Trimming keeps what reading shows: the hour's counted entries, not the older one.
        db.note("a@x", Entry::new(What::Enabled, HOUR_MS + 7));
        let keep = Keep {
            per_account: 3,
            ..keep
        };
        let shown = db.history("a@x", keep, HOUR_MS + 8).unwrap();
        assert_eq!(db.trim_history(keep, HOUR_MS + 8).unwrap(), 2);
        assert_eq!(db.history("a@x", keep, HOUR_MS + 8).unwrap(), shown);
    }

    #[test]
    fn refused_confirmations_are_counted_per_hour() {
        let (_d, db) = db_with(&[]);
        for at in [1_000, 2_000, 3_000, HOUR_MS + 1] {
            db.note("a@x", Entry::new(What::ConfirmationsRefused, at));
        }
        let keep = Keep {
            per_account: 50,
            keep_ms: 10 * HOUR_MS,
        };
        let seen = db.history("a@x", keep, HOUR_MS + 2).unwrap();
        let counts: Vec<(u64, u32)> = seen.iter().map(|e| (e.at_ms, e.count)).collect();
        assert_eq!(counts, [(1_000, 3), (HOUR_MS + 1, 1)]);
    }
}
