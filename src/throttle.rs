//! At most once a minute: for warnings that a flood of requests would otherwise repeat once
//! per request (a log line per request is a second flood).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

pub struct Throttle {
    started: Instant,
    /// Seconds after `started` when it last said yes (u64::MAX: never).
    last: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            started: Instant::now(),
            last: AtomicU64::new(u64::MAX),
        }
    }
}

impl Throttle {
    /// True the first time, then at most once a minute (one caller wins a race).
    pub fn ready(&self) -> bool {
        let now = self.started.elapsed().as_secs();
        let last = self.last.load(Relaxed);
        (last == u64::MAX || now >= last + 60)
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn once_then_not_within_the_minute() {
        let t = super::Throttle::default();
        assert!(t.ready());
        assert!(!t.ready());
    }
}
