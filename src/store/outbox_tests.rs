use super::*;
use crate::config::Durability;
use crate::store::records::Reset;

fn queued(next: u64) -> Queued {
    let mut q = Queued::new(
        "a@example.com".into(),
        Kind::Otp {
            code: "1".into(),
            ttl_secs: 9,
        },
        0,
        Some(1_000),
    );
    q.next_attempt_ms = next;
    q
}

#[test]
fn due_scan_orders_and_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    db.inner
        .outbox
        .insert(id_key(2), encode(&queued(0)))
        .unwrap();
    db.inner
        .outbox
        .insert(id_key(1), encode(&queued(0)))
        .unwrap();
    db.inner
        .outbox
        .insert(id_key(3), encode(&queued(500)))
        .unwrap();
    let due = db.outbox_due(100, 10).unwrap();
    let ids: Vec<u64> = due.entries.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(due.next_ms, Some(500));
    // Expired entries are due (to be dropped) even before their next attempt.
    assert_eq!(db.outbox_due(2_000, 10).unwrap().entries.len(), 3);
}

#[test]
fn dead_letters_are_retried_while_live_and_scrubbed_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    for id in [1, 2, 3] {
        db.inner
            .outbox
            .insert(id_key(id), encode(&queued(0)))
            .unwrap();
        let dead = Dead {
            message: queued(0),
            error: "550".into(),
            failed_ms: 0,
        };
        db.outbox_bury(id, &dead).unwrap();
    }
    // The account's current code is the one that letter 1 carries.
    let mut current = crate::store::test_support::code(1, 0, 1_000);
    current.outbox_id = Some(1);
    let reset = Reset {
        code: Some(current),
        ..Reset::default()
    };
    db.inner
        .resets
        .insert("a@example.com", encode(&reset))
        .unwrap();
    assert_eq!(
        db.retry_dead(1, 500).unwrap(),
        Ok(()),
        "the code is live until 1000"
    );
    assert_eq!(
        db.retry_dead(3, 500).unwrap(),
        Err(RetryRefused::Superseded),
        "letter 3's code is not the account's"
    );
    let back = db.queued_message(1).unwrap().unwrap();
    assert_eq!(
        (back.attempts, back.next_attempt_ms, back.last_error),
        (0, 500, None)
    );
    assert_eq!(db.retry_dead(1, 500).unwrap(), Err(RetryRefused::NotFound));
    assert_eq!(db.retry_dead(2, 1_000).unwrap(), Err(RetryRefused::Expired));
    assert_eq!(db.scrub_dead(1_000).unwrap(), 2);
    let Kind::Otp { code, .. } = db.dead_letter(2).unwrap().unwrap().message.kind else {
        panic!()
    };
    assert!(code.is_empty(), "an expired code is not kept");
    assert_eq!(db.purge_dead(None).unwrap(), 2);
    assert_eq!(db.dead_len(), 0);
}

#[test]
fn bury_moves_to_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    db.inner
        .outbox
        .insert(id_key(7), encode(&queued(0)))
        .unwrap();
    let dead = Dead {
        message: queued(0),
        error: "550 no".into(),
        failed_ms: 5,
    };
    db.outbox_bury(7, &dead).unwrap();
    assert_eq!(db.outbox_len(), 0);
    assert_eq!(db.dead_letters().unwrap(), vec![(7, dead)]);
    // Rescheduling an entry that is gone does not bring it back.
    db.outbox_reschedule(7, &queued(9)).unwrap();
    assert_eq!(db.outbox_len(), 0);
}

fn delivery(to: &str, account: &str, next: u64) -> Queued {
    let kind = Kind::Webhook {
        event: "password.changed".into(),
        id: format!("msg_{to}_{account}_{next}"),
        account: account.into(),
        body: "{}".into(),
    };
    let mut q = Queued::new(to.into(), kind, 0, Some(1_000_000));
    q.next_attempt_ms = next;
    q
}

#[test]
fn a_webhook_delivery_waits_for_the_earlier_ones_of_its_account_and_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    let entries = [
        delivery("app", "a", 500), // in its backoff: a's later events wait
        delivery("app", "a", 0),
        delivery("app", "b", 0),
        delivery("ops", "a", 0), // another endpoint does not wait for app
        delivery("app", "", 0),  // about no account: waits for nothing
        delivery("app", "b", 0), // after b's first
    ];
    let ids = db.queue_webhooks(&entries).unwrap();
    let due = db.due_in(Queue::Webhooks, 100, 10, Some("app")).unwrap();
    let got: Vec<u64> = due.entries.iter().map(|(id, _)| *id).collect();
    assert_eq!(got, vec![ids[2], ids[4]]);
    assert_eq!(due.next_ms, Some(500));
    let ops = db.due_in(Queue::Webhooks, 100, 10, Some("ops")).unwrap();
    assert_eq!(ops.entries.len(), 1);
    assert_eq!(db.outbox_due(100, 10).unwrap().entries.len(), 0, "not mail");

    // Once a's first is delivered, its second is due.
    db.remove_webhook("app", ids[0]).unwrap();
    let due = db.due_in(Queue::Webhooks, 100, 10, Some("app")).unwrap();
    let got: Vec<u64> = due.entries.iter().map(|(id, _)| *id).collect();
    assert_eq!(got, vec![ids[1], ids[2], ids[4]]);
    let oldest = db.oldest_webhooks(100).unwrap();
    assert_eq!(
        oldest,
        vec![("app".to_string(), 100), ("ops".to_string(), 100)]
    );
}

#[test]
fn a_dead_webhook_delivery_goes_back_to_its_queue_for_a_fresh_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    let ids = db.queue_webhooks(&[delivery("app", "a", 0)]).unwrap();
    let message = db.queued_message(ids[0]).unwrap().unwrap();
    let dead = Dead {
        message,
        error: "HTTP 400".into(),
        failed_ms: 50,
    };
    db.outbox_bury(ids[0], &dead).unwrap();
    assert_eq!(db.len_in(Queue::Webhooks), 0);
    assert_eq!(db.dead_len(), 1);
    assert_eq!(db.retry_dead(ids[0], 5_000).unwrap(), Ok(()));
    let back = db.queued_in(Queue::Webhooks, 10).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].1.expires_ms, Some(5_000 + 1_000_000));
    assert_eq!((back[0].1.attempts, back[0].1.next_attempt_ms), (0, 5_000));
    assert_eq!(db.outbox_len(), 0, "not into the mail queue");
}

#[test]
fn a_dead_deliverys_password_hash_is_scrubbed_once_it_is_not_the_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    let email = crate::mail_address::validate("a@example.com").unwrap();
    let user = crate::store::users::User::new(&email, Some("$h1".into()), 0);
    db.add_user(&email.key, &user).unwrap();
    let mut hook = delivery("app", &email.key, 0);
    if let Kind::Webhook { body, .. } = &mut hook.kind {
        *body =
            r#"{"data":{"email":"a@example.com","password_hash":"$h1"},"type":"password.changed"}"#
                .into();
    }
    let ids = db.queue_webhooks(&[hook]).unwrap();
    let message = db.queued_message(ids[0]).unwrap().unwrap();
    let dead = Dead {
        message,
        error: "HTTP 400".into(),
        failed_ms: 0,
    };
    db.outbox_bury(ids[0], &dead).unwrap();
    let body = |db: &Db| match db.dead_letter(ids[0]).unwrap().unwrap().message.kind {
        Kind::Webhook { body, .. } => body,
        other => panic!("{other:?}"),
    };
    assert_eq!(db.scrub_dead(0).unwrap(), 0, "still the account's hash");
    assert!(body(&db).contains("$h1"));

    assert!(db
        .replace_password_hash(&email.key, "$h1", "$h2".into())
        .unwrap());
    assert_eq!(db.scrub_dead(0).unwrap(), 1);
    let scrubbed = body(&db);
    assert!(!scrubbed.contains("password_hash"), "{scrubbed}");
    assert!(
        scrubbed.contains("a@example.com"),
        "the rest stays: {scrubbed}"
    );
    assert_eq!(db.scrub_dead(0).unwrap(), 0, "once");
}

#[test]
fn retries_waiting_for_the_relay_are_pulled_forward_and_others_keep_their_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    let waiting = Queued {
        waits_for_relay: true,
        ..queued(900)
    };
    db.inner.outbox.insert(id_key(1), encode(&waiting)).unwrap();
    // Refused by the relay (greylisting): its backoff stands.
    db.inner
        .outbox
        .insert(id_key(2), encode(&queued(900)))
        .unwrap();
    db.inner
        .outbox
        .insert(id_key(3), encode(&queued(0)))
        .unwrap();
    assert_eq!(db.outbox_pull_forward(100).unwrap(), 1);
    let due: Vec<u64> = db
        .outbox_due(100, 10)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(due, vec![1, 3]);
    assert_eq!(db.outbox_pull_forward(100).unwrap(), 0, "already due");
}

#[test]
fn an_endpoints_task_reads_new_entries_and_keeps_each_accounts_order() {
    use crate::store::webhooks::Backlog;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    let first = db
        .queue_webhooks(&[delivery("app", "a", 500), delivery("ops", "b", 0)])
        .unwrap();
    let mut backlog = Backlog::default();
    let ids = |due: Vec<(u64, Queued)>| due.into_iter().map(|e| e.0).collect::<Vec<_>>();
    let due = db.webhooks_due("app", 100, 10, &mut backlog).unwrap();
    assert!(due.is_empty(), "a's first is in its backoff");
    assert_eq!(backlog.next_ms(), Some(500));

    // Queued since: b's is due; a's second waits behind a's first.
    let later = db
        .queue_webhooks(&[delivery("app", "b", 0), delivery("app", "a", 0)])
        .unwrap();
    let due = db.webhooks_due("app", 200, 10, &mut backlog).unwrap();
    assert_eq!(ids(due), vec![later[0]]);
    backlog.left(later[0], "b");
    db.remove_webhook("app", later[0]).unwrap();

    // a's first falls due and is delivered: a's second is next.
    let due = db.webhooks_due("app", 600, 10, &mut backlog).unwrap();
    assert_eq!(ids(due), vec![first[0]]);
    backlog.left(first[0], "a");
    db.remove_webhook("app", first[0]).unwrap();
    let due = db.webhooks_due("app", 700, 10, &mut backlog).unwrap();
    assert_eq!(ids(due), vec![later[1]]);

    // A full scan (a fresh task) agrees.
    let due = db
        .webhooks_due("app", 700, 10, &mut Backlog::default())
        .unwrap();
    assert_eq!(ids(due), vec![later[1]]);
    assert_eq!(db.webhook_endpoints().unwrap(), vec!["app", "ops"]);
}
