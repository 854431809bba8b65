//! Secrets that are generated on first start when not configured: the server secret (keys
//! the code MACs) and the admin token. Each lives in the data directory with mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, Secret};

pub const SECRET_FILE: &str = "secret";

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Io(String),
}
pub const TOKEN_FILE: &str = "admin.token";

/// `server.secret`/`server.secret_file`, else `<data_dir>/secret`, created if missing.
pub fn server_secret(config: &Config) -> Result<Secret, SecretError> {
    match config.server_secret()? {
        Some(s) => Ok(s),
        None => load_or_create(&config.storage.data_dir.join(SECRET_FILE)),
    }
}

/// `admin.token`/`admin.token_file`, else `<data_dir>/admin.token`, created if missing.
pub fn admin_token(config: &Config) -> Result<Secret, SecretError> {
    match config.admin_token()? {
        Some(s) => Ok(s),
        None => load_or_create(&token_path(config)),
    }
}

/// Creates `dir` (and its parents) readable by this user only; an existing directory that
/// others can read is reported, since it holds the store, the secrets and queued codes.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory is readable by other users; chmod 700 it");
    }
    Ok(())
}

fn token_path(config: &Config) -> PathBuf {
    config.storage.data_dir.join(TOKEN_FILE)
}

fn load_or_create(path: &Path) -> Result<Secret, SecretError> {
    let io = |e: std::io::Error| SecretError::Io(format!("{}: {e}", path.display()));
    if path.exists() {
        crate::config::check_private(path).map_err(SecretError::Io)?;
    }
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(Secret::new(text.trim().to_string())),
        Ok(_) => return Err(SecretError::Io(format!("{} is empty", path.display()))),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    let value: String = crate::crypto::random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(value.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    tracing::info!(path = %path.display(), "generated a new secret");
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_dirs_are_0700() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        private_dir(&data).unwrap();
        assert_eq!(
            std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.expose().len(), 64);
        assert_eq!(
            load_or_create(&path).unwrap(),
            first,
            "read back, not regenerated"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
