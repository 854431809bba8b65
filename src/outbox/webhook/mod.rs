//! Webhooks: events for the application, delivered through the durable outbox as Standard
//! Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`).
//!
//! - `event`: what happened, and its deliveries (one per endpoint that wants it), which the
//!   caller queues in the same store transaction as the change they announce.
//! - `client`: one endpoint: its URL, key, TLS roots, and an HTTP/1.1 connection (hyper).
//! - `worker`: one task per endpoint drains its deliveries, in order per account.

pub(crate) mod client;
pub mod event;
mod worker;

pub use client::{Answer, Endpoint};
pub use event::{Event, Hooks, Origin, PING};
pub use worker::{run, Webhooks};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

pub use crate::config::{decode_key, decode_secret, SPEC_EXAMPLE_SECRET};

/// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let signed = format!("{id}.{timestamp}.{body}");
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    format!("v1,{}", B64.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specifications_example() {
        // The example in the Standard Webhooks specification.
        let key = decode_key(SPEC_EXAMPLE_SECRET).unwrap();
        let body = r#"{"test": 2432232314}"#;
        let got = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(got, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// The example delivery in docs/integration.md ("Webhooks"): its signature is
    /// its body's under the example secret, its content-length the body's, and the body is
    /// what `Event::body` writes for those data.
    #[test]
    fn the_readmes_example_delivery_is_signed_and_laid_out_as_sent() {
        let readme = include_str!("../../../docs/integration.md");
        let block = readme
            .split("```http\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let (head, body) = block.split_once("\n\n").unwrap();
        let body = body.trim_end();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap()
        };
        let key = decode_key(SPEC_EXAMPLE_SECRET).unwrap();
        let timestamp: u64 = header("webhook-timestamp").parse().unwrap();
        let signed = sign(&key, header("webhook-id"), timestamp, body);
        assert_eq!(header("webhook-signature"), signed);
        assert_eq!(header("content-length"), body.len().to_string());
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        let mut event = Event::new("password.changed", String::new(), "", 0);
        event.at_ms = 1_796_233_200_123;
        for (k, v) in parsed["data"].as_object().unwrap() {
            event = event.with(k, v.clone());
        }
        assert_eq!(event.body(false), body);
    }
}
