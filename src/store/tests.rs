use super::*;

#[test]
fn id_keys_round_trip_and_sort() {
    assert_eq!(key_id(&id_key(42)).unwrap(), 42);
    assert!(id_key(255) < id_key(256));
    assert!(key_id(b"short").is_err());
}

#[test]
fn an_unfinished_snapshot_from_a_full_disk_does_not_stop_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        db.inner.users.insert("a", "b").unwrap();
        db.flush_blocking().unwrap();
    }
    let leftover = dir.path().join("store/snap.7FFFFFFFFFFFFFFF.generating");
    std::fs::write(&leftover, b"").unwrap();
    let db = reopen(dir.path()).expect("opened despite the leftover");
    assert_eq!(db.inner.users.get("a").unwrap().as_deref(), Some(&b"b"[..]));
    assert!(!leftover.exists());
}

#[test]
fn second_open_reports_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    match Db::open(dir.path(), 8, Durability::Flush) {
        Err(StoreError::Locked(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("second open succeeded"),
    }
}

#[test]
fn newer_schema_is_refused_and_instance_id_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        db.instance_id().to_string()
    };
    {
        let db = reopen(dir.path()).unwrap();
        assert_eq!(db.instance_id(), id);
        let meta = db.inner.db.open_tree("meta").unwrap();
        meta.insert("schema_version", &99u32.to_be_bytes()).unwrap();
        db.flush_blocking().unwrap();
    }
    assert!(matches!(
        reopen(dir.path()),
        Err(StoreError::TooNew { found: 99 })
    ));
}

#[tokio::test]
async fn the_writer_answers_every_job_and_outlives_one_that_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    // Queued together: the writer takes them in one batch or a few, and answers each.
    let writes: Vec<_> = (0..64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let new = move |db: &Db| Ok(db.inner.users.insert(format!("u{i}"), "x")?.is_none());
                db.write(new, |_| true).await
            })
        })
        .collect();
    for write in writes {
        assert!(write.await.unwrap().unwrap(), "a new key, answered");
    }
    let panicked = db
        .write(|_| -> Result<()> { panic!("a bug") }, |_| true)
        .await;
    assert!(panicked.is_err(), "its caller hears of it");
    let after = db.write(|db| Ok(db.inner.users.len()), |_| false).await;
    assert_eq!(after.unwrap(), 64, "and the writer still runs");
    drop(db);
    let db = reopen(dir.path()).expect("the writer let go of the store");
    assert_eq!(db.inner.users.len(), 64);
}
