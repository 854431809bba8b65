//! Backups: a consistent copy of every tree, as JSON lines, and its restore into an empty
//! store. The copy is taken with writers held off (see `Inner::gate`), which pauses writes
//! for as long as the trees take to read (about a second per 100,000 accounts).
//!
//! Format: a header line `{"resetgate_backup": 1, "schema_version": N, "created_ms": T}`,
//! then one line per record `{"tree": "...", "key": "<base64>", "value": "<base64>"}`.
//! The generated secrets (`<data_dir>/secret`, `admin.token`) are files, not records: back
//! them up with the data directory's files, or configure them as credentials.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::records::Reset;
use super::webhooks;
use super::{
    decode, encode, id_key, key_id, migrate, unix_ms, Db, Result, StoreError, SCHEMA_VERSION, TREES,
};

const FORMAT: u64 = 1;

impl Db {
    /// Writes a consistent copy of the store.
    pub fn backup(&self, out: &mut impl Write, now_ms: u64) -> Result<u64> {
        let io = |e: std::io::Error| StoreError::Flush(format!("writing the backup: {e}"));
        let _alone = self.inner.gate.write().unwrap_or_else(|p| p.into_inner());
        tracing::info!("backup started: writes wait until the copy is taken");
        let header = json!({ "resetgate_backup": FORMAT, "schema_version": SCHEMA_VERSION, "created_ms": now_ms });
        writeln!(out, "{header}").map_err(io)?;
        let mut records = 0;
        for name in TREES {
            for entry in self.inner.db.open_tree(name)?.iter() {
                let (key, value) = entry?;
                let line =
                    json!({ "tree": name, "key": B64.encode(&key), "value": B64.encode(&value) });
                writeln!(out, "{line}").map_err(io)?;
                records += 1;
            }
        }
        out.flush().map_err(io)?;
        tracing::info!(records, "backup taken: writes go on");
        Ok(records)
    }

    /// Loads a backup into this store, which must hold no accounts, codes or mail. Outbox
    /// and dead-letter ids are issued afresh (this store's id counter starts elsewhere), and
    /// the codes that point at them follow.
    pub fn restore(&self, input: impl BufRead) -> Result<u64> {
        for name in TREES.iter().filter(|n| **n != "meta") {
            if !self.inner.db.open_tree(name)?.is_empty() {
                return Err(bad(format!(
                    "the store is not empty ({name}); restore into an empty data directory"
                )));
            }
        }
        let mut lines = input.lines();
        let schema = schema_of(lines.next())?;
        // The records are in the backup's layout: say so before writing any of them, so that
        // a restore interrupted before its migration still opens as a store of that age.
        migrate::set_version(&self.inner.meta, schema)?;
        let mut load = Load::default();
        for (n, line) in lines.enumerate() {
            let line = line.map_err(|e| bad(e.to_string()))?;
            self.load_line(&line, n + 2, &mut load)?;
        }
        for (key, value) in load.resets {
            let mut reset: Reset = decode("reset", &value)?;
            if let Some(code) = reset.code.as_mut() {
                code.outbox_id = code
                    .outbox_id
                    .and_then(|old| load.renumbered.get(&old).copied());
            }
            self.inner.resets.insert(key, encode(&reset))?;
        }
        // An older backup's records are migrated as a store of its age would be.
        migrate::upgrade(&self.inner.db, unix_ms(SystemTime::now()))?;
        self.inner.codes.reload(&self.inner.resets)?;
        self.flush_blocking()?;
        Ok(load.records)
    }

    /// Writes one record line (number `n` of the file). Outbox and dead-letter ids are
    /// issued afresh; reset records wait until every id is known.
    fn load_line(&self, line: &str, n: usize, load: &mut Load) -> Result<()> {
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("line {n}: {e}")))?;
        let field = |f: &str| -> Result<Vec<u8>> {
            let text = v[f]
                .as_str()
                .ok_or_else(|| bad(format!("line {n}: no {f}")))?;
            B64.decode(text).map_err(|e| bad(format!("line {n}: {e}")))
        };
        let tree = v["tree"].as_str().unwrap_or_default();
        let (key, value) = (field("key")?, field("value")?);
        match tree {
            // Under the endpoint's name (schema 4 and later).
            "endpoint_webhook" => {
                let fresh = self.inner.db.generate_id()?;
                load.renumbered
                    .insert(webhooks::webhook_key_id(&key)?, fresh);
                let endpoint = key.split(|&b| b == 0).next().unwrap_or_default();
                let endpoint = String::from_utf8_lossy(endpoint);
                self.inner
                    .webhooks
                    .insert(webhooks::webhook_key(&endpoint, fresh), value)?;
            }
            // `id_webhook`: a schema 3 backup's queue, moved by the migration below.
            "id_outbox" | "id_dead" | "id_webhook" => {
                let fresh = self.inner.db.generate_id()?;
                load.renumbered.insert(key_id(&key)?, fresh);
                self.inner
                    .db
                    .open_tree(tree)?
                    .insert(id_key(fresh), value)?;
            }
            "email_reset" => load.resets.push((key, value)),
            // This store's own schema version and instance id stay; the code index is
            // rebuilt from the records (older backups carry it as a tree).
            "meta" | "codemac_email" => {}
            t if TREES.contains(&t) => {
                self.inner.db.open_tree(t)?.insert(key, value)?;
            }
            other => return Err(bad(format!("line {n}: unknown tree {other:?}"))),
        }
        load.records += 1;
        Ok(())
    }
}

/// What a restore has loaded so far.
#[derive(Default)]
struct Load {
    renumbered: HashMap<u64, u64>,
    resets: Vec<(Vec<u8>, Vec<u8>)>,
    records: u64,
}

fn bad(what: String) -> StoreError {
    StoreError::Corrupt(format!("backup: {what}"))
}

/// The schema version in a backup's header line, if this build can read it.
fn schema_of(header: Option<std::io::Result<String>>) -> Result<u32> {
    let header: Value = match header {
        Some(line) => serde_json::from_str(&line.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?,
        None => return Err(bad("the file is empty".into())),
    };
    if header["resetgate_backup"] != FORMAT {
        return Err(bad("not a resetgate backup".into()));
    }
    let schema = header["schema_version"].as_u64().unwrap_or(0);
    if schema > u64::from(SCHEMA_VERSION) {
        return Err(StoreError::TooNew {
            found: schema as u32,
        });
    }
    if schema == 0 {
        return Err(bad("the header has no schema_version".into()));
    }
    Ok(schema as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::store::test_support::{code, db_with, issue};

    #[test]
    fn round_trip_renumbers_the_outbox() {
        let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
        issue(&db, "a@example.com", code(1, 0, 60_000)).unwrap();
        let mut copy = Vec::new();
        assert!(db.backup(&mut copy, 5).unwrap() >= 5);

        let dir = tempfile::tempdir().unwrap();
        let fresh = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        fresh.restore(&copy[..]).unwrap();
        assert_eq!(fresh.list_users().unwrap().len(), 2);
        let queued = fresh.queued(10).unwrap();
        assert_eq!(queued.len(), 1);
        let reset = fresh.reset("a@example.com").unwrap().unwrap();
        assert_eq!(
            reset.code.unwrap().outbox_id,
            Some(queued[0].0),
            "the code follows its mail"
        );
        assert!(
            fresh.restore(&copy[..]).is_err(),
            "only into an empty store"
        );
        assert!(fresh.restore(&b"{}\n"[..]).is_err());
    }

    #[test]
    fn an_older_backup_is_migrated_on_restore() {
        let locked = B64.encode(br#"{"code":null,"failures":3,"confirmation":null}"#);
        let backup = format!(
            "{{\"resetgate_backup\": 1, \"schema_version\": 1, \"created_ms\": 5}}\n\
             {{\"tree\": \"email_reset\", \"key\": \"{}\", \"value\": \"{locked}\"}}\n",
            B64.encode("a@example.com")
        );
        let dir = tempfile::tempdir().unwrap();
        let fresh = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        assert_eq!(fresh.restore(backup.as_bytes()).unwrap(), 1);
        let reset = fresh.reset("a@example.com").unwrap().unwrap();
        assert_eq!(reset.failures, 3);
        assert!(reset.last_failure_ms > 0, "stamped as a migration does");
        let meta = migrate::version(&fresh.inner.meta).unwrap();
        assert_eq!(meta, Some(SCHEMA_VERSION));
    }
}
