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

/// Creates `dir` (and its parents) readable by this user only. An existing directory, or
/// anything in it, that group or others may use is refused (the process's umask is 077,
/// but a directory made before, by hand or by another tool, keeps its modes): it holds the
/// store with the password hashes, the secrets and the queued mail with live codes.
pub fn private_dir(dir: &Path) -> Result<(), SecretError> {
    make_private_dir(dir)
        .map_err(|e| SecretError::Io(format!("cannot create {}: {e}", dir.display())))?;
    check_private_dir(dir).map_err(|e| SecretError::Config(ConfigError(e)))
}

/// Creates `dir` (and its parents) with mode 0700 if it is missing.
pub fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Refuses a data directory that group or others may read, write or enter, or that holds
/// anything they may: the message names the first such path and the `chmod` to run.
/// Symbolic links are not followed (their own mode means nothing).
pub fn check_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let open = |path: &Path, mode: u32| {
        format!(
            "`storage.data_dir`: {} is open to other users (mode {:04o}); the data directory holds the store, the secrets and queued codes: run `chmod -R go-rwx {}`",
            path.display(),
            mode & 0o777,
            dir.display()
        )
    };
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("`storage.data_dir`: cannot read {}: {e}", path.display()))?;
        if meta.file_type().is_symlink() && path != dir {
            continue;
        }
        let meta = if path == dir {
            std::fs::metadata(&path)
                .map_err(|e| format!("`storage.data_dir`: cannot read {}: {e}", path.display()))?
        } else {
            meta
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(open(&path, mode));
        }
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path)
                .map_err(|e| format!("`storage.data_dir`: cannot read {}: {e}", path.display()))?;
            for entry in entries.flatten() {
                pending.push(entry.path());
            }
        }
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
        Ok(text) if !text.trim().is_empty() => {
            if let Some(why) = crate::config::weak_secret(text.trim()) {
                return Err(SecretError::Io(format!("{}: {why}", path.display())));
            }
            return Ok(Secret::new(text.trim().to_string()));
        }
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
    fn anything_open_inside_the_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        private_dir(&data).unwrap();
        std::fs::create_dir(data.join("store")).unwrap();
        let file = data.join("store/db");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(data.join("store"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        check_private_dir(&data).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = check_private_dir(&data).unwrap_err();
        assert!(err.contains("store/db") && err.contains("0640"), "{err}");
        assert!(
            err.contains(&format!("chmod -R go-rwx {}", data.display())),
            "{err}"
        );
        std::os::unix::fs::symlink("/etc/passwd", data.join("link")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private_dir(&data).expect("a symbolic link's own mode means nothing");
    }

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
