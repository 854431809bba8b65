//! Reset state (`email_reset`) and the global code index (`codemac_email`).
//!
//! Issuing a code writes the reset state, the index entry and the outbox message in one
//! transaction: a code and its email exist together or not at all.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError as Abortable, TransactionError};
use sled::Transactional;

use super::outbox::Queued;
use super::users::User;
use super::{decode, encode, id_key, Db, Result, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reset {
    /// HMAC-SHA256 of the live code under the server secret; the code itself is never stored.
    pub code_mac: Vec<u8>,
    pub issued_ms: u64,
    pub expires_ms: u64,
}

/// Why a code was not issued.
#[derive(Debug)]
pub enum IssueRefused {
    NoAccount,
    /// The drawn code is live for another account; draw again.
    CodeTaken,
}

#[derive(Debug)]
enum Abort {
    Refused(IssueRefused),
    Corrupt(String),
}

impl Db {
    /// Replaces the account's code with `code_mac` and queues the message that carries the
    /// code, atomically. Returns the outbox id. `message` builds the mail for the stored user.
    pub fn issue_code(
        &self,
        key: &str,
        code_mac: [u8; 32],
        now_ms: u64,
        expires_ms: u64,
        message: impl Fn(&User) -> Queued,
    ) -> Result<std::result::Result<u64, IssueRefused>> {
        let i = &self.inner;
        let id = i.db.generate_id()?;
        let reset = Reset {
            code_mac: code_mac.to_vec(),
            issued_ms: now_ms,
            expires_ms,
        };
        let outcome = (&i.users, &i.resets, &i.codes, &i.outbox).transaction(
            |(users, resets, codes, outbox)| {
                let user: User = match users.get(key)? {
                    Some(bytes) => parse(&bytes)?,
                    None => return Err(Abortable::Abort(Abort::Refused(IssueRefused::NoAccount))),
                };
                if let Some(owner) = codes.get(code_mac)? {
                    if owner != key.as_bytes() && live_for(resets.get(&owner)?, &code_mac, now_ms)?
                    {
                        return Err(Abortable::Abort(Abort::Refused(IssueRefused::CodeTaken)));
                    }
                }
                if let Some(previous) = resets.get(key)? {
                    let previous: Reset = parse(&previous)?;
                    if codes.get(&previous.code_mac)?.as_deref() == Some(key.as_bytes()) {
                        codes.remove(previous.code_mac)?;
                    }
                }
                resets.insert(key, encode(&reset))?;
                codes.insert(&code_mac[..], key)?;
                outbox.insert(&id_key(id), encode(&message(&user)))?;
                Ok(())
            },
        );
        match outcome {
            Ok(()) => Ok(Ok(id)),
            Err(TransactionError::Abort(Abort::Refused(r))) => Ok(Err(r)),
            Err(TransactionError::Abort(Abort::Corrupt(msg))) => Err(StoreError::Corrupt(msg)),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
        }
    }

    pub fn reset(&self, key: &str) -> Result<Option<Reset>> {
        match self.inner.resets.get(key)? {
            Some(bytes) => Ok(Some(decode("reset", &bytes)?)),
            None => Ok(None),
        }
    }

    /// The account a code MAC belongs to, whether or not the code is still live.
    pub fn code_owner(&self, code_mac: &[u8; 32]) -> Result<Option<String>> {
        Ok(self
            .inner
            .codes
            .get(code_mac)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Removes expired reset state and its index entries; returns how many were removed.
    /// A scan: run it off the async threads.
    pub fn sweep_resets(&self, now_ms: u64) -> Result<u64> {
        let mut removed = 0;
        for entry in self.inner.resets.iter() {
            let (key, value) = entry?;
            let reset: Reset = decode("reset", &value)?;
            if reset.expires_ms > now_ms {
                continue;
            }
            let i = &self.inner;
            let swept = (&i.resets, &i.codes).transaction(|(resets, codes)| {
                // Re-read inside the transaction: a new code may have been issued meanwhile.
                if resets.get(&key)?.as_deref() != Some(&value[..]) {
                    return Ok(false);
                }
                resets.remove(&key)?;
                if codes.get(&reset.code_mac)?.as_deref() == Some(&key[..]) {
                    codes.remove(&reset.code_mac[..])?;
                }
                Ok::<_, Abortable<()>>(true)
            });
            match swept {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(TransactionError::Abort(())) => {}
                Err(TransactionError::Storage(e)) => return Err(StoreError::Sled(e)),
            }
        }
        Ok(removed)
    }
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, Abortable<Abort>> {
    serde_json::from_slice(bytes).map_err(|e| Abortable::Abort(Abort::Corrupt(e.to_string())))
}

fn live_for(
    reset: Option<sled::IVec>,
    code_mac: &[u8; 32],
    now_ms: u64,
) -> std::result::Result<bool, Abortable<Abort>> {
    let Some(bytes) = reset else { return Ok(false) };
    let reset: Reset = parse(&bytes)?;
    Ok(reset.code_mac == code_mac && reset.expires_ms > now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::mail_address::validate;
    use crate::store::outbox::Kind;

    fn message(user: &User) -> Queued {
        Queued::new(
            user.email.clone(),
            Kind::Otp {
                code: "x".into(),
                ttl_secs: 60,
            },
            0,
            Some(60_000),
        )
    }

    fn db_with(emails: &[&str]) -> (tempfile::TempDir, Db) {
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
        db.issue_code("a@example.com", [1; 32], 0, 60_000, message)
            .unwrap()
            .unwrap();
        db.issue_code("a@example.com", [2; 32], 1, 60_001, message)
            .unwrap()
            .unwrap();
        assert_eq!(db.code_owner(&[1; 32]).unwrap(), None, "old code unindexed");
        assert_eq!(
            db.code_owner(&[2; 32]).unwrap().as_deref(),
            Some("a@example.com")
        );
        assert_eq!(db.outbox_len(), 2);
    }

    #[test]
    fn unknown_account_and_taken_codes_are_refused() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        assert!(matches!(
            db.issue_code("nobody@example.com", [1; 32], 0, 60_000, message)
                .unwrap(),
            Err(IssueRefused::NoAccount)
        ));
        db.issue_code("a@example.com", [1; 32], 0, 60_000, message)
            .unwrap()
            .unwrap();
        assert!(matches!(
            db.issue_code("b@example.com", [1; 32], 0, 60_000, message)
                .unwrap(),
            Err(IssueRefused::CodeTaken)
        ));
        // Once a's code expired, b may draw the same value.
        db.issue_code("b@example.com", [1; 32], 60_000, 120_000, message)
            .unwrap()
            .unwrap();
        assert_eq!(db.outbox_len(), 2, "refusals queue nothing");
    }

    #[test]
    fn sweep_removes_only_expired() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        db.issue_code("a@example.com", [1; 32], 0, 10, message)
            .unwrap()
            .unwrap();
        db.issue_code("b@example.com", [2; 32], 0, 1_000, message)
            .unwrap()
            .unwrap();
        assert_eq!(db.sweep_resets(500).unwrap(), 1);
        assert!(db.reset("a@example.com").unwrap().is_none());
        assert_eq!(db.code_owner(&[1; 32]).unwrap(), None);
        assert!(db.reset("b@example.com").unwrap().is_some());
    }
}
