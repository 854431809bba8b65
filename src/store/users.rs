//! Accounts: `email_user`, keyed by the normalized email.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{decode, encode, Db, Result, StoreError};
use crate::mail_address::Email;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// The address as it was added; mail goes here.
    pub email: String,
    /// PHC string (`$pbkdf2-sha256$…`), or none for an account without a local password.
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl User {
    /// The stand-in user of a decoy record (`recovery::decoy_key`): never stored, never
    /// mailed.
    pub fn decoy() -> User {
        User {
            email: "decoy@invalid".into(),
            password_hash: None,
            disabled: true,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    pub fn new(email: &Email, password_hash: Option<String>, now_ms: u64) -> User {
        User {
            email: email.stored.clone(),
            password_hash,
            disabled: false,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

/// What an import did: new accounts added, and lines whose account already existed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImportReport {
    pub added: u64,
    pub existing: u64,
}

impl Db {
    pub fn user(&self, key: &str) -> Result<Option<User>> {
        match self.inner.users.get(key)? {
            Some(bytes) => Ok(Some(decode("user", &bytes)?)),
            None => Ok(None),
        }
    }

    /// Adds an account; false if one with this normalized email exists.
    pub fn add_user(&self, key: &str, user: &User) -> Result<bool> {
        let _gate = self.writing();
        let swapped =
            self.inner
                .users
                .compare_and_swap(key, None as Option<&[u8]>, Some(encode(user)))?;
        Ok(swapped.is_ok())
    }

    /// Removes an account with its pending reset; false if there was none.
    pub fn remove_user(&self, key: &str) -> Result<bool> {
        let _gate = self.writing();
        // An issue in progress finishes first, and its code goes with the account.
        let _account = self.account(key.as_bytes());
        let i = &self.inner;
        let trees = (&i.users, &i.resets, &i.outbox);
        let removed = trees.transaction(|(users, resets, outbox)| {
            let reset = super::tx::read_reset(resets, key.as_bytes())?;
            let retired = super::tx::retire_code(outbox, key.as_bytes(), &reset)?;
            resets.remove(key)?;
            super::tx::TxResult::Ok((users.remove(key)?.is_some(), retired))
        });
        let (removed, retired) = super::tx::settle(removed)?;
        retired.release(&i.codes);
        Ok(removed)
    }

    pub fn list_users(&self) -> Result<Vec<User>> {
        self.inner
            .users
            .iter()
            .values()
            .map(|v| decode("user", &v?))
            .collect()
    }

    pub fn count_users(&self) -> usize {
        self.inner.users.len()
    }

    /// Replaces an account's password hash `old` with `new`, unless it is no longer `old`
    /// (compare-and-swap on the record: a change in between wins); false if it was not.
    pub fn replace_password_hash(&self, key: &str, old: &str, new: String) -> Result<bool> {
        let _gate = self.writing();
        let Some(bytes) = self.inner.users.get(key)? else {
            return Ok(false);
        };
        let mut user: User = decode("user", &bytes)?;
        if user.password_hash.as_deref() != Some(old) {
            return Ok(false);
        }
        user.password_hash = Some(new);
        let swapped = self
            .inner
            .users
            .compare_and_swap(key, Some(bytes), Some(encode(&user)))?;
        Ok(swapped.is_ok())
    }

    /// Adds all new accounts in one transaction: either every line lands or none does.
    pub fn import_users(&self, users: &[(String, User)]) -> Result<ImportReport> {
        let _gate = self.writing();
        let outcome = self.inner.users.transaction(|tree| {
            let mut report = ImportReport::default();
            for (key, user) in users {
                if tree.get(key.as_bytes())?.is_some() {
                    report.existing += 1;
                } else {
                    tree.insert(key.as_bytes(), encode(user))?;
                    report.added += 1;
                }
            }
            Ok::<_, ConflictableTransactionError<()>>(report)
        });
        outcome.map_err(|e| match e {
            TransactionError::Abort(()) => StoreError::Corrupt("import aborted".into()),
            TransactionError::Storage(e) => StoreError::Sled(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::mail_address::validate;

    #[test]
    fn add_find_remove() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        let email = validate("Ada@Example.com").unwrap();
        let user = User::new(&email, None, 1);
        assert!(db.add_user(&email.key, &user).unwrap());
        assert!(
            !db.add_user(&email.key, &user).unwrap(),
            "duplicate refused"
        );
        assert_eq!(
            db.user("ada@example.com").unwrap().unwrap().email,
            "Ada@Example.com"
        );
        assert!(db.remove_user(&email.key).unwrap());
        assert!(!db.remove_user(&email.key).unwrap());
        assert!(db.user(&email.key).unwrap().is_none());
    }

    #[test]
    fn a_hash_is_replaced_only_while_it_is_the_one_verified() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        let a = validate("a@example.com").unwrap();
        db.add_user(&a.key, &User::new(&a, Some("$2b$old".into()), 1))
            .unwrap();
        assert!(!db
            .replace_password_hash(&a.key, "$2b$other", "$own".into())
            .unwrap());
        assert!(db
            .replace_password_hash(&a.key, "$2b$old", "$own".into())
            .unwrap());
        assert_eq!(
            db.user(&a.key).unwrap().unwrap().password_hash.as_deref(),
            Some("$own")
        );
        assert!(!db
            .replace_password_hash(&a.key, "$2b$old", "$again".into())
            .unwrap());
        assert!(!db
            .replace_password_hash("b@example.com", "$2b$old", "$own".into())
            .unwrap());
    }

    #[test]
    fn import_counts_existing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        let a = validate("a@example.com").unwrap();
        db.add_user(&a.key, &User::new(&a, None, 1)).unwrap();
        let b = validate("b@example.com").unwrap();
        let lines = vec![
            (a.key.clone(), User::new(&a, None, 2)),
            (b.key.clone(), User::new(&b, None, 2)),
        ];
        let report = db.import_users(&lines).unwrap();
        assert_eq!(
            report,
            ImportReport {
                added: 1,
                existing: 1
            }
        );
        assert_eq!(db.list_users().unwrap().len(), 2);
    }
}
