use super::*;
use crate::store::resets::Changes;
use crate::store::test_support::{code, db_with, issue, message};

#[test]
fn new_code_replaces_old_and_queues_mail() {
    let (_d, db) = db_with(&["a@example.com"]);
    issue(&db, "a@example.com", code(1, 0, 60_000)).unwrap();
    issue(&db, "a@example.com", code(2, 1, 60_001)).unwrap();
    assert_eq!(db.code_owner(&[1; 32]).unwrap(), None, "old code unindexed");
    assert_eq!(
        db.code_owner(&[2; 32]).unwrap().as_deref(),
        Some("a@example.com")
    );
    assert_eq!(
        db.outbox_len(),
        1,
        "the replaced code's unsent mail is gone"
    );
}

#[test]
fn unknown_accounts_and_taken_codes_are_refused() {
    let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
    assert_eq!(
        issue(&db, "nobody@example.com", code(1, 0, 60_000)),
        Err(IssueRefused::NoAccount)
    );
    issue(&db, "a@example.com", code(1, 0, 60_000)).unwrap();
    assert_eq!(
        issue(&db, "b@example.com", code(1, 0, 60_000)),
        Err(IssueRefused::CodeTaken)
    );
    assert_eq!(
        issue(&db, "a@example.com", code(1, 1, 60_000)),
        Err(IssueRefused::CodeTaken),
        "nor may the owner draw its own live code again"
    );
    // Once a's code is gone from its record (and its entry with it), b may draw it.
    let dropped = db.sweep_resets(|r| r.code.take().is_some()).unwrap();
    assert_eq!(dropped, 1);
    issue(&db, "b@example.com", code(1, 60_000, 120_000)).unwrap();
    assert_eq!(
        db.outbox_len(),
        1,
        "refusals queue nothing; a's mail went with its code"
    );
}

/// An issue for account a that has claimed its code's index entry but not yet stored its
/// record: a's record does not show the code, so nothing but the entry tells.
#[test]
fn a_code_claimed_but_not_yet_committed_is_not_drawn_for_another_account() {
    let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
    assert!(db.inner.codes.claim(&[7; 32], b"a@example.com"));
    assert_eq!(
        issue(&db, "b@example.com", code(7, 0, 60_000)),
        Err(IssueRefused::CodeTaken)
    );
    assert_eq!(
        db.code_owner(&[7; 32]).unwrap().as_deref(),
        Some("a@example.com")
    );
    assert!(db.reset("b@example.com").unwrap().is_none());
    assert_eq!(db.outbox_len(), 0);
}

#[test]
fn a_record_without_an_account_takes_codes_when_asked_to() {
    let (_d, db) = db_with(&[]);
    let record = "\u{0}decoy:nobody@example.com";
    db.issue_code(record, None, code(1, 0, 60_000), &message())
        .unwrap()
        .unwrap();
    db.issue_code(record, None, code(2, 1, 60_000), &message())
        .unwrap()
        .unwrap();
    assert_eq!(db.code_owner(&[2; 32]).unwrap().as_deref(), Some(record));
    assert_eq!(db.code_owner(&[1; 32]).unwrap(), None);
    assert_eq!(db.count_users(), 0, "no account is created");
    assert_eq!(db.outbox_len(), 1);
}

/// What a crash between the first writes of an issue and its commit leaves behind: its
/// mail in the outbox, and its claim on the code in memory, which dies with the process.
fn leftovers(db: &Db, mac: u8) -> u64 {
    assert!(db.inner.codes.claim(&[mac; 32], b"a@example.com"));
    let id = db.inner.db.generate_id().unwrap();
    db.inner
        .outbox
        .insert(id_key(id), encode(&message()))
        .unwrap();
    id
}

#[test]
fn leftovers_of_an_interrupted_issue_reach_no_one() {
    let (dir, db) = db_with(&["a@example.com"]);
    issue(&db, "a@example.com", code(1, 0, 60_000)).unwrap();
    let stray = leftovers(&db, 2);
    drop(db);
    // The process ends; the next one rebuilds the index from the records.
    let db = Db::open(dir.path(), 8, crate::config::Durability::Flush).unwrap();
    assert_eq!(db.code_owner(&[2; 32]).unwrap(), None, "the claim is gone");
    assert_eq!(
        db.code_owner(&[1; 32]).unwrap().as_deref(),
        Some("a@example.com"),
        "the committed code is indexed again"
    );
    assert!(!db.code_mail_wanted("a@example.com", stray).unwrap());
    assert_eq!(db.outbox_len(), 1, "the stray mail is removed unsent");
    let live = db.reset("a@example.com").unwrap().unwrap().code.unwrap();
    assert!(db
        .code_mail_wanted("a@example.com", live.outbox_id.unwrap())
        .unwrap());
    issue(&db, "a@example.com", code(2, 0, 60_000)).unwrap();
    assert_eq!(db.inner.codes.len(), 1, "the replaced code's entry went");
}

#[test]
fn an_issue_that_fails_to_commit_releases_its_claim() {
    let (_d, db) = db_with(&["a@example.com"]);
    // A record that cannot be decoded makes the commit fail.
    db.inner.resets.insert("a@example.com", "{").unwrap();
    assert!(db
        .issue_code(
            "a@example.com",
            Some("a@example.com"),
            code(3, 0, 60_000),
            &message()
        )
        .is_err());
    assert_eq!(db.code_owner(&[3; 32]).unwrap(), None);
    assert_eq!(db.outbox_len(), 0, "nor is its mail queued");
}

/// Issues racing with a step that uses codes up (as a confirmation does) and with the
/// sweeper: one live code per account, no code held by two, one mail per live code.
#[test]
fn concurrent_issues_uses_and_sweeps_keep_one_code_one_mail() {
    let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let db = &db;
            scope.spawn(move || {
                for n in 0..200u8 {
                    let email = ["a@example.com", "b@example.com"][usize::from(n % 2)];
                    // Few MACs, so that the two accounts often draw the same one.
                    let mac = (t + n / 2) % 6;
                    let issued = issue(db, email, code(mac, 0, 60_000));
                    assert!(matches!(issued, Ok(()) | Err(IssueRefused::CodeTaken)));
                }
            });
        }
        let db = &db;
        scope.spawn(move || {
            for _ in 0..100 {
                let key = "a@example.com";
                db.transact(None, &[key], crate::store::test_support::no_events, |r| {
                    let mut reset = r.reset(key);
                    reset.code = None;
                    let changes = Changes {
                        retire: vec![key.into()],
                        resets: vec![(key.into(), reset)],
                        ..Changes::default()
                    };
                    ((), changes, Vec::new())
                })
                .unwrap();
            }
        });
    });
    let mut live_codes = 0;
    let mut macs = std::collections::HashSet::new();
    for email in ["a@example.com", "b@example.com"] {
        if let Some(live) = db.reset(email).unwrap().and_then(|r| r.code) {
            live_codes += 1;
            assert!(macs.insert(live.mac.clone()), "two accounts hold one code");
            let mac: [u8; 32] = live.mac.try_into().unwrap();
            assert_eq!(db.code_owner(&mac).unwrap().as_deref(), Some(email));
            assert!(db
                .queued_message(live.outbox_id.unwrap())
                .unwrap()
                .is_some());
        }
    }
    assert_eq!(
        db.inner.codes.len(),
        live_codes,
        "no index entry is left over"
    );
    assert_eq!(db.outbox_len(), live_codes, "one mail per live code");
}

#[test]
fn a_corrupt_record_does_not_keep_the_index_from_being_rebuilt() {
    let (dir, db) = db_with(&["a@example.com", "b@example.com"]);
    issue(&db, "a@example.com", code(1, 0, 60_000)).unwrap();
    db.inner.resets.insert("b@example.com", "corrupt").unwrap();
    drop(db);
    let db = Db::open(dir.path(), 8, crate::config::Durability::Flush).unwrap();
    assert_eq!(
        db.code_owner(&[1; 32]).unwrap().as_deref(),
        Some("a@example.com")
    );
    assert!(db.reset("b@example.com").is_err(), "still an error to read");
}

/// The index keeps a MAC's first 16 bytes: a MAC sharing them with a live code's is taken
/// for every other account, and a lookup by it leads to that code's record, whose whole MAC
/// then decides (`recovery::confirm`: a record holding another MAC answers "invalid").
#[test]
fn the_index_keys_by_the_first_16_bytes_of_a_mac() {
    let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
    let mut twin = [1u8; 32];
    twin[16..].fill(2);
    assert!(db.inner.codes.claim(&[1; 32], b"a@example.com"));
    assert!(!db.inner.codes.claim(&twin, b"b@example.com"));
    assert_eq!(
        db.code_owner(&twin).unwrap().as_deref(),
        Some("a@example.com")
    );
    db.inner.codes.release(&twin, b"a@example.com");
    assert_eq!(
        db.code_owner(&[1; 32]).unwrap(),
        None,
        "one entry, released"
    );
}
