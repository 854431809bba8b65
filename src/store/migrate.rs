//! Schema versions and the migrations between them.
//!
//! `meta/schema_version` names the layout a store was written in. Opening a store:
//! - without a version (a new store): stamps the current one;
//! - from a newer build: refused ([`StoreError::TooNew`]), nothing is touched;
//! - from an older build: each migration runs in turn, and the version is raised and flushed
//!   after each one. A migration may be interrupted and run again: each is idempotent.
//!
//! History:
//! 1. the first layout.
//! 2. `email_reset` records remember when the last failed confirmation happened
//!    (`last_failure_ms`), so that failure counts are forgotten after
//!    `recovery.failures_forgotten_after`. Records of schema 1 with failures get the time of
//!    the migration: a lock in force stays in force for the full period after the upgrade.
//! 3. webhook deliveries: the tree `id_webhook`, and dead letters (`id_dead`) that may be
//!    webhook deliveries. Nothing to rewrite; an older build must not open such a store.
//! 4. the webhook queue keyed by endpoint and id (`endpoint_webhook`): `id_webhook`'s
//!    entries move there ([`super::webhooks::key_by_endpoint`]).

use super::records::Reset;
use super::{decode, encode, Result, StoreError};

pub(crate) const SCHEMA_VERSION: u32 = 4;

/// What opening did to an older store.
#[derive(Debug, PartialEq, Eq)]
pub struct Migrated {
    pub from: u32,
    /// Records rewritten.
    pub records: u64,
}

/// The store's schema version, if it has one.
pub(super) fn version(meta: &sled::Tree) -> Result<Option<u32>> {
    let Some(v) = meta.get("schema_version")? else {
        return Ok(None);
    };
    let bytes = v
        .as_ref()
        .try_into()
        .map_err(|_| StoreError::Corrupt("schema_version".into()))?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

pub(super) fn set_version(meta: &sled::Tree, version: u32) -> Result<()> {
    meta.insert("schema_version", &version.to_be_bytes())?;
    Ok(())
}

/// Brings the store to [`SCHEMA_VERSION`]; `None` when it needed nothing but a stamp.
pub(super) fn upgrade(db: &sled::Db, now_ms: u64) -> Result<Option<Migrated>> {
    let meta = db.open_tree("meta")?;
    let from = match version(&meta)? {
        None => {
            set_version(&meta, SCHEMA_VERSION)?;
            return Ok(None);
        }
        Some(found) if found > SCHEMA_VERSION => return Err(StoreError::TooNew { found }),
        Some(found) if found == SCHEMA_VERSION => return Ok(None),
        Some(found) => found,
    };
    let mut records = 0;
    for version in from..SCHEMA_VERSION {
        records += match version {
            1 => stamp_failures(db, now_ms)?,
            2 => 0,
            3 => super::webhooks::key_by_endpoint(db)?,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "schema_version {other} is not one this build can migrate"
                )))
            }
        };
        // The step's records reach the disk before the version that vouches for them.
        db.flush()?;
        set_version(&meta, version + 1)?;
        db.flush()?;
    }
    Ok(Some(Migrated { from, records }))
}

/// 1 → 2: failure counts without a time get the migration's.
fn stamp_failures(db: &sled::Db, now_ms: u64) -> Result<u64> {
    let resets = db.open_tree("email_reset")?;
    let mut stamped = 0;
    for entry in resets.iter() {
        let (key, value) = entry?;
        let mut reset: Reset = decode("reset", &value)?;
        if reset.failures > 0 && reset.last_failure_ms == 0 {
            reset.last_failure_ms = now_ms;
            resets.insert(key, encode(&reset))?;
            stamped += 1;
        }
    }
    Ok(stamped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store as schema 1 wrote it: its records are raw JSON of that layout.
    fn schema_1_store(dir: &std::path::Path) {
        let db = sled::open(dir.join("store")).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &1u32.to_be_bytes()).unwrap();
        let resets = db.open_tree("email_reset").unwrap();
        let locked = br#"{"code":null,"failures":2,"confirmation":null}"#;
        resets.insert("a@example.com", &locked[..]).unwrap();
        let mac = vec![7u8; 32];
        let live = format!(
            r#"{{"code":{{"mac":{mac:?},"issued_ms":1,"expires_ms":99999999,"outbox_id":null}},"failures":0,"confirmation":null}}"#
        );
        resets.insert("b@example.com", live.as_bytes()).unwrap();
        db.flush().unwrap();
    }

    #[test]
    fn a_schema_1_store_is_migrated_once_and_keeps_its_locks() {
        let dir = tempfile::tempdir().unwrap();
        schema_1_store(dir.path());
        let opened = crate::store::reopen(dir.path()).unwrap();
        assert_eq!(
            opened.migrated(),
            Some(&Migrated {
                from: 1,
                records: 1
            })
        );
        let a = opened.reset("a@example.com").unwrap().unwrap();
        assert!(
            a.last_failure_ms > 0,
            "stamped with the time of the migration"
        );
        assert_eq!(
            a.failures, 2,
            "the count is kept, dated to the migration: the lock holds after the upgrade"
        );
        let b = opened.reset("b@example.com").unwrap().unwrap();
        assert_eq!(
            b.code.unwrap().expires_ms,
            99_999_999,
            "other records as they were"
        );
        drop(opened);

        let again = crate::store::reopen(dir.path()).unwrap();
        assert_eq!(again.migrated(), None, "already at schema {SCHEMA_VERSION}");
        assert_eq!(version(&again.inner.meta).unwrap(), Some(SCHEMA_VERSION));
    }

    #[test]
    fn a_schema_3_webhook_queue_is_keyed_by_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("store")).unwrap();
            set_version(&db.open_tree("meta").unwrap(), 3).unwrap();
            let body = |to: &str| {
                format!(
                    r#"{{"to":"{to}","kind":"webhook","event":"code.confirmed","id":"msg_1","account":"a","body":"{{}}","created_ms":5,"expires_ms":null,"attempts":0,"next_attempt_ms":5,"last_error":null}}"#
                )
            };
            let old = db.open_tree("id_webhook").unwrap();
            old.insert(7u64.to_be_bytes(), body("app").as_bytes())
                .unwrap();
            old.insert(9u64.to_be_bytes(), body("ops").as_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let opened = crate::store::reopen(dir.path()).unwrap();
        assert_eq!(
            opened.migrated(),
            Some(&Migrated {
                from: 3,
                records: 2
            })
        );
        let app = opened.queued_message(7).unwrap().unwrap();
        assert_eq!((app.to.as_str(), app.created_ms), ("app", 5));
        assert_eq!(opened.oldest_webhooks(10).unwrap().len(), 2);
        assert!(!opened
            .inner
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == b"id_webhook"));
    }

    #[test]
    fn an_unknown_old_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("store")).unwrap();
            set_version(&db.open_tree("meta").unwrap(), 0).unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            crate::store::reopen(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
