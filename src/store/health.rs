//! Whether the store can still keep promises: a write fault, and free space on the data
//! directory's file system.
//!
//! sled keeps the first I/O error it meets and refuses every later write, so a fault
//! (ENOSPC, EROFS, EIO) is permanent for the process: the first one is recorded here, and
//! the service stops delivering mail and exits so that its supervisor starts it afresh
//! (see `run`). Free space is read with statvfs: below `storage.min_free`, the service
//! refuses new codes and holds delivery back, before a full disk makes writes fail. Every
//! forgot-password reads it, so it is read through a descriptor of the directory opened at
//! start-up (`fstatvfs`), which spares each request the path's lookup (0.7 µs a call
//! against 1.7 µs by path on the development machine).

use std::path::PathBuf;
use std::sync::OnceLock;

use tokio::sync::Notify;

use super::StoreError;

pub(super) struct Health {
    /// The first write fault, as text for the log and `/readyz`.
    fault: OnceLock<String>,
    faulted: Notify,
    dir: PathBuf,
    /// The data directory, opened for `fstatvfs` (None if it could not be: then by path).
    dir_fd: Option<rustix::fd::OwnedFd>,
    min_free: u64,
    /// The warning about low space, once a minute.
    warned: crate::throttle::Throttle,
}

impl Health {
    pub(super) fn new(dir: PathBuf, min_free: u64) -> Health {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir_fd = rustix::fs::open(&dir, flags, Mode::empty()).ok();
        Health {
            fault: OnceLock::new(),
            faulted: Notify::new(),
            dir,
            dir_fd,
            min_free,
            warned: crate::throttle::Throttle::default(),
        }
    }

    /// Records `e` if it means the store can no longer write (I/O, a failed flush).
    pub(super) fn observe(&self, e: &StoreError) {
        let fault = match e {
            StoreError::Sled(sled::Error::Io(io)) => io.to_string(),
            StoreError::Flush(text) => text.clone(),
            _ => return,
        };
        if self.fault.set(fault).is_ok() {
            tracing::error!(
                error = self.fault.get().map(String::as_str).unwrap_or_default(),
                "the store failed to write; sled refuses every later write, so delivery stops and the service exits (code 75) to be restarted"
            );
            self.faulted.notify_waiters();
        }
    }

    pub(super) fn fault(&self) -> Option<&str> {
        self.fault.get().map(String::as_str)
    }

    /// Resolves once a fault was recorded.
    pub(super) async fn faulted(&self) {
        let notified = self.faulted.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.fault.get().is_none() {
            notified.await;
        }
    }

    /// Free bytes for unprivileged writers on the data directory's file system.
    pub(super) fn free_bytes(&self) -> Option<u64> {
        let stat = match &self.dir_fd {
            Some(fd) => rustix::fs::fstatvfs(fd),
            None => rustix::fs::statvfs(&self.dir),
        }
        .ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// The free bytes, when they are below `storage.min_free` (warned about at most once a
    /// minute); None when there is room, or the check is off.
    pub(super) fn low_on_space(&self) -> Option<u64> {
        if self.min_free == 0 {
            return None;
        }
        let free = self.free_bytes()?;
        if free >= self.min_free {
            return None;
        }
        if self.warned.ready() {
            tracing::warn!(
                free_bytes = free,
                min_free = self.min_free,
                dir = %self.dir.display(),
                "free space is below storage.min_free: new codes are refused (503) and delivery waits until there is room"
            );
        }
        Some(free)
    }
}
