//! Issuing a code, and the global code index (`codemac_email`: HMAC of a code → the record
//! holding it), which confirm-otp-reset needs to find a code's owner by the code alone.
//!
//! Issuing writes the outbox message, the index entry and the reset record, in that order,
//! under the record's lock ([`Db::account`]) and without a sled transaction (which would
//! serialize every request behind sled's global lock). The reset record is the commit
//! point, written by compare-and-swap:
//! - until it points at the new code, the index entry leads nowhere (every reader checks the
//!   owner's record), but it already keeps the MAC from being drawn for anyone else (see
//!   `claim_code`), and the mail is not sent (the outbox checks the record under the same
//!   lock, see [`Db::code_mail_wanted`]);
//! - a crash before it leaves only such leftovers: the outbox drops the mail, the sweeper
//!   the index entry ([`Db::sweep_stray_codes`]);
//! - a transaction that changed the record meanwhile (a confirmation, a failure count, the
//!   sweeper) makes the swap fail, and it is redone on the new record.
//!
//! So the outbox sends a code's mail only while that code is the record's current one. (It
//! may send it before the request's flush: a crash in that window leaves a mail whose code
//! did not survive, and a client that saw no 200.)

use super::outbox::Queued;
use super::records::{LiveCode, Reset};
use super::{decode, encode, id_key, Db, Result};

/// Why a code was not issued.
#[derive(Debug, PartialEq, Eq)]
pub enum IssueRefused {
    /// The account that was to hold it does not exist (any more).
    NoAccount,
    /// The drawn code has an index entry already (live for a record, or left over): draw
    /// again.
    CodeTaken,
}

impl Db {
    /// Makes `code` the live code of reset record `record` and queues `message`, which
    /// carries it; the record's earlier code loses its index entry and its unsent mail.
    /// With `account`, the user record of that key must exist when the code is claimed
    /// (checked under the record's lock, so a removal cannot slip in between).
    pub fn issue_code(
        &self,
        record: &str,
        account: Option<&str>,
        code: LiveCode,
        message: &Queued,
    ) -> Result<std::result::Result<(), IssueRefused>> {
        let _gate = self.writing();
        let i = &self.inner;
        let k = record.as_bytes();
        let _account = self.account(k);
        if let Some(key) = account {
            if i.users.get(key)?.is_none() {
                return Ok(Err(IssueRefused::NoAccount));
            }
        }
        let id = i.db.generate_id()?;
        let code = LiveCode {
            outbox_id: Some(id),
            ..code
        };
        i.outbox.insert(id_key(id), encode(message))?;
        if let Err(refused) = self.claim_code(k, &code)? {
            i.outbox.remove(id_key(id))?;
            return Ok(Err(refused));
        }
        let replaced = self.swap_reset(k, |reset| reset.code.replace(code.clone()))?;
        if let Some(old) = replaced {
            self.forget_code(k, &old)?;
        }
        Ok(Ok(()))
    }

    /// The replaced code's index entry and its unsent mail. (A MAC that has an entry is
    /// never drawn again, so the two MACs differ; the check only keeps it so.)
    fn forget_code(&self, k: &[u8], old: &LiveCode) -> Result<()> {
        let i = &self.inner;
        i.codes
            .compare_and_swap(&old.mac[..], Some(k), None as Option<&[u8]>)?
            .ok();
        if let Some(old_id) = old.outbox_id {
            i.outbox.remove(id_key(old_id))?;
        }
        Ok(())
    }

    /// Points the index entry of `code` at record `k` if the MAC has no entry at all. Any
    /// entry refuses it, even one whose code has expired (until the sweeper removes it) or
    /// this record's own: an owner's record cannot be trusted here, since another issue may
    /// have claimed the entry and not yet committed its record. The caller draws again.
    fn claim_code(
        &self,
        k: &[u8],
        code: &LiveCode,
    ) -> Result<std::result::Result<(), IssueRefused>> {
        let claimed =
            self.inner
                .codes
                .compare_and_swap(&code.mac[..], None as Option<&[u8]>, Some(k))?;
        Ok(claimed.map_err(|_| IssueRefused::CodeTaken))
    }

    /// Whether the outbox entry `id`, a code's mail to account `key`, still carries the
    /// account's current code. False for a replaced or used code's mail, and for one a
    /// crash left behind before its code was stored; such mail is removed here. Takes the
    /// account's lock, so an issue in progress is never mistaken for a leftover.
    pub fn code_mail_wanted(&self, key: &str, id: u64) -> Result<bool> {
        let _gate = self.writing();
        let _account = self.account(key.as_bytes());
        let wanted = match self.reset_of(key.as_bytes())?.and_then(|r| r.code) {
            // Records from before outbox ids were kept cannot tell: send.
            Some(code) => code.outbox_id.is_none_or(|current| current == id),
            None => false,
        };
        if !wanted {
            self.inner.outbox.remove(id_key(id))?;
        }
        Ok(wanted)
    }

    /// Removes index entries whose record does not hold that code: what a crash in the
    /// middle of an issue leaves. Returns how many. A scan: run it off the async threads.
    pub fn sweep_stray_codes(&self) -> Result<u64> {
        let _gate = self.writing();
        let mut removed = 0;
        for entry in self.inner.codes.iter() {
            let (mac, owner) = entry?;
            let _account = self.account(&owner);
            let holds = |r: Reset| r.code.is_some_and(|c| c.mac[..] == mac[..]);
            if self.reset_of(&owner)?.is_some_and(holds) {
                continue;
            }
            let gone =
                self.inner
                    .codes
                    .compare_and_swap(&mac, Some(&owner), None as Option<&[u8]>)?;
            removed += u64::from(gone.is_ok());
        }
        Ok(removed)
    }

    /// The record a code MAC belongs to, whether or not the code is still live.
    pub fn code_owner(&self, code_mac: &[u8; 32]) -> Result<Option<String>> {
        Ok(self
            .inner
            .codes
            .get(code_mac)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The reset record of `k`, if there is one.
    pub(super) fn reset_of(&self, k: &[u8]) -> Result<Option<Reset>> {
        match self.inner.resets.get(k)? {
            Some(bytes) => Ok(Some(decode("reset", &bytes)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[path = "codes_tests.rs"]
mod tests;
