//! `resetgate send-test-mail ADDRESS`: one message through the configured transport, now,
//! with the outcome of the conversation (not through the outbox).

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
            Ok(()) => {
                let text = format!(
                    "accepted for {} by the {}",
                    email.stored,
                    transport.describe()
                );
                super::say(
                    text,
                    serde_json::json!({ "accepted": true, "to": email.stored }),
                );
                Ok(())
            }
            Err(SendError::Transient(why)) => {
                Err(Failure::runtime(format!("not sent (temporary): {why}")))
            }
            Err(SendError::Permanent(why)) => {
                Err(Failure::runtime(format!("refused by the server: {why}")))
            }
        }
    })
}
