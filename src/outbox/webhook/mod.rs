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

/// The Standard Webhooks specification's example secret: anyone can read it, so anyone could
/// forge events signed with it. Refused as a configured secret.
pub const SPEC_EXAMPLE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A configured secret's key: [`decode_key`], refusing the specification's example.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    if secret == SPEC_EXAMPLE_SECRET {
        return Err(
            "is the Standard Webhooks specification's published example, with which anyone can sign events: make one with `echo \"whsec_$(openssl rand -base64 32)\"`"
                .into(),
        );
    }
    decode_key(secret)
}

/// The key in a Standard Webhooks secret: `whsec_` and the key bytes in base64, with or
/// without its `=` padding (the libraries accept both).
pub fn decode_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let lenient = general_purpose::GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("must start with \"whsec_\" (a Standard Webhooks secret)")?;
    let key = lenient
        .decode(encoded)
        .map_err(|_| "must be \"whsec_\" followed by base64")?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "the key must be 24 to 64 bytes (this one has {})",
            key.len()
        ));
    }
    Ok(key)
}

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

    #[test]
    fn secrets_must_be_whsec_base64_of_a_real_key() {
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_secret("whsec_not base64!").is_err());
        assert!(decode_secret("whsec_c2hvcnQ=").is_err(), "5 bytes");
        assert_eq!(decode_key(SPEC_EXAMPLE_SECRET).unwrap().len(), 24);
        let refused = decode_secret(SPEC_EXAMPLE_SECRET).unwrap_err();
        assert!(refused.contains("example"), "{refused}");
        let padded = decode_secret("whsec_EMjg+VvePl/wr3Kzx8CtNyK37fF7XUhhUivhUYtxQTU=");
        let bare = decode_secret("whsec_EMjg+VvePl/wr3Kzx8CtNyK37fF7XUhhUivhUYtxQTU");
        assert_eq!(
            padded.unwrap(),
            bare.unwrap(),
            "padding or not, the same key"
        );
    }
}
