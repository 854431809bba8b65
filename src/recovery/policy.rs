//! The password policy, after NIST SP 800-63B: length limits, a rejection list of common
//! and context-specific passwords, and no composition rules. Nothing is truncated.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::config::Passwords;

const COMMON: &str = include_str!("common_passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Checks a new password; the error is a sentence for the end user.
pub fn check(password: &str, email: &str, config: &Passwords) -> Result<(), String> {
    let length = password.chars().count();
    if length < config.min_length {
        return Err(format!(
            "Password must be at least {} characters long",
            config.min_length
        ));
    }
    if length > config.max_length {
        return Err(format!(
            "Password must be at most {} characters long",
            config.max_length
        ));
    }
    let lower = password.to_lowercase();
    if common().contains(lower.as_str()) || repetitive(&lower) {
        return Err("Password is too common; choose a less predictable one".into());
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || lower == local || (local.len() >= 4 && lower.contains(local)) {
        return Err("Password must not contain the email address".into());
    }
    Ok(())
}

/// One character repeated, or a run of consecutive characters ("abcdef…", "98765…").
fn repetitive(p: &str) -> bool {
    let chars: Vec<char> = p.chars().collect();
    let steps: HashSet<i64> = chars
        .windows(2)
        .map(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0])))
        .collect();
    steps.len() == 1 && steps.iter().all(|s| s.abs() <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Passwords {
        Passwords {
            min_length: 8,
            ..Passwords::default()
        }
    }

    #[test]
    fn lengths_without_truncation() {
        assert!(check("short", "a@b.org", &cfg())
            .unwrap_err()
            .contains("at least 8"));
        let long = "x".repeat(256) + "yz";
        assert!(check(&long, "a@b.org", &cfg())
            .unwrap_err()
            .contains("at most 256"));
        assert!(
            check(&"wordy horse ".repeat(5), "a@b.org", &cfg()).is_ok(),
            "60 characters are fine"
        );
        assert!(check("Ünïcödé pässwörd", "a@b.org", &cfg()).is_ok());
    }

    #[test]
    fn common_and_contextual_passwords() {
        for p in [
            "Password123",
            "QWERTYUIOP",
            "iloveyou123",
            "aaaaaaaaaaaaaaaa",
            "0123456789",
            "zyxwvuts",
        ] {
            assert!(check(p, "a@b.org", &cfg()).is_err(), "{p} accepted");
        }
        assert!(check("ada.lovelace", "Ada.Lovelace@example.com", &cfg()).is_err());
        assert!(check("my ada.lovelace pw", "ada.lovelace@example.com", &cfg()).is_err());
        assert!(check("no composition rules", "a@b.org", &cfg()).is_ok());
    }

    #[test]
    fn the_list_is_lower_case_and_loaded() {
        assert!(common().len() > 300);
        assert!(
            common().iter().all(|p| p.to_lowercase() == *p),
            "entries are lower case"
        );
    }
}
