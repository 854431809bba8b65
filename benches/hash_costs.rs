//! What one verification of an imported password hash costs at the limits that
//! `src/crypto/imported.rs` sets (`limits`), and just over them: the measurement the limits
//! were derived from. Each hash is made here by the crate that verifies it, in the shape the
//! rule allows that costs the most (for Argon2, one pass over the most memory; for scrypt,
//! r = 1), then verified through resetgate's own `verify` three times.
//!
//! The time is the CPU time of this thread (`/proc/thread-self/schedstat`), not the wall
//! time: on a shared machine another process's work would inflate the wall clock, while
//! the limit is about what one verification takes of a core. The table gives the least of
//! the three runs. `cargo bench --bench hash_costs` (about a minute) prints it and writes it
//! to `target/bench-hash-costs.md`.

use password_hash::phc::PasswordHash;
use password_hash::{CustomizedPasswordHasher, PasswordHasher};
use resetgate::crypto::imported::{check, verify};

const PASSWORD: &str = "a long passphrase of mine";
const SALT: [u8; 16] = [7; 16];

/// Nanoseconds this thread has spent on a CPU.
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("Linux's /proc/thread-self/schedstat");
    stat.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with the time on a CPU in ns")
}

fn argon2(algorithm: argon2::Algorithm, m: u32, t: u32, p: u32) -> String {
    let params = argon2::Params::new(m, t, p, None).expect("valid Argon2 parameters");
    let hasher = argon2::Argon2::new(algorithm, argon2::Version::V0x13, params);
    let hash: PasswordHash = hasher
        .hash_password_with_salt(PASSWORD.as_bytes(), &SALT)
        .expect("hashing");
    hash.to_string()
}

fn scrypt(log_n: u8, r: u32, p: u32) -> String {
    let params = scrypt::Params::new(log_n, r, p).expect("valid scrypt parameters");
    let hash: PasswordHash = scrypt::Scrypt::default()
        .hash_password_customized(PASSWORD.as_bytes(), &SALT, None, None, params)
        .expect("hashing");
    hash.to_string()
}

fn pbkdf2(iterations: u32) -> String {
    let mut out = [0u8; 32];
    let n = std::num::NonZeroU32::new(iterations).expect("iterations > 0");
    let alg = ring::pbkdf2::PBKDF2_HMAC_SHA256;
    ring::pbkdf2::derive(alg, n, &SALT, PASSWORD.as_bytes(), &mut out);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!(
        "$pbkdf2-sha256$i={iterations},l=32${}${}",
        b64.encode(SALT),
        b64.encode(out)
    )
}

fn bcrypt(cost: u32) -> String {
    bcrypt::hash_with_salt(PASSWORD, cost, SALT)
        .expect("hashing")
        .to_string()
}

/// Makes one hash in a given shape.
type MakeHash = fn() -> String;

fn main() {
    use argon2::Algorithm::{Argon2i, Argon2id};
    let shapes: [(&str, MakeHash); 11] = [
        ("PBKDF2-SHA256 i=5,000,000 (the limit)", || {
            pbkdf2(5_000_000)
        }),
        ("PBKDF2-SHA256 i=6,000,000", || pbkdf2(6_000_000)),
        ("bcrypt cost 14 (the limit)", || bcrypt(14)),
        ("bcrypt cost 15", || bcrypt(15)),
        ("Argon2id m=655360 t=1 p=1 (the limit)", || {
            argon2(Argon2id, 655_360, 1, 1)
        }),
        ("Argon2i m=655360 t=1 p=1 (the limit)", || {
            argon2(Argon2i, 655_360, 1, 1)
        }),
        ("Argon2id m=131072 t=5 p=4 (the limit)", || {
            argon2(Argon2id, 131_072, 5, 4)
        }),
        ("Argon2id m=786432 t=1 p=1", || {
            argon2(Argon2id, 786_432, 1, 1)
        }),
        ("scrypt ln=20 r=1 p=1 (the limit)", || scrypt(20, 1, 1)),
        ("scrypt ln=18 r=8 p=1 (under it)", || scrypt(18, 8, 1)),
        ("scrypt ln=20 r=2 p=1", || scrypt(20, 2, 1)),
    ];
    let mut table = String::from(
        "| imported hash | within the limits | CPU ms per verify (least of 3) |\n|---|---|---|\n",
    );
    for (label, make) in shapes {
        let hash = make();
        let allowed = check(&hash).map_or("no", |()| "yes");
        let least = (0..3)
            .map(|_| {
                let start = cpu_ns();
                assert!(verify(&hash, std::hint::black_box(PASSWORD)), "{label}");
                cpu_ns() - start
            })
            .min()
            .expect("three runs");
        let row = format!("| {label} | {allowed} | {:.0} |\n", least as f64 / 1e6);
        print!("{row}");
        table.push_str(&row);
    }
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-hash-costs.md"),
        &table,
    );
}
