//! The outbox runs on a thread of its own, with a single-threaded tokio runtime.
//!
//! On the request workers, a lane's every step (each SMTP reply, each store call) waited in
//! line behind thousands of request tasks: under an unpaced request storm, four lanes
//! delivered ~150 mails/s while 8,900 requests/s got their 200. On its own thread, the
//! kernel's scheduler gives the outbox its share of the cores whatever the request load
//! (`cargo bench --bench outbox`, docs/performance.md).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::catalog::Catalog;
use super::templates::Letterhead;
use super::webhook::{Endpoint, Webhooks};
use super::{Delivery, Transport, Worker};
use crate::config::{self, Config, ConfigError};
use crate::metrics::Metrics;
use crate::store::Db;

/// The outbox's thread, as the service's shutdown sees it.
pub struct Running {
    done: oneshot::Receiver<()>,
    abort: oneshot::Sender<()>,
}

/// What the configuration makes of the outbox before it starts: a transport per lane
/// (`mail.smtp.connections` for SMTP, one for files), the letterhead (templates, DKIM) and
/// the webhook endpoints. Building it checks the configuration.
pub struct Plan {
    transports: Vec<Transport>,
    /// A connection of its own for probing the relay while retries wait for it.
    prober: Transport,
    letterhead: Letterhead,
    endpoints: Vec<Endpoint>,
}

impl Plan {
    pub fn new(config: &Config, db: &Db, catalog: &Arc<Catalog>) -> Result<Plan, ConfigError> {
        let lanes = match config.mail.transport {
            config::Transport::Smtp => config.mail.smtp.connections,
            config::Transport::File => 1,
        };
        let transports = (0..lanes)
            .map(|_| Transport::from_config(config))
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            transports,
            prober: Transport::from_config(config)?,
            letterhead: Letterhead::new(config, db.instance_id(), catalog.clone())?,
            endpoints: Endpoint::all(config)?,
        })
    }
}

/// What the outbox runs with besides its plan.
pub struct Parts {
    pub config: Arc<Config>,
    pub db: Db,
    pub metrics: Arc<Metrics>,
    pub delivery: Delivery,
}

/// Starts the mail lanes and the webhook endpoints' tasks on a new thread, after a probe of
/// the mail transport (a warning, not a failure: the relay may come up later). The
/// delivery side is marked stopped once both have ended.
pub fn start(plan: Plan, parts: Parts, stop: watch::Receiver<bool>) -> std::io::Result<Running> {
    let Parts {
        config,
        db,
        metrics,
        delivery,
    } = parts;
    tracing::info!(
        lanes = plan.transports.len(),
        "{}",
        plan.transports[0].describe()
    );
    for e in &plan.endpoints {
        // The URL without its query, which may carry a token.
        tracing::info!(
            endpoint = e.name,
            "webhook endpoint at {}",
            e.target.shown()
        );
    }
    // SMTP: the relay is probed with the mail-authentication checks (`tasks::MailChecks`).
    let file = config.mail.transport == config::Transport::File;
    if let (true, Ok(probe)) = (file, Transport::from_config(&config)) {
        tokio::spawn(async move {
            // A warning, not a failure: mail waits for the directory to become writable.
            if let Err(e) = probe.probe().await {
                tracing::warn!(error = %e, "the mail transport is not usable right now; mail stays queued until it is");
            }
        });
    }
    let (wake, heartbeat, lag) = delivery.worker_side();
    let worker = Worker {
        db: db.clone(),
        letterhead: plan.letterhead,
        retry_initial: config.mail.retry_initial,
        retry_max: config.mail.retry_max,
        batch: config.mail.batch,
        wake,
        metrics: metrics.clone(),
        heartbeat,
        lag,
        relay_retries: std::sync::atomic::AtomicBool::new(true),
        relay_trouble: tokio::sync::Notify::new(),
    };
    let shared = Webhooks {
        wake: db.webhooks_queued(),
        db,
        metrics,
    };
    let finished = move || delivery.stopped();
    spawn(
        worker,
        (plan.transports, plan.prober),
        (shared, plan.endpoints),
        stop,
        finished,
    )
}

/// Starts `worker` (mail: the lanes' transports and the prober's) and the webhook endpoints' tasks on a new thread; `finished` runs
/// there once both have stopped.
fn spawn(
    worker: Worker,
    transports: (Vec<Transport>, Transport),
    hooks: (Webhooks, Vec<Endpoint>),
    stop: watch::Receiver<bool>,
    finished: impl FnOnce() + Send + 'static,
) -> std::io::Result<Running> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("resetgate-outbox-io")
        .build()?;
    let (done_tx, done) = oneshot::channel();
    let (abort, aborted) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("resetgate-outbox".into())
        .spawn(move || {
            runtime.block_on(async {
                let mail = super::run(worker, transports, stop.clone());
                let (shared, endpoints) = hooks;
                let webhooks = super::webhook::run(shared, endpoints, stop);
                tokio::select! {
                    _ = async { tokio::join!(mail, webhooks) } => {}
                    // Dropping the lanes cancels a send in flight: its entry stays queued.
                    _ = aborted => {}
                }
            });
            // Waits for the outbox's own store calls on blocking threads to return.
            drop(runtime);
            finished();
            let _ = done_tx.send(());
        })?;
    Ok(Running { done, abort })
}

impl Running {
    /// Waits for the outbox to stop (it finishes the messages in flight), at most `grace`;
    /// then cancels them. False if it had to.
    pub async fn finish(mut self, grace: Duration) -> bool {
        if tokio::time::timeout(grace, &mut self.done).await.is_ok() {
            return true;
        }
        let _ = self.abort.send(());
        // Cancelling is immediate but for a store call under way; that one gets a grace too.
        let _ = tokio::time::timeout(grace, self.done).await;
        false
    }
}
