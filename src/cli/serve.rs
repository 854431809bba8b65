//! `resetgate serve`: logging, listeners, systemd notification, signals.

use std::io::IsTerminal;

use tokio::net::TcpListener;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::Failure;
use crate::config::Config;
use crate::{bind_admin_socket, run, App, Listeners};

pub fn serve(config: Config) -> Result<(), Failure> {
    // Kept until the end: dropping it writes the log lines still waiting.
    let _log = init_logging(&config);
    super::runtime()?.block_on(async move {
        // Before anything can tell a supervisor or a test that the service runs: a SIGTERM
        // that comes early must stop it cleanly, not kill it.
        let shutdown = shutdown_signal()?;
        let app = App::open(config)?;
        // Sockets from systemd (LISTEN_FDS) first: the public one, then optionally the admin one.
        let mut passed = listenfd::ListenFd::from_env();
        let public = listener(&mut passed, 0, app.config().server.listen, "server.listen").await?;
        let admin = listener(&mut passed, 1, app.config().admin.listen, "admin.listen").await?;
        loopback_only(&admin, app.config().admin.tls())?;
        let admin_socket = bind_admin_socket(app.config())?;
        // Everything that can still fail on configuration (transport, CA, DKIM key,
        // templates) is checked before READY=1, so systemd sees a failed start, not a loop.
        // `run` says "resetgate ready" and notifies systemd once the listeners are served.
        app.check_mail()?;
        let listeners = Listeners {
            public,
            admin,
            admin_socket,
        };
        run(listeners, app, shutdown).await?;
        Ok(())
    })
}

/// The socket systemd passed at `index`, else a fresh one bound to `addr`.
async fn listener(
    passed: &mut listenfd::ListenFd,
    index: usize,
    addr: std::net::SocketAddr,
    key: &str,
) -> Result<TcpListener, Failure> {
    let fail =
        |e: std::io::Error| Failure::runtime(format!("cannot listen on {addr} ({key}): {e}"));
    match passed.take_tcp_listener(index) {
        Ok(Some(std)) => {
            std.set_nonblocking(true).map_err(fail)?;
            tracing::info!(
                socket = index,
                "using the listening socket passed by systemd"
            );
            TcpListener::from_std(std).map_err(fail)
        }
        Ok(None) => TcpListener::bind(addr).await.map_err(fail),
        Err(e) => Err(Failure::runtime(format!(
            "the socket passed by systemd (LISTEN_FDS) is not usable: {e}"
        ))),
    }
}

/// The admin listener must be on a loopback address unless it speaks TLS, whether bound
/// from `admin.listen` (checked with the configuration) or passed by systemd.
fn loopback_only(admin: &TcpListener, tls: bool) -> Result<(), Failure> {
    let addr = admin
        .local_addr()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if tls || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    Err(Failure::config(format!(
        "the admin socket passed by systemd listens on {addr}; the admin API must listen on a loopback address, or speak TLS on another one: set admin.tls_cert_file and admin.tls_key_file"
    )))
}

/// Log lines go to stderr in batches from a writer thread ([`super::log_sink`]).
fn init_logging(config: &Config) -> super::log_sink::Flusher {
    let directives = config.log.directives();
    let filter: Targets = directives
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = super::log_sink::start(std::io::stderr());
    // `Targets` filters by level and module ("warn,resetgate=info") without EnvFilter's
    // regular-expression engine, which weighed about 250 KB of the binary.
    let builder = tracing_subscriber::fmt()
        .with_max_level(most_verbose(&directives))
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .with_timer(super::log_format::Time);
    match config.log.format {
        crate::config::LogFormat::Text => builder
            .fmt_fields(super::log_format::Fields)
            .finish()
            .with(filter)
            .init(),
        crate::config::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .init(),
    }
    guard
}

/// The most verbose level any directive of `log.level` enables. It caps what the `log`
/// crate's macros (sled's) even ask about: asking costs a call per macro otherwise.
fn most_verbose(directives: &str) -> tracing::level_filters::LevelFilter {
    directives
        .split(',')
        .filter_map(|d| d.rsplit('=').next()?.trim().parse().ok())
        .max()
        .unwrap_or(tracing::level_filters::LevelFilter::INFO)
}

/// rustls needs one process-wide provider; install ring's, so that no other crypto backend
/// that some dependency enables can make building a TLS client panic.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves on the first signal.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let install =
        |kind| signal(kind).map_err(|e| Failure::runtime(format!("cannot handle signals: {e}")));
    let (mut term, mut int) = (
        install(SignalKind::terminate())?,
        install(SignalKind::interrupt())?,
    );
    Ok(async move {
        let which = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!(signal = which, "shutting down");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    })
}

#[cfg(test)]
mod tests {
    use tracing::level_filters::LevelFilter;

    #[test]
    fn the_most_verbose_directive_sets_the_cap() {
        assert_eq!(super::most_verbose("info"), LevelFilter::INFO);
        assert_eq!(
            super::most_verbose("warn,resetgate=debug"),
            LevelFilter::DEBUG
        );
        assert_eq!(super::most_verbose("off"), LevelFilter::OFF);
    }
}
