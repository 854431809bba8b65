//! The text of each message, rendered at send time from the outbox entry.

use std::time::Duration;

use mail_send::mail_builder::MessageBuilder;

use super::Rendered;
use crate::store::outbox::{Kind, Queued};

/// What every message shares: the sender and the product's name.
pub struct Letterhead {
    pub from_name: String,
    pub from_addr: String,
    pub product: String,
    pub instance_id: String,
}

impl Letterhead {
    pub fn new(
        config: &crate::config::Config,
        instance_id: &str,
    ) -> Result<Letterhead, crate::config::ConfigError> {
        let (from_name, from_addr) = crate::mail_address::parse_mailbox(&config.mail.from)
            .map_err(|e| crate::config::ConfigError(format!("`mail.from`: {e}")))?;
        Ok(Letterhead {
            from_name,
            from_addr,
            product: config.mail.product_name.clone(),
            instance_id: instance_id.to_string(),
        })
    }

    /// A stable Message-ID: the same outbox entry always gets the same one, so a duplicate
    /// after a crash is recognisable as such.
    pub fn message_id(&self, id: u64) -> String {
        let domain = self
            .from_addr
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d);
        format!("{id}.{}@{domain}", self.instance_id)
    }

    /// `resetgate send-test-mail`: a message that says only where it came from.
    pub fn render_test(&self, id: u64, to: &str, now_ms: u64) -> std::io::Result<Rendered> {
        let text = format!(
            "This is a test message from resetgate for {}.\r\nIf you can read it, mail delivery works.\r\n",
            self.product
        );
        let bytes = MessageBuilder::new()
            .from((self.from_name.as_str(), self.from_addr.as_str()))
            .to(to)
            .subject(format!("resetgate test message for {}", self.product))
            .message_id(self.message_id(id))
            .date((now_ms / 1000) as i64)
            .header(
                "Auto-Submitted",
                mail_send::mail_builder::headers::raw::Raw::new("auto-generated"),
            )
            .text_body(text)
            .write_to_vec()?;
        Ok(Rendered {
            id,
            envelope_from: self.from_addr.clone(),
            to: to.to_string(),
            bytes,
        })
    }

    pub fn render(&self, id: u64, message: &Queued) -> std::io::Result<Rendered> {
        let (subject, text) = match &message.kind {
            Kind::Otp { code, ttl_secs } => (
                format!("Your password reset code for {}", self.product),
                otp_text(&self.product, code, Duration::from_secs(*ttl_secs)),
            ),
            Kind::PasswordChanged { at_ms, client } => (
                format!("Your password for {} was changed", self.product),
                changed_text(&self.product, *at_ms, client),
            ),
            Kind::Decoy => return Err(std::io::Error::other("a decoy is never sent")),
        };
        let bytes = MessageBuilder::new()
            .from((self.from_name.as_str(), self.from_addr.as_str()))
            .to(message.to.as_str())
            .subject(subject)
            .message_id(self.message_id(id))
            .date((message.created_ms / 1000) as i64)
            .header(
                "Auto-Submitted",
                mail_send::mail_builder::headers::raw::Raw::new("auto-generated"),
            )
            .text_body(text)
            .write_to_vec()?;
        Ok(Rendered {
            id,
            envelope_from: self.from_addr.clone(),
            to: message.to.clone(),
            bytes,
        })
    }
}

fn otp_text(product: &str, code: &str, ttl: Duration) -> String {
    let code = group(code);
    format!(
        "Hello,\r\n\r\n\
         someone asked to reset the password of {product} for this email address.\r\n\r\n\
         Your one-time code is:\r\n\r\n    {code}\r\n\r\n\
         It is valid for {} and can be used once. A newer request replaces it.\r\n\r\n\
         If you did not ask for this, ignore this message: your password stays as it is.\r\n",
        describe(ttl)
    )
}

fn changed_text(product: &str, at_ms: u64, client: &str) -> String {
    let at =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(at_ms));
    format!(
        "Hello,\r\n\r\n\
         the password of {product} for this email address was changed at {at} (UTC)\r\n\
         from the address {client}, after a password reset confirmed with a code sent here.\r\n\r\n\
         If this was you, there is nothing to do. If it was not, contact your administrator\r\n\
         at once: someone else may have access to this mailbox.\r\n"
    )
}

/// "123456789012" → "1234 5678 9012": easier to read and type; spaces are ignored on input.
fn group(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let size = if chars.len() % 4 != 0 && chars.len() % 3 == 0 {
        3
    } else {
        4
    };
    chars
        .chunks(size)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duration in words: "10 minutes", "1 hour", "90 seconds".
pub fn describe(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s % 3600 == 0 {
        (s / 3600, "hour")
    } else if s % 60 == 0 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped() {
        assert_eq!(group("123456789012"), "1234 5678 9012");
        assert_eq!(group("12345678"), "1234 5678");
        assert_eq!(group("123456"), "123 456");
        assert_eq!(group("1234567890"), "1234 5678 90");
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(describe(Duration::from_secs(600)), "10 minutes");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
    }

    #[test]
    fn otp_mail_carries_code_validity_and_stable_id() {
        let head = Letterhead {
            from_name: "resetgate".into(),
            from_addr: "noreply@example.com".into(),
            product: "Example".into(),
            instance_id: "abcd".into(),
        };
        let q = Queued::new(
            "Ada@Example.com".into(),
            Kind::Otp {
                code: "01234567".into(),
                ttl_secs: 600,
            },
            1_700_000_000_000,
            None,
        );
        let a = head.render(42, &q).unwrap();
        let text = String::from_utf8(a.bytes.clone()).unwrap();
        assert!(text.contains("0123 4567"), "grouped: {text}");
        assert!(text.contains("10 minutes"));
        assert!(text.contains("Message-ID: <42.abcd@example.com>"), "{text}");
        assert!(
            text.contains("To: <Ada@Example.com>") || text.contains("To: Ada@Example.com"),
            "{text}"
        );
        assert_eq!(
            a.bytes,
            head.render(42, &q).unwrap().bytes,
            "rendering is deterministic"
        );
    }
}
