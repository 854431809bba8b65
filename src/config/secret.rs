//! Secrets: never printed, optionally read from a file (systemd `LoadCredential=`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{bad, ConfigError};

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

/// Only strings: figment reads `RESETGATE_ADMIN__TOKEN=0012345` as the number 12345, which
/// would silently change the secret, and serde's own error would print the value.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(not_a_string())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(not_a_string())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(not_a_string())
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(not_a_string())
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn not_a_string<E: serde::de::Error>() -> E {
    E::custom(
        "a secret must be a string (the value is not shown); put secrets in the *_file key instead",
    )
}

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Refuses a secret file that group or others may read or write, as ssh refuses a private
/// key that is "too open": the message says what to run.
pub fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is accessible by other users (mode {:04o}); it holds a secret: run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

/// The Standard Webhooks specification's example secret: anyone can read it, so anyone could
/// forge events signed with it. Refused as a configured secret.
pub const SPEC_EXAMPLE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A configured secret's key: [`decode_key`], refusing the specification's example.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    if secret == SPEC_EXAMPLE_SECRET {
        return Err(
            "is the Standard Webhooks specification's published example, with which anyone can sign events: make one with `echo \"whsec_$(openssl rand -base64 32)\"`"
                .into(),
        );
    }
    decode_key(secret)
}

/// The key in a Standard Webhooks secret: `whsec_` and the key bytes in base64, with or
/// without its `=` padding (the libraries accept both).
pub fn decode_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurposeConfig};
    use base64::Engine;
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let lenient = general_purpose::GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("must start with \"whsec_\" (a Standard Webhooks secret)")?;
    let key = lenient
        .decode(encoded)
        .map_err(|_| "must be \"whsec_\" followed by base64")?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "the key must be 24 to 64 bytes (this one has {})",
            key.len()
        ));
    }
    Ok(key)
}

/// The least key material a server secret or admin token may hold: as much as the
/// generated ones (32 random bytes).
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses a secret with less than [`MIN_SECRET_BYTES`] of key material: 64 hex digits for
/// a hexadecimal one (as generated), else 32 characters. `key` names it; the value is never
/// shown.
pub fn strong_enough(key: &str, secret: Option<Secret>) -> Result<Option<Secret>, ConfigError> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    weak_secret(secret.expose()).map_or(Ok(Some(secret)), |why| Err(bad(key, why)))
}

/// Why `value` is too short to be a secret, if it is.
pub fn weak_secret(value: &str) -> Option<String> {
    let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    let (needed, unit) = if hex {
        (2 * MIN_SECRET_BYTES, "hex digits")
    } else {
        (MIN_SECRET_BYTES, "characters")
    };
    (value.len() < needed).then(|| {
        format!(
            "must hold at least {MIN_SECRET_BYTES} bytes of key material: {} hex digits, or {MIN_SECRET_BYTES} characters of another kind (this one has {} {unit}); make one with `openssl rand -hex 32`",
            2 * MIN_SECRET_BYTES,
            value.len()
        )
    })
}

/// The inline value, else the file's content without its trailing newline, else the
/// systemd credential `credential` (`$CREDENTIALS_DIRECTORY/<credential>`, `LoadCredential=`).
pub(super) fn resolve(
    file_key: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
    credential: &str,
) -> Result<Option<Secret>, ConfigError> {
    let inline = inline.filter(|s| !s.0.is_empty());
    let from_systemd = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(&dir).join(credential))
        .filter(|p| p.is_file());
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let file = file
        .map(Path::to_path_buf)
        .or(if inline.is_none() { from_systemd } else { None });
    match (inline, file.as_deref()) {
        (Some(_), Some(_)) => Err(bad(file_key, "set either the value or the file, not both")),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(path)) => {
            check_private(path).map_err(|e| bad(file_key, e))?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(file_key, format!("cannot read {}: {e}", path.display())))?;
            let value = text.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                return Err(bad(file_key, format!("{} is empty", path.display())));
            }
            Ok(Some(Secret(value.to_string())))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_refused_without_showing_them() {
        let err = serde_json::from_str::<Secret>("12345")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("12345") && err.contains("*_file"), "{err}");
        assert_eq!(
            serde_json::from_str::<Secret>("\"0012345\"")
                .unwrap()
                .expose(),
            "0012345"
        );
    }

    #[test]
    fn secret_files_open_to_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve("admin.token_file", None, Some(&path), "x").unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("admin.token_file") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "the secret is not shown");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret = resolve("admin.token_file", None, Some(&path), "x").unwrap();
        assert_eq!(secret.unwrap().expose(), "s3cret");
    }

    #[test]
    fn short_secrets_are_refused_without_showing_them() {
        for weak in [
            "abc",
            "0123456789abcdef0123456789abcdef",
            "correct horse battery",
        ] {
            let err = strong_enough("server.secret", Some(Secret::new(weak.into())))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("`server.secret`") && err.contains("32 bytes"),
                "{err}"
            );
            assert!(!err.contains(weak), "{err}");
        }
        for strong in [
            "0123456789abcdef".repeat(4),
            "correct horse battery staple, twice over".to_string(),
        ] {
            assert!(strong_enough("admin.token", Some(Secret::new(strong))).is_ok());
        }
    }

    #[test]
    fn webhook_secrets_must_be_whsec_base64_of_a_real_key() {
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_secret("whsec_not base64!").is_err());
        assert!(decode_secret("whsec_c2hvcnQ=").is_err(), "5 bytes");
        assert_eq!(decode_key(SPEC_EXAMPLE_SECRET).unwrap().len(), 24);
        let refused = decode_secret(SPEC_EXAMPLE_SECRET).unwrap_err();
        assert!(refused.contains("example"), "{refused}");
        let padded = decode_secret("whsec_EMjg+VvePl/wr3Kzx8CtNyK37fF7XUhhUivhUYtxQTU=");
        let bare = decode_secret("whsec_EMjg+VvePl/wr3Kzx8CtNyK37fF7XUhhUivhUYtxQTU");
        assert_eq!(
            padded.unwrap(),
            bare.unwrap(),
            "padding or not, the same key"
        );
    }

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }
}
