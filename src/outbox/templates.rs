//! Each message, rendered at send time from the outbox entry and the catalog of texts.

use std::sync::Arc;
use std::time::Duration;

use mail_send::mail_builder::MessageBuilder;

use super::catalog::{fill, Catalog};
use super::Rendered;
use crate::store::outbox::{Kind, Queued};

/// What every message shares: the sender, the product's name, the texts.
pub struct Letterhead {
    pub from_name: String,
    pub from_addr: String,
    pub reply_to: Option<(String, String)>,
    pub product: String,
    pub support: String,
    pub instance_id: String,
    pub catalog: Arc<Catalog>,
    /// Signs every message when `mail.dkim` is configured.
    pub dkim: Option<Arc<super::dkim::Signer>>,
    /// The reset page's public address (`web.public_url` + `web.path`), when the code
    /// mail links to it.
    pub reset_page: Option<String>,
}

impl Letterhead {
    pub fn new(
        config: &crate::config::Config,
        instance_id: &str,
        catalog: Arc<Catalog>,
    ) -> Result<Letterhead, crate::config::ConfigError> {
        let bad = |key: &str, e: String| crate::config::ConfigError(format!("`{key}`: {e}"));
        let (from_name, from_addr) = crate::mail_address::parse_mailbox(&config.mail.from)
            .map_err(|e| bad("mail.from", e))?;
        let reply_to = match config.mail.reply_to.trim() {
            "" => None,
            text => Some(
                crate::mail_address::parse_mailbox(text).map_err(|e| bad("mail.reply_to", e))?,
            ),
        };
        Ok(Letterhead {
            from_name,
            from_addr,
            reply_to,
            product: config.mail.product_name.clone(),
            support: config.mail.support_contact.clone(),
            instance_id: instance_id.to_string(),
            catalog,
            dkim: super::dkim::Signer::from_config(&config.mail.dkim)?.map(Arc::new),
            reset_page: reset_page(&config.web),
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
            bytes: self.signed(bytes, now_ms)?,
        })
    }

    pub fn render(&self, id: u64, message: &Queued) -> std::io::Result<Rendered> {
        let locale = message.locale.as_deref();
        let (kind, mut values) = placeholders(&message.kind, locale)?;
        if let (Kind::Otp { code, .. }, Some(page)) = (&message.kind, &self.reset_page) {
            // The code goes in the fragment, which browsers never send to a server nor put
            // in a Referer; the page's script fills it in.
            let link = format!("{page}#code={code}");
            values.push((
                "link_line",
                format!("\r\n{}\r\n\r\n    {link}\r\n", link_lead(locale)),
            ));
            values.push(("link", link));
        } else {
            values.push(("link_line", String::new()));
            values.push(("link", String::new()));
        }
        let support_line = match self.support.as_str() {
            "" => String::new(),
            contact => format!("\r\nQuestions: {contact}\r\n"),
        };
        values.push(("product", self.product.clone()));
        values.push(("support", self.support.clone()));
        values.push(("support_line", support_line));
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let part = |name| self.catalog.part(kind, locale, name);
        let missing = || std::io::Error::other(format!("no {kind} text"));
        let subject = fill(part("subject").ok_or_else(missing)?, &values, false);
        // A subject is one line, whatever a template file holds.
        let subject = subject
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let text = fill(part("txt").ok_or_else(missing)?, &values, false);
        let mut builder = MessageBuilder::new()
            .from((self.from_name.as_str(), self.from_addr.as_str()))
            .to(message.to.as_str())
            .subject(subject)
            .message_id(self.message_id(id))
            .date((message.created_ms / 1000) as i64)
            .header(
                "Auto-Submitted",
                mail_send::mail_builder::headers::raw::Raw::new("auto-generated"),
            )
            .text_body(text);
        if let Some((name, addr)) = &self.reply_to {
            builder = builder.reply_to((name.as_str(), addr.as_str()));
        }
        if let Some(html) = part("html") {
            builder = builder.html_body(fill(html, &values, true));
        }
        Ok(Rendered {
            id,
            envelope_from: self.from_addr.clone(),
            to: message.to.clone(),
            bytes: self.signed(builder.write_to_vec()?, message.created_ms)?,
        })
    }

    /// With DKIM on, the message with its signature; the timestamp is the message's own, so
    /// a re-sent duplicate is byte for byte the same.
    fn signed(&self, bytes: Vec<u8>, created_ms: u64) -> std::io::Result<Vec<u8>> {
        match &self.dkim {
            Some(signer) => signer
                .sign(&bytes, created_ms / 1000)
                .map_err(std::io::Error::other),
            None => Ok(bytes),
        }
    }
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

/// A duration in words: "10 minutes", "1 Stunde", "90 secondes".
pub fn describe(d: Duration, locale: Option<&str>) -> String {
    let s = d.as_secs();
    let (n, unit) = if s % 3600 == 0 {
        (s / 3600, 0)
    } else if s % 60 == 0 {
        (s / 60, 1)
    } else {
        (s, 2)
    };
    let lang = locale.and_then(|l| l.split('-').next()).unwrap_or("en");
    let (one, many) = match (lang, unit) {
        ("de", 0) => ("Stunde", "Stunden"),
        ("de", 1) => ("Minute", "Minuten"),
        ("de", _) => ("Sekunde", "Sekunden"),
        ("fr", 0) => ("heure", "heures"),
        ("fr", 1) => ("minute", "minutes"),
        ("fr", _) => ("seconde", "secondes"),
        (_, 0) => ("hour", "hours"),
        (_, 1) => ("minute", "minutes"),
        (_, _) => ("second", "seconds"),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The reset page's public address, when the page is on and its origin is configured.
fn reset_page(web: &crate::config::Web) -> Option<String> {
    let origin = web.public_url.trim_end_matches('/');
    (web.enabled && !origin.is_empty()).then(|| format!("{origin}{}", web.path))
}

/// The sentence before the link to the reset page.
fn link_lead(locale: Option<&str>) -> &'static str {
    match locale {
        Some("de") => "Oder öffnen Sie diesen Link; die Seite trägt den Code für Sie ein:",
        Some("fr") => "Ou ouvrez ce lien ; la page saisit le code pour vous :",
        _ => "Or open this link; the page fills in the code for you:",
    }
}

/// The kind's template name and its own placeholders' values.
fn placeholders(
    kind: &Kind,
    locale: Option<&str>,
) -> std::io::Result<(&'static str, Vec<(&'static str, String)>)> {
    Ok(match kind {
        Kind::Otp { code, ttl_secs } => (
            "otp",
            vec![
                ("code", group(code)),
                ("ttl", describe(Duration::from_secs(*ttl_secs), locale)),
            ],
        ),
        Kind::PasswordChanged { at_ms, client } => {
            let at = std::time::UNIX_EPOCH + Duration::from_millis(*at_ms);
            let time = humantime::format_rfc3339_seconds(at).to_string();
            let values = vec![("time", time), ("client", client.clone())];
            ("password_changed", values)
        }
        Kind::Decoy => return Err(std::io::Error::other("a decoy is never sent")),
        Kind::Webhook { .. } => return Err(std::io::Error::other("a webhook is not a mail")),
    })
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
        assert_eq!(describe(Duration::from_secs(600), None), "10 minutes");
        assert_eq!(describe(Duration::from_secs(3600), None), "1 hour");
        assert_eq!(describe(Duration::from_secs(90), None), "90 seconds");
        assert_eq!(describe(Duration::from_secs(600), Some("de")), "10 Minuten");
        assert_eq!(describe(Duration::from_secs(3600), Some("fr")), "1 heure");
    }

    #[test]
    fn otp_mail_carries_code_validity_and_stable_id() {
        let head = Letterhead {
            from_name: "resetgate".into(),
            from_addr: "noreply@example.com".into(),
            reply_to: Some(("Support".into(), "help@example.com".into())),
            product: "Example".into(),
            support: "help@example.com".into(),
            instance_id: "abcd".into(),
            catalog: Arc::new(Catalog::load(std::path::Path::new("")).unwrap()),
            dkim: None,
            reset_page: None,
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
            text.contains("Reply-To: \"Support\" <help@example.com>"),
            "{text}"
        );
        assert!(text.contains("Questions: help@example.com"), "{text}");
        let german = Queued {
            locale: Some("de".into()),
            ..q.clone()
        };
        let text = String::from_utf8(head.render(42, &german).unwrap().bytes).unwrap();
        assert!(
            text.contains("10 Minuten") && text.contains("Einmalcode"),
            "{text}"
        );
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
