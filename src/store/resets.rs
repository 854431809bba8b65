//! Reset records (`email_reset`) read and changed as one step: the records a step names,
//! the decision of a caller's pure function, and its changes written in one sled
//! transaction. Which change to make is `recovery`'s decision; the store only reads,
//! writes atomically and retries on conflict.

use sled::Transactional;

use super::outbox::Queued;
use super::records::Reset;
use super::tx::{
    parse, read_reset, retire_code, settle, write_reset, Abortable, Retired, TxAbort, TxResult,
};
use super::users::User;
use super::{decode, encode, id_key, Db, Result};
use sled::transaction::TransactionError;

/// What a step reads: the records it names (each with its user, if one exists, and its
/// reset record, empty when absent) and, when it looked a code up, the record that the
/// code's index entry names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    /// The record the code's index entry points at (live or not), if the step named a code.
    pub owner: Option<String>,
    accounts: Vec<(String, Option<User>, Reset)>,
}

impl Records {
    /// Records as a test (or the store) lays them out.
    pub fn new(owner: Option<String>, accounts: Vec<(String, Option<User>, Reset)>) -> Records {
        Records { owner, accounts }
    }

    /// The user record of `key`, if it exists.
    pub fn user(&self, key: &str) -> Option<&User> {
        self.find(key).and_then(|(_, user, _)| user.as_ref())
    }

    /// The reset record of `key` (empty when absent or not read).
    pub fn reset(&self, key: &str) -> Reset {
        self.find(key)
            .map(|(_, _, r)| r.clone())
            .unwrap_or_default()
    }

    fn find(&self, key: &str) -> Option<&(String, Option<User>, Reset)> {
        self.accounts.iter().find(|(k, _, _)| k == key)
    }
}

/// What a decision comes to: its answer, the store's changes and the events that tell the
/// application of them ([`Db::transact`] queues them, routed to deliveries, in the same
/// transaction).
pub type Decided<T> = (T, Changes, Vec<crate::events::Event>);

/// What a step writes, all or nothing.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Records whose current code dies: its index entry and its unsent mail go.
    pub retire: Vec<String>,
    /// Reset records to store (an empty one is deleted).
    pub resets: Vec<(String, Reset)>,
    /// A user record to store.
    pub user: Option<(String, User)>,
    /// A user record to delete (an account that moved to another address).
    pub remove_user: Option<String>,
    /// A message to queue.
    pub queue: Option<Queued>,
    /// Webhook deliveries to queue (events of this change, one per endpoint).
    pub deliveries: Vec<Queued>,
}

impl Db {
    /// The reset record of `key`, if there is one.
    pub fn reset(&self, key: &str) -> Result<Option<Reset>> {
        self.reset_of(key.as_bytes())
    }

    /// Reads `keys` (and, with `mac`, the record its code index entry names), lets
    /// `decide` choose an answer, the changes and their events, and applies the changes
    /// with the events' deliveries (`route`), as one sled transaction. `decide` runs again
    /// when another writer got in between, so it must be a pure function of what it is
    /// given.
    pub fn transact<T>(
        &self,
        mac: Option<&[u8; 32]>,
        keys: &[&str],
        route: impl Fn(&[crate::events::Event]) -> Vec<Queued>,
        decide: impl Fn(&Records) -> Decided<T>,
    ) -> Result<T> {
        let _gate = self.writing();
        let i = &self.inner;
        // sled runs transactions one at a time anyway; holding this from the ids to the
        // commit makes a later change's ids larger, so one account's events keep its order.
        let _order = i.commit_order.lock().unwrap_or_else(|p| p.into_inner());
        // Ids for what the step may queue: taken before the transaction, which may not call
        // sled outside itself (its global lock is held meanwhile). A step that queues more
        // than there are ids gives up and runs again with enough.
        let mut ids = vec![i.db.generate_id()?];
        // The index is read before: its owner's record, read inside, is what counts.
        let owner = mac.and_then(|mac| i.codes.owner(mac));
        let trees = (&i.users, &i.resets, &i.outbox, &i.webhooks);
        loop {
            let outcome = trees.transaction(|(users, resets, outbox, webhooks)| {
                let owner = owner.clone();
                let mut accounts = Vec::new();
                for key in keys.iter().copied().chain(owner.as_deref()) {
                    if accounts.iter().any(|(k, _, _): &(String, _, _)| k == key) {
                        continue;
                    }
                    let user = users.get(key)?.map(|v| parse::<User>(&v)).transpose()?;
                    accounts.push((key.to_string(), user, read_reset(resets, key.as_bytes())?));
                }
                let records = Records { owner, accounts };
                let (answer, mut changes, events) = decide(&records);
                changes.deliveries.extend(route(&events));
                let wanted = 1 + changes.deliveries.len();
                if wanted > ids.len() {
                    return Err(Abortable::Abort(TxAbort::NeedIds(wanted)));
                }
                let mut retired = Retired::default();
                for key in &changes.retire {
                    retired.add(retire_code(outbox, key.as_bytes(), &records.reset(key))?);
                }
                for (key, reset) in &changes.resets {
                    write_reset(resets, key.as_bytes(), reset)?;
                }
                if let Some(key) = &changes.remove_user {
                    users.remove(key.as_bytes())?;
                }
                if let Some((key, user)) = &changes.user {
                    users.insert(key.as_bytes(), encode(user))?;
                }
                if let Some(message) = &changes.queue {
                    outbox.insert(&id_key(ids[0]), encode(message))?;
                }
                for (event, id) in changes.deliveries.iter().zip(&ids[1..]) {
                    webhooks.insert(event.key(*id), encode(event))?;
                }
                TxResult::<(T, Retired, bool)>::Ok((
                    answer,
                    retired,
                    !changes.deliveries.is_empty(),
                ))
            });
            if let Err(TransactionError::Abort(TxAbort::NeedIds(n))) = outcome {
                while ids.len() < n {
                    ids.push(i.db.generate_id()?);
                }
                continue;
            }
            let (answer, retired, announced) = settle(outcome)?;
            retired.release(&i.codes);
            if announced {
                self.note_webhooks_queued();
            }
            return Ok(answer);
        }
    }

    /// Applies `change` to record `k` with compare-and-swap, redoing it on the newer record
    /// until no other write came in between; returns what `change` did.
    pub(super) fn swap_reset<T>(&self, k: &[u8], change: impl Fn(&mut Reset) -> T) -> Result<T> {
        let resets = &self.inner.resets;
        let mut current = resets.get(k)?;
        loop {
            let mut reset: Reset = match &current {
                Some(bytes) => decode("reset", bytes)?,
                None => Reset::default(),
            };
            let done = change(&mut reset);
            let new = (!reset.is_empty()).then(|| encode(&reset));
            match resets.compare_and_swap(k, current.as_ref(), new)? {
                Ok(()) => return Ok(done),
                Err(changed) => current = changed.current,
            }
        }
    }

    /// Lets `expire` drop what has run out from every record (true if it changed the
    /// record): a code that dies loses its index entry and unsent mail, and a record left
    /// empty is deleted. Returns how many records changed. A scan: run it off the async
    /// threads. It holds the write gate for [`SWEEP_BATCH`] records at a time, so that a
    /// backup waiting for the gate (and, behind it, every writer: the gate lets a waiting
    /// backup go first) waits for one batch, not for a pass over every live code.
    pub fn sweep_resets(&self, expire: impl Fn(&mut Reset) -> bool) -> Result<u64> {
        self.sweep_resets_by(SWEEP_BATCH, expire)
    }

    /// [`Db::sweep_resets`], `batch` records per hold of the gate (the tests' batches are
    /// small, to cross several).
    pub(super) fn sweep_resets_by(
        &self,
        batch: usize,
        expire: impl Fn(&mut Reset) -> bool,
    ) -> Result<u64> {
        use std::ops::Bound;
        let mut changed = 0;
        let mut after: Option<sled::IVec> = None;
        loop {
            let _gate = self.writing();
            let from = after.clone().map_or(Bound::Unbounded, Bound::Excluded);
            let mut seen = 0;
            for entry in self
                .inner
                .resets
                .range((from, Bound::Unbounded))
                .take(batch)
            {
                let (key, value) = entry?;
                seen += 1;
                after = Some(key.clone());
                changed += u64::from(self.sweep_one(&key, &value, &expire)?);
            }
            if seen < batch {
                return Ok(changed);
            }
        }
    }

    /// One record of [`Db::sweep_resets`]: true if `expire` changed it and the change
    /// was written.
    fn sweep_one(
        &self,
        key: &sled::IVec,
        value: &sled::IVec,
        expire: &impl Fn(&mut Reset) -> bool,
    ) -> Result<bool> {
        let mut reset: Reset = decode("reset", value)?;
        let before = reset.clone();
        if !expire(&mut reset) {
            return Ok(false);
        }
        let i = &self.inner;
        let swept = (&i.resets, &i.outbox).transaction(|(resets, outbox)| {
            // Re-read inside the transaction: a new code may have been issued meanwhile.
            if resets.get(key)?.as_deref() != Some(&value[..]) {
                return Ok(None);
            }
            let mut retired = Retired::default();
            if reset.code.is_none() {
                retired = retire_code(outbox, key, &before)?;
            }
            write_reset(resets, key, &reset)?;
            TxResult::Ok(Some(retired))
        });
        Ok(match settle(swept)? {
            Some(retired) => {
                retired.release(&i.codes);
                true
            }
            None => false,
        })
    }
}

/// How many reset records a sweep reads under one hold of the write gate.
const SWEEP_BATCH: usize = 1024;

#[cfg(test)]
#[path = "resets_tests.rs"]
mod tests;
