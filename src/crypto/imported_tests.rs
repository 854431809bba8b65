use super::*;

/// A salt and a hash in PHC's base64, for strings that are only parsed.
const SALT: &str = "c2FsdHNhbHRzYWx0MTIzNA";
const HASH: &str = "fRpg+ZwVVgbF1840JxjTjpq8Kb8ULkOClVDsMAvHE8c";
/// A well-formed bcrypt hash (from the bcrypt crate's tests), only parsed here.
const BCRYPT: &str = "$2y$12$L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u";

fn argon2(params: &str) -> String {
    format!("$argon2id$v=19${params}${SALT}${HASH}")
}

fn scrypt(params: &str) -> String {
    format!("$scrypt${params}${SALT}${HASH}")
}

fn bcrypt_at(cost: u32) -> String {
    BCRYPT.replacen("$12$", &format!("${cost:02}$"), 1)
}

fn django(iterations: u32) -> String {
    let hash = STANDARD.encode([1u8; 32]);
    format!("pbkdf2_sha256${iterations}$someSalt${hash}")
}

fn refusal(hash: &str) -> String {
    check(hash).expect_err(hash)
}

#[test]
fn each_limit_is_accepted_and_one_step_over_it_refused() {
    check(&bcrypt_at(14)).unwrap();
    let over = refusal(&bcrypt_at(16));
    assert_eq!(
        over,
        "too costly to verify: the bcrypt cost is 16, over the limit of 14 (about 1 s of a core)"
    );
    assert!(refusal(&bcrypt_at(15)).contains("cost is 15"));

    check(&argon2("m=655360,t=1,p=4")).unwrap();
    check(&argon2("m=65536,t=10,p=1")).unwrap();
    assert!(refusal(&argon2("m=65536,t=11,p=1")).contains("is 720896, over the limit of 655360"));
    let four_gib = refusal(&argon2("m=4194304,t=1,p=1"));
    assert!(
        four_gib.starts_with("too costly to verify: Argon2"),
        "{four_gib}"
    );

    // N·p·(r + 2): 2^20 · 1 · 3, and 2^18 · 1 · 10 below it; 2^20 · 1 · 4 above.
    check(&scrypt("ln=20,r=1,p=1")).unwrap();
    check(&scrypt("ln=18,r=8,p=1")).unwrap();
    assert!(refusal(&scrypt("ln=20,r=2,p=1")).contains("scrypt N × p × (r + 2) is 4194304"));
    assert!(refusal(&scrypt("ln=40,r=8,p=1")).contains("too costly"));

    let pbkdf2 = |params: &str| format!("$pbkdf2-sha256${params}${SALT}${HASH}");
    check(&pbkdf2("i=5000000")).unwrap();
    check(&pbkdf2("i=5000000,l=32")).unwrap();
    assert!(refusal(&pbkdf2("i=5000001")).contains("is 5000001, over the limit of 5000000"));
    assert!(refusal(&pbkdf2("i=4294967295")).contains("too costly"));
    // A 64-byte output runs the iterations twice.
    let long = STANDARD.encode([7u8; 64]);
    let long = long.trim_end_matches('=');
    check(&format!("$pbkdf2-sha256$i=2500000,l=64${SALT}${long}")).unwrap();
    let twice = refusal(&format!("$pbkdf2-sha256$i=2500001,l=64${SALT}${long}"));
    assert!(twice.contains("is 5000002"), "{twice}");

    check(&django(5_000_000)).unwrap();
    assert!(refusal(&django(5_000_001)).contains("too costly"));
}

/// The examples docs/integration.md gives ("Moving your users in").
#[test]
fn the_documented_examples_pass_or_are_refused() {
    for usual in [
        bcrypt_at(12),
        argon2("m=65536,t=3,p=4"),
        django(1_000_000),
        scrypt("ln=17,r=8,p=1"),
    ] {
        check(&usual).unwrap();
    }
    for extreme in [bcrypt_at(16), argon2("m=4194304,t=1,p=1")] {
        assert!(refusal(&extreme).starts_with("too costly to verify"));
    }
}

#[test]
fn unknown_and_malformed_hashes_are_refused_by_name() {
    for unknown in [
        "",
        "hunter2",
        "$argon2d$v=19$m=65536,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "$2x$10$L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u",
        "$1$saltsalt$hash",
        "pbkdf2_sha1$10000$salt$aGFzaA==",
        "sha1$salt$hash",
    ] {
        let e = refusal(unknown);
        assert!(
            e.starts_with("not a format resetgate can import (PHC"),
            "{unknown}: {e}"
        );
    }
    for (malformed, scheme) in [
        ("$argon2id$v=19$m=65536,t=1,p=1", "Argon2"),
        ("$argon2id$v=19$m=65536,t=1,p=1,keyid=abc$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "Argon2"),
        ("$argon2i$v=7$m=65536,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "Argon2"),
        ("$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "Argon2"),
        ("$scrypt$ln=10,r=8,p=1,x=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "scrypt"),
        ("$scrypt$ln=10,r=8,p=1$!!$aGFzaGhhc2hoYXNo", "scrypt"),
        ("$pbkdf2-sha256$i=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "PBKDF2-SHA256"),
        ("$pbkdf2-sha256$i=10,l=16$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "PBKDF2-SHA256"),
        // passlib's own layout: no `i=`, and `.` for `+`.
        (
            "$pbkdf2-sha256$29000$N2YuJ4CQ0nrlXIvh3HuvlQ$YBZX7Bb.9T7r8Hhk4UTrBJuD3cYJrMvnQtKlhZGRZXs",
            "PBKDF2-SHA256",
        ),
        ("pbkdf2_sha256$-1$salt$aGFzaA==", "Django PBKDF2"),
        ("pbkdf2_sha256$10000$$aGFzaA==", "Django PBKDF2"),
        ("pbkdf2_sha256$10000$salt$not base64", "Django PBKDF2"),
        ("pbkdf2_sha256$10000$salt$aGFzaA==$more", "Django PBKDF2"),
        ("$2b$12$short", "bcrypt"),
        ("$2b$03$L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u", "bcrypt"),
    ] {
        let e = refusal(malformed);
        assert!(e.starts_with(&format!("a malformed {scheme} hash (")), "{malformed}: {e}");
        assert!(!e.contains(malformed), "the hash is not repeated: {e}");
        assert!(!verify(malformed, "anything"));
    }
}

#[test]
fn resetgate_own_hashes_are_importable_and_verify_as_before() {
    let own = crate::crypto::hash_password("a long passphrase of mine", 10_000);
    check(&own).unwrap();
    assert!(crate::crypto::is_own_hash(&own));
    assert!(verify(&own, "a long passphrase of mine"));
    assert!(!verify(&own, "a long passphrase of yours"));
}

/// The crates' own hashers make cheap hashes here; the reference implementations (Python's
/// bcrypt, argon2-cffi, Django, hashlib) make them in `tests/imported_hashes.rs`.
#[test]
fn each_format_verifies_its_password_only() {
    use password_hash::CustomizedPasswordHasher;
    let salt = [9u8; 16];
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2i,
        argon2::Version::V0x13,
        argon2::Params::new(64, 1, 2, None).unwrap(),
    );
    let argon = password_hash::PasswordHasher::<PasswordHash>::hash_password_with_salt(
        &argon, b"right", &salt,
    )
    .unwrap()
    .to_string();
    let params = scrypt::Params::new(4, 8, 1).unwrap();
    let scrypt = scrypt::Scrypt::default()
        .hash_password_customized(b"right", &salt, None, None, params)
        .unwrap()
        .to_string();
    let bcrypt = bcrypt::hash_with_salt("right", 4, salt)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(1_000).unwrap();
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        b"pepperpepper",
        b"right",
        &mut out,
    );
    let django = format!("pbkdf2_sha256$1000$pepperpepper${}", STANDARD.encode(out));
    let phc = format!(
        "$pbkdf2-sha256$i=1000,l=32${}${}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(b"pepperpepper"),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
    );
    for hash in [argon, scrypt, bcrypt, django, phc] {
        check(&hash).unwrap();
        assert!(!crate::crypto::is_own_hash(&hash), "{hash}");
        assert!(verify(&hash, "right"), "{hash}");
        assert!(crate::crypto::verify_password(&hash, "right"), "{hash}");
        assert!(!verify(&hash, "wrong"), "{hash}");
    }
}
