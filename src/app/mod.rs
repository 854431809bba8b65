//! Wiring: the running service built from the configuration as a few handles with one job
//! each, and [`run`], which serves them until told to stop. No rule lives here.
//!
//! - the public listener's handle (`http::public::Public`): the recovery steps
//!   (`steps::Steps`), the reset page, the guard, the catalog, readiness;
//! - the admin listeners' handle (`http::admin::AdminApi`): the operations (`admin::Admin`),
//!   the token and the guard (bans, the limit on wrong tokens);
//! - the delivery side (`outbox::Delivery`): the outbox's wake-up and health, and the
//!   outbox thread started from it.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{self, Config};
use crate::crypto::{AdminToken, CodeKey, Hasher};
use crate::guard::Guard;
use crate::http::admin::AdminApi;
use crate::http::public::Public;
use crate::http::server;
use crate::metrics::Metrics;
use crate::outbox::{self, catalog::Catalog, Delivery};
use crate::store::{unix_ms, Db, StoreError};
use crate::{admin, http, secrets, steps, web};

mod run;
pub use run::{bind_admin_socket, run, Listeners};

/// The service's parts; only `resetgate serve` holds it.
pub struct App {
    config: Arc<Config>,
    db: Db,
    hasher: Hasher,
    metrics: Arc<Metrics>,
    delivery: Delivery,
    catalog: Arc<Catalog>,
    public: Public,
    admin: AdminApi,
    /// The admin listener's TLS (`admin.tls_cert_file`, `admin.tls_key_file`), if set.
    admin_tls: Option<http::tls::Acceptor>,
}

/// Why the service could not start, or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
    /// The store met a write fault (sled then refuses every write): exit code 75, so that
    /// systemd's `Restart=on-failure` starts a fresh process.
    #[error("the store cannot write ({0}); exiting to be restarted")]
    StoreFailed(String),
}

impl From<secrets::SecretError> for StartError {
    fn from(e: secrets::SecretError) -> StartError {
        match e {
            secrets::SecretError::Config(c) => StartError::Config(c),
            secrets::SecretError::Io(text) => StartError::Io(text),
        }
    }
}

impl App {
    /// Opens the store (refusing one that cannot take a durable write: exit code 75, a
    /// later start may succeed), loads (or creates) the secrets and builds the handles.
    pub fn open(config: Config) -> Result<App, StartError> {
        secrets::private_dirs(&config, true)?;
        let db = open_writable(&config)?;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let guard = Arc::new(Guard::new(&config, metrics.clone())?);
        guard.set_blocks(db.blocks()?.into_iter().map(|(net, _)| net).collect());
        let p = &config.passwords;
        let hasher = Hasher::new(p.pbkdf2_iterations, p.max_concurrent_hashes);
        let delivery = Delivery::new(&config);
        let hooks = outbox::webhook::Hooks::new(&config);
        let catalog = Arc::new(Catalog::load(&config.mail.templates_dir)?);
        let steps = steps::Steps::new(steps::Parts {
            config: config.clone(),
            db: db.clone(),
            key: CodeKey::new(secrets::server_secret(&config)?.expose().as_bytes()),
            hasher: hasher.clone(),
            guard: guard.clone(),
            hooks: hooks.clone(),
            breach: crate::breach::Breach::new(&config, metrics.clone())?,
            metrics: metrics.clone(),
            delivery: delivery.clone(),
        });
        let public = Public::new(http::public::Parts {
            config: config.clone(),
            steps,
            page: web::Page::new(&config)?,
            guard: guard.clone(),
            catalog: catalog.clone(),
            metrics: metrics.clone(),
            ready: http::ready::Readiness::new(db.clone(), delivery.clone()),
        });
        let operations = admin::Admin::service(admin::Service {
            db: db.clone(),
            hasher: hasher.clone(),
            breach: crate::breach::Breach::new(&config, metrics.clone())?,
            guard: guard.clone(),
            hooks,
            delivery: delivery.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
        });
        let timeout = config.server.header_read_timeout;
        let admin_tls = http::tls::Acceptor::from_config(&config.admin, timeout)?;
        let admin = AdminApi::new(http::admin::Parts {
            admin: operations,
            token: AdminToken::new(secrets::admin_token(&config)?.expose()),
            guard,
            config: config.clone(),
            metrics: metrics.clone(),
        });
        Ok(App {
            config,
            db,
            hasher,
            metrics,
            delivery,
            catalog,
            public,
            admin,
            admin_tls,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Builds what the outbox needs (transports, letterhead, DKIM signer) and drops it: a
    /// configuration check before the service says it is ready.
    pub fn check_mail(&self) -> Result<(), StartError> {
        outbox::thread::Plan::new(&self.config, &self.db, &self.catalog)?;
        outbox::webhook::Endpoint::all(&self.config)?;
        Ok(())
    }

    /// Starts the outbox thread: mail and webhook deliveries.
    fn spawn_outbox(
        &self,
        stop: watch::Receiver<bool>,
    ) -> Result<outbox::thread::Running, StartError> {
        let plan = outbox::thread::Plan::new(&self.config, &self.db, &self.catalog)?;
        let parts = outbox::thread::Parts {
            config: self.config.clone(),
            db: self.db.clone(),
            metrics: self.metrics.clone(),
            delivery: self.delivery.clone(),
        };
        outbox::thread::start(plan, parts, stop)
            .map_err(|e| StartError::Io(format!("cannot start the outbox thread: {e}")))
    }

    /// The HTTP limits of a listener; per-client connection caps only where asked.
    fn limits(&self, per_client: usize) -> server::Limits {
        let s = &self.config.server;
        server::Limits {
            max_connections: s.max_connections,
            max_connections_per_client: per_client,
            header_read_timeout: s.header_read_timeout,
            write_timeout: s.write_timeout,
            max_headers: s.max_headers,
            max_header_bytes: s.max_header_bytes,
            shutdown_grace: s.shutdown_grace,
            trusted: config::nets(&s.trusted_proxies),
        }
    }
}

/// Opens the store and checks that it takes a durable write.
fn open_writable(config: &Config) -> Result<Db, StartError> {
    let now = unix_ms(std::time::SystemTime::now());
    let db = Db::open_with(&config.storage).and_then(|db| {
        db.probe_write(now)?;
        db.flush_blocking()?;
        Ok(db)
    });
    db.map_err(|e| match e {
        StoreError::Sled(sled::Error::Io(io)) => StartError::StoreFailed(io.to_string()),
        other => StartError::Store(other),
    })
}

#[cfg(test)]
mod tests;
