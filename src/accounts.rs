//! Account management, shared by the admin API and the CLI's direct mode.

use serde_json::{json, Value};

use crate::config::Passwords;
use crate::crypto::hash_password;
use crate::mail_address::{validate, Email};
use crate::store::users::{ImportReport, User};
use crate::store::{unix_ms, Db, StoreError};

/// An account to create: a valid address and, optionally, an initial password.
#[derive(Debug)]
pub struct NewAccount {
    pub email: Email,
    pub password: Option<String>,
}

/// Password bounds until the full policy lands: NIST SP 800-63B's minimum of 8, and a
/// maximum far above its required 64 that still bounds the hashing work.
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;

/// Parses `{"email": "...", "password": "..."?}`; the error text names the problem.
pub fn parse_account(value: &Value) -> Result<NewAccount, String> {
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
            let chars = p.chars().count();
            if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&chars) {
                return Err(format!(
                    "\"password\" must have {MIN_PASSWORD} to {MAX_PASSWORD} characters"
                ));
            }
            Some(p.clone())
        }
        Some(_) => return Err("\"password\" must be a string".into()),
    };
    Ok(NewAccount { email, password })
}

/// Hashes the passwords (slow on purpose) on a blocking thread and builds the records.
async fn records(
    config: &Passwords,
    accounts: Vec<NewAccount>,
) -> Result<Vec<(String, User)>, StoreError> {
    let iterations = config.pbkdf2_iterations;
    let now = unix_ms(std::time::SystemTime::now());
    tokio::task::spawn_blocking(move || {
        accounts
            .into_iter()
            .map(|a| {
                let hash = a.password.as_deref().map(|p| hash_password(p, iterations));
                (a.email.key.clone(), User::new(&a.email, hash, now))
            })
            .collect()
    })
    .await
    .map_err(|e| StoreError::Flush(format!("hashing task failed: {e}")))
}

/// Adds one account; false if it exists already. Durable when it returns.
pub async fn add(db: &Db, config: &Passwords, account: NewAccount) -> Result<bool, StoreError> {
    let records = records(config, vec![account]).await?;
    let (key, user) = &records[0];
    let added = db.add_user(key, user)?;
    db.durable().await?;
    Ok(added)
}

/// Adds every new account in one transaction. Durable when it returns.
pub async fn import(
    db: &Db,
    config: &Passwords,
    accounts: Vec<NewAccount>,
) -> Result<ImportReport, StoreError> {
    let records = records(config, accounts).await?;
    let report = db.import_users(&records)?;
    db.durable().await?;
    Ok(report)
}

/// Removes an account and its pending reset; false if there was none. Durable when it returns.
pub async fn remove(db: &Db, key: &str) -> Result<bool, StoreError> {
    let removed = db.remove_user(key)?;
    db.durable().await?;
    Ok(removed)
}

/// What the admin API and `users list --json` show of an account: never the hash.
pub fn summary(user: &User) -> Value {
    json!({
        "email": user.email,
        "has_password": user.password_hash.is_some(),
        "disabled": user.disabled,
        "created_ms": user.created_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_lines() {
        let ok = parse_account(&json!({"email": " A@B.org ", "password": "long enough"})).unwrap();
        assert_eq!(ok.email.key, "a@b.org");
        assert!(parse_account(&json!({"email": "a@b.org", "pw": "x"}))
            .unwrap_err()
            .contains("unknown"));
        assert!(parse_account(&json!({"email": "a@b.org", "password": "short"})).is_err());
        assert!(parse_account(&json!({"email": 5})).is_err());
        assert!(parse_account(&json!({})).unwrap_err().contains("missing"));
        assert!(parse_account(&json!("a@b.org")).is_err());
    }
}
