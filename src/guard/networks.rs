//! The networks above the client key. A client key is an IPv4 address or an IPv6 /64; one
//! IPv6 /48 holds 65,536 of them, and a provider's IPv4 /24 256. Each network may spend a
//! few clients' worth of a limit (`limits.networks`), so that one network cannot pose as
//! many strangers, while one noisy network locks out only itself. [`Watch`] samples the
//! requests' networks and names the busiest in a warning, at most once a minute.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use ipnet::IpNet;

use super::counters::Counters;
use super::limits::Digests;
use crate::config::{Networks, Rate};

/// A network level: its prefix, within its address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    V4_24 = 0,
    V6_56 = 1,
    V6_48 = 2,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::V4_24, Level::V6_56, Level::V6_48];

    /// The refusal kind in `resetgate_refusals_total`.
    pub fn kind(self) -> &'static str {
        match self {
            Level::V4_24 => "network_v4_24",
            Level::V6_56 => "network_v6_56",
            Level::V6_48 => "network_v6_48",
        }
    }

    /// The network of `ip` at this level (its address with the host bits cleared), if `ip`
    /// is of this level's family.
    pub fn of(self, ip: IpAddr) -> Option<IpAddr> {
        match (self, ip.to_canonical()) {
            (Level::V4_24, IpAddr::V4(v4)) => Some(IpAddr::V4(mask_v4(v4, 24))),
            (Level::V6_56, IpAddr::V6(v6)) => Some(IpAddr::V6(mask_v6(v6, 56))),
            (Level::V6_48, IpAddr::V6(v6)) => Some(IpAddr::V6(mask_v6(v6, 48))),
            _ => None,
        }
    }

    /// How many clients' worth the configuration gives a network of this level.
    fn clients(self, n: Networks) -> u32 {
        match self {
            Level::V4_24 => n.ipv4_24,
            Level::V6_56 => n.ipv6_56,
            Level::V6_48 => n.ipv6_48,
        }
    }
}

fn mask_v4(ip: Ipv4Addr, prefix: u32) -> Ipv4Addr {
    (u32::from(ip) & (u32::MAX << (32 - prefix))).into()
}

fn mask_v6(ip: Ipv6Addr, prefix: u32) -> Ipv6Addr {
    (u128::from(ip) & (u128::MAX << (128 - prefix))).into()
}

/// One fixed-window counter per network at each level: `clients` × a per-client rate, in
/// a table of `max_tracked_keys` counters per level, keyed by a digest of the network.
pub struct NetworkLimits {
    levels: [Option<Counters>; 3],
    digests: Digests,
}

impl NetworkLimits {
    /// Each level's limit is `per_client.requests` × its clients, over `per_client.window`;
    /// a level with 0 clients, or an off per-client rate, is off.
    pub fn new(per_client: Rate, networks: Networks, cap: u64) -> NetworkLimits {
        NetworkLimits {
            levels: Level::ALL.map(|level| {
                let rate = Rate {
                    requests: per_client.requests.saturating_mul(level.clients(networks)),
                    window: per_client.window,
                };
                Counters::new(rate, cap)
            }),
            digests: Digests::default(),
        }
    }

    /// Counts a hit on each of `ip`'s networks. A refusal gives back what this call counted
    /// and names the level and the seconds until its window reopens.
    pub fn hit(&self, ip: IpAddr) -> Result<(), (Level, u64)> {
        for (i, level) in Level::ALL.into_iter().enumerate() {
            let (Some(limit), Some(net)) = (&self.levels[i], level.of(ip)) else {
                continue;
            };
            if let Err(secs) = limit.hit(self.digests.of(net)) {
                for earlier in &Level::ALL[..=i] {
                    self.refund_level(*earlier, ip);
                }
                return Err((level, secs));
            }
        }
        Ok(())
    }

    /// Gives back a hit that [`NetworkLimits::hit`] counted.
    pub fn refund(&self, ip: IpAddr) {
        for level in Level::ALL {
            self.refund_level(level, ip);
        }
    }

    fn refund_level(&self, level: Level, ip: IpAddr) {
        if let (Some(limit), Some(net)) = (&self.levels[level as usize], level.of(ip)) {
            limit.refund(&self.digests.of(net));
        }
    }
}

/// One request in this many is sampled for the busiest networks.
const SAMPLE: u64 = 8;
/// How many networks the heavy-hitter summary keeps (Misra–Gries).
const TRACKED: usize = 32;
/// How many the warning names.
const NAMED: usize = 5;

/// The busiest networks of the public endpoints' requests: sampled, summarised in a fixed
/// space (Misra–Gries: a network above 1/32 of the samples is always kept), and named in a
/// warning at most once a minute, when a limit refuses a request or one network has sent
/// about `loud` requests within a minute.
pub struct Watch {
    seen: AtomicU64,
    started: std::time::Instant,
    /// Seconds after `started` when the summary began: it starts afresh each minute, so
    /// that only a minute's requests make a network loud.
    since: AtomicU64,
    refused: AtomicU64,
    top: Mutex<Vec<(IpNet, u64)>>,
    warned: crate::throttle::Throttle,
    loud: u64,
}

impl Watch {
    pub fn new(loud: u64) -> Watch {
        Watch {
            seen: AtomicU64::new(0),
            started: std::time::Instant::now(),
            since: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            top: Mutex::new(Vec::with_capacity(TRACKED)),
            warned: crate::throttle::Throttle::default(),
            loud,
        }
    }

    /// A request from `ip` (a client key).
    pub fn note(&self, ip: IpAddr) {
        if self.seen.fetch_add(1, Relaxed) % SAMPLE != 0 {
            return;
        }
        let ip = ip.to_canonical();
        let (site, wider) = match ip {
            IpAddr::V4(_) => (net(ip, 24), None),
            IpAddr::V6(_) => (net(ip, 48), Some(net(ip, 32))),
        };
        let mut top = self.top.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.started.elapsed().as_secs();
        if now >= self.since.load(Relaxed) + 60 {
            self.since.store(now, Relaxed);
            top.clear();
        }
        count(&mut top, site);
        if let Some(wider) = wider {
            count(&mut top, wider);
        }
        let loud = top.iter().any(|(_, n)| n * SAMPLE >= self.loud);
        drop(top);
        if loud {
            self.report();
        }
    }

    /// A request that a limit refused.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
        self.report();
    }

    /// The busiest networks since the last warning, named at most once a minute; the
    /// summary then starts afresh.
    fn report(&self) {
        if !self.warned.ready() {
            return;
        }
        let mut top = std::mem::take(&mut *self.top.lock().unwrap_or_else(|p| p.into_inner()));
        let refused = self.refused.swap(0, Relaxed);
        top.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let named: Vec<String> = top
            .iter()
            .take(NAMED)
            .map(|(net, n)| format!("{net} (~{} requests)", n * SAMPLE))
            .collect();
        tracing::warn!(
            refused,
            busiest = named.join(", "),
            "the busiest networks since the last warning; `resetgate blocks add NET` refuses one (403) at once"
        );
    }
}

fn net(ip: IpAddr, prefix: u8) -> IpNet {
    IpNet::new(ip, prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

/// Misra–Gries: count `net`, or take a free slot, or else take one from every count.
fn count(top: &mut Vec<(IpNet, u64)>, net: IpNet) {
    if let Some(slot) = top.iter_mut().find(|(n, _)| *n == net) {
        slot.1 += 1;
    } else if top.len() < TRACKED {
        top.push((net, 1));
    } else {
        top.iter_mut().for_each(|slot| slot.1 -= 1);
        top.retain(|(_, n)| *n > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_of_each_level() {
        assert_eq!(Level::V4_24.of(ip("192.0.2.77")), Some(ip("192.0.2.0")));
        assert_eq!(
            Level::V4_24.of(ip("::ffff:192.0.2.77")),
            Some(ip("192.0.2.0"))
        );
        assert_eq!(Level::V4_24.of(ip("2001:db8::1")), None);
        let v6 = ip("2001:db8:1234:5678:9abc::1");
        assert_eq!(Level::V6_56.of(v6), Some(ip("2001:db8:1234:5600::")));
        assert_eq!(Level::V6_48.of(v6), Some(ip("2001:db8:1234::")));
    }

    #[test]
    fn a_network_spends_its_clients_worth_and_a_refusal_is_given_back() {
        let per_client = Rate {
            requests: 2,
            window: Duration::from_secs(60),
        };
        let networks = Networks {
            ipv4_24: 2,
            ipv6_56: 1,
            ipv6_48: 3,
        };
        let limits = NetworkLimits::new(per_client, networks, 100);
        for host in 1..=4 {
            assert_eq!(limits.hit(ip(&format!("192.0.2.{host}"))), Ok(()));
        }
        let refused = limits.hit(ip("192.0.2.200")).unwrap_err();
        assert_eq!(refused.0, Level::V4_24);
        assert_eq!(limits.hit(ip("192.0.3.1")), Ok(()), "another /24");
        // Two /56s of one /48: each /56 spends 2, the /48 6.
        for n in 0..2 {
            assert_eq!(limits.hit(ip(&format!("2001:db8:1:{n}::1"))), Ok(()));
        }
        assert_eq!(
            limits.hit(ip("2001:db8:1:0::2")).unwrap_err().0,
            Level::V6_56
        );
        for n in 0..2 {
            let other_56 = format!("2001:db8:1:{:x}::1", 0x100 + n);
            assert_eq!(limits.hit(ip(&other_56)), Ok(()));
        }
        for n in 0..2 {
            let third_56 = format!("2001:db8:1:{:x}::1", 0x200 + n);
            assert_eq!(limits.hit(ip(&third_56)), Ok(()));
        }
        let over = limits.hit(ip("2001:db8:1:300::1")).unwrap_err();
        assert_eq!(over.0, Level::V6_48);
        limits.refund(ip("2001:db8:1:200::1"));
        assert_eq!(limits.hit(ip("2001:db8:1:300::1")), Ok(()), "given back");
    }

    #[test]
    fn the_summary_keeps_the_heavy_hitters() {
        let mut top = Vec::new();
        let heavy: IpNet = "2001:db8::/32".parse().unwrap();
        for i in 0..10_000u32 {
            count(&mut top, heavy);
            let other = IpNet::new(IpAddr::V4(Ipv4Addr::from(i << 8)), 24).unwrap();
            count(&mut top, other);
        }
        assert!(top.len() <= TRACKED);
        assert_eq!(top.iter().max_by_key(|(_, n)| *n).unwrap().0, heavy);
    }
}
