//! ring wrappers: randomness, code MACs and PBKDF2 password hashes in PHC form.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hmac, pbkdf2};

pub mod imported;

/// Fills a fresh array from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .expect("the OS random source never fails on a supported platform");
    out
}

/// A uniformly distributed decimal code of `digits` digits (6..=12).
///
/// Rejection sampling over u64 avoids the modulo bias a plain `% 10^n` would have.
pub fn random_code(digits: u32) -> String {
    let space = 10u64.pow(digits);
    let limit = u64::MAX - (u64::MAX % space);
    loop {
        let draw = u64::from_be_bytes(random_bytes::<8>());
        if draw < limit {
            return format!("{:0width$}", draw % space, width = digits as usize);
        }
    }
}

/// The server key that codes are MACed under.
#[derive(Clone)]
pub struct CodeKey(hmac::Key);

impl CodeKey {
    pub fn new(secret: &[u8]) -> CodeKey {
        CodeKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// HMAC-SHA256 of a code: the only form in which codes are stored.
    pub fn mac(&self, code: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.0, code.as_bytes());
        tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }

    /// Whether `value`'s MAC is `mac`, compared in constant time.
    pub fn verify(&self, value: &str, mac: &[u8]) -> bool {
        hmac::verify(&self.0, value.as_bytes(), mac).is_ok()
    }
}

/// A fresh 256-bit token in URL-safe base64 (43 characters).
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Password hashing off the async threads, a bounded number at a time, so that hashing
/// cannot starve the other endpoints.
#[derive(Clone)]
pub struct Hasher {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    iterations: u32,
    /// Verified against when an account has no password, so that the answer costs the same.
    /// Made on first need (or by [`Hasher::warm_up`]), not at start-up, which it would slow.
    decoy: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Hasher {
    pub fn new(iterations: u32, concurrency: usize) -> Hasher {
        Hasher {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency)),
            iterations,
            decoy: Default::default(),
        }
    }

    /// Computes the decoy hash in the background.
    pub fn warm_up(&self) {
        let (decoy, iterations) = (self.decoy.clone(), self.iterations);
        tokio::task::spawn_blocking(move || decoy.get_or_init(|| decoy_hash(iterations)).len());
    }

    pub async fn hash(&self, password: String) -> String {
        let iterations = self.iterations;
        self.blocking(move || hash_password(&password, iterations))
            .await
    }

    /// Verifies against `phc`, or against a decoy of the same cost when there is none.
    pub async fn verify(&self, phc: Option<String>, password: String) -> bool {
        let known = phc.is_some();
        let (decoy, iterations) = (self.decoy.clone(), self.iterations);
        let ok = self
            .blocking(move || {
                let phc =
                    phc.unwrap_or_else(|| decoy.get_or_init(|| decoy_hash(iterations)).clone());
                verify_password(&phc, &password)
            })
            .await;
        ok && known
    }

    /// The permit moves into the blocking task, so a request that is dropped (its client
    /// went away) still holds its slot until the hash it started is done.
    async fn blocking<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(slot);
            result
        })
        .await
        .expect("a hashing task does not panic")
    }
}

fn decoy_hash(iterations: u32) -> String {
    hash_password(&random_token(), iterations)
}

const PHC_ID: &str = "$pbkdf2-sha256$";

/// A PBKDF2-HMAC-SHA256 hash with a 16-byte random salt, as a PHC string:
/// `$pbkdf2-sha256$i=600000$<salt b64>$<hash b64>`. Slow on purpose: call off the async threads.
pub fn hash_password(password: &str, iterations: u32) -> String {
    let iterations =
        NonZeroU32::new(iterations).expect("config validation keeps iterations >= 10000");
    let salt = random_bytes::<16>();
    let mut hash = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    format!(
        "{PHC_ID}i={iterations}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    )
}

/// Checks a password against a PHC string in constant time; a malformed string never matches.
/// A hash that is not resetgate's own was imported: [`imported::verify`], at its own cost.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Some((iterations, salt, hash)) = parse_phc(phc) else {
        return imported::verify(phc, password);
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// Whether `phc` is in resetgate's own layout (`$pbkdf2-sha256$i=<n>$<salt>$<hash>`);
/// any other stored hash was imported, and the first successful verify replaces it.
pub fn is_own_hash(phc: &str) -> bool {
    parse_phc(phc).is_some()
}

fn parse_phc(phc: &str) -> Option<(NonZeroU32, Vec<u8>, Vec<u8>)> {
    let rest = phc.strip_prefix(PHC_ID)?;
    let mut parts = rest.split('$');
    let iterations = parts
        .next()?
        .strip_prefix("i=")?
        .parse::<NonZeroU32>()
        .ok()?;
    let salt = B64.decode(parts.next()?).ok()?;
    let hash = B64.decode(parts.next()?).ok()?;
    (parts.next().is_none() && !hash.is_empty()).then_some((iterations, salt, hash))
}

/// The admin token, kept as a MAC under a random key so that checking it is constant-time.
pub struct AdminToken {
    key: hmac::Key,
    tag: hmac::Tag,
}

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>());
        let tag = hmac::sign(&key, token.as_bytes());
        AdminToken { key, tag }
    }

    /// Whether `headers` carry `Authorization: Bearer <the token>` (constant-time).
    pub fn accepts(&self, headers: &hyper::HeaderMap) -> bool {
        let presented = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        hmac::verify(&self.key, presented.as_bytes(), self.tag.as_ref()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_asked_length_and_only_digits() {
        for digits in 6..=12 {
            let c = random_code(digits);
            assert_eq!(c.len(), digits as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn code_digits_are_roughly_uniform() {
        // 20,000 digits: each of ten values expects 2,000; 5 sigma is about 212.
        let mut counts = [0u32; 10];
        for _ in 0..2_500 {
            for b in random_code(8).bytes() {
                counts[(b - b'0') as usize] += 1;
            }
        }
        for (digit, n) in counts.iter().enumerate() {
            assert!((1_788..=2_212).contains(n), "digit {digit} seen {n} times");
        }
    }

    #[test]
    fn phc_round_trip() {
        let phc = hash_password("correct horse", 10_000);
        assert!(phc.starts_with("$pbkdf2-sha256$i=10000$"));
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsE"));
        assert!(!verify_password("$pbkdf2-sha256$i=x$$", "a"));
        assert_ne!(phc, hash_password("correct horse", 10_000), "salts differ");
    }

    #[test]
    fn mac_depends_on_key_and_code() {
        let a = CodeKey::new(b"k1");
        let b = CodeKey::new(b"k2");
        assert_eq!(a.mac("12345678"), a.mac("12345678"));
        assert_ne!(a.mac("12345678"), a.mac("12345679"));
        assert_ne!(a.mac("12345678"), b.mac("12345678"));
    }
}
