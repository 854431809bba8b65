//! Fixed-window counters in moka (the bans' strikes, and the global limits: one key each),
//! the digests that key the others (kept in [`super::counters::Counters`]), and what both
//! kinds answer.
//!
//! moka's `time_to_live` restarts on every *update*, so a counter that is re-inserted on each
//! hit would never expire under steady traffic. Each window is inserted once, holds an atomic
//! count, and dies `window` after its first hit; the remaining time is the `Retry-After`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::Rate;

struct Window {
    opened: Instant,
    hits: AtomicU32,
}

pub struct FixedWindow<K, S = RandomState> {
    windows: Cache<K, Arc<Window>, S>,
    limit: u32,
    window: Duration,
}

impl<K: Hash + Eq + Send + Sync + 'static> FixedWindow<K> {
    /// None when the rate is switched off (`requests = 0`).
    pub fn new(rate: Rate, capacity: u64) -> Option<FixedWindow<K>> {
        FixedWindow::with_hasher(rate, capacity, RandomState::new())
    }
}

impl<K, S> FixedWindow<K, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// [`FixedWindow::new`], hashing keys with `hasher`.
    pub fn with_hasher(rate: Rate, capacity: u64, hasher: S) -> Option<FixedWindow<K, S>> {
        (rate.requests > 0 && !rate.window.is_zero()).then(|| FixedWindow {
            windows: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(rate.window)
                .build_with_hasher(hasher),
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

impl<K, S> FixedWindow<K, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Whether `key` has spent its window, without counting a hit: `Err(seconds)` until it
    /// reopens. For limits on failures, counted with [`FixedWindow::hit`] only once an
    /// attempt has failed.
    pub fn spent(&self, key: &K) -> Result<(), u64> {
        match self.windows.get(key) {
            Some(window) if window.hits.load(Ordering::Relaxed) >= self.limit => {
                let left = (window.opened + self.window).saturating_duration_since(Instant::now());
                Err(ceil_secs(left))
            }
            _ => Ok(()),
        }
    }

    /// Gives back a hit taken by [`FixedWindow::hit`] (the attempt turned out not to count).
    pub fn refund(&self, key: &K) {
        if let Some(window) = self.windows.get(key) {
            let _ = window
                .hits
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// What a per-address counter is keyed by: a 64-bit SipHash of the address (or of the
/// address and the client), under a key drawn at random when the service starts. A
/// counter then holds 8 bytes of key instead of a copy of the address, and no request
/// allocates one. No client can choose two addresses that share a counter, since it does
/// not know the key; by chance, two of 100,000 tracked addresses share one with a
/// probability of about 3 · 10⁻¹⁰.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest(u64);

impl Digest {
    pub fn value(self) -> u64 {
        self.0
    }
}

/// What the guard asks of a counter: moka's [`FixedWindow`] or the fixed-size table of
/// [`super::counters::Counters`].
pub trait Limit<K> {
    /// Counts a hit; `Err(seconds)` says how long until the window reopens.
    fn hit(&self, key: K) -> Result<(), u64>;
    /// Gives back a hit (the attempt turned out not to count).
    fn refund(&self, key: &K);
}

impl<K, S> Limit<K> for FixedWindow<K, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn hit(&self, key: K) -> Result<(), u64> {
        FixedWindow::hit(self, key)
    }

    fn refund(&self, key: &K) {
        FixedWindow::refund(self, key)
    }
}

impl Limit<Digest> for super::counters::Counters {
    fn hit(&self, key: Digest) -> Result<(), u64> {
        super::counters::Counters::hit(self, key)
    }

    fn refund(&self, key: &Digest) {
        super::counters::Counters::refund(self, key)
    }
}

/// Makes [`Digest`]s, with this process's random key.
#[derive(Default)]
pub struct Digests(RandomState);

impl Digests {
    pub fn of(&self, value: impl Hash) -> Digest {
        Digest(self.0.hash_one(value))
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
    fn spent_looks_without_counting() {
        let rate = Rate {
            requests: 2,
            window: Duration::from_secs(60),
        };
        let limiter = FixedWindow::new(rate, 100).unwrap();
        assert_eq!(limiter.spent(&"a"), Ok(()), "never seen");
        limiter.hit("a").unwrap();
        assert_eq!(limiter.spent(&"a"), Ok(()));
        assert_eq!(limiter.spent(&"a"), Ok(()), "looking counts nothing");
        limiter.hit("a").unwrap();
        let wait = limiter.spent(&"a").unwrap_err();
        assert!((59..=60).contains(&wait), "the window's own end: {wait}");
        assert_eq!(limiter.spent(&"b"), Ok(()), "keys are independent");
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
    fn digests_key_counters_per_address() {
        let rate = Rate {
            requests: 1,
            window: Duration::from_secs(60),
        };
        let digests = Digests::default();
        let limiter = super::super::counters::Counters::new(rate, 100).unwrap();
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(limiter.hit(digests.of("a@example.com")), Ok(()));
        assert!(limiter.hit(digests.of("a@example.com")).is_err());
        assert_eq!(limiter.hit(digests.of("b@example.com")), Ok(()));
        assert_eq!(
            limiter.hit(digests.of(("a@example.com", ip))),
            Ok(()),
            "a pair is its own key"
        );
        assert_ne!(
            Digests::default().of("a@example.com"),
            digests.of("a@example.com"),
            "each process draws its own key"
        );
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
