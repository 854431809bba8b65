//! Accounts: list, add, import, remove, verify a password, unlock.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{now_ms, Admin, AdminError};
use crate::config::Passwords;
use crate::error::{ACCOUNT_EXISTS, NO_ACCOUNT};
use crate::mail_address::{validate, Email};
pub use crate::store::users::ImportReport;
use crate::store::users::User;

/// An account to create: a valid address and, optionally, an initial password. On the
/// wire (add, import) it is `{"email": …, "password": …?}`; an import record may carry a
/// hash made elsewhere instead (`admin::hashes`).
#[derive(Debug, Serialize)]
pub struct NewAccount {
    #[serde(serialize_with = "stored")]
    pub email: Email,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

fn stored<S: Serializer>(email: &Email, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&email.stored)
}

/// Parses `{"email": "...", "password": "..."?}`; the error text names the problem. An
/// initial password must pass the same policy as one set through password-reset.
pub fn parse_account(value: &Value, policy: &Passwords) -> Result<NewAccount, String> {
    let obj = value.as_object().ok_or("expected a JSON object")?;
    if let Some(unknown) = obj.keys().find(|k| *k != "email" && *k != "password") {
        return Err(format!("unknown field {unknown:?}"));
    }
    let email = match obj.get("email") {
        Some(Value::String(s)) => validate(s).map_err(|e| e.to_string())?,
        Some(_) => return Err("\"email\" must be a string".into()),
        None => return Err("\"email\" is missing".into()),
    };
    let password = match obj.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            crate::recovery::policy::check(p, &email.stored, policy)?;
            Some(p.clone())
        }
        Some(_) => return Err("\"password\" must be a string".into()),
    };
    Ok(NewAccount {
        email,
        password,
        password_hash: None,
    })
}

/// `GET /admin/v1/users`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserSummary>,
}

/// What an operator sees of an account: never the hash.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserSummary {
    pub email: String,
    pub has_password: bool,
    pub disabled: bool,
    pub created_ms: u64,
}

impl From<&User> for UserSummary {
    fn from(user: &User) -> UserSummary {
        UserSummary {
            email: user.email.clone(),
            has_password: user.password_hash.is_some(),
            disabled: user.disabled,
            created_ms: user.created_ms,
        }
    }
}

/// An account was added (201): its address as stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct Added {
    pub email: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Removed {
    pub removed: String,
}

/// The pair matched (else [`AdminError::InvalidCredentials`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct Valid {
    pub valid: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Unlocked {
    pub email: String,
    pub had_failures: bool,
}

fn no_account() -> AdminError {
    AdminError::NotFound(NO_ACCOUNT.into())
}

impl Admin {
    pub async fn list_users(&self) -> Result<UserList, AdminError> {
        let users = self.db().blocking(|db| db.list_users()).await?;
        let users = users.iter().map(UserSummary::from).collect();
        Ok(UserList { users })
    }

    /// Adds one account, unless it exists. Durable when it returns.
    pub async fn add_user(&self, account: NewAccount) -> Result<Added, AdminError> {
        let email = account.email.stored.clone();
        let (key, user) = self.record(account, now_ms()).await;
        let added = self
            .db()
            .blocking(move |db| db.add_user(&key, &user))
            .await?;
        self.db().durable().await?;
        if !added {
            return Err(AdminError::Conflict(ACCOUNT_EXISTS.into()));
        }
        Ok(Added { email })
    }

    /// Adds every new account in one transaction, leaving existing ones as they are.
    /// Durable when it returns.
    pub async fn import_users(
        &self,
        accounts: Vec<NewAccount>,
    ) -> Result<ImportReport, AdminError> {
        let now = now_ms();
        let mut records = Vec::with_capacity(accounts.len());
        for account in accounts {
            records.push(self.record(account, now).await);
        }
        let report = self
            .db()
            .blocking(move |db| db.import_users(&records))
            .await?;
        self.db().durable().await?;
        Ok(report)
    }

    /// Hashes the password (slow on purpose, off the async threads) and builds the record;
    /// an imported hash is stored as it is.
    async fn record(&self, account: NewAccount, now: u64) -> (String, User) {
        let hash = match account.password {
            Some(p) => Some(self.hasher().hash(p).await),
            None => account.password_hash,
        };
        let user = User::new(&account.email, hash, now);
        (account.email.key, user)
    }

    /// Removes an account and its pending reset. Durable when it returns.
    pub async fn remove_user(&self, email: Email) -> Result<Removed, AdminError> {
        let key = email.key;
        let removed = self
            .db()
            .blocking(move |db| {
                let removed = db.remove_user(&key)?;
                if removed {
                    db.forget_history(&key)?;
                }
                Ok(removed)
            })
            .await?;
        self.db().durable().await?;
        if !removed {
            return Err(no_account());
        }
        Ok(Removed {
            removed: email.stored,
        })
    }

    /// Checks an email/password pair for the host application, at the same cost for an
    /// unknown account or a malformed address (they are checked against a decoy hash). An
    /// imported hash costs what its own parameters say, and the first match replaces it.
    pub async fn verify_password(
        &self,
        email: &str,
        password: String,
    ) -> Result<Valid, AdminError> {
        let key = validate(email).map_or_else(|_| String::new(), |e| e.key);
        let phc = self
            .db()
            .user(&key)?
            .filter(|u| !u.disabled)
            .and_then(|u| u.password_hash);
        let imported = phc.clone().filter(|h| !crate::crypto::is_own_hash(h));
        let again = imported.as_ref().map(|_| password.clone());
        if !self.hasher().verify(phc, password).await {
            return Err(AdminError::InvalidCredentials);
        }
        if let (Some(verified), Some(password)) = (imported, again) {
            self.replace_imported(key, verified, password).await;
        }
        Ok(Valid { valid: true })
    }

    /// Clears an account's count of failed confirmations (see
    /// `recovery.max_account_failures`). Durable when it returns.
    pub async fn unlock_user(&self, email: Email) -> Result<Unlocked, AdminError> {
        if self.db().user(&email.key)?.is_none() {
            return Err(no_account());
        }
        let key = email.key.clone();
        let unlock = move |records: &_| crate::recovery::unlock(records, &key);
        let had_failures = self.decide(vec![email.key.clone()], unlock).await?;
        if had_failures {
            self.note_unlocked(&email.key);
        }
        self.db().durable().await?;
        Ok(Unlocked {
            email: email.stored,
            had_failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn account_lines() {
        let p = Passwords::default();
        let ok = parse_account(
            &json!({"email": " A@B.org ", "password": "long enough, truly"}),
            &p,
        );
        assert_eq!(ok.unwrap().email.key, "a@b.org");
        let unknown = parse_account(&json!({"email": "a@b.org", "pw": "x"}), &p);
        assert!(unknown.unwrap_err().contains("unknown"));
        assert!(parse_account(&json!({"email": "a@b.org", "password": "short"}), &p).is_err());
        assert!(parse_account(&json!({"email": 5}), &p).is_err());
        assert!(parse_account(&json!({}), &p)
            .unwrap_err()
            .contains("missing"));
        assert!(parse_account(&json!("a@b.org"), &p).is_err());
    }

    #[test]
    fn an_account_goes_on_the_wire_as_it_is_parsed() {
        let p = Passwords::default();
        let line = json!({"email": " A@B.org ", "password": "long enough, truly"});
        let wire = serde_json::to_value(parse_account(&line, &p).unwrap()).unwrap();
        assert_eq!(
            wire,
            json!({"email": "A@B.org", "password": "long enough, truly"})
        );
        let again = parse_account(&wire, &p).unwrap();
        assert_eq!(again.email.key, "a@b.org");
        let bare = parse_account(&json!({"email": "a@b.org", "password": null}), &p).unwrap();
        assert_eq!(
            serde_json::to_value(bare).unwrap(),
            json!({"email": "a@b.org"})
        );
    }
}
