//! Dead letters (`id_dead`): messages and webhook deliveries that could not be delivered,
//! kept for an operator with the last error; retried, purged, or scrubbed of their codes
//! and hashes.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::outbox::{Kind, Queue, Queued};
use super::records::Reset;
use super::{decode, encode, id_key, key_id, Db, Result, StoreError};

/// How long a retried notice (not a code) may take to be delivered.
const NOTICE_RETRY_MS: u64 = 24 * 3600 * 1000;

/// Why a dead letter was not retried.
#[derive(Debug, PartialEq, Eq)]
pub enum RetryRefused {
    NotFound,
    /// Its code expired: the user must ask for a new one.
    Expired,
    /// Its code is no longer the account's: replaced by a newer one, or used.
    Superseded,
}

impl RetryRefused {
    /// What an operator is told (CLI and admin API).
    pub fn reason(&self) -> &'static str {
        match self {
            RetryRefused::NotFound => "No such message",
            RetryRefused::Expired => {
                "The code in this message has expired; the user must ask for a new one"
            }
            RetryRefused::Superseded => {
                "The code in this message is no longer valid (a newer code was sent, or it was used); the user may ask for a new one"
            }
        }
    }
}

/// A message that could not be delivered, kept for an operator with the last error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dead {
    pub message: Queued,
    pub error: String,
    pub failed_ms: u64,
}

impl Db {
    pub fn dead_letter(&self, id: u64) -> Result<Option<Dead>> {
        match self.inner.dead.get(id_key(id))? {
            Some(v) => Ok(Some(decode("dead letter", &v)?)),
            None => Ok(None),
        }
    }

    /// Moves a dead letter back into its queue, due now, with its attempts reset. A code
    /// that has expired is not sent again; a notice gets a fresh day to be delivered, and a
    /// webhook delivery its endpoint's `max_age` afresh.
    pub fn retry_dead(
        &self,
        id: u64,
        now_ms: u64,
    ) -> Result<std::result::Result<(), RetryRefused>> {
        let _gate = self.writing();
        let key = id_key(id);
        let i = &self.inner;
        let corrupt = |e: serde_json::Error| ConflictableTransactionError::Abort(e.to_string());
        let trees = (&i.outbox, &i.dead, &i.resets, &i.webhooks);
        let moved = trees.transaction(|(outbox, dead_tree, resets, webhooks)| {
            let Some(bytes) = dead_tree.get(&key[..])? else {
                return Ok(Err(RetryRefused::NotFound));
            };
            let dead: Dead = serde_json::from_slice(&bytes).map_err(corrupt)?;
            let mut message = dead.message;
            match &message.kind {
                Kind::Otp { code, .. } if code.is_empty() || message.expired(now_ms) => {
                    return Ok(Err(RetryRefused::Expired))
                }
                Kind::Otp { .. } => {
                    // Only the account's current code is worth sending (the outbox would
                    // drop any other); records from before outbox ids were kept cannot tell.
                    let account = crate::mail_address::validate(&message.to).map(|e| e.key);
                    let reset = match account.map(|k| resets.get(k.as_bytes())) {
                        Ok(found) => found?,
                        Err(_) => None,
                    };
                    let current = match reset {
                        Some(bytes) => serde_json::from_slice::<Reset>(&bytes)
                            .map_err(corrupt)?
                            .code
                            .map(|c| c.outbox_id.is_none_or(|current| current == id)),
                        None => Some(false),
                    };
                    if current != Some(true) {
                        return Ok(Err(RetryRefused::Superseded));
                    }
                }
                Kind::Webhook { .. } => {
                    let span = message.expires_ms.unwrap_or(now_ms) - message.created_ms;
                    message.expires_ms = Some(now_ms + span);
                }
                _ => message.expires_ms = Some(now_ms + NOTICE_RETRY_MS),
            }
            message.attempts = 0;
            message.next_attempt_ms = now_ms;
            message.last_error = None;
            dead_tree.remove(&key[..])?;
            match message.queue() {
                Queue::Mail => outbox.insert(&key[..], encode(&message))?,
                Queue::Webhooks => webhooks.insert(message.key(id), encode(&message))?,
            };
            Ok(Ok(()))
        });
        let moved = moved.map_err(|e| match e {
            TransactionError::Abort(msg) => StoreError::Corrupt(msg),
            TransactionError::Storage(e) => StoreError::Sled(e),
        })?;
        if moved.is_ok() {
            // Perhaps mail; a needless wake costs the webhook tasks one scan. A webhook
            // delivery comes back under its old id, before the ids their tasks have seen.
            self.note_webhooks_requeued();
            self.note_webhooks_queued();
        }
        Ok(moved)
    }

    /// Removes one dead letter, or all of them; returns how many.
    pub fn purge_dead(&self, id: Option<u64>) -> Result<usize> {
        let _gate = self.writing();
        match id {
            Some(id) => Ok(usize::from(self.inner.dead.remove(id_key(id))?.is_some())),
            None => {
                let n = self.inner.dead.len();
                self.inner.dead.clear()?;
                Ok(n)
            }
        }
    }

    /// Clears what a dead letter no longer needs to hold; returns how many changed:
    /// - the code of a code's mail, once the code expired (until then an operator may
    ///   retry it);
    /// - the password hash in a webhook delivery's body (`include_password_hash`), once
    ///   it is not the account's hash any more (changed again, cleared, or the account
    ///   removed). While it is, the account's own record holds the same hash, and a retry
    ///   sends it; afterwards a retry sends the event without it.
    pub fn scrub_dead(&self, now_ms: u64) -> Result<usize> {
        let _gate = self.writing();
        let mut scrubbed = 0;
        for (id, mut dead) in self.dead_letters()? {
            let expired = dead.message.expired(now_ms);
            let changed = match &mut dead.message.kind {
                Kind::Otp { code, .. } if expired && !code.is_empty() => {
                    code.clear();
                    true
                }
                Kind::Webhook { account, body, .. } => self.scrub_stale_hash(account, body)?,
                _ => false,
            };
            if changed {
                let new = encode(&dead);
                self.inner
                    .dead
                    .fetch_and_update(id_key(id), |old| old.map(|_| new.clone()))?;
                scrubbed += 1;
            }
        }
        Ok(scrubbed)
    }

    /// Removes `data.password_hash` from a delivery's `body` unless it is still the hash
    /// of `account`; whether it did.
    fn scrub_stale_hash(&self, account: &str, body: &mut String) -> Result<bool> {
        if !body.contains("\"password_hash\"") {
            return Ok(false);
        }
        let mut event: serde_json::Value = decode("webhook body", body.as_bytes())?;
        let Some(data) = event["data"].as_object_mut() else {
            return Ok(false);
        };
        let Some(hash) = data.get("password_hash").and_then(|h| h.as_str()) else {
            return Ok(false);
        };
        let current = match account.is_empty() {
            true => None,
            false => self.user(account)?.and_then(|u| u.password_hash),
        };
        if current.as_deref() == Some(hash) {
            return Ok(false);
        }
        data.remove("password_hash");
        *body = event.to_string();
        Ok(true)
    }

    pub fn dead_len(&self) -> usize {
        self.inner.dead.len()
    }

    pub fn dead_letters(&self) -> Result<Vec<(u64, Dead)>> {
        self.inner
            .dead
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key_id(&key)?, decode("dead letter", &value)?))
            })
            .collect()
    }
}
