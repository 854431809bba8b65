//! The file transport: each message becomes `<dir>/<outbox id>.eml` (RFC 5322).
//!
//! The name comes from the outbox id, so a re-delivery after a crash rewrites the same file.
//!
//! A file is written under a temporary name and renamed, so a reader never sees half of it.
//! It is fsynced (with its directory) only when `storage.durability = "fsync"`: with
//! `flush` the store itself survives a process crash but not a power loss, and so does a
//! file in the page cache. The fsyncs were about 7 % of the service's CPU under load.

use std::io::Write;
use std::path::PathBuf;

use super::{Rendered, SendError};

pub struct FileDir {
    dir: PathBuf,
    /// Survive a power loss too (`storage.durability = "fsync"`).
    fsync: bool,
}

impl FileDir {
    pub fn new(dir: PathBuf, fsync: bool) -> FileDir {
        FileDir { dir, fsync }
    }

    pub fn describe(&self) -> String {
        format!(
            "file transport: mail is written as .eml files to {} (set mail.transport = \"smtp\" and [mail.smtp] to send real mail)",
            self.dir.display()
        )
    }

    /// The directory exists (or can be made) and is writable.
    pub fn probe(&self) -> Result<(), String> {
        crate::secrets::private_dir(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let probe = self.dir.join(".probe");
        std::fs::write(&probe, b"").map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }

    pub async fn send(&mut self, message: &Rendered) -> Result<String, SendError> {
        let dir = self.dir.clone();
        let name = format!("{:020}.eml", message.id);
        let written = format!("written to {}", dir.join(&name).display());
        let bytes = message.bytes.clone();
        let fsync = self.fsync;
        tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes, fsync))
            .await
            .map_err(|e| SendError::Transient(format!("file writer task failed: {e}")))?
            .map_err(|e| SendError::Transient(format!("writing to {}: {e}", self.dir.display())))?;
        Ok(written)
    }
}

/// Write to a fresh temporary name, (fsync,) rename, (fsync the directory): a reader never sees
/// half a file. The directory and the files are private to this user: the messages carry
/// live codes.
fn write_atomically(
    dir: &std::path::Path,
    name: &str,
    bytes: &[u8],
    fsync: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::secrets::make_private_dir(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    // A new file only (O_EXCL), never through a link (O_NOFOLLOW): a name planted in the
    // directory cannot redirect a message that carries a live code. One left by a crash
    // in the middle of a write is removed first.
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)
    };
    let mut file = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            create()?
        }
        other => other?,
    };
    file.write_all(bytes)?;
    if fsync {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    if fsync {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
