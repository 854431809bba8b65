//! Where a CLI command goes: the running service's admin API, or the store itself.
//!
//! sled lets one process own the data directory, so while the service runs commands go
//! through its admin API; when nothing listens there, they open the store themselves.

use super::admin_client::AdminClient;
use super::Failure;
use crate::config::Config;
use crate::crypto::Hasher;
use crate::store::{Db, StoreError};

pub enum Target {
    Admin(AdminClient, Box<Config>),
    Direct(Db, Box<Config>, Hasher),
}

impl Target {
    /// The admin API when something listens on `admin.listen`, else the store directly.
    pub async fn connect(config: Config) -> Result<Target, Failure> {
        let addr = config.admin.listen;
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => {
                let token = crate::secrets::cli_token(&config)?.ok_or_else(|| {
                    Failure::config(format!(
                        "a service listens at {addr}, but no admin token was found: set admin.token_file"
                    ))
                })?;
                Ok(Target::Admin(AdminClient { addr, token }, Box::new(config)))
            }
            Err(_) => {
                let s = &config.storage;
                // As `serve` does: sled would make the directory with the umask's mode, and it
                // will hold the secrets and the mail with live codes.
                crate::secrets::private_dir(&s.data_dir).map_err(|e| {
                    Failure::runtime(format!("cannot create {}: {e}", s.data_dir.display()))
                })?;
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
                        let p = &config.passwords;
                        let hasher = Hasher::new(p.pbkdf2_iterations, p.max_concurrent_hashes);
                        Ok(Target::Direct(db, Box::new(config), hasher))
                    }
                    Err(StoreError::Locked(dir)) => Err(Failure::runtime(format!(
                        "{} is locked by a running resetgate, but its admin API at {addr} does not answer; check admin.listen",
                        dir.display()
                    ))),
                    Err(e) => Err(Failure::runtime(e.to_string())),
                }
            }
        }
    }

    pub fn config(&self) -> &Config {
        match self {
            Target::Admin(_, c) | Target::Direct(_, c, _) => c,
        }
    }
}

pub fn store_failure(e: StoreError) -> Failure {
    Failure::runtime(e.to_string())
}
