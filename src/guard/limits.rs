//! Fixed-window counters in moka.
//!
//! moka's `time_to_live` restarts on every *update*, so a counter that is re-inserted on each
//! hit would never expire under steady traffic. Each window is inserted once, holds an atomic
//! count, and dies `window` after its first hit; the remaining time is the `Retry-After`.

use std::hash::Hash;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::Rate;

struct Window {
    opened: Instant,
    hits: AtomicU32,
}

pub struct FixedWindow<K> {
    windows: Cache<K, Arc<Window>>,
    limit: u32,
    window: Duration,
}

impl<K: Hash + Eq + Send + Sync + 'static> FixedWindow<K> {
    /// None when the rate is switched off (`requests = 0`).
    pub fn new(rate: Rate, capacity: u64) -> Option<FixedWindow<K>> {
        (rate.requests > 0 && !rate.window.is_zero()).then(|| FixedWindow {
            windows: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(rate.window)
                .build(),
            limit: rate.requests,
            window: rate.window,
        })
    }

    /// Counts a hit; `Err(seconds)` says how long until the window reopens.
    pub fn hit(&self, key: K) -> Result<(), u64> {
        let window = self.windows.get_with(key, || {
            Arc::new(Window {
                opened: Instant::now(),
                hits: AtomicU32::new(0),
            })
        });
        let hits = window
            .hits
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if hits <= self.limit {
            return Ok(());
        }
        let left = (window.opened + self.window).saturating_duration_since(Instant::now());
        Err(ceil_secs(left))
    }
}

impl<K: Hash + Eq + Send + Sync + 'static> FixedWindow<K> {
    /// Gives back a hit taken by [`FixedWindow::hit`] (the attempt turned out not to count).
    pub fn refund(&self, key: &K) {
        if let Some(window) = self.windows.get(key) {
            let _ = window
                .hits
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// Whole seconds, rounded up, and at least 1: a client told 0 would retry at once.
pub fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_reports_the_wait() {
        let rate = Rate {
            requests: 2,
            window: Duration::from_secs(60),
        };
        let limiter = FixedWindow::new(rate, 100).unwrap();
        assert_eq!(limiter.hit("a"), Ok(()));
        assert_eq!(limiter.hit("a"), Ok(()));
        let wait = limiter.hit("a").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(limiter.hit("b"), Ok(()), "keys are independent");
    }

    #[test]
    fn refunds_give_a_hit_back() {
        let rate = Rate {
            requests: 1,
            window: Duration::from_secs(60),
        };
        let limiter = FixedWindow::new(rate, 100).unwrap();
        assert_eq!(limiter.hit("a"), Ok(()));
        limiter.refund(&"a");
        assert_eq!(limiter.hit("a"), Ok(()), "the refunded hit is free again");
        assert!(limiter.hit("a").is_err());
        limiter.refund(&"never-seen");
    }

    #[test]
    fn zero_requests_switches_off() {
        let rate = Rate {
            requests: 0,
            window: Duration::from_secs(60),
        };
        assert!(FixedWindow::<&str>::new(rate, 100).is_none());
    }

    #[test]
    fn rounding_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1_001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 1);
    }
}
