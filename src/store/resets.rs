//! Reset state (`email_reset`) and the global code index (`codemac_email`).
//!
//! Issuing a code writes the outbox message, the index entry and the reset state, in that
//! order, under the account's lock ([`Db::account`]) and without a sled transaction (which
//! would serialize every request behind sled's global lock). The reset record is the commit
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
//! So the outbox sends a code's mail only while that code is the account's current one. (It
//! may send it before the request's flush, as it did when this was a transaction: a crash
//! in that window leaves a mail whose code did not survive, and a client that saw no 200.)
//! The record also keeps the account's consecutive failed confirmations, across codes and
//! restarts.

use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError as Abortable, TransactionError, TransactionalTree,
};
use sled::Transactional;

use super::outbox::Queued;
use super::users::User;
use super::{decode, encode, id_key, Db, Result, StoreError};

/// Per-account recovery state; absent when there is nothing to remember.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reset {
    /// The live code, if any.
    pub code: Option<LiveCode>,
    /// Consecutive failed confirmations naming this account (reset by a success, and
    /// forgotten [`Lockout::forget_after_ms`] after the last one).
    pub failures: u32,
    /// When the last of `failures` happened (schema 2; see `store::migrate`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub last_failure_ms: u64,
    /// A confirmed code opens a window in which the password may be set.
    pub confirmation: Option<Confirmation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveCode {
    /// HMAC-SHA256 of the code under the server secret; the code itself is never stored.
    pub mac: Vec<u8>,
    pub issued_ms: u64,
    pub expires_ms: u64,
    /// The outbox entry carrying this code: when the code dies, its unsent mail goes too.
    #[serde(default)]
    pub outbox_id: Option<u64>,
    /// Clients whose password-reset for the account was refused while this code was live
    /// (at most [`MAX_REFUSED_CLIENTS`]): if one of them confirms the code, its confirmation
    /// accepts only the `resetSession`, not the same-client fallback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_clients: Vec<String>,
}

/// How many refused clients a live code remembers: enough for the owner's network, and a
/// bound on the record's size whatever a poller does.
pub const MAX_REFUSED_CLIENTS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// MAC of the `resetSession` handed out by confirm-otp-reset.
    pub session_mac: Vec<u8>,
    /// The client address that confirmed (IPv6 as its /64 is not applied here: exact).
    pub client: String,
    pub until_ms: u64,
    /// Only the `resetSession` may use this confirmation, not the same-client fallback: a
    /// password-reset for the account was refused from the confirming client's address
    /// while the code was live (a poller behind the owner's address).
    #[serde(default, skip_serializing_if = "is_false")]
    pub session_only: bool,
}

impl Reset {
    pub fn live_code(&self, mac: &[u8], now_ms: u64) -> bool {
        self.code
            .as_ref()
            .is_some_and(|c| c.mac == mac && c.expires_ms > now_ms)
    }

    pub fn live_confirmation(&self, now_ms: u64) -> Option<&Confirmation> {
        self.confirmation.as_ref().filter(|c| c.until_ms > now_ms)
    }

    /// The consecutive failures that still count at `now_ms`.
    pub fn failures_at(&self, now_ms: u64, lockout: Lockout) -> u32 {
        if self.last_failure_ms.saturating_add(lockout.forget_after_ms) <= now_ms {
            0
        } else {
            self.failures
        }
    }

    /// Counts one more failed confirmation at `now_ms`.
    pub(super) fn fail(&mut self, now_ms: u64, lockout: Lockout) {
        self.failures = self.failures_at(now_ms, lockout).saturating_add(1);
        self.last_failure_ms = now_ms;
    }

    /// Forgets every failure (a success, or an operator's unlock).
    pub(super) fn clear_failures(&mut self) {
        self.failures = 0;
        self.last_failure_ms = 0;
    }

    /// True when nothing is worth keeping: no code, no confirmation, no failures.
    fn is_empty(&self) -> bool {
        self.code.is_none() && self.confirmation.is_none() && self.failures == 0
    }

    /// Drops what has expired or is forgotten; true if anything changed.
    fn expire(&mut self, now_ms: u64, lockout: Lockout) -> bool {
        let before = self.clone();
        self.code = self.code.take().filter(|c| c.expires_ms > now_ms);
        self.confirmation = self.confirmation.take().filter(|c| c.until_ms > now_ms);
        if self.failures > 0 && self.failures_at(now_ms, lockout) == 0 {
            self.clear_failures();
        }
        *self != before
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How failed confirmations that name an account lock it (`recovery.max_account_failures`
/// and `recovery.failures_forgotten_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Consecutive failures at which confirmations naming the account are refused.
    pub max_failures: u32,
    /// Failures are forgotten this long after the last one, which lifts the lock.
    pub forget_after_ms: u64,
}

/// The reset record on which enumeration-safe mode counts failed confirmations naming
/// unknown addresses, and the prefix of the records it issues their codes to
/// ([`decoy_key`]). It starts with NUL, which no valid address does, so no request can name
/// one.
pub const DECOY: &str = "\u{0}decoy";

/// The decoy record standing in for unknown address `key`: one per address, like a known
/// account's record, so that an unknown address costs what a known one does in every
/// respect (a first request inserts a record, a repeated one replaces its code). A single
/// shared record was cheaper than a known account's first request (an update of one hot
/// record against an insert): the enumeration benchmark measured unknown addresses 27–74 µs
/// faster. Decoy records expire with their codes and are swept like any other.
pub fn decoy_key(key: &str) -> String {
    format!("{DECOY}:{key}")
}

/// Why a code was not issued.
#[derive(Debug)]
pub enum IssueRefused {
    NoAccount,
    /// The drawn code is live for another account; draw again.
    CodeTaken,
}

/// A transaction's way out: a refusal (which commits nothing) or a corrupt record.
#[derive(Debug)]
pub(super) enum Abort<R> {
    Refused(R),
    Corrupt(String),
}

pub(super) type TxResult<T, R> = std::result::Result<T, Abortable<Abort<R>>>;

pub(super) fn parse<T: serde::de::DeserializeOwned, R>(bytes: &[u8]) -> TxResult<T, R> {
    serde_json::from_slice(bytes).map_err(|e| Abortable::Abort(Abort::Corrupt(e.to_string())))
}

/// The account's reset record inside a transaction (default when absent).
pub(super) fn read_reset<R>(resets: &TransactionalTree, key: &[u8]) -> TxResult<Reset, R> {
    match resets.get(key)? {
        Some(bytes) => parse(&bytes),
        None => Ok(Reset::default()),
    }
}

/// Stores the record, or removes it when it holds nothing.
pub(super) fn write_reset<R>(
    resets: &TransactionalTree,
    key: &[u8],
    reset: &Reset,
) -> TxResult<(), R> {
    if reset.is_empty() {
        resets.remove(key)?;
    } else {
        resets.insert(key, encode(reset))?;
    }
    Ok(())
}

/// Retires the record's code: its index entry (if it still points at this account) and
/// its mail, if that has not been sent yet. A replaced or used code's mail is pointless.
pub(super) fn retire_code<R>(
    codes: &TransactionalTree,
    outbox: &TransactionalTree,
    key: &[u8],
    reset: &Reset,
) -> TxResult<(), R> {
    if let Some(code) = &reset.code {
        if codes.get(&code.mac)?.as_deref() == Some(key) {
            codes.remove(&code.mac[..])?;
        }
        if let Some(id) = code.outbox_id {
            outbox.remove(&id_key(id))?;
        }
    }
    Ok(())
}

/// Maps a transaction's outcome: `Ok(Ok(v))`, a refusal `Ok(Err(r))`, or a store error.
pub(super) fn settle<T, R>(
    outcome: std::result::Result<T, TransactionError<Abort<R>>>,
) -> Result<std::result::Result<T, R>> {
    match outcome {
        Ok(v) => Ok(Ok(v)),
        Err(TransactionError::Abort(Abort::Refused(r))) => Ok(Err(r)),
        Err(TransactionError::Abort(Abort::Corrupt(msg))) => Err(StoreError::Corrupt(msg)),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
    }
}

impl Db {
    /// Replaces the account's code with `code_mac` and queues the message that carries the
    /// code, atomically. `message` builds the mail for the stored user.
    pub fn issue_code(
        &self,
        key: &str,
        code: LiveCode,
        message: impl Fn(&User) -> Queued,
    ) -> Result<std::result::Result<(), IssueRefused>> {
        self.issue(key, false, code, message)
    }

    /// The same work as [`Db::issue_code`] for an address without an account, done for its
    /// decoy record ([`decoy_key`]) instead, so that an unknown address costs what a known one
    /// does (`recovery.hide_unknown_accounts`). Its outbox entry is never sent.
    pub fn issue_decoy(
        &self,
        key: &str,
        code: LiveCode,
        message: impl Fn(&User) -> Queued,
    ) -> Result<std::result::Result<(), IssueRefused>> {
        self.issue(key, true, code, message)
    }

    fn issue(
        &self,
        key: &str,
        decoy: bool,
        code: LiveCode,
        message: impl Fn(&User) -> Queued,
    ) -> Result<std::result::Result<(), IssueRefused>> {
        let _gate = self.writing();
        let i = &self.inner;
        let decoy_key = decoy.then(|| decoy_key(key));
        let k = decoy_key.as_deref().unwrap_or(key).as_bytes();
        let _account = self.account(k);
        let user: User = match (i.users.get(key)?, decoy) {
            (_, true) => User::decoy(),
            (Some(bytes), false) => decode("user", &bytes)?,
            (None, false) => return Ok(Err(IssueRefused::NoAccount)),
        };
        let id = i.db.generate_id()?;
        let code = LiveCode {
            outbox_id: Some(id),
            ..code
        };
        i.outbox.insert(id_key(id), encode(&message(&user)))?;
        if let Err(refused) = self.claim_code(k, &code)? {
            i.outbox.remove(id_key(id))?;
            return Ok(Err(refused));
        }
        let replaced = self.swap_reset(k, |reset| reset.code.replace(code.clone()))?;
        if let Some(old) = replaced {
            // The old code's index entry and its unsent mail. (A MAC that has an entry is
            // never drawn again, so the two MACs differ; the check only keeps it so.)
            if old.mac != code.mac {
                i.codes
                    .compare_and_swap(&old.mac[..], Some(k), None as Option<&[u8]>)?
                    .ok();
            }
            if let Some(old_id) = old.outbox_id {
                i.outbox.remove(id_key(old_id))?;
            }
        }
        Ok(Ok(()))
    }

    /// Points the index entry of `code` at account `k` if the MAC has no entry at all. Any
    /// entry refuses it, even one whose code has expired (until the sweeper removes it) or
    /// this account's own: an owner's record cannot be trusted here, since another issue may
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

    /// Applies `change` to account `k`'s reset record with compare-and-swap, redoing it on
    /// the newer record until no other write came in between; returns what `change` did.
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

    pub(super) fn reset_of(&self, k: &[u8]) -> Result<Option<Reset>> {
        match self.inner.resets.get(k)? {
            Some(bytes) => Ok(Some(decode("reset", &bytes)?)),
            None => Ok(None),
        }
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

    /// Removes index entries whose account's record does not hold that code: what a crash
    /// in the middle of an issue leaves. Returns how many. A scan: run it off the async
    /// threads.
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

    pub fn reset(&self, key: &str) -> Result<Option<Reset>> {
        self.reset_of(key.as_bytes())
    }

    /// The account a code MAC belongs to, whether or not the code is still live.
    pub fn code_owner(&self, code_mac: &[u8; 32]) -> Result<Option<String>> {
        Ok(self
            .inner
            .codes
            .get(code_mac)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Drops expired codes and confirmations and forgotten failure counts (and records left
    /// empty); returns how many records changed. A scan: run it off the async threads.
    pub fn sweep_resets(&self, now_ms: u64, lockout: Lockout) -> Result<u64> {
        let _gate = self.writing();
        let mut changed = 0;
        for entry in self.inner.resets.iter() {
            let (key, value) = entry?;
            let mut reset: Reset = decode("reset", &value)?;
            let before = reset.clone();
            if !reset.expire(now_ms, lockout) {
                continue;
            }
            let i = &self.inner;
            let swept = (&i.resets, &i.codes, &i.outbox).transaction(|(resets, codes, outbox)| {
                // Re-read inside the transaction: a new code may have been issued meanwhile.
                if resets.get(&key)?.as_deref() != Some(&value[..]) {
                    return Ok(false);
                }
                if reset.code.is_none() {
                    retire_code::<()>(codes, outbox, &key, &before)?;
                }
                write_reset(resets, &key, &reset)?;
                Ok(true)
            });
            if settle(swept)? == Ok(true) {
                changed += 1;
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::mail_address::validate;
    use crate::store::outbox::Kind;

    pub fn message(user: &User) -> Queued {
        let kind = Kind::Otp {
            code: "x".into(),
            ttl_secs: 60,
        };
        Queued::new(user.email.clone(), kind, 0, Some(60_000))
    }

    pub fn code(mac: u8, issued_ms: u64, expires_ms: u64) -> LiveCode {
        LiveCode {
            mac: vec![mac; 32],
            issued_ms,
            expires_ms,
            outbox_id: None,
            refused_clients: Vec::new(),
        }
    }

    pub fn db_with(emails: &[&str]) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        for e in emails {
            let e = validate(e).unwrap();
            db.add_user(&e.key, &User::new(&e, None, 0)).unwrap();
        }
        (dir, db)
    }

    #[test]
    fn new_code_replaces_old_and_queues_mail() {
        let (_d, db) = db_with(&["a@example.com"]);
        db.issue_code("a@example.com", code(1, 0, 60_000), message)
            .unwrap()
            .unwrap();
        db.issue_code("a@example.com", code(2, 1, 60_001), message)
            .unwrap()
            .unwrap();
        assert_eq!(db.code_owner(&[1; 32]).unwrap(), None, "old code unindexed");
        assert_eq!(
            db.code_owner(&[2; 32]).unwrap().as_deref(),
            Some("a@example.com")
        );
        assert_eq!(
            db.outbox_len(),
            1,
            "the replaced code's unsent mail is gone"
        );
    }

    #[test]
    fn unknown_account_and_taken_codes_are_refused() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        assert!(matches!(
            db.issue_code("nobody@example.com", code(1, 0, 60_000), message)
                .unwrap(),
            Err(IssueRefused::NoAccount)
        ));
        db.issue_code("a@example.com", code(1, 0, 60_000), message)
            .unwrap()
            .unwrap();
        assert!(matches!(
            db.issue_code("b@example.com", code(1, 0, 60_000), message)
                .unwrap(),
            Err(IssueRefused::CodeTaken)
        ));
        assert!(
            matches!(
                db.issue_code("a@example.com", code(1, 1, 60_000), message)
                    .unwrap(),
                Err(IssueRefused::CodeTaken)
            ),
            "nor may the owner draw its own live code again"
        );
        // Once a's code expired and was swept, b may draw the same value; not before.
        assert!(matches!(
            db.issue_code("b@example.com", code(1, 60_000, 120_000), message)
                .unwrap(),
            Err(IssueRefused::CodeTaken)
        ));
        assert_eq!(db.sweep_resets(60_000, LOCKOUT).unwrap(), 1);
        db.issue_code("b@example.com", code(1, 60_000, 120_000), message)
            .unwrap()
            .unwrap();
        assert_eq!(
            db.outbox_len(),
            1,
            "refusals queue nothing; a's mail expired"
        );
    }

    /// An issue for account a that has claimed its code's index entry but not yet stored
    /// its record: a's record does not show the code, so nothing but the entry tells.
    #[test]
    fn a_code_claimed_but_not_yet_committed_is_not_drawn_for_another_account() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        db.inner.codes.insert([7; 32], "a@example.com").unwrap();
        assert!(matches!(
            db.issue_code("b@example.com", code(7, 0, 60_000), message)
                .unwrap(),
            Err(IssueRefused::CodeTaken)
        ));
        assert_eq!(
            db.code_owner(&[7; 32]).unwrap().as_deref(),
            Some("a@example.com")
        );
        assert!(db.reset("b@example.com").unwrap().is_none());
        assert_eq!(db.outbox_len(), 0);
    }

    #[test]
    fn decoys_do_a_known_accounts_work_on_hidden_records() {
        let (_d, db) = db_with(&[]);
        db.issue_decoy("nobody@example.com", code(1, 0, 60_000), message)
            .unwrap()
            .unwrap();
        db.issue_decoy("other@example.com", code(2, 1, 60_000), message)
            .unwrap()
            .unwrap();
        db.issue_decoy("nobody@example.com", code(3, 2, 60_000), message)
            .unwrap()
            .unwrap();
        assert_eq!(
            db.outbox_len(),
            2,
            "a repeated address retires its decoy's code"
        );
        let nobody = decoy_key("nobody@example.com");
        assert_eq!(db.code_owner(&[3; 32]).unwrap(), Some(nobody.clone()));
        assert_eq!(db.code_owner(&[1; 32]).unwrap(), None);
        assert_eq!(
            db.code_owner(&[2; 32]).unwrap(),
            Some(decoy_key("other@example.com"))
        );
        assert_eq!(db.count_users(), 0, "no account is created");
        assert!(db.reset("nobody@example.com").unwrap().is_none());
        assert!(
            nobody.starts_with('\0'),
            "no request can name a decoy record"
        );
        assert_eq!(
            db.sweep_resets(60_002, LOCKOUT).unwrap(),
            2,
            "decoys expire"
        );
        assert_eq!(db.inner.resets.len(), 0);
    }

    #[test]
    fn sweep_removes_only_expired() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        db.issue_code("a@example.com", code(1, 0, 10), message)
            .unwrap()
            .unwrap();
        db.issue_code("b@example.com", code(2, 0, 1_000), message)
            .unwrap()
            .unwrap();
        assert_eq!(db.sweep_resets(500, LOCKOUT).unwrap(), 1);
        assert!(db.reset("a@example.com").unwrap().is_none());
        assert_eq!(db.code_owner(&[1; 32]).unwrap(), None);
        assert!(db.reset("b@example.com").unwrap().is_some());
    }

    pub const LOCKOUT: Lockout = Lockout {
        max_failures: 2,
        forget_after_ms: 10_000,
    };

    #[test]
    fn failures_are_forgotten_after_a_quiet_time() {
        let mut reset = Reset::default();
        reset.fail(1_000, LOCKOUT);
        reset.fail(2_000, LOCKOUT);
        assert_eq!(
            reset.failures_at(11_999, LOCKOUT),
            2,
            "counted from the last one"
        );
        assert_eq!(reset.failures_at(12_000, LOCKOUT), 0);
        reset.fail(12_500, LOCKOUT);
        assert_eq!(reset.failures, 1, "a late failure starts a new count");

        let (_d, db) = db_with(&["a@example.com"]);
        let key = "a@example.com".as_bytes();
        db.inner.resets.insert(key, encode(&reset)).unwrap();
        assert_eq!(db.sweep_resets(22_499, LOCKOUT).unwrap(), 0);
        assert_eq!(db.sweep_resets(22_500, LOCKOUT).unwrap(), 1);
        assert!(
            db.reset("a@example.com").unwrap().is_none(),
            "nothing left to keep"
        );
    }

    /// What a crash between the first write of an issue and its commit leaves behind.
    fn leftovers(db: &Db, mac: u8) -> u64 {
        let id = db.inner.db.generate_id().unwrap();
        let user = db.user("a@example.com").unwrap().unwrap();
        db.inner
            .outbox
            .insert(id_key(id), encode(&message(&user)))
            .unwrap();
        db.inner.codes.insert([mac; 32], "a@example.com").unwrap();
        id
    }

    #[test]
    fn leftovers_of_an_interrupted_issue_reach_no_one() {
        let (_d, db) = db_with(&["a@example.com"]);
        let stray = leftovers(&db, 1);
        let confirmation = Confirmation {
            session_mac: vec![9; 32],
            client: "127.0.0.1".into(),
            until_ms: 2_000,
            session_only: false,
        };
        let confirmed = db
            .confirm_code(&[1; 32], None, 10, LOCKOUT, &confirmation, false)
            .unwrap();
        assert_eq!(confirmed, super::super::confirm::Confirmed::No);
        assert!(!db.code_mail_wanted("a@example.com", stray).unwrap());
        assert_eq!(db.outbox_len(), 0, "the stray mail is removed unsent");
        assert_eq!(db.sweep_stray_codes().unwrap(), 1);
        assert_eq!(db.code_owner(&[1; 32]).unwrap(), None);

        // A stray entry blocks its code until the sweeper removes it; a real issue's mail
        // is wanted.
        let stray = leftovers(&db, 2);
        assert!(matches!(
            db.issue_code("a@example.com", code(2, 0, 60_000), message)
                .unwrap(),
            Err(IssueRefused::CodeTaken)
        ));
        assert_eq!(db.sweep_stray_codes().unwrap(), 1);
        db.issue_code("a@example.com", code(2, 0, 60_000), message)
            .unwrap()
            .unwrap();
        let live = db.reset("a@example.com").unwrap().unwrap().code.unwrap();
        assert!(db
            .code_mail_wanted("a@example.com", live.outbox_id.unwrap())
            .unwrap());
        assert!(!db.code_mail_wanted("a@example.com", stray).unwrap());
        assert_eq!(db.sweep_stray_codes().unwrap(), 0, "the live entry stays");
        assert_eq!(
            db.code_owner(&[2; 32]).unwrap().as_deref(),
            Some("a@example.com")
        );
    }

    #[test]
    fn concurrent_issues_confirmations_and_sweeps_keep_one_code_one_mail() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        let confirmation = Confirmation {
            session_mac: vec![9; 32],
            client: "127.0.0.1".into(),
            until_ms: u64::MAX,
            session_only: false,
        };
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let db = &db;
                scope.spawn(move || {
                    for n in 0..200u8 {
                        let email = ["a@example.com", "b@example.com"][usize::from(n % 2)];
                        // Few MACs, so that the two accounts often draw the same one.
                        let mac = (t + n / 2) % 6;
                        let issued = db.issue_code(email, code(mac, 0, 60_000), message);
                        assert!(matches!(issued, Ok(Ok(()) | Err(IssueRefused::CodeTaken))));
                    }
                });
            }
            let db = &db;
            scope.spawn(move || {
                for _ in 0..100 {
                    if let Some(live) = db.reset("a@example.com").unwrap().and_then(|r| r.code) {
                        let mac: [u8; 32] = live.mac.try_into().unwrap();
                        db.confirm_code(&mac, None, 1, LOCKOUT, &confirmation, false)
                            .unwrap();
                    }
                    db.sweep_stray_codes().unwrap();
                }
            });
        });
        let mut live_codes = 0;
        let mut macs = std::collections::HashSet::new();
        for email in ["a@example.com", "b@example.com"] {
            if let Some(live) = db.reset(email).unwrap().and_then(|r| r.code) {
                live_codes += 1;
                assert!(macs.insert(live.mac.clone()), "two accounts hold one code");
                let mac: [u8; 32] = live.mac.try_into().unwrap();
                assert_eq!(db.code_owner(&mac).unwrap().as_deref(), Some(email));
                assert!(db
                    .queued_message(live.outbox_id.unwrap())
                    .unwrap()
                    .is_some());
            }
        }
        assert_eq!(
            db.inner.codes.len(),
            live_codes,
            "no index entry is left over"
        );
        assert_eq!(db.outbox_len(), live_codes, "one mail per live code");
    }
}
