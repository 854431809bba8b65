//! DKIM signing (RFC 6376, relaxed/relaxed) with ring's own keys: RSA-SHA256, or
//! Ed25519-SHA256 (RFC 8463). mail-send's `dkim` feature does not build on this toolchain,
//! and mail-auth would bring ~90 crates and the variable-time `rsa` crate.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};

use crate::config::{ConfigError, Dkim as Settings};

/// The header fields signed, when present (From is always present).
const SIGNED: [&str; 9] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "auto-submitted",
];

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

pub struct Signer {
    key: Key,
    domain: String,
    selector: String,
}

impl Signer {
    /// None when `mail.dkim.domain` is empty.
    pub fn from_config(settings: &Settings) -> Result<Option<Signer>, ConfigError> {
        if settings.domain.is_empty() {
            return Ok(None);
        }
        let bad = |key: &str, e: String| ConfigError(format!("`mail.dkim.{key}`: {e}"));
        if settings.selector.is_empty()
            || !settings
                .selector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(bad(
                "selector",
                "must be set (letters, digits, '-', '.')".into(),
            ));
        }
        if !settings
            .domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(bad("domain", "must be a domain name".into()));
        }
        // Else the systemd credential `dkim_key` (LoadCredential=), like the other secrets.
        let key_file = match settings.key_file.as_os_str().is_empty() {
            false => settings.key_file.clone(),
            true => std::env::var_os("CREDENTIALS_DIRECTORY")
                .map(|dir| Path::new(&dir).join("dkim_key"))
                .ok_or_else(|| {
                    bad(
                        "key_file",
                        "must be set (or given as the credential dkim_key)".into(),
                    )
                })?,
        };
        Ok(Some(Signer {
            key: load(&key_file).map_err(|e| bad("key_file", e))?,
            domain: settings.domain.clone(),
            selector: settings.selector.clone(),
        }))
    }

    /// `<selector>._domainkey.<domain>`: where receivers look up the public key.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record that publishes this key: `k=` its type and `p=` its public half, as
    /// `openssl pkey -pubout` writes it for RSA (a SubjectPublicKeyInfo) and as RFC 8463
    /// has it for Ed25519 (the raw 32 bytes).
    pub fn record(&self) -> String {
        use ring::signature::KeyPair;
        let (kind, public) = match &self.key {
            Key::Rsa(key) => ("rsa", rsa_spki(key.public().as_ref())),
            Key::Ed25519(key) => ("ed25519", key.public_key().as_ref().to_vec()),
        };
        format!("v=DKIM1; k={kind}; p={}", B64.encode(public))
    }

    /// The message with a `DKIM-Signature` header in front.
    pub fn sign(&self, message: &[u8], unix_secs: u64) -> Result<Vec<u8>, String> {
        let split = find(message, b"\r\n\r\n").ok_or("a message without a body")?;
        let (head, body) = (&message[..split + 2], &message[split + 4..]);
        let fields = fields(head);
        let mut names = Vec::new();
        let mut signed = Vec::new();
        for name in SIGNED {
            if let Some((_, value)) = fields
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                names.push(name);
                signed.extend_from_slice(relaxed_header(name, value).as_bytes());
                signed.extend_from_slice(b"\r\n");
            }
        }
        // Oversigned: From and Subject are named once more than they occur, so a From or
        // Subject added on the way breaks the signature (RFC 6376 §8.15).
        names.extend(["from", "subject"]);
        let body_hash = B64.encode(digest(&SHA256, &relaxed_body(body)));
        let algorithm = match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        let value = format!(
            "v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={}; t={unix_secs}; h={}; bh={body_hash}; b=",
            self.domain,
            self.selector,
            names.join(":")
        );
        signed.extend_from_slice(relaxed_header("dkim-signature", &value).as_bytes());
        let signature = match &self.key {
            Key::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &signed, &mut sig)
                    .map_err(|_| "RSA signing failed")?;
                sig
            }
            Key::Ed25519(key) => key
                .sign(digest(&SHA256, &signed).as_ref())
                .as_ref()
                .to_vec(),
        };
        let mut out = format!("DKIM-Signature: {value}{}\r\n", B64.encode(signature)).into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }
}

fn load(path: &Path) -> Result<Key, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivatePkcs8KeyDer;
    crate::config::check_private(path)?;
    let der = PrivatePkcs8KeyDer::from_pem_file(path)
        .map_err(|e| format!("{}: {e} (a PKCS#8 PEM key is expected)", path.display()))?;
    let der = der.secret_pkcs8_der();
    if let Ok(key) = RsaKeyPair::from_pkcs8(der) {
        return Ok(Key::Rsa(key));
    }
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map(Key::Ed25519)
        .map_err(|e| {
            format!(
                "{}: neither an RSA nor an Ed25519 key ({e})",
                path.display()
            )
        })
}

/// An RSAPublicKey (what ring gives) in a SubjectPublicKeyInfo with the rsaEncryption
/// algorithm: `SEQUENCE { SEQUENCE { OID 1.2.840.113549.1.1.1, NULL }, BIT STRING }`.
fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let len = content.len();
        let mut out = vec![tag];
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }
    const RSA_ENCRYPTION: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0];
    bits.extend_from_slice(rsa_public_key);
    let mut content = RSA_ENCRYPTION.to_vec();
    content.extend(der(0x03, &bits));
    der(0x30, &content)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// (name, value) of each header field, folded lines joined.
fn fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push_str("\r\n");
                last.1.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

/// RFC 6376 §3.4.2: lower-case name, unfolded, runs of white space as one space, trimmed.
fn relaxed_header(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let squeezed = unfolded
        .split([' ', '\t'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}:{}", name.trim().to_ascii_lowercase(), squeezed)
}

/// RFC 6376 §3.4.4: trailing white space removed, runs as one space, trailing empty lines
/// removed, and a final CRLF for a body that is not empty.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut lines: Vec<String> = text
        .split("\r\n")
        .map(|l| {
            let trimmed = l.trim_end_matches([' ', '\t']);
            let mut out = String::with_capacity(trimmed.len());
            let mut in_space = false;
            for c in trimmed.chars() {
                if c == ' ' || c == '\t' {
                    if !in_space {
                        out.push(' ');
                    }
                    in_space = true;
                } else {
                    out.push(c);
                    in_space = false;
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Vec::new();
    }
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_canonicalization() {
        assert_eq!(
            relaxed_header("Subject", " A  \t b \r\n\tc "),
            "subject:A b c"
        );
        assert_eq!(relaxed_body(b"a  b \t\r\n\r\n\r\n"), b"a b\r\n");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        let f = fields(b"From: a\r\nSubject: x\r\n y\r\n");
        assert_eq!(f[1], ("Subject".to_string(), " x\r\n y".to_string()));
    }
}
