//! Where a CLI command goes: the running service's admin API, or the store itself.
//!
//! sled lets one process own the data directory, so while the service runs commands go
//! through its admin API on the admin socket in the data directory; when no service
//! answers there, they open the store themselves.

use super::admin_client::AdminClient;
use super::Failure;
use crate::admin::Admin;
use crate::config::Config;
use crate::store::{Db, StoreError};

pub enum Target {
    /// A service runs: its admin API, over the admin socket.
    Admin(AdminClient, Box<Config>),
    /// No service runs: the operations on the store, which this process opened.
    Direct(Admin, Box<Config>),
}

impl Target {
    /// The running service's admin socket when a service answers there, else the store
    /// directly (sled's lock then proves that no other process owns it). Nothing is ever
    /// sent to a TCP address: whatever listens on `admin.listen` while the service is
    /// stopped may be anyone's.
    pub async fn connect(config: Config) -> Result<Target, Failure> {
        // The socket under the canonical data directory: the path the peer check inspects
        // is the path connected to.
        let data_dir = match std::fs::canonicalize(&config.storage.data_dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Target::direct(config),
            Err(e) => {
                return Err(Failure::runtime(format!(
                    "{}: {e}",
                    config.storage.data_dir.display()
                )))
            }
        };
        let socket = data_dir.join(crate::config::ADMIN_SOCKET);
        match tokio::net::UnixStream::connect(&socket).await {
            Ok(_) => {
                let client = AdminClient { socket, data_dir };
                Ok(Target::Admin(client, Box::new(config)))
            }
            Err(e) if no_service(&e) => Target::direct(config),
            Err(e) => Err(Failure::runtime(format!(
                "cannot reach the running service's admin socket {}: {e} (run the command as the service's user or as root)",
                socket.display()
            ))),
        }
    }

    fn direct(config: Config) -> Result<Target, Failure> {
        let s = &config.storage;
        // As `serve` does: sled would make the directory with the umask's mode, and it
        // will hold the secrets and the mail with live codes.
        crate::secrets::private_dir(&s.data_dir).map_err(super::secret_failure)?;
        match Db::open_with(s) {
            Ok(db) => {
                if let Some(m) = db.migrated() {
                    // The CLI has no log: tell the operator on stderr.
                    eprintln!(
                        "resetgate: migrated the store in {} from schema {} to {} ({} records)",
                        s.data_dir.display(),
                        m.from,
                        crate::store::SCHEMA_VERSION,
                        m.records
                    );
                }
                let admin = Admin::direct(db, config.clone())?;
                Ok(Target::Direct(admin, Box::new(config)))
            }
            Err(StoreError::Locked(dir)) => Err(Failure::runtime(format!(
                "{} is locked by a running resetgate, but its admin socket {} does not answer",
                dir.display(),
                config.admin_socket().display()
            ))),
            Err(e) => Err(Failure::runtime(e.to_string())),
        }
    }

    pub fn config(&self) -> &Config {
        match self {
            Target::Admin(_, c) | Target::Direct(_, c) => c,
        }
    }
}

/// No socket, or nobody listening on it (a stale file after a crash).
fn no_service(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionRefused, NotFound};
    matches!(e.kind(), NotFound | ConnectionRefused)
}
