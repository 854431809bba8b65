//! Delivery of webhook events: one task per endpoint drains that endpoint's deliveries from
//! its range of `endpoint_webhook`, one at a time, oldest first. A delivery waits while an
//! earlier one for the same account and endpoint is queued (the store's scan skips it), so
//! one account's events arrive in order, and an endpoint that keeps failing one account's
//! event delays no other account's. Between scans the task remembers what it saw
//! ([`Backlog`]): an event queued for any endpoint costs it a look at the new entries,
//! not at a dead endpoint's whole backlog.
//!
//! A 2xx answer is success: the delivery is removed and the removal flushed before the next
//! one, so a crash repeats at most the delivery in flight (with the same `webhook-id`).
//! 5xx, 408, 429, timeouts and connection failures are retried with backoff until the
//! endpoint's `max_age`; any other answer (another 4xx, a redirect, which is not followed)
//! at most [`CLIENT_ERROR_TRIES`] times in all. Then the
//! delivery is a dead letter, which `resetgate outbox retry` queues again.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Answer, Endpoint};
use crate::metrics::Metrics;
use crate::outbox::gate::Gate;
use crate::outbox::worker::backoff;
use crate::store::outbox::{Dead, Kind, Queued};
use crate::store::webhooks::Backlog;
use crate::store::{unix_ms, Db};

/// The dead letter's error for a delivery whose endpoint is no longer configured.
pub const UNROUTED: &str = "the endpoint is no longer configured";

/// Attempts a delivery refused with a 3xx or 4xx (other than 408 and 429) gets in all.
pub const CLIENT_ERROR_TRIES: u32 = 3;

/// How many due deliveries one scan takes.
const BATCH: usize = 64;

/// The longest an endpoint's task sleeps without looking at the queue.
const IDLE: Duration = Duration::from_secs(60);

/// What the endpoints' tasks share.
#[derive(Clone)]
pub struct Webhooks {
    pub db: Db,
    pub metrics: Arc<Metrics>,
    /// Changed whenever deliveries were queued (`Db::webhooks_queued`); each scan flushes
    /// before it sends, so a change not yet on disk never goes out.
    pub wake: watch::Receiver<u64>,
}

/// Runs one task per endpoint until `stop` turns true.
pub async fn run(shared: Webhooks, endpoints: Vec<Endpoint>, stop: watch::Receiver<bool>) {
    let names: Vec<String> = endpoints.iter().map(|e| e.name.clone()).collect();
    shared.metrics.webhook_endpoints(&names);
    // Deliveries to an endpoint removed or renamed since they were queued: no task would
    // ever take them, so an operator sees them as dead letters instead.
    let configured = names.clone();
    let now = unix_ms(SystemTime::now());
    let orphans = shared
        .db
        .blocking(move |db| db.bury_unrouted(&configured, now, UNROUTED))
        .await;
    match orphans.map(|n| (n, n > 0)) {
        Ok((n, true)) => {
            let _ = shared.db.durable().await;
            tracing::warn!(deliveries = n, "webhook deliveries to endpoints no longer configured were set aside as dead letters");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "checking the webhook queue for removed endpoints failed")
        }
    }
    let mut tasks = JoinSet::new();
    for endpoint in endpoints {
        tasks.spawn(drain(shared.clone(), endpoint, stop.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

async fn drain(mut shared: Webhooks, mut endpoint: Endpoint, mut stop: watch::Receiver<bool>) {
    let mut backlog = Backlog::default();
    loop {
        let now = unix_ms(SystemTime::now());
        match crate::outbox::gate::gate(&shared.db, &mut stop).await {
            Gate::Stop => break,
            Gate::WaitForRoom => {
                pause(&mut shared.wake, &mut stop, Duration::from_secs(1)).await;
                continue;
            }
            Gate::Go => {}
        }
        // Seen before the scan: a delivery queued during it changes the value again.
        shared.wake.borrow_and_update();
        let name = endpoint.name.clone();
        let scanned = shared
            .db
            .blocking(move |db| {
                let due = db.webhooks_due(&name, now, BATCH, &mut backlog);
                Ok((backlog, due))
            })
            .await;
        let due = match scanned {
            Ok((kept, Ok(due))) => {
                backlog = kept;
                due
            }
            Ok((_, Err(e))) | Err(e) => {
                tracing::error!(error = %e, "reading the webhook queue failed");
                backlog = Backlog::default();
                pause(&mut shared.wake, &mut stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        if due.is_empty() && !backlog.more() {
            let sleep = backlog.next_ms().map_or(IDLE, |t| {
                Duration::from_millis(t.saturating_sub(now).max(10)).min(IDLE)
            });
            pause(&mut shared.wake, &mut stop, sleep).await;
            continue;
        }
        // The scan may see a change that is committed but not yet on disk (its request
        // still waits for the group flush): nothing goes out that a crash could take back.
        if let Err(e) = shared.db.durable().await {
            tracing::error!(error = %e, "flushing before webhook deliveries failed");
            backlog.forget();
            pause(&mut shared.wake, &mut stop, Duration::from_secs(1)).await;
            continue;
        }
        for (id, delivery) in due {
            if *stop.borrow() {
                backlog.forget();
                break;
            }
            if !deliver(&shared, &mut endpoint, id, delivery, &mut backlog).await {
                // A delivery whose outcome could not be recorded: no other goes out until
                // the store takes writes again, or a crash would repeat more than one.
                backlog.forget();
                pause(&mut shared.wake, &mut stop, Duration::from_secs(1)).await;
                break;
            }
        }
    }
}

async fn pause(wake: &mut watch::Receiver<u64>, stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = wake.changed() => {}
        _ = stop.changed() => {}
        () = tokio::time::sleep(d) => {}
    }
}

/// What an answer means for the delivery.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Delivered,
    /// Retried until `max_age`.
    Retry(String),
    /// Retried at most [`CLIENT_ERROR_TRIES`] times in all.
    Refused(String),
}

fn verdict(answer: &Answer) -> Verdict {
    match answer {
        Answer::Status(s) if (200..300).contains(s) => Verdict::Delivered,
        Answer::Status(s @ (408 | 429)) => Verdict::Retry(format!("HTTP {s}")),
        Answer::Status(s) if (300..500).contains(s) => Verdict::Refused(format!("HTTP {s}")),
        Answer::Status(s) => Verdict::Retry(format!("HTTP {s}")),
        Answer::None(reason) => Verdict::Retry(reason.clone()),
    }
}

/// One attempt at one delivery; false if its outcome could not be recorded.
async fn deliver(
    shared: &Webhooks,
    endpoint: &mut Endpoint,
    id: u64,
    mut delivery: Queued,
    backlog: &mut Backlog,
) -> bool {
    let Kind::Webhook {
        event,
        id: hook_id,
        body,
        account,
    } = delivery.kind.clone()
    else {
        return true;
    };
    let answer = endpoint.post(&hook_id, &body).await;
    let now = unix_ms(SystemTime::now());
    let name = endpoint.name.as_str();
    if answer == Answer::Status(410) {
        tracing::warn!(endpoint = name, event, "the webhook endpoint answered 410 Gone; it stays configured, and this delivery is retried as a refusal");
    }
    let db = &shared.db;
    delivery.attempts += 1;
    let (reason, last_try) = match verdict(&answer) {
        Verdict::Delivered => {
            let to = delivery.to.clone();
            let removed = db.blocking(move |db| db.remove_webhook(&to, id)).await;
            backlog.left(id, &account);
            // Made durable before the next delivery: a crash repeats at most this one.
            let removed = match removed {
                Ok(()) => db.durable().await,
                Err(e) => Err(e),
            };
            shared.metrics.webhook(name, "delivered");
            if let Err(e) = removed {
                tracing::error!(error = %e, "recording a webhook delivery failed");
                return false;
            }
            tracing::info!(
                endpoint = name,
                event,
                webhook_id = hook_id,
                attempts = delivery.attempts,
                "webhook delivered"
            );
            return true;
        }
        Verdict::Retry(reason) => (reason, delivery.expired(now)),
        Verdict::Refused(reason) => (reason, delivery.attempts >= CLIENT_ERROR_TRIES),
    };
    if last_try {
        let dead = Dead {
            message: delivery,
            error: reason.clone(),
            failed_ms: now,
        };
        let buried = db.blocking(move |db| db.outbox_bury(id, &dead)).await;
        backlog.left(id, &account);
        shared.metrics.webhook(name, "dead");
        if let Err(e) = buried.and(db.durable().await) {
            tracing::error!(error = %e, "setting a webhook delivery aside failed");
            return false;
        }
        tracing::error!(
            endpoint = name,
            event,
            webhook_id = hook_id,
            error = reason,
            "webhook delivery failed for good; kept as a dead letter"
        );
        return true;
    }
    let delay = backoff(
        endpoint.retry_initial,
        endpoint.retry_max,
        delivery.attempts,
    );
    delivery.next_attempt_ms = now + delay.as_millis() as u64;
    delivery.last_error = Some(reason.clone());
    backlog.later(id, delivery.falls_due());
    let rescheduled = db
        .blocking(move |db| db.outbox_reschedule(id, &delivery))
        .await;
    shared.metrics.webhook(name, "retried");
    if let Err(e) = rescheduled {
        tracing::error!(error = %e, "rescheduling a webhook delivery failed");
        return false;
    }
    tracing::warn!(
        endpoint = name,
        event,
        webhook_id = hook_id,
        retry_in_ms = delay.as_millis() as u64,
        error = reason,
        "webhook delivery failed; will retry"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mean_delivered_retried_or_refused() {
        let s = |code| verdict(&Answer::Status(code));
        assert_eq!(s(200), Verdict::Delivered);
        assert_eq!(s(204), Verdict::Delivered);
        for code in [500, 503, 408, 429] {
            assert!(matches!(s(code), Verdict::Retry(_)), "{code}");
        }
        for code in [301, 400, 401, 404, 410, 422] {
            assert!(matches!(s(code), Verdict::Refused(_)), "{code}");
        }
        assert!(matches!(
            verdict(&Answer::None("timeout".into())),
            Verdict::Retry(_)
        ));
    }
}
