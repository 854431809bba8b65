//! What happened, as the application hears of it: an [`Event`], and its deliveries, one
//! per endpoint that subscribed to its type ([`Hooks`]).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::events::{self, Kind as EventKind};
use crate::store::outbox::{Kind, Queued};

/// The event `resetgate send-test-webhook` sends.
pub const PING: &str = "test.ping";

/// An event as a delivery carries it: its type, its `webhook-id` (the same on every attempt
/// and every endpoint), the account it is about (empty for none), when it happened, and
/// its `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub id: String,
    pub account: String,
    pub at_ms: u64,
    pub data: Map<String, Value>,
    /// The new PHC hash (`password.changed`), for endpoints with `include_password_hash`.
    pub password_hash: Option<String>,
}

/// A fresh `webhook-id`: `msg_` and 128 random bits in hex.
pub fn new_id() -> String {
    let bytes = crate::crypto::random_bytes::<16>();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// RFC 3339, UTC, milliseconds: "2026-12-02T17:40:00.123Z".
pub fn rfc3339(ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}

impl Event {
    /// An event with no data yet; `id` from [`new_id`].
    pub fn new(kind: &'static str, id: String, account: &str, at_ms: u64) -> Event {
        Event {
            kind,
            id,
            account: account.to_string(),
            at_ms,
            data: Map::new(),
            password_hash: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.data.insert(key.to_string(), value.into());
        self
    }

    /// The body every attempt sends: `{"type", "timestamp", "data"}`.
    pub fn body(&self, with_hash: bool) -> String {
        let mut data = self.data.clone();
        if let (true, Some(hash)) = (with_hash, &self.password_hash) {
            data.insert("password_hash".into(), hash.clone().into());
        }
        json!({ "type": self.kind, "timestamp": rfc3339(self.at_ms), "data": data }).to_string()
    }
}

/// Who asked for the change an account event tells of: the client address and the
/// request's id (empty outside a request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub client: String,
    pub request_id: String,
}

impl Event {
    /// The delivered form of `event`, caused by a request from `origin`, with `webhook-id`
    /// `id`, at `now_ms`.
    pub fn of(event: &events::Event, origin: &Origin, id: String, now_ms: u64) -> Event {
        let kind = event.kind().name();
        let account = |email: &str| {
            Event::new(kind, id.clone(), event.account(), now_ms)
                .with("email", email)
                .with("client", origin.client.clone())
                .with("request_id", origin.request_id.clone())
        };
        match event {
            events::Event::PasswordChanged {
                email,
                at_ms,
                hash,
                source,
                ..
            } => {
                let mut e = account(email)
                    .with("changed_at", rfc3339(*at_ms))
                    .with("source", source.name());
                e.password_hash = hash.clone();
                e
            }
            events::Event::AccountLocked {
                email, failures, ..
            } => account(email).with("failures", *failures),
            events::Event::CodeConfirmed { email, .. }
            | events::Event::AccountDisabled { email, .. }
            | events::Event::AccountEnabled { email, .. } => account(email),
            events::Event::EmailChanged {
                email, previous, ..
            } => account(email).with("previous_email", previous.clone()),
            events::Event::BudgetExhausted {
                budget,
                window_secs,
                until_ms,
            } => Event::new(kind, id, "", now_ms)
                .with("budget", *budget)
                .with("window_seconds", *window_secs)
                .with("until", rfc3339(*until_ms)),
        }
    }
}

/// One endpoint's subscription.
#[derive(Debug)]
struct Subscription {
    name: String,
    events: Vec<EventKind>,
    include_password_hash: bool,
    max_age: Duration,
}

/// Who wants which events: the configured endpoints. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Hooks(Arc<Vec<Subscription>>);

impl Hooks {
    pub fn new(config: &Config) -> Hooks {
        let subscriptions = config
            .webhooks
            .iter()
            .map(|w| Subscription {
                name: w.name.clone(),
                events: w.events.clone(),
                include_password_hash: w.include_password_hash,
                max_age: w.max_age,
            })
            .collect();
        Hooks(Arc::new(subscriptions))
    }

    /// Whether no endpoint is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any endpoint wants events of this type.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.0.iter().any(|s| s.events.contains(&kind))
    }

    /// The deliveries of `events`, caused by a request from `origin`: for each event that
    /// an endpoint wants, a fresh `webhook-id` (drawn only then) and one delivery per
    /// endpoint that wants it.
    pub fn deliveries_of(
        &self,
        events: &[events::Event],
        origin: &Origin,
        now_ms: u64,
    ) -> Vec<Queued> {
        events
            .iter()
            .filter(|e| self.wants(e.kind()))
            .flat_map(|e| self.deliveries(&Event::of(e, origin, new_id(), now_ms), now_ms))
            .collect()
    }

    /// The event's deliveries: one per endpoint that wants it, due now, retried until the
    /// endpoint's `max_age`.
    pub fn deliveries(&self, event: &Event, now_ms: u64) -> Vec<Queued> {
        self.0
            .iter()
            .filter(|s| s.events.iter().any(|e| e.name() == event.kind))
            .map(|s| {
                let kind = Kind::Webhook {
                    event: event.kind.to_string(),
                    id: event.id.clone(),
                    account: event.account.clone(),
                    body: event.body(s.include_password_hash),
                };
                let expires = now_ms + s.max_age.as_millis() as u64;
                Queued::new(s.name.clone(), kind, now_ms, Some(expires))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(toml: &str) -> Hooks {
        use figment::providers::{Format, Toml};
        let config: Config =
            figment::Figment::from(figment::providers::Serialized::defaults(Config::default()))
                .merge(Toml::string(toml))
                .extract()
                .unwrap();
        Hooks::new(&config)
    }

    #[test]
    fn each_endpoint_gets_the_events_it_wants_and_the_hash_only_if_asked() {
        let hooks = hooks(
            r#"
            [[webhooks]]
            name = "app"
            url = "http://127.0.0.1:1/"
            events = ["password.changed", "code.confirmed"]
            include_password_hash = true
            [[webhooks]]
            name = "ops"
            url = "http://127.0.0.1:2/"
            events = ["recovery.budget_exhausted"]
            max_age = "1h"
            "#,
        );
        let mut event = Event::new("password.changed", new_id(), "a@example.com", 1_000)
            .with("email", "A@example.com");
        event.password_hash = Some("$pbkdf2-sha256$i=1$c2FsdA$aGFzaA".into());
        let out = hooks.deliveries(&event, 5_000);
        assert_eq!(out.len(), 1, "ops does not want it");
        assert_eq!(out[0].to, "app");
        assert_eq!(out[0].expires_ms, Some(5_000 + 3 * 24 * 3600 * 1000));
        let Kind::Webhook { body, id, .. } = &out[0].kind else {
            panic!("a webhook delivery")
        };
        assert_eq!(id, &event.id);
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["type"], "password.changed");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:01.000Z");
        assert_eq!(body["data"]["email"], "A@example.com");
        assert_eq!(
            body["data"]["password_hash"],
            "$pbkdf2-sha256$i=1$c2FsdA$aGFzaA"
        );
        assert!(!event.body(false).contains("pbkdf2"));

        let spent = Event::new("recovery.budget_exhausted", new_id(), "", 1_000);
        let out = hooks.deliveries(&spent, 5_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to, "ops");
        assert_eq!(out[0].expires_ms, Some(5_000 + 3_600_000));
        assert!(hooks.wants(EventKind::CodeConfirmed) && !hooks.wants(EventKind::AccountLocked));
        assert!(!Hooks::default().wants(EventKind::CodeConfirmed));
    }

    #[test]
    fn ids_are_msg_and_128_bits_of_hex() {
        let id = new_id();
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        assert_ne!(id, new_id());
    }
}
