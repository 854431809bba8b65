//! The outbox runs on a thread of its own, with a single-threaded tokio runtime.
//!
//! On the request workers, a lane's every step (each SMTP reply, each store call) waited in
//! line behind thousands of request tasks: under an unpaced request storm, four lanes
//! delivered ~150 mails/s while 8,900 requests/s got their 200. On its own thread, the
//! kernel's scheduler gives the outbox its share of the cores whatever the request load
//! (`cargo bench --bench outbox`, README "Performance").

use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::webhook::{Endpoint, Webhooks};
use super::{Transport, Worker};

/// The outbox's thread, as the service's shutdown sees it.
pub struct Running {
    done: oneshot::Receiver<()>,
    abort: oneshot::Sender<()>,
}

/// Starts `worker` (mail) and the webhook endpoints' tasks on a new thread; `finished` runs
/// there once both have stopped.
pub fn spawn(
    worker: Worker,
    transports: Vec<Transport>,
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
