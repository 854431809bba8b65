//! Accounts imported with a hash another system made (`"password_hash"` on an import
//! record): the record, and the hash's replacement by resetgate's own on the first
//! successful verify. Which formats, and what one verification may cost:
//! [`crate::crypto::imported`].

use serde_json::Value;

use super::users::{parse_account, NewAccount};
use super::Admin;
use crate::config::Passwords;

/// An import record: [`parse_account`]'s `{"email", "password"?}`, or
/// `{"email", "password_hash"}` with a hash made elsewhere, stored as it is until the
/// account's first successful verify. Never both.
pub fn parse_import_record(value: &Value, policy: &Passwords) -> Result<NewAccount, String> {
    let Some(fields) = value
        .as_object()
        .filter(|o| o.contains_key("password_hash"))
    else {
        return parse_account(value, policy);
    };
    let mut fields = fields.clone();
    let hash = fields.remove("password_hash");
    if fields.get("password").is_some_and(|p| !p.is_null()) {
        return Err("\"password\" and \"password_hash\" exclude each other".into());
    }
    let mut account = parse_account(&Value::Object(fields), policy)?;
    account.password_hash = match hash {
        Some(Value::String(hash)) => {
            let problem = crate::crypto::imported::check(&hash);
            problem.map_err(|e| format!("\"password_hash\" is {e}"))?;
            Some(hash)
        }
        Some(Value::Null) | None => None,
        Some(_) => return Err("\"password_hash\" must be a string".into()),
    };
    Ok(account)
}

impl Admin {
    /// After `verified`, an imported hash, matched `password`: stores resetgate's own hash
    /// of it instead, unless the account's hash changed in between (a password change
    /// wins). No event: the application's copy of the old hash still verifies the same
    /// password. Not flushed: after a crash the imported hash is back, still verifies,
    /// and the next verify replaces it again.
    pub(super) async fn replace_imported(&self, key: String, verified: String, password: String) {
        let own = self.hasher().hash(password).await;
        let replace = move |db: &crate::store::Db| db.replace_password_hash(&key, &verified, own);
        if let Err(e) = self.db().blocking(replace).await {
            tracing::warn!(error = %e, "an imported password hash was not replaced");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_has_a_password_or_a_hash_and_the_hash_is_checked() {
        let p = Passwords::default();
        let django = "pbkdf2_sha256$10000$someSalt$AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let line = json!({ "email": "A@B.org", "password_hash": django });
        let account = parse_import_record(&line, &p).unwrap();
        assert_eq!(account.password_hash.as_deref(), Some(django));
        assert_eq!(account.password, None);
        let wire = serde_json::to_value(&account).unwrap();
        assert_eq!(wire, line, "it goes over the admin socket as it came");

        let both = json!({ "email": "a@b.org", "password": "long enough, truly", "password_hash": django });
        assert!(parse_import_record(&both, &p)
            .unwrap_err()
            .contains("exclude"));
        let null = json!({ "email": "a@b.org", "password": null, "password_hash": django });
        assert!(parse_import_record(&null, &p).is_ok());
        let unknown = json!({ "email": "a@b.org", "password_hash": "md5$x$y" });
        let e = parse_import_record(&unknown, &p).unwrap_err();
        assert!(e.starts_with("\"password_hash\" is not a format"), "{e}");
        let plain = json!({ "email": "a@b.org", "password": "long enough, truly" });
        assert!(parse_import_record(&plain, &p)
            .unwrap()
            .password_hash
            .is_none());
        assert!(parse_import_record(&json!({ "email": 5, "password_hash": django }), &p).is_err());
        assert!(parse_import_record(&json!("a@b.org"), &p).is_err());
    }
}
