//! The delivery side as the rest of the service sees it ([`Delivery`]): how to wake the
//! outbox when mail is queued, and how it is doing (alive, its last sign of life, how long
//! the oldest code mail has waited), for readiness, the watchdog and admission control.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::config::Config;
use crate::store::unix_ms;

/// Cheap to clone.
#[derive(Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

struct Inner {
    /// Wakes the outbox worker when a request queued mail.
    wake: Arc<Notify>,
    /// False once the outbox worker has stopped.
    alive: AtomicBool,
    /// Unix ms of the outbox worker's last sign of life.
    heartbeat: Arc<AtomicU64>,
    /// When the oldest code mail waiting for a connection was queued (Unix ms; 0: none),
    /// as the outbox's dispatcher last saw it.
    lag: Arc<AtomicU64>,
    /// The warning that new codes are refused because mail is late, once a minute.
    behind_warned: crate::throttle::Throttle,
    /// The longest a healthy worker stays quiet: a minute idle, or an SMTP step.
    patience: Duration,
}

impl Delivery {
    pub fn new(config: &Config) -> Delivery {
        let smtp = &config.mail.smtp;
        Delivery {
            inner: Arc::new(Inner {
                wake: Arc::new(Notify::new()),
                alive: AtomicBool::new(true),
                heartbeat: Arc::new(AtomicU64::new(unix_ms(SystemTime::now()))),
                lag: Arc::new(AtomicU64::new(0)),
                behind_warned: crate::throttle::Throttle::default(),
                patience: (smtp.connect_timeout + smtp.timeout * 4).max(Duration::from_secs(300)),
            }),
        }
    }

    /// Tells the outbox that mail was queued (and is durable).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// What the worker waits on, its heartbeat and its lag: the worker's side.
    pub(super) fn worker_side(&self) -> (Arc<Notify>, Arc<AtomicU64>, Arc<AtomicU64>) {
        let i = &self.inner;
        (i.wake.clone(), i.heartbeat.clone(), i.lag.clone())
    }

    /// Sets the worker's last sign of life (tests).
    #[cfg(test)]
    pub fn quiet_since(&self, unix_ms: u64) {
        self.inner.heartbeat.store(unix_ms, Relaxed);
    }

    /// The worker has ended.
    pub(crate) fn stopped(&self) {
        self.inner.alive.store(false, Relaxed);
    }

    /// Unix ms at which the oldest code mail waiting for delivery was queued (0: none).
    pub fn lag_since(&self) -> u64 {
        self.inner.lag.load(Relaxed)
    }

    /// How long the oldest code mail has waited for a connection at `now_ms` (None when
    /// none waits); warned about, once a minute, when that is more than `patience`.
    pub fn oldest_waited(&self, now_ms: u64, patience: Duration) -> Option<Duration> {
        let queued = self.lag_since();
        if queued == 0 {
            return None;
        }
        let waited = Duration::from_millis(now_ms.saturating_sub(queued));
        if waited > patience && self.inner.behind_warned.ready() {
            tracing::warn!(
                waited_ms = waited.as_millis() as u64,
                "the oldest code mail has waited more than half a code's lifetime for delivery: new codes are refused (503) until the outbox catches up"
            );
        }
        Some(waited)
    }

    /// Why the outbox is not working, if it is not: the worker stopped, or has shown no sign
    /// of life for longer than any healthy wait allows.
    pub fn trouble(&self) -> Option<&'static str> {
        if !self.inner.alive.load(Relaxed) {
            return Some("the outbox worker has stopped");
        }
        let now = unix_ms(SystemTime::now());
        let quiet = now.saturating_sub(self.inner.heartbeat.load(Relaxed));
        (quiet > self.inner.patience.as_millis() as u64)
            .then_some("the outbox worker shows no sign of life")
    }
}
