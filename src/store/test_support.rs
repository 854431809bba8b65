//! Fixtures for the store's unit tests: a store with accounts, a live code, a message.

use super::outbox::{Kind, Queued};
use super::records::LiveCode;
use super::users::User;
use super::Db;
use crate::config::Durability;
use crate::mail_address::validate;

/// A code's mail, as issuing queues one.
pub fn message() -> Queued {
    let kind = Kind::Otp {
        code: "x".into(),
        ttl_secs: 60,
    };
    Queued::new("a@example.com".into(), kind, 0, Some(60_000))
}

/// A live code whose MAC is 32 bytes of `mac`.
pub fn code(mac: u8, issued_ms: u64, expires_ms: u64) -> LiveCode {
    LiveCode {
        mac: vec![mac; 32],
        issued_ms,
        expires_ms,
        outbox_id: None,
        refused_clients: Vec::new(),
    }
}

/// A fresh store with these accounts.
pub fn db_with(emails: &[&str]) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    for e in emails {
        let e = validate(e).unwrap();
        db.add_user(&e.key, &User::new(&e, None, 0)).unwrap();
    }
    (dir, db)
}

/// Issues `code` for account `key` (its own record).
pub fn issue(db: &Db, key: &str, code: LiveCode) -> Result<(), super::codes::IssueRefused> {
    db.issue_code(key, Some(key), code, &message()).unwrap()
}

/// A transaction's router for steps that emit no events.
pub fn no_events(_: &[crate::events::Event]) -> Vec<Queued> {
    Vec::new()
}
