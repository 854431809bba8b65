//! Automatic bans: a client that keeps hitting its limits is refused with 403 for a while,
//! longer each time it comes back. A ban is about a client address, never an account.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::limits::FixedWindow;
use crate::config::Guard as Settings;

pub struct Bans {
    /// Refusals (429) per client in the `guard.ban_after` window.
    strikes: Option<FixedWindow<IpAddr>>,
    /// Banned clients and when their ban ends.
    banned: Cache<IpAddr, Instant>,
    /// How many times a client was banned recently (forgotten after `guard.ban_max`).
    offences: Cache<IpAddr, Arc<AtomicU32>>,
    ban_for: Duration,
    ban_max: Duration,
    metrics: Arc<crate::metrics::Metrics>,
    /// When the latest-ending ban ends, in ms after `started`: once that has passed, no
    /// client is banned, and the check skips the cache (a lookup on every request).
    last_ban_ends: AtomicU64,
    started: Instant,
}

impl Bans {
    pub fn new(settings: &Settings, capacity: u64, metrics: Arc<crate::metrics::Metrics>) -> Bans {
        Bans {
            strikes: FixedWindow::new(settings.ban_after, capacity),
            banned: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(settings.ban_max)
                .build(),
            offences: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(settings.ban_max.saturating_mul(2))
                .build(),
            ban_for: settings.ban_for,
            ban_max: settings.ban_max,
            metrics,
            last_ban_ends: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    pub fn is_banned(&self, client: IpAddr) -> bool {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.started).as_millis() as u64;
        if elapsed >= self.last_ban_ends.load(Ordering::Acquire) {
            return false;
        }
        self.banned.get(&client).is_some_and(|until| until > now)
    }

    /// Counts a refusal; the one that goes over `guard.ban_after` bans the client for
    /// `guard.ban_for`, doubled for each earlier ban, at most `guard.ban_max`.
    pub fn strike(&self, client: IpAddr) {
        let Some(strikes) = &self.strikes else { return };
        if strikes.hit(client).is_ok() || self.is_banned(client) {
            return;
        }
        let earlier = self
            .offences
            .get_with(client, Default::default)
            .fetch_add(1, Ordering::Relaxed);
        let length = self
            .ban_for
            .checked_mul(1u32.checked_shl(earlier).unwrap_or(u32::MAX))
            .map_or(self.ban_max, |d| d.min(self.ban_max));
        let until = Instant::now() + length;
        // Rounded up, so that no ban is thought over before it is.
        let ends = until.saturating_duration_since(self.started).as_micros();
        self.last_ban_ends
            .fetch_max(ends.div_ceil(1_000) as u64, Ordering::AcqRel);
        self.banned.insert(client, until);
        self.metrics.bans.inc();
        tracing::warn!(%client, ban_secs = length.as_secs(), offence = earlier + 1, "client banned after repeated refusals");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;

    #[test]
    fn repeated_refusals_ban_and_bans_grow() {
        let settings = Settings {
            ban_after: Rate {
                requests: 2,
                window: Duration::from_secs(60),
            },
            ban_for: Duration::from_secs(10),
            ban_max: Duration::from_secs(25),
            ..Settings::default()
        };
        let bans = Bans::new(&settings, 100, Default::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        bans.strike(a);
        bans.strike(a);
        assert!(!bans.is_banned(a), "two refusals are allowed");
        bans.strike(a);
        assert!(bans.is_banned(a));
        let until = bans.banned.get(&a).unwrap();
        assert!(until <= Instant::now() + Duration::from_secs(10));
        assert!(
            !bans.is_banned("192.0.2.2".parse().unwrap()),
            "only that client"
        );
    }
}
