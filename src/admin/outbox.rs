//! Queued messages and dead letters: list, show, retry, purge. An operator never sees a
//! message's code.

use serde::{Deserialize, Serialize};

use super::{now_ms, Admin, AdminError};
use crate::error::NO_SUCH_MESSAGE;
use crate::metrics::Metrics;
use crate::store::outbox::{Dead, Kind, Queue, Queued, RetryRefused};

/// How many queued messages a listing shows (the count covers them all).
const LISTED: usize = 1_000;

/// `GET /admin/v1/outbox`.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutboxView {
    /// How many messages are queued.
    pub queued: usize,
    /// The oldest of them, at most [`LISTED`].
    pub messages: Vec<MessageView>,
    pub dead: Vec<DeadView>,
    /// The running service's counters; absent when the CLI opened the store itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_start: Option<SinceStart>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SinceStart {
    pub sent: u64,
    pub retried: u64,
    pub dead: u64,
    pub expired_unsent: u64,
}

/// What an operator sees of a message: never its code.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageView {
    pub id: u64,
    pub to: String,
    /// `otp`, `password_changed`, `decoy` or `webhook` (then `to` is the endpoint's name).
    pub kind: String,
    /// A webhook delivery's event type (`password.changed`, …); its body is not shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub last_error: Option<String>,
    pub attempts: u32,
    pub next_attempt_ms: u64,
    pub created_ms: u64,
    /// After this the message is dropped unsent (its code expired).
    pub expires_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeadView {
    #[serde(flatten)]
    pub message: MessageView,
    pub error: String,
    pub failed_ms: u64,
}

/// One message, `{"state": "queued" | "dead", "message": …}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", content = "message", rename_all = "snake_case")]
pub enum Shown {
    Queued(MessageView),
    Dead(DeadView),
}

/// A dead letter was queued again: `{"id", "state": "queued"}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Retried {
    pub id: u64,
    pub state: State,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Queued,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Purged {
    pub purged: usize,
}

impl MessageView {
    fn new(id: u64, m: &Queued) -> MessageView {
        let (kind, event) = match &m.kind {
            Kind::Otp { .. } => ("otp", None),
            Kind::PasswordChanged { .. } => ("password_changed", None),
            Kind::Decoy => ("decoy", None),
            Kind::Webhook { event, .. } => ("webhook", Some(event.clone())),
        };
        MessageView {
            id,
            to: m.to.clone(),
            kind: kind.into(),
            event,
            last_error: m.last_error.clone(),
            attempts: m.attempts,
            next_attempt_ms: m.next_attempt_ms,
            created_ms: m.created_ms,
            expires_ms: m.expires_ms,
        }
    }
}

impl DeadView {
    fn new(id: u64, d: &Dead) -> DeadView {
        DeadView {
            message: MessageView::new(id, &d.message),
            error: d.error.clone(),
            failed_ms: d.failed_ms,
        }
    }
}

impl SinceStart {
    fn new(m: &Metrics) -> SinceStart {
        SinceStart {
            sent: m.outbox_sent.get(),
            retried: m.outbox_retried.get(),
            dead: m.outbox_dead.get(),
            expired_unsent: m.outbox_expired.get(),
        }
    }
}

fn no_message() -> AdminError {
    AdminError::NotFound(NO_SUCH_MESSAGE.into())
}

impl Admin {
    pub async fn outbox(&self) -> Result<OutboxView, AdminError> {
        let (queued, dead) = self
            .db()
            .blocking(|db| {
                let mut queued = db.queued_in(Queue::Mail, LISTED)?;
                queued.extend(db.queued_in(Queue::Webhooks, LISTED)?);
                queued.sort_by_key(|(id, _)| *id);
                queued.truncate(LISTED);
                Ok((queued, db.dead_letters()?))
            })
            .await?;
        Ok(OutboxView {
            queued: self.db().len_in(Queue::Mail) + self.db().len_in(Queue::Webhooks),
            messages: queued
                .iter()
                .map(|(id, m)| MessageView::new(*id, m))
                .collect(),
            dead: dead.iter().map(|(id, d)| DeadView::new(*id, d)).collect(),
            since_start: self.running().map(|s| SinceStart::new(&s.metrics)),
        })
    }

    pub async fn outbox_show(&self, id: u64) -> Result<Shown, AdminError> {
        let found = self
            .db()
            .blocking(move |db| Ok((db.queued_message(id)?, db.dead_letter(id)?)))
            .await?;
        match found {
            (Some(m), _) => Ok(Shown::Queued(MessageView::new(id, &m))),
            (None, Some(d)) => Ok(Shown::Dead(DeadView::new(id, &d))),
            (None, None) => Err(no_message()),
        }
    }

    /// Queues a dead letter again, unless its code expired or is no longer the account's,
    /// and wakes the service's outbox for it.
    pub async fn outbox_retry(&self, id: u64) -> Result<Retried, AdminError> {
        let now = now_ms();
        if let Some(service) = self.running() {
            // A delivery to an endpoint that is no longer configured would wait for ever.
            let dead = self.db().blocking(move |db| db.dead_letter(id)).await?;
            if let Some(Dead { message, .. }) = dead {
                let to = &message.to;
                let gone = matches!(message.kind, Kind::Webhook { .. })
                    && !service.config.webhooks.iter().any(|w| &w.name == to);
                if gone {
                    let why = format!("The webhook endpoint {to:?} is no longer configured");
                    return Err(AdminError::Conflict(why.into()));
                }
            }
        }
        match self.db().blocking(move |db| db.retry_dead(id, now)).await? {
            Ok(()) => {}
            Err(RetryRefused::NotFound) => return Err(no_message()),
            Err(refused) => return Err(AdminError::Conflict(refused.reason().into())),
        }
        self.db().durable().await?;
        if let Some(service) = self.running() {
            service.delivery.wake();
        }
        Ok(Retried {
            id,
            state: State::Queued,
        })
    }

    /// Deletes one dead letter (`Some(id)`) or all of them.
    pub async fn outbox_purge(&self, id: Option<u64>) -> Result<Purged, AdminError> {
        let purged = self.db().blocking(move |db| db.purge_dead(id)).await?;
        self.db().durable().await?;
        if id.is_some() && purged == 0 {
            return Err(no_message());
        }
        Ok(Purged { purged })
    }
}
