//! The running service: the [`App`] handle the handlers share, and [`run`], which serves
//! the listeners and runs the background work until told to stop.
//!
//! Data flows one way: http → guard → recovery → store, with the outbox worker draining
//! what the store queued. `App` holds the pieces and hands them out by reference; it has no
//! public fields.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Notify};

use crate::config::{self, Config};
use crate::crypto::{AdminToken, CodeKey, Hasher};
use crate::guard::Guard;
use crate::http::server::{self, Handler, Listener};
use crate::metrics::Metrics;
use crate::outbox::{self, catalog::Catalog};
use crate::store::{unix_ms, Db, StoreError};
use crate::{http, secrets, tasks};

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
    /// The last readiness answer and when it was made (reused for a second).
    readiness: Mutex<Option<(Instant, Option<&'static str>)>>,
    /// The message texts, also used to choose a request's locale.
    catalog: Arc<Catalog>,
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
        let data_dir = &config.storage.data_dir;
        secrets::private_dir(data_dir)
            .map_err(|e| StartError::Io(format!("cannot create {}: {e}", data_dir.display())))?;
        let db = open_writable(&config)?;
        let metrics = Arc::new(Metrics::new());
        let guard = Guard::new(&config, metrics.clone())?;
        guard.set_blocks(db.blocks()?.into_iter().map(|(net, _)| net).collect());
        let server_secret = secrets::server_secret(&config)?;
        let admin_token = secrets::admin_token(&config)?;
        let p = &config.passwords;
        let inner = Inner {
            code_key: CodeKey::new(server_secret.expose().as_bytes()),
            guard,
            admin_token: AdminToken::new(admin_token.expose()),
            hasher: Hasher::new(p.pbkdf2_iterations, p.max_concurrent_hashes),
            outbox: Arc::new(Notify::new()),
            metrics,
            outbox_alive: AtomicBool::new(true),
            outbox_heartbeat: Arc::new(AtomicU64::new(unix_ms(SystemTime::now()))),
            readiness: Mutex::new(None),
            catalog: Arc::new(Catalog::load(&config.mail.templates_dir)?),
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
            wake: self.inner.outbox.clone(),
            metrics: self.inner.metrics.clone(),
            heartbeat: self.inner.outbox_heartbeat.clone(),
        })
    }

    /// Starts the outbox worker; the task marks the outbox dead when the worker ends.
    fn spawn_outbox(
        &self,
        stop: watch::Receiver<bool>,
    ) -> Result<tokio::task::JoinHandle<()>, StartError> {
        let worker = self.worker()?;
        let transports = self.transports()?;
        tracing::info!(lanes = transports.len(), "{}", transports[0].describe());
        let probe = outbox::Transport::from_config(&self.inner.config)?;
        tokio::spawn(async move {
            // A warning, not a failure: the relay may come up later, and mail waits for it.
            if let Err(e) = probe.probe().await {
                tracing::warn!(error = %e, "the mail transport is not usable right now; mail stays queued until it is");
            }
        });
        let app = self.clone();
        Ok(tokio::spawn(async move {
            outbox::run(worker, transports, stop).await;
            app.inner.outbox_alive.store(false, Relaxed);
        }))
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

/// The bound listeners.
pub struct Listeners {
    pub public: TcpListener,
    pub admin: TcpListener,
    /// The admin socket in the data directory, for the CLI (see [`bind_admin_socket`]).
    pub admin_socket: UnixListener,
}

/// Binds the admin socket `<data_dir>/admin.sock`, readable and writable by this user only
/// (the data directory is too). Call it after the store is open: sled's lock proves that no
/// other resetgate owns the directory, so a socket file found there is a stale one.
pub fn bind_admin_socket(config: &Config) -> Result<UnixListener, StartError> {
    use std::os::unix::fs::PermissionsExt;
    let path = config.admin_socket();
    let fail = |e: std::io::Error| {
        StartError::Io(format!(
            "cannot listen on the admin socket {}: {e}",
            path.display()
        ))
    };
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let listener = UnixListener::bind(&path).map_err(fail)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    Ok(listener)
}

/// Serves the listeners and runs the outbox worker and the sweeper until `shutdown`
/// resolves, or the store meets a write fault; then stops accepting, drains requests, lets
/// the worker finish its message (each within `server.shutdown_grace`), and flushes the
/// store. After a fault it returns [`StartError::StoreFailed`], unless it was asked to stop.
pub async fn run(
    listeners: Listeners,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    app.hasher().warm_up();
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker_task = app.spawn_outbox(stop_rx.clone())?;
    if let Some(period) = sd_notify::watchdog_enabled() {
        tokio::spawn(tasks::watchdog(period, app.clone(), stop_rx.clone()));
    }
    let sweeper_task = tokio::spawn(tasks::sweep(app.clone(), stop_rx.clone()));
    let servers = serve_all(&app, listeners, &stop_rx);
    let asked_to_stop = tokio::select! {
        () = shutdown => true,
        () = app.db().faulted() => {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            false
        }
    };
    // Every listener stops accepting and drains at once; the worker finishes its message.
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    tracing::info!("requests drained; waiting for the outbox message in flight");
    finish_outbox(app.config().server.shutdown_grace, worker_task).await;
    let _ = sweeper_task.await;
    // The CLI then finds no socket and opens the store itself.
    let _ = std::fs::remove_file(app.config().admin_socket());
    settle(&app, asked_to_stop)
}

/// Spawns a server per listener. Per-client connection caps are for the public listener;
/// the admin ones serve local tools, which all come from one address.
fn serve_all(
    app: &App,
    listeners: Listeners,
    stop: &watch::Receiver<bool>,
) -> [tokio::task::JoinHandle<()>; 3] {
    let per_client = app.config().server.max_connections_per_client;
    [
        (
            Listener::Tcp(listeners.public),
            http::public::route as Handler,
            per_client,
        ),
        (Listener::Tcp(listeners.admin), http::admin::route, 0),
        (
            Listener::Local(listeners.admin_socket),
            http::admin::route,
            0,
        ),
    ]
    .map(|(listener, route, per_client)| {
        let mut stop = stop.clone();
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let limits = app.limits(per_client);
        tokio::spawn(server::serve(listener, app.clone(), route, limits, stopped))
    })
}

/// Lets the outbox finish the message in flight, at most `grace`.
async fn finish_outbox(grace: Duration, mut worker_task: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(grace, &mut worker_task).await.is_err() {
        // Cancelling a send is safe: the entry stays queued and goes out after the restart.
        worker_task.abort();
        tracing::warn!("the outbox message in flight did not finish within server.shutdown_grace; it stays queued");
    }
}

/// The last flush, or the fault that prevents it.
fn settle(app: &App, asked_to_stop: bool) -> Result<(), StartError> {
    if let Some(fault) = app.db().fault() {
        // Everything acknowledged was flushed before its answer: nothing is lost. A
        // message sent but not yet removed goes out once more after the restart. Asked to
        // stop, the process stops as asked (exit 0); else it asks to be restarted (75).
        if asked_to_stop {
            tracing::warn!(error = fault, "stopped; the store could not write, so nothing more was flushed (nothing acknowledged is lost)");
            return Ok(());
        }
        return Err(StartError::StoreFailed(fault.to_string()));
    }
    app.db().flush_blocking()?;
    tracing::info!("store flushed; bye");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn readiness(app: &App) -> Option<&'static str> {
        // Each check starts afresh: the reuse window is not what these tests are about.
        *app.inner.readiness.lock().unwrap() = None;
        app.readiness().await
    }

    #[tokio::test]
    async fn readiness_names_what_is_wrong_with_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().join("data");
        let app = App::open(config).unwrap();
        assert_eq!(readiness(&app).await, None);

        app.inner.outbox_heartbeat.store(0, Relaxed);
        assert_eq!(
            readiness(&app).await,
            Some("the outbox worker shows no sign of life")
        );

        app.inner.outbox_alive.store(false, Relaxed);
        assert_eq!(readiness(&app).await, Some("the outbox worker has stopped"));

        app.inner.outbox_alive.store(true, Relaxed);
        let now = unix_ms(SystemTime::now());
        app.inner.outbox_heartbeat.store(now, Relaxed);
        assert_eq!(readiness(&app).await, None, "ready again");
    }
}
