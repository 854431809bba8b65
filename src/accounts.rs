//! Account management, shared by the admin API and the CLI's direct mode.

use serde_json::{json, Value};

use crate::config::Passwords;
use crate::crypto::Hasher;
use crate::mail_address::{validate, Email};
use crate::store::users::{ImportReport, User};
use crate::store::{unix_ms, Db, StoreError};

/// An account to create: a valid address and, optionally, an initial password.
#[derive(Debug)]
pub struct NewAccount {
    pub email: Email,
    pub password: Option<String>,
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
    Ok(NewAccount { email, password })
}

/// Hashes the passwords (slow on purpose, off the async threads) and builds the records.
async fn records(hasher: &Hasher, accounts: Vec<NewAccount>) -> Vec<(String, User)> {
    let now = unix_ms(std::time::SystemTime::now());
    let mut records = Vec::with_capacity(accounts.len());
    for a in accounts {
        let hash = match a.password {
            Some(p) => Some(hasher.hash(p).await),
            None => None,
        };
        records.push((a.email.key.clone(), User::new(&a.email, hash, now)));
    }
    records
}

/// Adds one account; false if it exists already. Durable when it returns.
pub async fn add(db: &Db, hasher: &Hasher, account: NewAccount) -> Result<bool, StoreError> {
    let records = records(hasher, vec![account]).await;
    let added = db
        .blocking(move |db| {
            let (key, user) = &records[0];
            db.add_user(key, user)
        })
        .await?;
    db.durable().await?;
    Ok(added)
}

/// Adds every new account in one transaction. Durable when it returns.
pub async fn import(
    db: &Db,
    hasher: &Hasher,
    accounts: Vec<NewAccount>,
) -> Result<ImportReport, StoreError> {
    let records = records(hasher, accounts).await;
    let report = db.blocking(move |db| db.import_users(&records)).await?;
    db.durable().await?;
    Ok(report)
}

/// Checks an email/password pair at the same cost whether or not the account exists.
pub async fn verify(
    db: &Db,
    hasher: &Hasher,
    key: &str,
    password: String,
) -> Result<bool, StoreError> {
    let phc = db
        .user(key)?
        .filter(|u| !u.disabled)
        .and_then(|u| u.password_hash);
    Ok(hasher.verify(phc, password).await)
}

/// Removes an account and its pending reset; false if there was none. Durable when it returns.
pub async fn remove(db: &Db, key: &str) -> Result<bool, StoreError> {
    let key = key.to_string();
    let removed = db.blocking(move |db| db.remove_user(&key)).await?;
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
}
