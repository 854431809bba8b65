//! The running service: the [`App`] handle the handlers share, and [`run`], which serves
//! the listeners and runs the background work until told to stop.
//!
//! Data flows one way: http → guard → recovery → store, with the outbox worker draining
//! what the store queued. `App` holds the pieces and hands them out by reference; it has no
//! public fields.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};

use crate::config::{self, Config};
use crate::crypto::{AdminToken, CodeKey, Hasher};
use crate::guard::Guard;
use crate::http::server;
use crate::metrics::Metrics;
use crate::outbox::{self, catalog::Catalog};
use crate::store::{unix_ms, Db, StoreError};

mod run;
use crate::secrets;
pub use run::{bind_admin_socket, run, Listeners};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: Db,
    code_key: CodeKey,
    guard: Guard,
    admin_token: AdminToken,
    /// Password hashing, off the async threads and bounded.
    hasher: Hasher,
    /// Wakes the outbox worker when a request queued mail.
    outbox: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// False once the outbox worker has stopped (readiness, watchdog).
    outbox_alive: AtomicBool,
    /// Unix ms of the outbox worker's last sign of life (readiness, watchdog).
    outbox_heartbeat: Arc<AtomicU64>,
    /// When the oldest code mail waiting for a connection was queued (Unix ms; 0: none),
    /// as the outbox's dispatcher last saw it: the admission signal of forgot-password.
    outbox_lag: Arc<AtomicU64>,
    /// The warning that new codes are refused because mail is late, once a minute.
    behind_warned: crate::throttle::Throttle,
    /// The last readiness answer and when it was made (reused for a second).
    readiness: Mutex<Option<(Instant, Option<&'static str>)>>,
    /// The message texts, also used to choose a request's locale.
    catalog: Arc<Catalog>,
    /// The reset page's texts, logo, stylesheet and fixed pages, made at start-up.
    page: crate::web::Page,
    /// Which webhook endpoints want which events.
    hooks: outbox::webhook::Hooks,
    /// The online password check, when `passwords.breach_api` is set.
    breach: Option<crate::breach::Breach>,
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
    /// later start may succeed) and loads (or creates) the secrets.
    pub fn open(config: Config) -> Result<App, StartError> {
        secrets::private_dirs(&config, true)?;
        let db = open_writable(&config)?;
        let metrics = Arc::new(Metrics::new());
        let guard = Guard::new(&config, metrics.clone())?;
        guard.set_blocks(db.blocks()?.into_iter().map(|(net, _)| net).collect());
        let server_secret = secrets::server_secret(&config)?;
        let admin_token = secrets::admin_token(&config)?;
        let p = &config.passwords;
        let breach = crate::breach::Breach::new(&config, metrics.clone())?;
        let inner = Inner {
            code_key: CodeKey::new(server_secret.expose().as_bytes()),
            guard,
            admin_token: AdminToken::new(admin_token.expose()),
            hasher: Hasher::new(p.pbkdf2_iterations, p.max_concurrent_hashes),
            outbox: Arc::new(Notify::new()),
            metrics,
            outbox_alive: AtomicBool::new(true),
            outbox_heartbeat: Arc::new(AtomicU64::new(unix_ms(SystemTime::now()))),
            outbox_lag: Arc::new(AtomicU64::new(0)),
            behind_warned: crate::throttle::Throttle::default(),
            readiness: Mutex::new(None),
            catalog: Arc::new(Catalog::load(&config.mail.templates_dir)?),
            page: crate::web::Page::new(&config)?,
            hooks: outbox::webhook::Hooks::new(&config),
            breach,
            db,
            config,
        };
        Ok(App {
            inner: Arc::new(inner),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn code_key(&self) -> &CodeKey {
        &self.inner.code_key
    }

    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    pub fn admin_token(&self) -> &AdminToken {
        &self.inner.admin_token
    }

    pub fn hasher(&self) -> &Hasher {
        &self.inner.hasher
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn page(&self) -> &crate::web::Page {
        &self.inner.page
    }

    /// The online password check, if configured.
    pub fn breach(&self) -> Option<&crate::breach::Breach> {
        self.inner.breach.as_ref()
    }

    /// Which webhook endpoints want which events.
    pub fn hooks(&self) -> &outbox::webhook::Hooks {
        &self.inner.hooks
    }

    /// What wakes the outbox worker: notify it once mail was queued (and is durable).
    pub fn outbox(&self) -> &Notify {
        &self.inner.outbox
    }

    /// `GET /readyz`: None when ready, else why not. The answer is reused for a second, so
    /// that polling it (it is public) cannot force a flush per request.
    pub async fn readiness(&self) -> Option<&'static str> {
        let now = Instant::now();
        let lock = || {
            self.inner
                .readiness
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        if let Some((at, reason)) = *lock() {
            if now.duration_since(at) < Duration::from_secs(1) {
                return reason;
            }
        }
        let reason = self.check_ready().await;
        *lock() = Some((now, reason));
        reason
    }

    async fn check_ready(&self) -> Option<&'static str> {
        let db = &self.inner.db;
        if db.fault().is_some() {
            return Some("the store cannot write; the service is restarting");
        }
        if db.low_on_space().is_some() {
            return Some("free space is below storage.min_free; new codes are refused");
        }
        let now = unix_ms(SystemTime::now());
        if let Err(e) = db.blocking(move |db| db.probe_write(now)).await {
            tracing::error!(error = %e, "readiness: the store refused a write");
            return Some("the store is not writable");
        }
        if db.durable().await.is_err() {
            return Some("the store cannot flush");
        }
        self.outbox_trouble()
    }

    /// How long the oldest code mail has waited for a connection, when that is more than
    /// half a code's lifetime: a code issued now would likely expire before its mail leaves,
    /// so forgot-password refuses new codes (admission control). Warned about once a minute.
    pub fn outbox_behind(&self, now_ms: u64) -> Option<Duration> {
        let queued = self.inner.outbox_lag.load(Relaxed);
        let waited = Duration::from_millis(now_ms.saturating_sub(queued));
        let patience = self.inner.config.recovery.code_ttl / 2;
        if queued == 0 || waited <= patience {
            return None;
        }
        if self.inner.behind_warned.ready() {
            tracing::warn!(
                waited_ms = waited.as_millis() as u64,
                "the oldest code mail has waited more than half a code's lifetime for delivery: new codes are refused (503) until the outbox catches up"
            );
        }
        Some(waited)
    }

    /// Unix ms at which the oldest code mail waiting for delivery was queued (0: none), for
    /// the metrics.
    pub fn outbox_lag_since(&self) -> u64 {
        self.inner.outbox_lag.load(Relaxed)
    }

    /// Why the outbox is not working, if it is not: the worker stopped, or has shown no sign
    /// of life for longer than any healthy wait (a minute idle, or an SMTP step) allows.
    pub fn outbox_trouble(&self) -> Option<&'static str> {
        if !self.inner.outbox_alive.load(Relaxed) {
            return Some("the outbox worker has stopped");
        }
        let smtp = &self.inner.config.mail.smtp;
        let patience = (smtp.connect_timeout + smtp.timeout * 4).max(Duration::from_secs(300));
        let now = unix_ms(SystemTime::now());
        let quiet = now.saturating_sub(self.inner.outbox_heartbeat.load(Relaxed));
        (quiet > patience.as_millis() as u64).then_some("the outbox worker shows no sign of life")
    }

    /// Builds what the outbox needs (transports, letterhead, DKIM signer) and drops it: a
    /// configuration check before the service says it is ready.
    pub fn check_mail(&self) -> Result<(), StartError> {
        self.transports()?;
        self.worker()?;
        outbox::webhook::Endpoint::all(&self.inner.config)?;
        Ok(())
    }

    /// One transport per lane: `mail.smtp.connections` for SMTP, one for files.
    fn transports(&self) -> Result<Vec<outbox::Transport>, StartError> {
        let config = &self.inner.config;
        let lanes = match config.mail.transport {
            config::Transport::Smtp => config.mail.smtp.connections,
            config::Transport::File => 1,
        };
        let transports: Result<Vec<_>, _> = (0..lanes)
            .map(|_| outbox::Transport::from_config(config))
            .collect();
        Ok(transports?)
    }

    fn worker(&self) -> Result<outbox::Worker, StartError> {
        let (config, db) = (&self.inner.config, &self.inner.db);
        let catalog = self.inner.catalog.clone();
        Ok(outbox::Worker {
            db: db.clone(),
            letterhead: outbox::templates::Letterhead::new(config, db.instance_id(), catalog)?,
            retry_initial: config.mail.retry_initial,
            retry_max: config.mail.retry_max,
            batch: config.mail.batch,
            wake: self.inner.outbox.clone(),
            metrics: self.inner.metrics.clone(),
            heartbeat: self.inner.outbox_heartbeat.clone(),
            lag: self.inner.outbox_lag.clone(),
        })
    }

    /// Starts the outbox worker; the task marks the outbox dead when the worker ends.
    fn spawn_outbox(
        &self,
        stop: watch::Receiver<bool>,
    ) -> Result<outbox::thread::Running, StartError> {
        let worker = self.worker()?;
        let transports = self.transports()?;
        tracing::info!(lanes = transports.len(), "{}", transports[0].describe());
        // SMTP: the relay is probed with the mail-authentication checks (tasks::mail_auth).
        if self.inner.config.mail.transport == config::Transport::File {
            let probe = outbox::Transport::from_config(&self.inner.config)?;
            tokio::spawn(async move {
                // A warning, not a failure: mail waits for the directory to become writable.
                if let Err(e) = probe.probe().await {
                    tracing::warn!(error = %e, "the mail transport is not usable right now; mail stays queued until it is");
                }
            });
        }
        let endpoints = outbox::webhook::Endpoint::all(&self.inner.config)?;
        for e in &endpoints {
            let t = &e.target;
            let scheme = if t.tls { "https" } else { "http" };
            // The path without its query, which may carry a token.
            let path = t.path.split('?').next().unwrap_or("/");
            tracing::info!(
                endpoint = e.name,
                "webhook endpoint at {scheme}://{}:{}{path}",
                t.host,
                t.port,
            );
        }
        let shared = outbox::webhook::Webhooks {
            db: self.inner.db.clone(),
            metrics: self.inner.metrics.clone(),
            wake: self.inner.db.webhooks_queued(),
        };
        let app = self.clone();
        let finished = move || app.inner.outbox_alive.store(false, Relaxed);
        outbox::thread::spawn(worker, transports, (shared, endpoints), stop, finished)
            .map_err(|e| StartError::Io(format!("cannot start the outbox thread: {e}")))
    }

    /// The HTTP limits of a listener; per-client connection caps only where asked.
    fn limits(&self, per_client: usize) -> server::Limits {
        let s = &self.inner.config.server;
        server::Limits {
            max_connections: s.max_connections,
            max_connections_per_client: per_client,
            header_read_timeout: s.header_read_timeout,
            write_timeout: s.write_timeout,
            max_headers: s.max_headers,
            max_header_bytes: s.max_header_bytes,
            shutdown_grace: s.shutdown_grace,
        }
    }
}

/// Opens the store and checks that it takes a durable write.
fn open_writable(config: &Config) -> Result<Db, StartError> {
    let now = unix_ms(SystemTime::now());
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
