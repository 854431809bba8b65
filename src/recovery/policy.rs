//! The password policy, after NIST SP 800-63B(-4): length limits, a rejection list of
//! common and context-specific passwords, an estimate of how guessable the password is
//! (zxcvbn: leaked passwords, names, words, keyboard walks, sequences, repeats, dates), and
//! no composition rules. Nothing is truncated. (The online breach check is the caller's:
//! it needs the network, `crate::breach`.)

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
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weak {
    /// Shorter than this many characters.
    TooShort(usize),
    /// Longer than this many characters.
    TooLong(usize),
    /// On the list of common passwords, or a run of one or of consecutive characters.
    Common,
    /// The email address or its local part is in it.
    HasEmail,
    /// zxcvbn scores it below `passwords.min_guess_score`; its warning, when it has one.
    Guessable(Option<zxcvbn::feedback::Warning>),
    /// Have I Been Pwned lists it (`passwords.breach_api`).
    Breached,
}

/// zxcvbn's `Warning` is a plain enum that derives only `PartialEq`: equality is total.
impl Eq for Weak {}

impl std::fmt::Display for Weak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weak::TooShort(min) => write!(f, "Password must be at least {min} characters long"),
            Weak::TooLong(max) => write!(f, "Password must be at most {max} characters long"),
            Weak::Common => f.write_str("Password is too common; choose a less predictable one"),
            Weak::HasEmail => f.write_str("Password must not contain the email address"),
            Weak::Guessable(Some(why)) => write!(f, "Password is too easy to guess: {why}"),
            Weak::Guessable(None) => f.write_str("Password is too easy to guess"),
            Weak::Breached => f.write_str(
                "Password has appeared in a data breach; choose one you have not used before",
            ),
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
    if config.min_guess_score > 0 {
        // The estimate's cost grows with the length (about 0.4 ms for 30 characters, 10 ms
        // for 256): its first 100 characters are scored, as zxcvbn's authors advise.
        let scored: String = password.chars().take(GUESS_PREFIX).collect();
        let domain = email.split('@').nth(1).unwrap_or_default();
        let estimate = zxcvbn::zxcvbn(&scored, &[local, domain]);
        if u8::from(estimate.score()) < config.min_guess_score {
            let warning = estimate.feedback().and_then(|f| f.warning());
            return Err(Weak::Guessable(warning));
        }
    }
    Ok(())
}

/// The characters of a password that zxcvbn scores.
const GUESS_PREFIX: usize = 100;

/// Builds zxcvbn's dictionaries (11–13 ms and 7.7 MB, `cargo bench --bench policy`) now, at start-up, rather than in
/// the first password-reset.
pub fn warm_up() {
    let _ = zxcvbn::zxcvbn("warm up the dictionaries", &[]);
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
    fn guessable_passwords_of_any_length_are_refused_with_the_reason() {
        let config = Passwords::default();
        assert_eq!(config.min_length, 15);
        for p in [
            "password1234567",
            "qwertyuiopasdfg",
            "asdfghjklzxcvbnm",
            "johnsmith19851985",
            "example.com123456",
        ] {
            let refused = check(p, "ada@example.com", &config);
            assert!(
                matches!(refused, Err(Weak::Guessable(_))),
                "{p}: {refused:?}"
            );
        }
        let why = check("password1234567", "a@b.org", &config).unwrap_err();
        assert_eq!(
            why.to_string(),
            "Password is too easy to guess: This is similar to a commonly used password."
        );
        for p in [
            "purple elephant dances at noon",
            "correct horse battery staple",
            "Kx9#mQ2vL!pR7sWz",
        ] {
            assert_eq!(check(p, "ada@example.com", &config), Ok(()), "{p}");
        }
        let off = Passwords {
            min_guess_score: 0,
            ..Passwords::default()
        };
        assert_eq!(check("password1234567", "a@b.org", &off), Ok(()));
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
