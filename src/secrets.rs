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
    private_dir_as(dir, "`storage.data_dir`")
}

/// [`private_dir`] for the directory that `key` names.
pub fn private_dir_as(dir: &Path, key: &str) -> Result<(), SecretError> {
    make_private_dir(dir)
        .map_err(|e| SecretError::Io(format!("cannot create {}: {e}", dir.display())))?;
    check_private_dir_as(dir, key).map_err(|e| SecretError::Config(ConfigError(e)))
}

/// The directories the service keeps private: the data directory, and the file
/// transport's mail directory when it lies elsewhere. `create`: make them if missing
/// (else a missing one is skipped, as `check-config` does).
pub fn private_dirs(config: &Config, create: bool) -> Result<(), SecretError> {
    let data = &config.storage.data_dir;
    let mail = config.mail_dir();
    let mut dirs = vec![(data.clone(), "`storage.data_dir`")];
    if config.mail.transport == crate::config::Transport::File && !mail.starts_with(data) {
        dirs.push((mail, "`mail.file.dir`"));
    }
    for (dir, key) in dirs {
        if create {
            private_dir_as(&dir, key)?;
        } else if dir.exists() {
            check_private_dir_as(&dir, key).map_err(|e| SecretError::Config(ConfigError(e)))?;
        }
    }
    Ok(())
}

/// The generated secrets, where they exist and no configured one replaces them: private
/// and long enough (`check-config`).
pub fn check_generated(config: &Config) -> Result<(), SecretError> {
    if config.server_secret()?.is_none() {
        let path = config.storage.data_dir.join(SECRET_FILE);
        if path.exists() {
            load_or_create(&path)?;
        }
    }
    if config.admin_token()?.is_none() {
        let path = token_path(config);
        if path.exists() {
            load_or_create(&path)?;
        }
    }
    Ok(())
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

/// Refuses a data directory that is not this user's own: one that group or others may
/// read, write or enter, or that holds anything they may, anything another user owns, or a
/// symbolic link (whose target would escape these checks). A directory another user owns
/// is accepted only for root, and only when every directory above it belongs to root and
/// is closed to other writers: the owner of one above could otherwise have put their own
/// data directory there (the admin socket's peer check says the same, `cli::admin_client`).
/// The message names the first such path and what to run.
pub fn check_private_dir(dir: &Path) -> Result<(), String> {
    check_private_dir_as(dir, "`storage.data_dir`")
}

/// [`check_private_dir`] for the directory that `key` names.
pub fn check_private_dir_as(dir: &Path, key: &str) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let read =
        |path: &Path, e: std::io::Error| format!("{key}: cannot read {}: {e}", path.display());
    let top = std::fs::metadata(dir).map_err(|e| read(dir, e))?;
    let owner = top.uid();
    let me = rustix::process::geteuid().as_raw();
    if owner != me {
        if me != 0 {
            return Err(format!(
                "{key}: {} belongs to uid {owner}, not to this user (uid {me}): run the service and its commands as the data directory's owner",
                dir.display()
            ));
        }
        root_owned_above(dir).map_err(|why| format!("{key}: {why}"))?;
    }
    let mut pending = vec![(dir.to_path_buf(), top)];
    while let Some((path, meta)) = pending.pop() {
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            return Err(format!(
                "{key}: {} is a symbolic link; the data directory holds only its own files (point mail.file.dir elsewhere instead)",
                path.display()
            ));
        }
        if meta.uid() != owner {
            return Err(format!(
                "{key}: {} belongs to uid {}, not to the data directory's owner (uid {owner}): run `chown -R {owner} {}`",
                path.display(),
                meta.uid(),
                dir.display()
            ));
        }
        if mode & 0o077 != 0 {
            return Err(format!(
                "{key}: {} is open to other users (mode {:04o}); the data directory holds the store, the secrets and queued codes: run `chmod -R go-rwx {}`",
                path.display(),
                mode & 0o777,
                dir.display()
            ));
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| read(&path, e))? {
                let entry = entry.map_err(|e| read(&path, e))?.path();
                let meta = std::fs::symlink_metadata(&entry).map_err(|e| read(&entry, e))?;
                pending.push((entry, meta));
            }
        }
    }
    Ok(())
}

/// Every directory above `dir` (canonical) belongs to root and is closed to other writers.
pub fn root_owned_above(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for ancestor in dir.ancestors().skip(1) {
        let meta =
            std::fs::metadata(ancestor).map_err(|e| format!("{}: {e}", ancestor.display()))?;
        if meta.uid() != 0 {
            return Err(format!(
                "{} belongs to uid {}, not root, so its owner could have put another data directory there; keep the data directory under directories that belong to root, or run the command as the service's user",
                ancestor.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by other users, so anyone could have put another data directory there; use a data directory in a private place",
                ancestor.display()
            ));
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
                let text = format!("{}: {why}", path.display());
                return Err(SecretError::Config(ConfigError(text)));
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
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_private_dir(&data).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", data.join("link")).unwrap();
        let err = check_private_dir(&data).unwrap_err();
        assert!(err.contains("link is a symbolic link"), "{err}");
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
