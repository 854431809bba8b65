//! The operator's changes to an account, as decisions over its records: a new address, a
//! password set or cleared, disabled or enabled. Each ends what is live for the account (a
//! code and its unsent mail, a confirmation) where the change must not leave it usable,
//! and tells the application with an event.

use super::Decided;
use crate::events::{Event, Source};
use crate::mail_address::Email;
use crate::store::records::Reset;
use crate::store::resets::{Changes, Records};
use crate::store::users::User;

/// Why an operator's change was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No account has the address.
    NoAccount,
    /// The new address already has an account.
    Taken,
}

/// The account `old` moves to `new`: the same user record (password hash, timestamps,
/// disabled flag) under the new key and address, and the same failure count; its live code
/// (with its unsent mail) and its confirmation end, since they were for the old address.
pub fn change_email(
    records: &Records,
    old: &str,
    new: &Email,
    now_ms: u64,
) -> Decided<Result<(), Refused>> {
    let refused = |why| (Err(why), Changes::default(), Vec::new());
    let Some(user) = records.user(old) else {
        return refused(Refused::NoAccount);
    };
    if records.user(&new.key).is_some() {
        return refused(Refused::Taken);
    }
    let old_record = records.reset(old);
    let moved = Reset {
        failures: old_record.failures,
        last_failure_ms: old_record.last_failure_ms,
        ..Reset::default()
    };
    let user = User {
        email: new.stored.clone(),
        updated_ms: now_ms,
        ..user.clone()
    };
    let changed = Event::EmailChanged {
        account: new.key.clone(),
        email: new.stored.clone(),
        previous: records
            .user(old)
            .map(|u| u.email.clone())
            .unwrap_or_default(),
    };
    let changes = Changes {
        retire: vec![old.to_string()],
        resets: vec![
            (old.to_string(), Reset::default()),
            (new.key.clone(), moved),
        ],
        user: Some((new.key.clone(), user)),
        remove_user: Some(old.to_string()),
        ..Changes::default()
    };
    (Ok(()), changes, vec![changed])
}

/// Account `key`'s password becomes `hash` (None: cleared, so that only a reset sets one
/// again); its live code and confirmation end.
pub fn set_password(
    records: &Records,
    key: &str,
    hash: Option<String>,
    now_ms: u64,
) -> Decided<Result<(), Refused>> {
    let Some(user) = records.user(key) else {
        return (Err(Refused::NoAccount), Changes::default(), Vec::new());
    };
    let user = User {
        password_hash: hash.clone(),
        updated_ms: now_ms,
        ..user.clone()
    };
    let changed = Event::PasswordChanged {
        account: key.to_string(),
        email: user.email.clone(),
        at_ms: now_ms,
        hash,
        source: Source::Admin,
    };
    (Ok(()), end_live(records, key, Some(user)), vec![changed])
}

/// Account `key` is disabled (or enabled again); disabling ends its live code and
/// confirmation. Ok(false) when it already was.
pub fn set_disabled(
    records: &Records,
    key: &str,
    disabled: bool,
    now_ms: u64,
) -> Decided<Result<bool, Refused>> {
    let Some(user) = records.user(key) else {
        return (Err(Refused::NoAccount), Changes::default(), Vec::new());
    };
    if user.disabled == disabled {
        return (Ok(false), Changes::default(), Vec::new());
    }
    let (account, email) = (key.to_string(), user.email.clone());
    let user = User {
        disabled,
        updated_ms: now_ms,
        ..user.clone()
    };
    if !disabled {
        let changes = Changes {
            user: Some((key.to_string(), user)),
            ..Changes::default()
        };
        return (
            Ok(true),
            changes,
            vec![Event::AccountEnabled { account, email }],
        );
    }
    let changes = end_live(records, key, Some(user));
    (
        Ok(true),
        changes,
        vec![Event::AccountDisabled { account, email }],
    )
}

/// Ends account `key`'s live code (and its unsent mail) and confirmation, keeping its
/// failure count; stores `user` if given.
fn end_live(records: &Records, key: &str, user: Option<User>) -> Changes {
    let mut record = records.reset(key);
    record.code = None;
    record.confirmation = None;
    Changes {
        retire: vec![key.to_string()],
        resets: vec![(key.to_string(), record)],
        user: user.map(|u| (key.to_string(), u)),
        ..Changes::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail_address::validate;
    use crate::store::records::LiveCode;

    fn user(email: &str) -> User {
        User::new(&validate(email).unwrap(), Some("$h".into()), 1)
    }

    fn records(accounts: Vec<(&str, Option<User>, Reset)>) -> Records {
        let accounts = accounts
            .into_iter()
            .map(|(k, u, r)| (k.to_string(), u, r))
            .collect();
        Records::new(None, accounts)
    }

    fn live() -> Reset {
        Reset {
            code: Some(LiveCode {
                mac: vec![1; 32],
                issued_ms: 0,
                expires_ms: 100,
                outbox_id: Some(7),
                refused_clients: Vec::new(),
            }),
            failures: 2,
            last_failure_ms: 5,
            ..Reset::default()
        }
    }

    #[test]
    fn a_new_address_keeps_the_hash_and_failures_and_ends_the_code() {
        let new = validate("New@Example.com").unwrap();
        let r = records(vec![
            ("a@example.com", Some(user("a@example.com")), live()),
            ("new@example.com", None, Reset::default()),
        ]);
        let (answer, changes, events) = change_email(&r, "a@example.com", &new, 10);
        assert_eq!(answer, Ok(()));
        let (key, moved) = changes.user.unwrap();
        assert_eq!(
            (key.as_str(), moved.email.as_str()),
            ("new@example.com", "New@Example.com")
        );
        assert_eq!(moved.password_hash.as_deref(), Some("$h"));
        assert_eq!(
            changes.retire,
            ["a@example.com"],
            "the old code and its mail end"
        );
        assert_eq!(changes.remove_user.as_deref(), Some("a@example.com"));
        let (_, record) = &changes.resets[1];
        assert_eq!((record.failures, record.code.is_none()), (2, true));
        assert!(
            matches!(&events[0], Event::EmailChanged { previous, .. } if previous == "a@example.com")
        );
        let taken = records(vec![
            (
                "a@example.com",
                Some(user("a@example.com")),
                Reset::default(),
            ),
            (
                "new@example.com",
                Some(user("new@example.com")),
                Reset::default(),
            ),
        ]);
        assert_eq!(
            change_email(&taken, "a@example.com", &new, 10).0,
            Err(Refused::Taken)
        );
        let none = records(vec![]);
        assert_eq!(
            change_email(&none, "a@example.com", &new, 10).0,
            Err(Refused::NoAccount)
        );
    }

    #[test]
    fn disabling_ends_what_is_live_once() {
        let r = records(vec![("a@example.com", Some(user("a@example.com")), live())]);
        let (answer, changes, events) = set_disabled(&r, "a@example.com", true, 10);
        assert_eq!(answer, Ok(true));
        assert!(changes.user.unwrap().1.disabled);
        assert_eq!(changes.retire, ["a@example.com"]);
        assert!(matches!(events[0], Event::AccountDisabled { .. }));
        let (again, _, events) = set_disabled(&r, "a@example.com", false, 10);
        assert_eq!((again, events.len()), (Ok(false), 0), "already enabled");
    }
}
