//! The file transport: each message becomes `<dir>/<outbox id>.eml` (RFC 5322).
//!
//! The name comes from the outbox id, so a re-delivery after a crash rewrites the same file.

use std::io::Write;
use std::path::PathBuf;

use super::{Rendered, SendError};

pub struct FileDir {
    dir: PathBuf,
}

impl FileDir {
    pub fn new(dir: PathBuf) -> FileDir {
        FileDir { dir }
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

    pub async fn send(&mut self, message: &Rendered) -> Result<(), SendError> {
        let dir = self.dir.clone();
        let name = format!("{:020}.eml", message.id);
        let bytes = message.bytes.clone();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
            .await
            .map_err(|e| SendError::Transient(format!("file writer task failed: {e}")))?
            .map_err(|e| SendError::Transient(format!("writing to {}: {e}", self.dir.display())))
    }
}

/// Write to a temporary name, fsync, rename, fsync the directory: a reader never sees half a file.
/// The directory and the files are private to this user: the messages carry live codes.
fn write_atomically(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::secrets::private_dir(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}
