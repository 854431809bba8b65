//! Fixed-window counters in a table of fixed size, for the limits where a flood makes
//! millions of tiny counters: the per-client ones ([`ByClient`]), the per-address ones and
//! the networks'. Each counter is 16
//! bytes (its key's digest, when its window opened, its hits) in a bucket of [`WAYS`] under
//! one lock, about 18 bytes a key with the lock; the table holds `max_tracked_keys` keys,
//! is allocated on its first hit and never grows. A moka entry costs several allocations
//! and a few hundred bytes (`docs/performance.md`, "Memory").
//!
//! A key's bucket is chosen by its digest, a hash under a key drawn at start-up, so no
//! client can aim its keys at one bucket. A new key takes a free slot or one whose window
//! ended; in a full bucket it takes the one with the fewest hits (the oldest among equals):
//! a flood of new keys forgets its own one-hit counters first, and never a busier counter
//! while a lighter one is in its bucket.

use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::limits::{ceil_secs, Digest, Digests, Limit};
use crate::config::Rate;

/// Slots per bucket.
const WAYS: usize = 4;
/// Hits are counted up to this and stay there; a limit at or above it never refuses.
const MAX_HITS: u64 = (1 << 24) - 1;

/// One counter: its key's digest, and (packed) when its window opened, in ms after the
/// table's start plus one (0: an empty slot), and its hits.
#[derive(Clone, Copy, Default)]
struct Slot {
    digest: u64,
    state: u64,
}

impl Slot {
    fn opened(self) -> u64 {
        self.state >> 24
    }

    fn hits(self) -> u64 {
        self.state & MAX_HITS
    }

    fn with(opened: u64, hits: u64) -> Slot {
        Slot {
            digest: 0,
            state: opened << 24 | hits.min(MAX_HITS),
        }
    }

    /// A window that has not ended at `now` (ms after the start, plus one).
    fn live(self, now: u64, window: u64) -> bool {
        self.state != 0 && now < self.opened() + window
    }
}

type Bucket = Mutex<[Slot; WAYS]>;

pub struct Counters {
    buckets: OnceLock<Box<[Bucket]>>,
    count: usize,
    limit: u64,
    window_ms: u64,
    started: Instant,
}

impl Counters {
    /// Room for `capacity` keys; None when the rate is switched off (`requests = 0`).
    pub fn new(rate: Rate, capacity: u64) -> Option<Counters> {
        let window_ms = u64::try_from(rate.window.as_millis()).unwrap_or(u64::MAX);
        (rate.requests > 0 && window_ms > 0).then(|| Counters {
            buckets: OnceLock::new(),
            count: usize::try_from(capacity.div_ceil(WAYS as u64))
                .unwrap_or(usize::MAX)
                .max(1),
            limit: u64::from(rate.requests),
            window_ms,
            started: Instant::now(),
        })
    }

    /// Counts a hit; `Err(seconds)` says how long until the window reopens.
    pub fn hit(&self, key: Digest) -> Result<(), u64> {
        self.hit_at(key, self.now())
    }

    /// [`Counters::hit`] at `now` (ms after the table's start, plus one).
    fn hit_at(&self, key: Digest, now: u64) -> Result<(), u64> {
        let mut slots = lock(self.bucket(key));
        let window = self.window_ms;
        let digest = key.value();
        let slot = match slots
            .iter()
            .position(|s| s.digest == digest && s.live(now, window))
        {
            Some(i) => &mut slots[i],
            None => {
                let victim = slots
                    .iter_mut()
                    .min_by_key(|s| match s.live(now, window) {
                        false => (0, 0, 0),
                        true => (1, s.hits(), s.opened()),
                    })
                    .expect("a bucket has slots");
                *victim = Slot {
                    digest,
                    ..Slot::with(now, 0)
                };
                victim
            }
        };
        let hits = (slot.hits() + 1).min(MAX_HITS);
        *slot = Slot {
            digest,
            ..Slot::with(slot.opened(), hits)
        };
        if hits <= self.limit {
            return Ok(());
        }
        Err(self.left(*slot, now))
    }

    /// Whether `key` has spent its window, without counting a hit: `Err(seconds)` until it
    /// reopens. For limits on failures, counted with [`Counters::hit`] only once an attempt
    /// has failed.
    pub fn spent(&self, key: &Digest) -> Result<(), u64> {
        match self.find(*key) {
            Some(slot) if slot.hits() >= self.limit => Err(self.left(slot, self.now())),
            _ => Ok(()),
        }
    }

    /// Gives back a hit taken by [`Counters::hit`] (the attempt turned out not to count).
    pub fn refund(&self, key: &Digest) {
        let Some(buckets) = self.buckets.get() else {
            return;
        };
        let now = self.now();
        let mut slots = lock(&buckets[self.index(*key)]);
        let window = self.window_ms;
        if let Some(slot) = slots
            .iter_mut()
            .find(|s| s.digest == key.value() && s.live(now, window))
        {
            let hits = slot.hits().saturating_sub(1);
            *slot = Slot {
                digest: slot.digest,
                ..Slot::with(slot.opened(), hits)
            };
        }
    }

    fn find(&self, key: Digest) -> Option<Slot> {
        let buckets = self.buckets.get()?;
        let now = self.now();
        let slots = lock(&buckets[self.index(key)]);
        let window = self.window_ms;
        slots
            .iter()
            .copied()
            .find(|s| s.digest == key.value() && s.live(now, window))
    }

    fn bucket(&self, key: Digest) -> &Bucket {
        let buckets = self.buckets.get_or_init(|| {
            (0..self.count)
                .map(|_| Mutex::new([Slot::default(); WAYS]))
                .collect()
        });
        &buckets[self.index(key)]
    }

    /// The bucket of `key`: the high bits of its digest, scaled to the table.
    fn index(&self, key: Digest) -> usize {
        ((u128::from(key.value()) * self.count as u128) >> 64) as usize
    }

    /// Milliseconds since the table started, plus one (so that 0 marks an empty slot).
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX >> 24) + 1
    }

    /// The whole seconds until `slot`'s window ends.
    fn left(&self, slot: Slot, now: u64) -> u64 {
        let ends = slot.opened().saturating_add(self.window_ms);
        ceil_secs(Duration::from_millis(ends.saturating_sub(now)))
    }
}

/// [`Counters`] per client key (an IPv4 address or an IPv6 /64), keyed by its digest under
/// a key of this table's own.
pub struct ByClient {
    counters: Counters,
    digests: Digests,
}

impl ByClient {
    /// Room for `capacity` clients; None when the rate is switched off.
    pub fn new(rate: Rate, capacity: u64) -> Option<ByClient> {
        Counters::new(rate, capacity).map(|counters| ByClient {
            counters,
            digests: Digests::default(),
        })
    }

    pub fn hit(&self, client: IpAddr) -> Result<(), u64> {
        self.counters.hit(self.digests.of(client))
    }

    pub fn spent(&self, client: &IpAddr) -> Result<(), u64> {
        self.counters.spent(&self.digests.of(client))
    }

    pub fn refund(&self, client: &IpAddr) {
        self.counters.refund(&self.digests.of(client))
    }
}

impl Limit<IpAddr> for ByClient {
    fn hit(&self, key: IpAddr) -> Result<(), u64> {
        ByClient::hit(self, key)
    }

    fn refund(&self, key: &IpAddr) {
        ByClient::refund(self, key)
    }
}

/// A bucket's slots; a panic elsewhere while it was held leaves it usable (each change is
/// one slot's write).
fn lock(bucket: &Bucket) -> std::sync::MutexGuard<'_, [Slot; WAYS]> {
    bucket.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::limits::Digests;

    fn rate(requests: u32, secs: u64) -> Rate {
        Rate {
            requests,
            window: Duration::from_secs(secs),
        }
    }

    #[test]
    fn counts_per_key_and_reports_the_wait() {
        let digests = Digests::default();
        let counters = Counters::new(rate(2, 60), 100).unwrap();
        let (a, b) = (digests.of("a"), digests.of("b"));
        assert_eq!(counters.hit(a), Ok(()));
        assert_eq!(counters.hit(a), Ok(()));
        let wait = counters.hit(a).unwrap_err();
        assert!((59..=60).contains(&wait), "{wait}");
        assert_eq!(counters.hit(b), Ok(()), "keys are independent");
    }

    #[test]
    fn refunds_give_a_hit_back() {
        let digests = Digests::default();
        let counters = Counters::new(rate(1, 60), 100).unwrap();
        let a = digests.of("a");
        counters.refund(&a);
        assert!(counters.find(a).is_none(), "never seen");
        assert_eq!(counters.hit(a), Ok(()));
        counters.refund(&a);
        assert_eq!(counters.find(a).unwrap().hits(), 0);
        assert_eq!(counters.hit(a), Ok(()), "the refunded hit is free again");
        assert!(counters.hit(a).is_err());
    }

    #[test]
    fn a_window_ends() {
        let digests = Digests::default();
        let counters = Counters::new(
            Rate {
                requests: 1,
                window: Duration::from_millis(30),
            },
            100,
        )
        .unwrap();
        let a = digests.of("a");
        assert_eq!(counters.hit_at(a, 1), Ok(()));
        assert!(
            counters.hit_at(a, 30).is_err(),
            "29 ms later: the same window"
        );
        assert_eq!(counters.hit_at(a, 31), Ok(()), "30 ms later: a new window");
    }

    #[test]
    fn a_flood_of_new_keys_forgets_its_own_counters_first() {
        let digests = Digests::default();
        let counters = Counters::new(rate(1_000, 3600), 64).unwrap();
        let busy = digests.of("busy");
        for _ in 0..10 {
            counters.hit(busy).unwrap();
        }
        for n in 0..100_000 {
            counters.hit(digests.of(n)).unwrap();
        }
        let table = counters.buckets.get().unwrap();
        assert_eq!(table.len(), 16, "the table never grows");
        let kept = counters.find(busy).expect("the busy counter is kept");
        assert_eq!(kept.hits(), 10);
    }

    #[test]
    fn clients_have_their_own_windows_and_spent_looks_without_counting() {
        let clients = ByClient::new(rate(2, 60), 100).unwrap();
        let (a, b): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "2001:db8::".parse().unwrap());
        assert_eq!(clients.spent(&a), Ok(()), "never seen");
        clients.hit(a).unwrap();
        assert_eq!(clients.spent(&a), Ok(()), "looking counts nothing");
        clients.hit(a).unwrap();
        let wait = clients.spent(&a).unwrap_err();
        assert!((59..=60).contains(&wait), "the window's own end: {wait}");
        assert!(clients.hit(a).is_err());
        assert_eq!(clients.hit(b), Ok(()), "clients are independent");
        clients.refund(&a);
        clients.refund(&a);
        assert_eq!(clients.spent(&a), Ok(()), "given back");
    }

    #[test]
    fn huge_limits_never_refuse_and_zero_switches_off() {
        let digests = Digests::default();
        let counters = Counters::new(rate(u32::MAX, 60), 10).unwrap();
        let a = digests.of("a");
        let slot = Slot::with(1, MAX_HITS);
        assert_eq!(slot.hits(), MAX_HITS);
        assert_eq!(counters.hit(a), Ok(()));
        assert!(Counters::new(rate(0, 60), 10).is_none());
        assert_eq!(std::mem::size_of::<Bucket>(), 72, "18 bytes a key");
    }
}
