//! The bodies of all three public endpoints: any bytes give a parsed body or a 4xx error,
//! never a panic, and whatever is accepted is safe to put in a mail header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resetgate::config::Passwords;
use resetgate::http::bodies;
use resetgate::mail_address::Email;

fn safe(email: &Email) {
    assert!(email.stored.is_ascii() && !email.stored.chars().any(char::is_control));
    assert!(email.stored.len() <= 254 && email.stored.contains('@'));
    assert_eq!(email.key, email.stored.to_lowercase());
}

fn client_error(e: resetgate::error::ApiError) {
    let (status, message) = e.status_and_message();
    assert!(status.is_client_error(), "{status} {message}");
}

fuzz_target!(|data: &[u8]| {
    match bodies::forgot(data) {
        Ok(b) => safe(&b.email),
        Err(e) => client_error(e),
    }
    match bodies::confirm(data) {
        Ok(b) => {
            if let Some(e) = &b.email {
                safe(e);
            }
            let _ = resetgate::recovery::normalize_code(&b.code);
        }
        Err(e) => client_error(e),
    }
    match bodies::reset(data) {
        Ok(b) => {
            safe(&b.email);
            let _ = resetgate::recovery::policy::check(&b.password, &b.email.stored, &Passwords::default());
        }
        Err(e) => client_error(e),
    }
});
