//! resetgate: a self-hosted, single-binary password-recovery service.
//!
//! It serves the CargoExtra gateway's recovery API (`POST /api/v1/user/forgot-password`, …)
//! from a sled store on local disk, with rate limits in moka and an in-process outbox that
//! delivers mail through SMTP (mail-send) or into `.eml` files.
//!
//! # Layout
//! - `config`: figment layers (defaults → TOML → `RESETGATE_*`), humantime durations, secrets.
//! - `http`: hyper server, routing, JSON, the public and the admin listener.
//! - `guard`: deny list and rate limits, before any work is done.
//! - `recovery`: the recovery steps as plain functions of (store, key, config, now).
//! - `store`: sled trees, typed records, group-commit durability.
//! - `outbox`: the delivery task and its transports.
//! - `accounts`, `crypto`, `mail_address`, `secrets`: small shared pieces.
//!
//! [`run`] serves until a shutdown future resolves; the binary passes the signals, tests a
//! oneshot.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod guard;
pub mod http;
pub mod mail_address;
pub mod metrics;
pub mod outbox;
pub mod recovery;
pub mod secrets;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use config::Config;
use crypto::CodeKey;
use guard::Guard;
use http::admin::AdminToken;
use store::Db;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    pub code_key: CodeKey,
    pub guard: Guard,
    pub admin_token: AdminToken,
    /// Password hashing, off the async threads and bounded.
    pub hasher: crypto::Hasher,
    /// Wakes the outbox worker when a request queued mail.
    pub outbox: Arc<Notify>,
    /// Prometheus metrics (`/metrics` on the admin listener).
    pub metrics: Arc<metrics::Metrics>,
    /// False once the outbox worker has stopped (readiness, watchdog).
    pub outbox_alive: Arc<std::sync::atomic::AtomicBool>,
    /// Unix ms of the outbox worker's last sign of life (readiness, watchdog).
    pub outbox_heartbeat: Arc<std::sync::atomic::AtomicU64>,
    /// The last readiness answer and when it was made (reused for a second).
    pub readiness: std::sync::Mutex<Option<(std::time::Instant, Option<&'static str>)>>,
    /// forgot-password's constant 200 body.
    pub forgot_ok: Bytes,
    /// The message texts, also used to choose a request's locale.
    pub catalog: Arc<outbox::catalog::Catalog>,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.inner
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Io(String),
    /// The store met a write fault (sled then refuses every write): exit code 75, so that
    /// systemd's `Restart=on-failure` starts a fresh process.
    #[error("the store cannot write ({0}); exiting to be restarted")]
    StoreFailed(String),
}

impl App {
    /// Opens the store and loads (or creates) the secrets.
    pub fn open(config: Config) -> Result<App, StartError> {
        let data_dir = &config.storage.data_dir;
        secrets::private_dir(data_dir)
            .map_err(|e| StartError::Io(format!("cannot create {}: {e}", data_dir.display())))?;
        // A full or read-only disk: refuse to start (exit code 75; a later start may
        // succeed) rather than deliver mail whose removal could not be recorded.
        let now = store::unix_ms(std::time::SystemTime::now());
        let db = Db::open_with(&config.storage)
            .and_then(|db| {
                db.probe_write(now)?;
                db.flush_blocking()?;
                Ok(db)
            })
            .map_err(|e| match e {
                store::StoreError::Sled(sled::Error::Io(io)) => {
                    StartError::StoreFailed(io.to_string())
                }
                other => StartError::Store(other),
            })?;
        let metrics = Arc::new(metrics::Metrics::new());
        let guard = Guard::new(&config, metrics.clone())?;
        guard.set_blocks(db.blocks()?.into_iter().map(|(net, _)| net).collect());
        let server_secret = secrets::server_secret(&config)?;
        let admin_token = secrets::admin_token(&config)?;
        let inner = AppInner {
            code_key: CodeKey::new(server_secret.expose().as_bytes()),
            guard,
            admin_token: AdminToken::new(admin_token.expose()),
            hasher: crypto::Hasher::new(
                config.passwords.pbkdf2_iterations,
                config.passwords.max_concurrent_hashes,
            ),
            outbox: Arc::new(Notify::new()),
            metrics: metrics.clone(),
            outbox_alive: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            readiness: std::sync::Mutex::new(None),
            outbox_heartbeat: Arc::new(std::sync::atomic::AtomicU64::new(store::unix_ms(
                std::time::SystemTime::now(),
            ))),
            forgot_ok: http::public::forgot_ok_body(&config),
            catalog: Arc::new(outbox::catalog::Catalog::load(&config.mail.templates_dir)?),
            db,
            config,
        };
        Ok(App {
            inner: Arc::new(inner),
        })
    }

    /// Why the outbox is not working, if it is not: the worker stopped, or has shown no sign
    /// of life for longer than any healthy wait (a minute idle, or an SMTP step) allows.
    pub fn outbox_trouble(&self) -> Option<&'static str> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.outbox_alive.load(Relaxed) {
            return Some("the outbox worker has stopped");
        }
        let smtp = &self.config.mail.smtp;
        let patience =
            (smtp.connect_timeout + smtp.timeout * 4).max(std::time::Duration::from_secs(300));
        let now = store::unix_ms(std::time::SystemTime::now());
        let quiet = now.saturating_sub(self.outbox_heartbeat.load(Relaxed));
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
        let lanes = match self.config.mail.transport {
            config::Transport::Smtp => self.config.mail.smtp.connections,
            config::Transport::File => 1,
        };
        let transports: Result<Vec<_>, _> = (0..lanes)
            .map(|_| outbox::Transport::from_config(&self.config))
            .collect();
        Ok(transports?)
    }

    fn worker(&self) -> Result<outbox::Worker, StartError> {
        let mail = &self.config.mail;
        Ok(outbox::Worker {
            db: self.db.clone(),
            letterhead: outbox::templates::Letterhead::new(
                &self.config,
                self.db.instance_id(),
                self.catalog.clone(),
            )?,
            retry_initial: mail.retry_initial,
            retry_max: mail.retry_max,
            wake: self.outbox.clone(),
            metrics: self.metrics.clone(),
            heartbeat: self.outbox_heartbeat.clone(),
        })
    }
}

/// The bound listeners.
pub struct Listeners {
    pub public: TcpListener,
    pub admin: TcpListener,
    /// The admin socket in the data directory, for the CLI (see [`bind_admin_socket`]).
    pub admin_socket: tokio::net::UnixListener,
}

/// Binds the admin socket `<data_dir>/admin.sock`, readable and writable by this user only
/// (the data directory is too). Call it after the store is open: sled's lock proves that no
/// other resetgate owns the directory, so a socket file found there is a stale one.
pub fn bind_admin_socket(config: &Config) -> Result<tokio::net::UnixListener, StartError> {
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
    let listener = tokio::net::UnixListener::bind(&path).map_err(fail)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    Ok(listener)
}

/// Serves both listeners and runs the outbox worker and the sweeper until `shutdown`
/// resolves, or the store meets a write fault; then stops accepting, drains requests, lets
/// the worker finish its message (each within `server.shutdown_grace`), and flushes the
/// store. After a fault it returns [`StartError::StoreFailed`].
pub async fn run(
    listeners: Listeners,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let worker = app.worker()?;
    let transports = app.transports()?;
    app.hasher.warm_up();
    tracing::info!(lanes = transports.len(), "{}", transports[0].describe());
    let probe = outbox::Transport::from_config(&app.config)?;
    tokio::spawn(async move {
        // A warning, not a failure: the relay may come up later, and mail waits for it.
        if let Err(e) = probe.probe().await {
            tracing::warn!(error = %e, "the mail transport is not usable right now; mail stays queued until it is");
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_rx_for_worker = stop_rx.clone();
    let outbox_alive = app.outbox_alive.clone();
    let alive = outbox_alive.clone();
    let worker_task = tokio::spawn(async move {
        outbox::run(worker, transports, stop_rx_for_worker).await;
        alive.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    if let Some(period) = sd_notify::watchdog_enabled() {
        tokio::spawn(watchdog(period, app.clone(), stop_rx.clone()));
    }
    let sweeper_task = tokio::spawn(sweep(app.clone(), stop_rx.clone()));

    let s = &app.config.server;
    let limits = || http::server::Limits {
        max_connections: s.max_connections,
        max_connections_per_client: s.max_connections_per_client,
        header_read_timeout: s.header_read_timeout,
        write_timeout: s.write_timeout,
        max_headers: s.max_headers,
        max_header_bytes: s.max_header_bytes,
        shutdown_grace: s.shutdown_grace,
    };
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    use http::server::Listener;
    // Per-client connection caps are for the public listener; the admin ones serve local
    // tools, which all come from one address.
    let servers = [
        (
            Listener::Tcp(listeners.public),
            http::public::route as http::server::Handler,
            s.max_connections_per_client,
        ),
        (Listener::Tcp(listeners.admin), http::admin::route, 0),
        (
            Listener::Local(listeners.admin_socket),
            http::admin::route,
            0,
        ),
    ]
    .map(|(listener, route, per_client)| {
        let limits = http::server::Limits {
            max_connections_per_client: per_client,
            ..limits()
        };
        let serving = http::server::serve(
            listener,
            app.clone(),
            route,
            limits,
            stopped(stop_rx.clone()),
        );
        tokio::spawn(serving)
    });

    let asked_to_stop = tokio::select! {
        () = shutdown => true,
        () = app.db.faulted() => {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            false
        }
    };
    // Both listeners stop accepting and drain at once; the worker finishes its message.
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    tracing::info!("requests drained; waiting for the outbox message in flight");
    let grace = app.config.server.shutdown_grace;
    let mut worker_task = worker_task;
    if tokio::time::timeout(grace, &mut worker_task).await.is_err() {
        // Cancelling a send is safe: the entry stays queued and goes out after the restart.
        worker_task.abort();
        tracing::warn!("the outbox message in flight did not finish within server.shutdown_grace; it stays queued");
    }
    let _ = sweeper_task.await;
    // The CLI then finds no socket and opens the store itself.
    let _ = std::fs::remove_file(app.config.admin_socket());
    if let Some(fault) = app.db.fault() {
        // Everything acknowledged was flushed before its answer: nothing is lost. A
        // message sent but not yet removed goes out once more after the restart. Asked to
        // stop, the process stops as asked (exit 0); else it asks to be restarted (75).
        if asked_to_stop {
            tracing::warn!(error = fault, "stopped; the store could not write, so nothing more was flushed (nothing acknowledged is lost)");
            return Ok(());
        }
        return Err(StartError::StoreFailed(fault.to_string()));
    }
    app.db.flush_blocking()?;
    tracing::info!("store flushed; bye");
    Ok(())
}

/// Feeds systemd's watchdog (WATCHDOG=1 at half the period) while the outbox worker is
/// alive and shows signs of life: a dead or wedged worker means mail stops, and systemd
/// should restart the service.
async fn watchdog(period: std::time::Duration, app: App, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let trouble = app
            .db
            .fault()
            .map(|_| "the store cannot write")
            .or_else(|| app.outbox_trouble());
        match trouble {
            None => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
            Some(why) => tracing::error!(reason = why, "not feeding the watchdog"),
        }
    }
}

/// Removes expired reset state now and then: sled has no TTL.
async fn sweep(app: App, mut stop: watch::Receiver<bool>) {
    let every = app.config.storage.sweep_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let now = store::unix_ms(std::time::SystemTime::now());
        let lockout = app.config.recovery.lockout();
        let swept = app.db.blocking(move |db| {
            db.scrub_dead(now)?;
            let stray = db.sweep_stray_codes()?;
            if stray > 0 {
                tracing::info!(
                    stray,
                    "removed code index entries left by an interrupted request"
                );
            }
            db.sweep_resets(now, lockout)
        });
        match swept.await {
            Ok(0) => {}
            Ok(n) => {
                app.metrics.codes_expired.inc_by(n);
                tracing::debug!(changed = n, "swept expired codes");
            }
            Err(e) => tracing::error!(error = %e, "sweeping expired codes failed"),
        }
    }
}
