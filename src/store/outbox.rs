//! The durable outbox: mail (`id_outbox`), webhook deliveries (`endpoint_webhook`, keyed
//! by endpoint and id: [`super::webhooks`]), and the dead
//! letters of both (`id_dead`).
//!
//! An entry is written in the same transaction as the state it announces, and removed only
//! after the transport accepted it, so a crash can cause a duplicate but never a loss.
//! The two queues have one shape ([`Queued`]) and one set of operations, named by [`Queue`];
//! they are separate trees so that neither worker's scan reads the other's backlog.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::webhooks::{endpoint_prefix, webhook_key, webhook_key_id};
use super::{decode, encode, id_key, key_id, Db, Result, StoreError};

/// What the message is; the text is rendered at send time from these fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// A one-time code. The code is in plain text here only until the message is sent.
    Otp { code: String, ttl_secs: u64 },
    /// "Your password was changed", with when and from which client address.
    PasswordChanged { at_ms: u64, client: String },
    /// Queued for an unknown address in enumeration-safe mode: removed, never sent.
    Decoy,
    /// An event for the webhook endpoint named in `to`. `body` is the exact JSON signed and
    /// sent on every attempt; `id` its `webhook-id`; `account` the account it is about (its
    /// events reach the endpoint in order), empty for none.
    Webhook {
        event: String,
        id: String,
        account: String,
        body: String,
    },
}

/// Which queue: mail or webhook deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Mail,
    Webhooks,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Queued {
    /// The stored address of the account.
    pub to: String,
    #[serde(flatten)]
    pub kind: Kind,
    pub created_ms: u64,
    /// After this the message is pointless (its code expired) and is dropped unsent.
    pub expires_ms: Option<u64>,
    pub attempts: u32,
    pub next_attempt_ms: u64,
    pub last_error: Option<String>,
    /// The catalog locale chosen from the request's Accept-Language (None: English).
    #[serde(default)]
    pub locale: Option<String>,
    /// The last attempt failed for want of the relay (unreachable, silent, closing), not
    /// because the message was refused: the retry is pulled forward when the relay is back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waits_for_relay: bool,
}

impl Queued {
    pub fn new(to: String, kind: Kind, now_ms: u64, expires_ms: Option<u64>) -> Queued {
        Queued {
            to,
            kind,
            created_ms: now_ms,
            expires_ms,
            attempts: 0,
            next_attempt_ms: now_ms,
            last_error: None,
            locale: None,
            waits_for_relay: false,
        }
    }

    pub fn in_locale(self, locale: Option<String>) -> Queued {
        Queued { locale, ..self }
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|e| e <= now_ms)
    }

    /// When it is next due: its next attempt, or its expiry if that is sooner.
    pub fn falls_due(&self) -> u64 {
        self.next_attempt_ms
            .min(self.expires_ms.unwrap_or(u64::MAX))
    }

    /// What must be delivered before this entry: an earlier event for the same account
    /// and endpoint (`(endpoint, account)`); mail has no order.
    fn in_order_after(&self) -> Option<(&str, &str)> {
        match &self.kind {
            Kind::Webhook { account, .. } if !account.is_empty() => Some((&self.to, account)),
            _ => None,
        }
    }

    /// The queue an entry of this kind lives in.
    pub fn queue(&self) -> Queue {
        match self.kind {
            Kind::Webhook { .. } => Queue::Webhooks,
            _ => Queue::Mail,
        }
    }

    /// Its key in its queue: the id (mail), or the endpoint and the id (webhooks).
    pub(crate) fn key(&self, id: u64) -> Vec<u8> {
        match self.queue() {
            Queue::Mail => id_key(id).to_vec(),
            Queue::Webhooks => webhook_key(&self.to, id),
        }
    }
}

pub use super::dead::{Dead, RetryRefused};

/// The entries due now (at most `limit`, oldest first) and when the next later one is due.
pub struct Due {
    pub entries: Vec<(u64, Queued)>,
    pub next_ms: Option<u64>,
}

impl Db {
    fn queue_tree(&self, queue: Queue) -> &sled::Tree {
        match queue {
            Queue::Mail => &self.inner.outbox,
            Queue::Webhooks => &self.inner.webhooks,
        }
    }

    /// A scan of the mail outbox: run it off the async threads when the outbox may be large.
    pub fn outbox_due(&self, now_ms: u64, limit: usize) -> Result<Due> {
        self.due_in(Queue::Mail, now_ms, limit, None)
    }

    /// The entries of `queue` (only those to `to`, when given: one endpoint's range of the
    /// webhook queue) due now (at most `limit`, oldest first), and when the next later one
    /// is due. A webhook delivery waits while an earlier one for the same account and
    /// endpoint is still queued. A scan: run it off the async threads.
    pub fn due_in(&self, queue: Queue, now_ms: u64, limit: usize, to: Option<&str>) -> Result<Due> {
        let mut due = Due {
            entries: Vec::new(),
            next_ms: None,
        };
        let mut waiting: std::collections::HashSet<(String, String)> = Default::default();
        let prefix = match (queue, to) {
            (Queue::Webhooks, Some(to)) => endpoint_prefix(to),
            _ => Vec::new(),
        };
        for entry in self.queue_tree(queue).scan_prefix(prefix) {
            let (key, value) = entry?;
            let message: Queued = decode("outbox entry", &value)?;
            if to.is_some_and(|to| to != message.to) {
                continue;
            }
            if let Some((to, account)) = message.in_order_after() {
                if !waiting.insert((to.to_string(), account.to_string())) {
                    continue;
                }
            }
            if message.next_attempt_ms <= now_ms || message.expired(now_ms) {
                if due.entries.len() == limit {
                    due.next_ms = Some(now_ms);
                    break;
                }
                due.entries.push((queue_key_id(queue, &key)?, message));
            } else {
                let at = message
                    .next_attempt_ms
                    .min(message.expires_ms.unwrap_or(u64::MAX));
                due.next_ms = Some(due.next_ms.map_or(at, |n| n.min(at)));
            }
        }
        Ok(due)
    }

    /// Makes every mail retry that waits for the relay (`Queued::waits_for_relay`) and is
    /// due after `now_ms` due at `now_ms`; how many. An entry changed meanwhile (sent,
    /// rescheduled by a lane) is left as it is. A scan: run it off the async threads.
    pub fn outbox_pull_forward(&self, now_ms: u64) -> Result<usize> {
        let _gate = self.writing();
        let mut pulled = 0;
        for entry in self.inner.outbox.iter() {
            let (key, value) = entry?;
            let mut message: Queued = decode("outbox entry", &value)?;
            if !message.waits_for_relay || message.next_attempt_ms <= now_ms {
                continue;
            }
            message.next_attempt_ms = now_ms;
            let swapped =
                self.inner
                    .outbox
                    .compare_and_swap(&key, Some(&value), Some(encode(&message)))?;
            pulled += usize::from(swapped.is_ok());
        }
        Ok(pulled)
    }

    pub fn outbox_remove(&self, id: u64) -> Result<()> {
        let _gate = self.writing();
        self.inner.outbox.remove(id_key(id))?;
        Ok(())
    }

    /// Stores the entry's new attempt count and schedule (only if it is still queued).
    pub fn outbox_reschedule(&self, id: u64, message: &Queued) -> Result<()> {
        let _gate = self.writing();
        let bytes = encode(message);
        self.queue_tree(message.queue())
            .fetch_and_update(message.key(id), |old| old.map(|_| bytes.clone()))?;
        Ok(())
    }

    /// Moves an entry to the dead letters, atomically.
    pub fn outbox_bury(&self, id: u64, dead: &Dead) -> Result<()> {
        let _gate = self.writing();
        let (key, queued_key) = (id_key(id), dead.message.key(id));
        let queue = self.queue_tree(dead.message.queue());
        let moved = (queue, &self.inner.dead).transaction(|(queue, dead_tree)| {
            // Only if it is still queued: a replaced or used code took its mail away.
            if queue.remove(&queued_key[..])?.is_some() {
                dead_tree.insert(&key[..], encode(dead))?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        moved.map_err(|e| match e {
            TransactionError::Abort(()) => StoreError::Corrupt("bury aborted".into()),
            TransactionError::Storage(e) => StoreError::Sled(e),
        })
    }

    /// Sets aside, as dead letters with `error`, the queued webhook deliveries to endpoints
    /// not in `configured` (removed or renamed since); how many. A scan: run it off the
    /// async threads.
    pub fn bury_unrouted(&self, configured: &[String], now_ms: u64, error: &str) -> Result<usize> {
        let mut buried = 0;
        let gone = self.webhook_endpoints()?;
        let gone = gone.iter().filter(|name| !configured.contains(name));
        for name in gone {
            for entry in self.inner.webhooks.scan_prefix(endpoint_prefix(name)) {
                let (key, value) = entry?;
                let (id, message) = (webhook_key_id(&key)?, decode("outbox entry", &value)?);
                let dead = Dead {
                    message,
                    error: error.to_string(),
                    failed_ms: now_ms,
                };
                self.outbox_bury(id, &dead)?;
                buried += 1;
            }
        }
        Ok(buried)
    }

    /// Queues webhook deliveries that no other change goes with (an event of the service
    /// as a whole, such as a spent budget); returns their ids.
    pub fn queue_webhooks(&self, deliveries: &[Queued]) -> Result<Vec<u64>> {
        let _gate = self.writing();
        // As in `transact`: ids in commit order, which the endpoints' tasks rely on.
        let _order = self
            .inner
            .commit_order
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut batch = sled::Batch::default();
        let mut ids = Vec::new();
        for delivery in deliveries {
            let id = self.inner.db.generate_id()?;
            batch.insert(delivery.key(id), encode(delivery));
            ids.push(id);
        }
        self.inner.webhooks.apply_batch(batch)?;
        self.note_webhooks_queued();
        Ok(ids)
    }

    /// Age of the oldest queued message (ids grow, so it is the first).
    pub fn oldest_queued_age_ms(&self, now_ms: u64) -> Result<u64> {
        match self.inner.outbox.first()? {
            Some((_, v)) => {
                Ok(now_ms.saturating_sub(decode::<Queued>("outbox entry", &v)?.created_ms))
            }
            None => Ok(0),
        }
    }

    pub fn outbox_len(&self) -> usize {
        self.inner.outbox.len()
    }

    pub fn len_in(&self, queue: Queue) -> usize {
        self.queue_tree(queue).len()
    }

    /// Queued messages, oldest first, at most `limit`.
    pub fn queued(&self, limit: usize) -> Result<Vec<(u64, Queued)>> {
        self.queued_in(Queue::Mail, limit)
    }

    pub fn queued_in(&self, queue: Queue, limit: usize) -> Result<Vec<(u64, Queued)>> {
        self.queue_tree(queue)
            .iter()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((queue_key_id(queue, &key)?, decode("outbox entry", &value)?))
            })
            .collect()
    }

    /// Entry `id`, in whichever queue holds it (webhooks: a look under each endpoint).
    pub fn queued_message(&self, id: u64) -> Result<Option<Queued>> {
        if let Some(v) = self.inner.outbox.get(id_key(id))? {
            return Ok(Some(decode("outbox entry", &v)?));
        }
        for name in self.webhook_endpoints()? {
            if let Some(v) = self.inner.webhooks.get(webhook_key(&name, id))? {
                return Ok(Some(decode("outbox entry", &v)?));
            }
        }
        Ok(None)
    }
}

/// The id in a key of `queue`.
fn queue_key_id(queue: Queue, key: &[u8]) -> Result<u64> {
    match queue {
        Queue::Mail => key_id(key),
        Queue::Webhooks => webhook_key_id(key),
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
