//! `resetgate send-test-mail ADDRESS`: one message through the configured transport, now,
//! with the outcome of the conversation (not through the outbox). `resetgate
//! send-test-webhook NAME`: a `test.ping` event to one webhook endpoint, the same way.

use super::Failure;
use crate::config::Config;
use crate::outbox::catalog::Catalog;
use crate::outbox::templates::Letterhead;
use crate::outbox::{SendError, Transport};

pub fn run(config: Config, address: String) -> Result<(), Failure> {
    let email =
        crate::mail_address::validate(&address).map_err(|e| Failure::refused(e.to_string()))?;
    super::runtime()?.block_on(async move {
        let mut transport = Transport::from_config(&config)?;
        let instance: String = crate::crypto::random_bytes::<4>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let catalog = std::sync::Arc::new(Catalog::load(&config.mail.templates_dir)?);
        let letterhead = Letterhead::new(&config, &format!("test-{instance}"), catalog)?;
        let now = crate::store::unix_ms(std::time::SystemTime::now());
        let message = letterhead
            .render_test(now, &email.stored, now)
            .map_err(|e| Failure::runtime(format!("rendering the test message: {e}")))?;
        let sent = transport.send(&message).await;
        transport.close().await;
        match sent {
            Ok(reply) => {
                let text = format!(
                    "accepted for {} by the {} ({reply})",
                    email.stored,
                    transport.describe()
                );
                super::say(
                    text,
                    serde_json::json!({ "accepted": true, "to": email.stored, "reply": reply }),
                );
                Ok(())
            }
            Err(SendError::Transient(why)) => {
                Err(Failure::runtime(format!("not sent (temporary): {why}")))
            }
            Err(SendError::Permanent(why)) => {
                Err(Failure::runtime(format!("refused by the server: {why}")))
            }
            Err(SendError::Unconfirmed(why)) => Err(Failure::runtime(format!(
                "sent, but the server did not confirm it ({why}): it may arrive"
            ))),
        }
    })
}

pub fn webhook(config: Config, name: String) -> Result<(), Failure> {
    use crate::outbox::webhook::{event, Answer, Endpoint, Event, PING};
    let Some(i) = config.webhooks.iter().position(|w| w.name == name) else {
        let known: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
        return Err(Failure::refused(format!(
            "no [[webhooks]] entry is named {name:?} (configured: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    super::runtime()?.block_on(async move {
        let mut endpoint = Endpoint::new(&config, i)?;
        let now = crate::store::unix_ms(std::time::SystemTime::now());
        let ping = Event::new(PING, event::new_id(), "", now).with("name", name.clone());
        match endpoint.post(&ping.id, &ping.body(false)).await {
            Answer::Status(status) if (200..300).contains(&status) => {
                super::say(
                    format!("{name}: test.ping {} answered {status}", ping.id),
                    serde_json::json!({ "delivered": true, "status": status, "webhook_id": ping.id }),
                );
                Ok(())
            }
            Answer::Status(status) => Err(Failure::runtime(format!(
                "{name}: the endpoint answered {status} to test.ping {}",
                ping.id
            ))),
            Answer::None(why) => Err(Failure::runtime(format!("{name}: no answer: {why}"))),
        }
    })
}
