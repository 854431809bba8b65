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

/// Why a new password is refused. Its `Display` is the API's sentence for the end user
/// (English); the reset page says it in the page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weak {
    /// Shorter than this many characters.
    TooShort(usize),
    /// Longer than this many characters.
    TooLong(usize),
    /// On the list of common passwords, or a run of one or of consecutive characters.
    Common,
    /// The email address or its local part is in it.
    HasEmail,
}

impl std::fmt::Display for Weak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weak::TooShort(min) => write!(f, "Password must be at least {min} characters long"),
            Weak::TooLong(max) => write!(f, "Password must be at most {max} characters long"),
            Weak::Common => f.write_str("Password is too common; choose a less predictable one"),
            Weak::HasEmail => f.write_str("Password must not contain the email address"),
        }
    }
}

impl From<Weak> for String {
    fn from(weak: Weak) -> String {
        weak.to_string()
    }
}

/// Checks a new password.
pub fn check(password: &str, email: &str, config: &Passwords) -> Result<(), Weak> {
    let length = password.chars().count();
    if length < config.min_length {
        return Err(Weak::TooShort(config.min_length));
    }
    if length > config.max_length {
        return Err(Weak::TooLong(config.max_length));
    }
    let lower = password.to_lowercase();
    if common().contains(lower.as_str()) || repetitive(&lower) {
        return Err(Weak::Common);
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || lower == local || (local.len() >= 4 && lower.contains(local)) {
        return Err(Weak::HasEmail);
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
        assert_eq!(check("short", "a@b.org", &cfg()), Err(Weak::TooShort(8)));
        assert_eq!(
            Weak::TooShort(8).to_string(),
            "Password must be at least 8 characters long",
            "the API's sentence"
        );
        let long = "x".repeat(256) + "yz";
        assert_eq!(check(&long, "a@b.org", &cfg()), Err(Weak::TooLong(256)));
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
