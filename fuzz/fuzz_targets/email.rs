//! Address validation on its own, with any string: never a panic, and nothing accepted
//! carries CR, LF or another control character into an SMTP envelope or header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resetgate::mail_address::{parse_mailbox, validate};

fuzz_target!(|text: &str| {
    if let Ok(email) = validate(text) {
        assert!(!email.stored.chars().any(char::is_control));
        assert!(email.stored.is_ascii());
        assert_eq!(email.stored, email.stored.trim());
        assert_eq!(validate(&email.stored).as_ref(), Ok(&email), "validation is idempotent");
    }
    if let Ok((name, addr)) = parse_mailbox(text) {
        assert!(!name.chars().any(|c| c.is_control() || c == '<' || c == '>'));
        assert!(validate(&addr).is_ok());
    }
});
