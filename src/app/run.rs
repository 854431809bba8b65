//! `run`: the listeners served and the background work running until told to stop, then
//! an orderly stop (drain, the outbox's message in flight, the last flush).

use std::future::Future;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use super::{App, StartError};
use crate::config::Config;
use crate::http::server::{self, Handler, Listener};
use crate::{http, outbox, tasks};

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

/// Serves the listeners and runs the outbox worker and the sweeper (saying "resetgate
/// ready" and notifying systemd once it serves) until `shutdown` resolves, or the store meets a write fault; then stops accepting, drains requests, lets
/// the worker finish its message (each within `server.shutdown_grace`), and flushes the
/// store. After a fault it returns [`StartError::StoreFailed`], unless it was asked to stop.
pub async fn run(
    listeners: Listeners,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    app.hasher.warm_up();
    if app.config().passwords.min_guess_score > 0 {
        tokio::task::spawn_blocking(crate::recovery::policy::warm_up);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker_task = app.spawn_outbox(stop_rx.clone())?;
    if let Some(period) = sd_notify::watchdog_enabled() {
        let (db, delivery) = (app.db.clone(), app.delivery.clone());
        tokio::spawn(tasks::watchdog(period, db, delivery, stop_rx.clone()));
    }
    let sweeper = tasks::Sweeper {
        db: app.db.clone(),
        config: app.config.clone(),
        metrics: app.metrics.clone(),
    };
    let sweeper_task = tokio::spawn(sweeper.run(stop_rx.clone()));
    tokio::spawn(tasks::trim_heap(stop_rx.clone()));
    if app.config().mail.transport == crate::config::Transport::Smtp {
        let checks = tasks::MailChecks {
            config: app.config.clone(),
            metrics: app.metrics.clone(),
        };
        tokio::spawn(checks.run(stop_rx.clone()));
    }
    let (public, admin) = (listeners.public.local_addr(), listeners.admin.local_addr());
    let servers = serve_all(&app, listeners, &stop_rx);
    // Said once requests are served, not merely queued by the kernel: start-up work above
    // (the outbox's transports) would otherwise delay the first answers after it.
    tracing::info!(
        public = %public.map_err(|e| StartError::Io(e.to_string()))?,
        admin = %admin.map_err(|e| StartError::Io(e.to_string()))?,
        // No counts here: sled counts by scanning, which would slow the start-up.
        "resetgate ready"
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let asked_to_stop = tokio::select! {
        () = shutdown => true,
        () = app.db.faulted() => {
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
/// the admin ones serve a few tools, which may all come from one address. The admin TCP
/// listener speaks TLS when it is configured.
fn serve_all(
    app: &App,
    listeners: Listeners,
    stop: &watch::Receiver<bool>,
) -> [tokio::task::JoinHandle<()>; 3] {
    let stopped = || {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    };
    let per_client = app.config().server.max_connections_per_client;
    let public = server::serve(
        Listener::Tcp(listeners.public),
        app.public.clone(),
        http::public::route as Handler<_>,
        app.limits(per_client),
        stopped(),
    );
    let admin = |listener| {
        let route = http::admin::route as Handler<_>;
        server::serve(listener, app.admin.clone(), route, app.limits(0), stopped())
    };
    let admin_tcp = match &app.admin_tls {
        Some(tls) => Listener::Tls(listeners.admin, tls.clone()),
        None => Listener::Tcp(listeners.admin),
    };
    [
        tokio::spawn(public),
        tokio::spawn(admin(admin_tcp)),
        tokio::spawn(admin(Listener::Local(listeners.admin_socket))),
    ]
}

/// Lets the outbox finish the messages in flight, at most `grace`.
async fn finish_outbox(grace: Duration, outbox: outbox::thread::Running) {
    if !outbox.finish(grace).await {
        // Cancelling a send is safe: the entry stays queued and goes out after the restart.
        tracing::warn!("the outbox message in flight did not finish within server.shutdown_grace; it stays queued");
    }
}

/// The last flush, or the fault that prevents it.
fn settle(app: &App, asked_to_stop: bool) -> Result<(), StartError> {
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
