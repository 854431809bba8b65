//! Password hashes made by another system, brought in by `users import` with
//! `"password_hash"` (docs/integration.md, "Moving your users in"): which formats are
//! accepted, what one verification may cost, and the verification itself.
//!
//! Nothing here computes a hash by hand: Argon2 and scrypt are RustCrypto's crates, read
//! through the PHC parser of their `password-hash` crate; bcrypt is the `bcrypt` crate;
//! PBKDF2 is ring's, as for resetgate's own hashes, with only the two text layouts
//! (PHC and Django's) parsed here. Every comparison is constant-time: `password-hash`'s
//! `Output` compares through `ctutils` (Argon2, scrypt), the bcrypt crate through
//! `subtle`, and ring's `pbkdf2::verify` by its own contract.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use password_hash::phc::PasswordHash;
use password_hash::PasswordVerifier;
use ring::pbkdf2;

/// The largest parameters accepted, so that one verification costs at most about one
/// second of one core. Each is a round value at which the costliest shape the rule allows
/// measured under 1 s, and one step over it about 1 s or more, with `cargo bench --bench
/// hash_costs`: it times one verification at each limit and one step over it, in CPU time
/// of the thread (not the wall clock: the machine is shared). On the development machine
/// (2 cores, 2026-12-07, three runs), at the limits: PBKDF2-SHA256 5,000,000 iterations
/// 0.79–0.80 s; bcrypt cost 14 0.87–0.93 s; Argon2 640 MiB, one pass, 0.77–0.86 s; scrypt
/// 0.54–0.66 s (`ln=20,r=1` and `ln=18,r=8`). One step over: PBKDF2 6,000,000 iterations
/// 0.94 s (one run); bcrypt cost 15 1.74–1.82 s; Argon2 768 MiB 0.96–1.06 s; scrypt
/// `ln=20,r=2` 0.92–1.05 s. `docs/performance.md` ("Imported password hashes") has the
/// table.
pub mod limits {
    /// PBKDF2-HMAC-SHA256: iterations × 32-byte blocks of output (a longer output repeats
    /// the whole iteration count for each block).
    pub const PBKDF2_WORK: u64 = 5_000_000;
    /// bcrypt: the cost (log₂ of the rounds); each step doubles the time.
    pub const BCRYPT_COST: u32 = 14;
    /// Argon2i and Argon2id: memory in KiB × passes. The lanes (`p`) run one after
    /// another here (the crate's `parallel` feature is off), so they add no time.
    pub const ARGON2_KIB_PASSES: u64 = 655_360;
    /// scrypt: N × p × (r + 2). Measured, the time tracks N·p·r plus a fixed cost per
    /// block that makes r = 1 about 2.5 times as slow per byte as r = 8; r + 2 models it.
    pub const SCRYPT_WORK: u64 = 3 << 20;
}

/// The formats, as `"password_hash"`'s refusal names them.
pub const FORMATS: &str = "PHC $argon2id$, $argon2i$, $scrypt$ or $pbkdf2-sha256$; \
     bcrypt $2a$, $2b$ or $2y$; Django pbkdf2_sha256$";

/// A hash resetgate can verify, parsed.
enum Imported<'a> {
    Argon2(PasswordHash, argon2::Params),
    Scrypt(PasswordHash, scrypt::Params),
    /// `$pbkdf2-sha256$…` (PHC) or Django's `pbkdf2_sha256$…`.
    Pbkdf2 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Bcrypt {
        hash: &'a str,
        cost: u32,
    },
}

/// Whether `hash` can be imported: a known format, well formed, within [`limits`]. The
/// error names the problem and never repeats the hash.
pub fn check(hash: &str) -> Result<(), String> {
    parse(hash)?.within_limits()
}

/// Whether `password` made `hash` (any format [`check`] knows, at the hash's own cost).
/// Slow on purpose: call off the async threads. A hash that does not parse never matches.
pub fn verify(hash: &str, password: &str) -> bool {
    parse(hash).is_ok_and(|imported| imported.verify(password.as_bytes()))
}

fn parse(hash: &str) -> Result<Imported<'_>, String> {
    let parsed = if hash.starts_with("$argon2id$") || hash.starts_with("$argon2i$") {
        argon2_phc(hash).map_err(|e| ("Argon2", e))
    } else if hash.starts_with("$scrypt$") {
        scrypt_phc(hash).map_err(|e| ("scrypt", e))
    } else if hash.starts_with("$pbkdf2-sha256$") {
        pbkdf2_phc(hash).map_err(|e| ("PBKDF2-SHA256", e))
    } else if let Some(rest) = hash.strip_prefix("pbkdf2_sha256$") {
        django(rest).map_err(|e| ("Django PBKDF2", e))
    } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        bcrypt_mcf(hash).map_err(|e| ("bcrypt", e))
    } else {
        return Err(format!("not a format resetgate can import ({FORMATS})"));
    };
    parsed.map_err(|(scheme, e)| format!("a malformed {scheme} hash ({e})"))
}

impl Imported<'_> {
    /// The work one verification does, against its limit, as the refusal words them.
    fn within_limits(&self) -> Result<(), String> {
        let (what, work, limit) = match self {
            Imported::Argon2(_, p) => (
                "Argon2 memory (KiB) × passes",
                u64::from(p.m_cost()) * u64::from(p.t_cost()),
                limits::ARGON2_KIB_PASSES,
            ),
            Imported::Scrypt(_, p) => {
                let work = (1u128 << p.log_n()) * u128::from(p.p()) * (u128::from(p.r()) + 2);
                let work = u64::try_from(work).unwrap_or(u64::MAX);
                ("scrypt N × p × (r + 2)", work, limits::SCRYPT_WORK)
            }
            Imported::Pbkdf2 {
                iterations, hash, ..
            } => (
                "PBKDF2 iterations × 32-byte blocks",
                u64::from(iterations.get()) * hash.len().div_ceil(32) as u64,
                limits::PBKDF2_WORK,
            ),
            Imported::Bcrypt { cost, .. } => (
                "the bcrypt cost",
                u64::from(*cost),
                u64::from(limits::BCRYPT_COST),
            ),
        };
        if work > limit {
            return Err(format!(
                "too costly to verify: {what} is {work}, over the limit of {limit} (about 1 s of a core)"
            ));
        }
        Ok(())
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Imported::Argon2(phc, _) => argon2::Argon2::default()
                .verify_password(password, phc)
                .is_ok(),
            Imported::Scrypt(phc, _) => scrypt::Scrypt::default()
                .verify_password(password, phc)
                .is_ok(),
            Imported::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => pbkdf2::verify(
                pbkdf2::PBKDF2_HMAC_SHA256,
                *iterations,
                salt,
                password,
                hash,
            )
            .is_ok(),
            // The crate's `verify` truncates at 72 bytes, as the bcrypt that made such a hash
            // did; its `non_truncating_verify` would refuse those passwords instead.
            Imported::Bcrypt { hash, .. } => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }
}

/// Argon2i or Argon2id with `m`, `t` and `p` only (`keyid` would name a secret resetgate
/// does not have), a known version, a salt and a hash.
fn argon2_phc(hash: &str) -> Result<Imported<'static>, String> {
    let phc = PasswordHash::new(hash).map_err(|e| e.to_string())?;
    if let Some((ident, _)) = phc
        .params
        .iter()
        .find(|(i, _)| !["m", "t", "p"].contains(&i.as_str()))
    {
        return Err(format!("an unknown parameter {ident}"));
    }
    argon2::Algorithm::try_from(phc.algorithm.as_str()).map_err(|e| e.to_string())?;
    if let Some(version) = phc.version {
        argon2::Version::try_from(version).map_err(|e| e.to_string())?;
    }
    salt_and_hash(&phc)?;
    let params = argon2::Params::try_from(&phc).map_err(|e| e.to_string())?;
    Ok(Imported::Argon2(phc, params))
}

/// `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, as passlib and RustCrypto write it.
fn scrypt_phc(hash: &str) -> Result<Imported<'static>, String> {
    let phc = PasswordHash::new(hash).map_err(|e| e.to_string())?;
    salt_and_hash(&phc)?;
    let params = scrypt::Params::try_from(&phc).map_err(|e| e.to_string())?;
    Ok(Imported::Scrypt(phc, params))
}

fn salt_and_hash(phc: &PasswordHash) -> Result<(), String> {
    match (&phc.salt, &phc.hash) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err("no salt or no hash".into()),
    }
}

/// `$pbkdf2-sha256$i=<iterations>[,l=<length>]$<salt>$<hash>`, as RustCrypto's `pbkdf2`
/// crate writes it (resetgate's own hashes are this shape without `l`).
fn pbkdf2_phc(hash: &str) -> Result<Imported<'static>, String> {
    let phc = PasswordHash::new(hash).map_err(|e| e.to_string())?;
    if phc.version.is_some() {
        return Err("a version, which PBKDF2 has not".into());
    }
    let (Some(salt), Some(output)) = (&phc.salt, &phc.hash) else {
        return Err("no salt or no hash".into());
    };
    let mut iterations = None;
    for (ident, value) in phc.params.iter() {
        let number = value
            .decimal()
            .map_err(|_| format!("{ident} is not a number"))?;
        match ident.as_str() {
            "i" => iterations = NonZeroU32::new(number),
            "l" if usize::try_from(number).is_ok_and(|l| l == output.len()) => {}
            "l" => return Err("l is not the hash's length".into()),
            other => return Err(format!("an unknown parameter {other}")),
        }
    }
    Ok(Imported::Pbkdf2 {
        iterations: iterations.ok_or("no positive iteration count (i)")?,
        salt: salt.to_vec(),
        hash: output.as_bytes().to_vec(),
    })
}

/// Django's `pbkdf2_sha256$<iterations>$<salt>$<hash>` (after its prefix): the salt is
/// used as its UTF-8 text, the hash is standard base64 with padding.
fn django(rest: &str) -> Result<Imported<'static>, String> {
    let mut parts = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not <iterations>$<salt>$<hash>".into());
    };
    let iterations = Some(iterations)
        .filter(|i| i.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|i| i.parse::<NonZeroU32>().ok())
        .ok_or("the iterations are not a positive number")?;
    if salt.is_empty() {
        return Err("an empty salt".into());
    }
    let hash = STANDARD
        .decode(hash)
        .map_err(|e| format!("the hash is not base64: {e}"))?;
    if hash.is_empty() || hash.len() > 64 {
        return Err("a hash of 1 to 64 bytes is expected".into());
    }
    Ok(Imported::Pbkdf2 {
        iterations,
        salt: salt.as_bytes().to_vec(),
        hash,
    })
}

/// `$2a$`, `$2b$` or `$2y$`, as the crate reads it; it hashes only at costs 4 to 31.
fn bcrypt_mcf(hash: &str) -> Result<Imported<'_>, String> {
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e: bcrypt::BcryptError| e.to_string())?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("the cost {cost} is not 4 to 31"));
    }
    Ok(Imported::Bcrypt { hash, cost })
}

#[cfg(test)]
#[path = "imported_tests.rs"]
mod tests;
