//! Issuing a code.
//!
//! Issuing claims the code's entry in the code index (in memory, see [`super::code_index`]),
//! writes the outbox message and commits with one compare-and-swap of the reset record,
//! under the record's lock ([`Db::account`]) and without a sled transaction (which would
//! serialize every request behind sled's global lock):
//! - until the record points at the new code, the index entry leads nowhere (every reader
//!   checks the owner's record), but it already keeps the code from being drawn for anyone
//!   else, and the mail is not sent (the outbox checks the record under the same lock, see
//!   [`Db::code_mail_wanted`]);
//! - a crash before the commit leaves only the mail, which the outbox drops unsent (the
//!   index is rebuilt from the records);
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
        // Any entry refuses the code, even one whose code has expired (until the sweeper
        // retires it) or this record's own: an owner's record cannot be trusted here, since
        // another issue may have claimed the entry and not yet committed its record. The
        // caller draws again.
        let mac = code.mac.clone();
        if !i.codes.claim(&mac, k) {
            return Ok(Err(IssueRefused::CodeTaken));
        }
        let committed = self.commit_code(k, code, message);
        if committed.is_err() {
            i.codes.release(&mac, k);
        }
        committed.map(Ok)
    }

    /// Queues `message` and makes `code` (its entry claimed) the record's live code; the
    /// replaced code loses its index entry and its unsent mail. (A MAC that has an entry is
    /// never drawn again, so the two MACs differ.)
    fn commit_code(&self, k: &[u8], code: LiveCode, message: &Queued) -> Result<()> {
        let i = &self.inner;
        let id = i.db.generate_id()?;
        let code = LiveCode {
            outbox_id: Some(id),
            ..code
        };
        i.outbox.insert(id_key(id), encode(message))?;
        let replaced = self.swap_reset(k, |reset| reset.code.replace(code.clone()));
        let replaced = match replaced {
            Ok(replaced) => replaced,
            Err(e) => {
                let _ = i.outbox.remove(id_key(id));
                return Err(e);
            }
        };
        if let Some(old) = replaced {
            i.codes.release(&old.mac, k);
            if let Some(old_id) = old.outbox_id {
                i.outbox.remove(id_key(old_id))?;
            }
        }
        Ok(())
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

    /// The record a code MAC belongs to, whether or not the code is still live.
    pub fn code_owner(&self, code_mac: &[u8; 32]) -> Result<Option<String>> {
        Ok(self.inner.codes.owner(code_mac))
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
