//! Email addresses: validation strict enough to be safe in SMTP and mail headers.
//!
//! mail-send and mail-builder do not reject CR/LF in addresses, so everything that may end
//! up in an envelope or a header passes through [`validate`] first.

/// A syntactically valid address: `stored` as the user wrote it (trimmed), `key` normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub stored: String,
    pub key: String,
}

/// Why an address was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEmail(pub &'static str);

const MAX_LEN: usize = 254;
const MAX_LOCAL: usize = 64;

/// Validates an address and derives the key that accounts are matched by
/// (trimmed, lower-cased).
pub fn validate(raw: &str) -> Result<Email, InvalidEmail> {
    let stored = raw.trim();
    if stored.chars().any(char::is_control) {
        return Err(InvalidEmail("email must not contain control characters"));
    }
    if !stored.is_ascii() {
        return Err(InvalidEmail(
            "email must be ASCII (internationalized addresses are not supported)",
        ));
    }
    if stored.len() > MAX_LEN {
        return Err(InvalidEmail("email is longer than 254 characters"));
    }
    let (local, domain) = stored
        .rsplit_once('@')
        .ok_or(InvalidEmail("email must contain an @"))?;
    if local.is_empty() || local.len() > MAX_LOCAL || !local.chars().all(local_char) {
        return Err(InvalidEmail("email has an invalid local part"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(InvalidEmail("email has an invalid local part"));
    }
    if !valid_domain(domain) {
        return Err(InvalidEmail("email has an invalid domain"));
    }
    Ok(Email {
        stored: stored.to_string(),
        key: stored.to_lowercase(),
    })
}

/// RFC 5322 atext plus dot, and non-ASCII letters (RFC 6531).
fn local_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~.".contains(c)
        || (!c.is_ascii() && c.is_alphanumeric())
}

fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
                })
        })
}

/// Parses `Name <addr@host>` or `addr@host` into (display name, address).
pub fn parse_mailbox(text: &str) -> Result<(String, String), String> {
    let text = text.trim();
    let (name, addr) = match (text.find('<'), text.strip_suffix('>')) {
        (Some(open), Some(rest)) => (text[..open].trim(), &rest[open + 1..]),
        (None, None) => ("", text),
        _ => return Err(format!("{text:?} is not `Name <address>` or `address`")),
    };
    if name
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '<' || c == '>')
    {
        return Err(format!(
            "display name {name:?} has characters a header cannot carry"
        ));
    }
    let email = validate(addr).map_err(|e| format!("{addr:?}: {e}"))?;
    Ok((name.to_string(), email.stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_space() {
        let e = validate("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.stored, "Ada.Lovelace@Example.COM");
        assert_eq!(e.key, "ada.lovelace@example.com");
    }

    #[test]
    fn refuses_header_injection_and_junk() {
        for bad in [
            "a@b.com\r\nBcc: x@y.com",
            "a@b.com\rX",
            "a\0@b.com",
            "jöhn@exämple.com",
            "a\u{2028}@b.com",
            "ab.com",
            "@b.com",
            "a@",
            "a@b..com",
            "a b@c.com",
            "<a@b.com>",
            "a@-b.com",
            ".a@b.com",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn surrounding_white_space_is_trimmed() {
        assert_eq!(validate("a@b.com\n").unwrap().stored, "a@b.com");
    }

    #[test]
    fn mailbox_forms() {
        assert_eq!(
            parse_mailbox("resetgate <noreply@example.com>").unwrap(),
            ("resetgate".into(), "noreply@example.com".into())
        );
        assert_eq!(
            parse_mailbox("noreply@example.com").unwrap(),
            ("".into(), "noreply@example.com".into())
        );
        assert!(parse_mailbox("x <bad>").is_err());
    }
}
