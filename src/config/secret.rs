//! Secrets: never printed, optionally read from a file (systemd `LoadCredential=`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{bad, ConfigError};

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

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

/// The inline value, else the file's content without its trailing newline.
pub(super) fn resolve(
    file_key: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    let inline = inline.filter(|s| !s.0.is_empty());
    match (inline, file.filter(|p| !p.as_os_str().is_empty())) {
        (Some(_), Some(_)) => Err(bad(file_key, "set either the value or the file, not both")),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(path)) => {
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
    fn never_printed() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }
}
