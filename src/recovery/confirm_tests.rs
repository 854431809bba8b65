use super::*;
use crate::store::records::{LiveCode, Reset as Record};
use crate::store::users::User;

const A: &str = "a@example.com";
const LOCKOUT: Lockout = Lockout {
    max_failures: 2,
    forget_after_ms: 10_000,
};

fn user() -> User {
    User {
        email: "Ada@Example.com".into(),
        password_hash: None,
        disabled: false,
        created_ms: 0,
        updated_ms: 0,
    }
}

fn with_code(mac: u8, expires_ms: u64, refused: &[&str]) -> Record {
    Record {
        code: Some(LiveCode {
            mac: vec![mac; 32],
            issued_ms: 0,
            expires_ms,
            outbox_id: Some(7),
            refused_clients: refused.iter().map(|c| c.to_string()).collect(),
        }),
        ..Record::default()
    }
}

fn attempt(mac: u8, claimed: Option<&str>, decoy: bool) -> Attempt {
    Attempt {
        mac: [mac; 32],
        claimed: claimed.map(str::to_string),
        confirmation: Confirmation {
            session_mac: vec![9; 32],
            client: "192.0.2.1".into(),
            until_ms: 5_000,
            session_only: false,
        },
        lockout: LOCKOUT,
        decoy,
    }
}

fn records(owner: Option<&str>, accounts: Vec<(&str, Option<User>, Record)>) -> Records {
    let accounts = accounts
        .into_iter()
        .map(|(k, u, r)| (k.to_string(), u, r))
        .collect();
    Records::new(owner.map(str::to_string), accounts)
}

#[test]
fn a_live_code_is_used_up_and_opens_the_window() {
    let r = records(Some(A), vec![(A, Some(user()), with_code(1, 100, &[]))]);
    let (outcome, changes, _) = decide(&r, &attempt(1, None, false), 10);
    assert_eq!(
        outcome,
        Outcome::Confirmed {
            email: "Ada@Example.com".into()
        }
    );
    assert_eq!(
        changes.retire,
        vec![A.to_string()],
        "its index entry and mail go"
    );
    let (key, record) = &changes.resets[0];
    assert_eq!(key, A);
    assert!(record.code.is_none());
    let c = record.confirmation.as_ref().unwrap();
    assert_eq!((c.until_ms, c.session_only), (5_000, false));
}

#[test]
fn a_code_that_is_not_live_is_invalid_and_changes_nothing() {
    let expired = records(Some(A), vec![(A, Some(user()), with_code(1, 10, &[]))]);
    let nobody = records(None, vec![]);
    let removed = records(Some(A), vec![(A, None, with_code(1, 100, &[]))]);
    let replaced = records(Some(A), vec![(A, Some(user()), with_code(2, 100, &[]))]);
    for r in [expired, nobody, removed, replaced] {
        let (outcome, changes, _) = decide(&r, &attempt(1, None, false), 10);
        assert_eq!(
            (outcome, changes),
            (Outcome::Invalid, Changes::default()),
            "{r:?}"
        );
    }
}

#[test]
fn a_poller_at_the_confirming_address_gets_no_fallback() {
    let polled = records(
        Some(A),
        vec![(A, Some(user()), with_code(1, 100, &["192.0.2.1"]))],
    );
    let (_, changes, _) = decide(&polled, &attempt(1, None, false), 10);
    assert!(
        changes.resets[0]
            .1
            .confirmation
            .as_ref()
            .unwrap()
            .session_only
    );
    let elsewhere = records(
        Some(A),
        vec![(A, Some(user()), with_code(1, 100, &["198.51.100.9"]))],
    );
    let (_, changes, _) = decide(&elsewhere, &attempt(1, None, false), 10);
    assert!(
        !changes.resets[0]
            .1
            .confirmation
            .as_ref()
            .unwrap()
            .session_only
    );
}

#[test]
fn naming_an_account_counts_failures_and_locks_that_path_only() {
    let mut failed = with_code(1, 100, &[]);
    state::fail(&mut failed, 5, LOCKOUT);
    let r = records(Some(A), vec![(A, Some(user()), failed.clone())]);
    // Another code named as a's: counted against a.
    let (outcome, changes, _) = decide(&r, &attempt(2, Some(A), false), 10);
    assert_eq!(outcome, Outcome::Invalid);
    assert_eq!(changes.resets[0].1.failures, 2);
    // At the limit, a request naming a is refused unchecked...
    let mut locked = failed.clone();
    state::fail(&mut locked, 6, LOCKOUT);
    let r = records(Some(A), vec![(A, Some(user()), locked)]);
    let (outcome, changes, _) = decide(&r, &attempt(1, Some(A), false), 10);
    assert_eq!((outcome, changes), (Outcome::Locked, Changes::default()));
    // ...while the owner's documented, code-only confirmation still works.
    let (outcome, _, _) = decide(&r, &attempt(1, None, false), 10);
    assert!(matches!(outcome, Outcome::Confirmed { .. }));
}

#[test]
fn naming_an_unknown_address_counts_on_the_decoy_only_in_enumeration_safe_mode() {
    let r = records(None, vec![("b@example.com", None, Record::default())]);
    let (outcome, changes, _) = decide(&r, &attempt(1, Some("b@example.com"), false), 10);
    assert_eq!((outcome, changes), (Outcome::Invalid, Changes::default()));
    let (_, changes, _) = decide(&r, &attempt(1, Some("b@example.com"), true), 10);
    assert_eq!(changes.resets[0].0, crate::recovery::DECOY);
    assert_eq!(changes.resets[0].1.failures, 1);
    assert_eq!(
        records_to_read(&attempt(1, Some("b@example.com"), true)),
        vec![
            "b@example.com".to_string(),
            crate::recovery::DECOY.to_string()
        ]
    );
}

#[test]
fn codes_lose_their_grouping() {
    assert_eq!(normalize_code(" 1234 5678-9012\t"), "123456789012");
}
