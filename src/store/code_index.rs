//! The code index: HMAC of a code → the reset record holding it, which confirm-otp-reset
//! needs to find a code's owner by the code alone. It lives in memory and is rebuilt from
//! the reset records when the store opens.
//!
//! The records are the truth: every reader of the index checks the owner's record. So an
//! index in memory loses nothing in a crash, and a crash cannot leave an entry behind that
//! no record holds. Issuing a code then writes two sled entries fewer than an index tree
//! did (the new code's entry and the replaced code's removal).
//!
//! An entry is claimed before its record is written, and released when its record no
//! longer holds it (after that change committed): while one account's issue is in
//! progress, its drawn code is already taken for every other account.

use std::collections::HashMap;
use std::sync::Mutex;

use super::records::Reset;
use super::{decode, Result};

const SHARDS: usize = 16;

/// An entry's key: the first 16 bytes of the code's MAC, kept inline in the map (the whole
/// 32-byte MAC was an allocation of its own, about 48 bytes of heap, per live code). Two live
/// codes whose MACs share 16 bytes (odds of about 2^-128 · n² / 2 among n codes) would only
/// make the second draw again, and a lookup that finds another code's entry is refused by
/// that record's own, whole MAC.
type Slot = [u8; 16];

/// MAC prefix → record key.
type Entries = HashMap<Slot, Box<[u8]>>;
type Shard = Mutex<Entries>;

pub(super) struct CodeIndex {
    shards: [Shard; SHARDS],
}

impl CodeIndex {
    /// The index of the codes that the records of `resets` hold.
    pub(super) fn build(resets: &sled::Tree) -> Result<CodeIndex> {
        let index = CodeIndex {
            shards: std::array::from_fn(|_| Mutex::default()),
        };
        index.reload(resets)?;
        Ok(index)
    }

    /// Forgets every entry and indexes the codes the records of `resets` hold (after a
    /// restore wrote them).
    pub(super) fn reload(&self, resets: &sled::Tree) -> Result<usize> {
        for shard in &self.shards {
            lock(shard).clear();
        }
        let (mut indexed, mut corrupt) = (0, 0);
        for entry in resets.iter() {
            let (key, value) = entry?;
            // A corrupt record stays what it was: an error (500) for its own account's
            // requests, not a store that cannot open.
            let Ok(reset) = decode::<Reset>("reset", &value) else {
                corrupt += 1;
                continue;
            };
            let Some(code) = reset.code else { continue };
            if self.claim(&code.mac, &key) {
                indexed += 1;
            } else {
                // Issuing never lets two records hold one code; a store that says otherwise
                // was edited by hand. The first record keeps the code; the other's does
                // not confirm.
                tracing::warn!("two reset records hold the same code; only one is indexed");
            }
        }
        if corrupt > 0 {
            tracing::error!(
                corrupt,
                "reset records that cannot be read; their codes are not indexed"
            );
        }
        Ok(indexed)
    }

    fn shard(&self, mac: &[u8]) -> &Shard {
        &self.shards[usize::from(mac.first().copied().unwrap_or(0)) % SHARDS]
    }

    /// Points `mac` at record `owner` if it has no entry; false if it has one (any owner,
    /// this one's included).
    pub(super) fn claim(&self, mac: &[u8], owner: &[u8]) -> bool {
        let mut shard = lock(self.shard(mac));
        match shard.entry(slot(mac)) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(owner.into());
                true
            }
        }
    }

    /// Removes the entry of `mac` if it points at `owner`.
    pub(super) fn release(&self, mac: &[u8], owner: &[u8]) {
        let mut shard = lock(self.shard(mac));
        let slot = slot(mac);
        if shard.get(&slot).is_some_and(|o| &o[..] == owner) {
            shard.remove(&slot);
        }
    }

    /// The record `mac` points at.
    pub(super) fn owner(&self, mac: &[u8]) -> Option<String> {
        let shard = lock(self.shard(mac));
        shard
            .get(&slot(mac))
            .map(|o| String::from_utf8_lossy(o).into_owned())
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// The entry key of `mac`: its first 16 bytes (zeros after a shorter one).
fn slot(mac: &[u8]) -> Slot {
    let mut slot = [0; 16];
    let n = mac.len().min(16);
    slot[..n].copy_from_slice(&mac[..n]);
    slot
}

/// A shard's map; a panic elsewhere while it was held leaves it usable (each change to it
/// is one map operation).
fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, Entries> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}
