use super::*;
use crate::mail_address::validate;

const A: &str = "a@example.com";

fn confirmation(client: &str, session_only: bool, until_ms: u64) -> Confirmation {
    Confirmation {
        session_mac: CodeKey::new(b"k").mac("the-session").to_vec(),
        client: client.into(),
        until_ms,
        session_only,
    }
}

fn acceptor(session: Option<&str>, require_session: bool) -> Acceptor {
    Acceptor {
        key: CodeKey::new(b"k"),
        session: session.map(str::to_string),
        require_session,
        client: "192.0.2.1".into(),
    }
}

fn user() -> User {
    User {
        email: "A@Example.com".into(),
        password_hash: None,
        disabled: false,
        created_ms: 0,
        updated_ms: 0,
    }
}

fn confirmed(c: Confirmation) -> Record {
    Record {
        confirmation: Some(c),
        ..Record::default()
    }
}

#[test]
fn the_session_always_works_the_fallback_only_when_allowed() {
    let open = confirmation("192.0.2.1", false, 1);
    let marked = confirmation("192.0.2.1", true, 1);
    let elsewhere = confirmation("192.0.2.9", false, 1);
    assert!(acceptor(Some("the-session"), false).accepts(&marked));
    assert!(acceptor(Some("the-session"), true).accepts(&elsewhere));
    assert!(!acceptor(Some("a-guess"), false).accepts(&open));
    assert!(acceptor(None, false).accepts(&open), "the same client");
    assert!(!acceptor(None, false).accepts(&elsewhere), "another client");
    assert!(
        !acceptor(None, false).accepts(&marked),
        "a poller spoilt it"
    );
    assert!(!acceptor(None, true).accepts(&open), "sessions required");
}

#[test]
fn the_cheap_check_before_hashing() {
    let config = Config::default();
    let email = validate(A).unwrap();
    let req = |password| ResetRequest {
        email: &email,
        password,
        session: None,
        client: "192.0.2.1".parse().unwrap(),
        locale: None,
    };
    let good = "purple elephant dances at noon";
    let open = confirmed(confirmation("192.0.2.1", false, 100));
    let accept = acceptor(None, false);
    assert_eq!(
        check(None, &accept, &config, &req(good), 10),
        Some(Reset::NoAccount)
    );
    let none = Record::default();
    assert_eq!(
        check(Some(&none), &accept, &config, &req(good), 10),
        Some(Reset::NotConfirmed)
    );
    assert_eq!(
        check(Some(&open), &accept, &config, &req(good), 100),
        Some(Reset::NotConfirmed),
        "the window is over"
    );
    let weak = check(Some(&open), &accept, &config, &req("short"), 10);
    assert!(matches!(weak, Some(Reset::Policy(_))));
    assert_eq!(check(Some(&open), &accept, &config, &req(good), 10), None);
}

#[test]
fn setting_the_password_uses_the_confirmation_up_and_queues_the_notice() {
    let open = confirmed(confirmation("192.0.2.1", false, 100));
    let r = Records::new(None, vec![(A.into(), Some(user()), open)]);
    let change = PasswordChange {
        key: A.into(),
        accept: acceptor(None, false),
        hash: "$h".into(),
        notice: Queued::new(String::new(), Kind::Decoy, 10, None),
    };
    let (outcome, changes, events) = set_password(&r, &change, 10);
    assert_eq!(outcome, Reset::Done);
    assert_eq!(
        events,
        vec![crate::events::Event::PasswordChanged {
            account: A.into(),
            email: "A@Example.com".into(),
            at_ms: 10,
            hash: Some("$h".into()),
            source: crate::events::Source::Reset,
        }]
    );
    let (_, new_user) = changes.user.as_ref().unwrap();
    assert_eq!(
        (new_user.password_hash.as_deref(), new_user.updated_ms),
        (Some("$h"), 10)
    );
    assert_eq!(
        changes.retire,
        vec![A.to_string()],
        "any outstanding code dies"
    );
    assert_eq!(
        changes.resets[0].1,
        Record::default(),
        "the confirmation is used up"
    );
    assert_eq!(
        changes.queue.as_ref().unwrap().to,
        "A@Example.com",
        "to the stored address"
    );

    let (outcome, changes, events) = set_password(&r, &change, 100);
    assert_eq!(
        (outcome, changes, events),
        (Reset::NotConfirmed, Changes::default(), Vec::new())
    );
    let nobody = Records::new(None, vec![]);
    let (outcome, _, _) = set_password(&nobody, &change, 10);
    assert_eq!(outcome, Reset::NoAccount);
}
