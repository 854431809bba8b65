use super::*;
use crate::store::outbox::{Kind, Queue};

fn hook(to: &str) -> Queued {
    let kind = Kind::Webhook {
        event: "password.changed".into(),
        id: "msg_1".into(),
        account: "a@example.com".into(),
        body: "{}".into(),
    };
    Queued::new(to.into(), kind, 1, Some(1_000))
}
use crate::store::test_support::{code, db_with, issue, message, no_events};

#[test]
fn a_step_reads_the_named_records_and_the_codes_owner() {
    let (_d, db) = db_with(&["a@example.com"]);
    issue(&db, "a@example.com", code(1, 0, 60_000)).unwrap();
    let seen = db
        .transact(Some(&[1; 32]), &["nobody@example.com"], no_events, |r| {
            (r.clone(), Changes::default(), Vec::new())
        })
        .unwrap();
    assert_eq!(seen.owner.as_deref(), Some("a@example.com"));
    assert!(
        seen.user("a@example.com").is_some(),
        "the owner is read too"
    );
    assert!(seen.reset("a@example.com").code.is_some());
    assert!(seen.user("nobody@example.com").is_none());
    assert_eq!(seen.reset("nobody@example.com"), Reset::default());
}

#[test]
fn a_steps_changes_land_together() {
    let (_d, db) = db_with(&["a@example.com"]);
    issue(&db, "a@example.com", code(1, 0, 60_000)).unwrap();
    db.transact(None, &["a@example.com"], no_events, |r| {
        let mut user = r.user("a@example.com").unwrap().clone();
        user.password_hash = Some("$h".into());
        let changes = Changes {
            retire: vec!["a@example.com".into()],
            resets: vec![("a@example.com".into(), Reset::default())],
            user: Some(("a@example.com".into(), user)),
            queue: Some(message()),
            // More than the one id taken first: the step runs again with enough.
            deliveries: ["app", "ops"].map(hook).to_vec(),
            remove_user: None,
        };
        ((), changes, Vec::new())
    })
    .unwrap();
    let hooks = db.queued_in(Queue::Webhooks, 10).unwrap();
    let targets: Vec<&str> = hooks.iter().map(|(_, m)| m.to.as_str()).collect();
    assert_eq!(targets, ["app", "ops"], "both deliveries, in order");
    let mail = db.queued(10).unwrap();
    assert_eq!(mail.len(), 1);
    assert!(
        hooks.iter().all(|(id, _)| *id != mail[0].0),
        "ids are distinct"
    );
    assert_eq!(
        db.code_owner(&[1; 32]).unwrap(),
        None,
        "the code is retired"
    );
    assert!(
        db.reset("a@example.com").unwrap().is_none(),
        "an empty record goes"
    );
    let user = db.user("a@example.com").unwrap().unwrap();
    assert_eq!(user.password_hash.as_deref(), Some("$h"));
    assert_eq!(db.outbox_len(), 1, "the code's mail went, the new one came");
}

#[test]
fn the_sweep_applies_its_rule_and_retires_dead_codes() {
    let (_d, db) = db_with(&["a@example.com", "b@example.com"]);
    issue(&db, "a@example.com", code(1, 0, 10)).unwrap();
    issue(&db, "b@example.com", code(2, 0, 1_000)).unwrap();
    let expired = |r: &mut Reset| match &r.code {
        Some(c) if c.expires_ms <= 500 => r.code.take().is_some(),
        _ => false,
    };
    assert_eq!(db.sweep_resets(expired).unwrap(), 1);
    assert!(db.reset("a@example.com").unwrap().is_none());
    assert_eq!(db.code_owner(&[1; 32]).unwrap(), None);
    assert!(db.reset("b@example.com").unwrap().is_some());
    assert_eq!(db.outbox_len(), 1, "a's unsent mail went with its code");
}

#[test]
fn a_sweep_in_batches_reaches_every_record() {
    // Ten records read three at a time: four batches, the last one short, and every
    // expired code among them retired whichever batch it fell in.
    let emails: Vec<String> = (0..10).map(|i| format!("u{i}@example.com")).collect();
    let names: Vec<&str> = emails.iter().map(String::as_str).collect();
    let (_d, db) = db_with(&names);
    for (i, email) in names.iter().enumerate() {
        let expires = if i % 3 == 1 { 1_000 } else { 10 };
        issue(&db, email, code(i as u8 + 1, 0, expires)).unwrap();
    }
    let expired = |r: &mut Reset| match &r.code {
        Some(c) if c.expires_ms <= 500 => r.code.take().is_some(),
        _ => false,
    };
    assert_eq!(db.sweep_resets_by(3, expired).unwrap(), 7);
    for (i, email) in names.iter().enumerate() {
        let live = i % 3 == 1;
        assert_eq!(db.reset(email).unwrap().is_some(), live, "{email}");
        assert_eq!(
            db.code_owner(&[i as u8 + 1; 32]).unwrap().is_some(),
            live,
            "{email}"
        );
    }
    assert_eq!(db.outbox_len(), 3, "the live codes' mails stay");
}
