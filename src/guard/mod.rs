//! The traffic guard: who may call (deny list → 403) and how often (limits → 429).
//!
//! Runs before any work on the request, so a refused client costs a lookup and no store access.

mod limits;

use std::net::IpAddr;

use ipnet::IpNet;

pub use limits::ceil_secs;
use limits::FixedWindow;

use crate::config::{Config, ConfigError, Rate};

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Denied,
    Limited { retry_after_secs: u64 },
}

pub struct Guard {
    deny: Vec<IpNet>,
    per_client: Option<FixedWindow<IpAddr>>,
    per_email: Option<FixedWindow<String>>,
    cooldown: Option<FixedWindow<String>>,
    confirm_failures: Option<FixedWindow<IpAddr>>,
    failed_confirm_budget: Option<FixedWindow<()>>,
}

impl Guard {
    pub fn new(config: &Config) -> Result<Guard, ConfigError> {
        let cap = config.limits.max_tracked_keys;
        let cooldown = Rate {
            requests: 1,
            window: config.recovery.resend_cooldown,
        };
        Ok(Guard {
            deny: config.deny_list()?,
            per_client: FixedWindow::new(config.limits.per_client, cap),
            per_email: FixedWindow::new(config.limits.per_email, cap),
            cooldown: FixedWindow::new(cooldown, cap),
            confirm_failures: FixedWindow::new(config.limits.confirm_failures_per_client, cap),
            failed_confirm_budget: FixedWindow::new(config.recovery.failed_confirm_budget, 1),
        })
    }

    /// The deny list, then the per-client limit.
    pub fn admit_client(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return Err(Refusal::Denied);
        }
        hit(&self.per_client, client_key(ip))
    }

    /// The per-email limit and the resend cooldown, counted on the normalized *submitted*
    /// address whether or not an account exists, so the answer reveals nothing.
    ///
    /// The cooldown is checked first, and a request refused by one limit is not counted by
    /// the other: a client that obeys the cooldown's `Retry-After` is not also charged
    /// against the hourly limit for the requests it was told to wait out.
    pub fn admit_email(&self, key: &str) -> Result<(), Refusal> {
        hit(&self.cooldown, key.to_string())?;
        let limited = hit(&self.per_email, key.to_string());
        if limited.is_err() {
            if let Some(c) = &self.cooldown {
                c.refund(&key.to_string());
            }
        }
        limited
    }
}

impl Guard {
    /// Before a code is checked: takes one of the client's failed-confirmation allowance
    /// and, for a request without `email`, one of the global budget of failed
    /// confirmations. A confirmation that succeeds gives both back ([`Guard::confirm_succeeded`]),
    /// so only failures are ever spent, and concurrent guesses cannot overrun a limit.
    pub fn admit_confirm(&self, ip: IpAddr, with_email: bool) -> Result<(), Refusal> {
        hit(&self.confirm_failures, client_key(ip.to_canonical()))?;
        if with_email {
            // Counted, never refused: a guess naming its account is bounded by that
            // account's own failure limit, and the budget must not lock everyone out.
            let _ = hit(&self.failed_confirm_budget, ());
            return Ok(());
        }
        let spent = hit(&self.failed_confirm_budget, ());
        if spent.is_err() {
            // Not this client's failure: give its allowance back.
            if let Some(l) = &self.confirm_failures {
                l.refund(&client_key(ip.to_canonical()));
            }
            tracing::warn!("the global budget of failed confirmations is spent; code-only confirmations are refused until the window ends");
        }
        spent
    }

    pub fn confirm_succeeded(&self, ip: IpAddr) {
        if let Some(l) = &self.confirm_failures {
            l.refund(&client_key(ip.to_canonical()));
        }
        if let Some(b) = &self.failed_confirm_budget {
            b.refund(&());
        }
    }
}

fn hit<K: std::hash::Hash + Eq + Send + Sync + 'static>(
    limiter: &Option<FixedWindow<K>>,
    key: K,
) -> Result<(), Refusal> {
    match limiter {
        Some(l) => l.hit(key).map_err(|s| Refusal::Limited {
            retry_after_secs: s,
        }),
        None => Ok(()),
    }
}

/// IPv6 clients are counted per /64: one host usually holds a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_list_and_mapped_addresses() {
        let mut c = Config::default();
        c.guard.deny = vec!["10.0.0.0/8".into(), "2001:db8::1".into()];
        let g = Guard::new(&c).unwrap();
        assert_eq!(
            g.admit_client("10.9.9.9".parse().unwrap()),
            Err(Refusal::Denied)
        );
        assert_eq!(
            g.admit_client("::ffff:10.1.1.1".parse().unwrap()),
            Err(Refusal::Denied)
        );
        assert_eq!(
            g.admit_client("2001:db8::1".parse().unwrap()),
            Err(Refusal::Denied)
        );
        assert_eq!(g.admit_client("11.0.0.1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn v6_clients_share_their_64() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, client_key("2001:db8:1:3::1".parse().unwrap()));
    }

    #[test]
    fn confirm_limits_spend_only_failures() {
        let mut c = Config::default();
        c.limits.confirm_failures_per_client.requests = 2;
        c.recovery.failed_confirm_budget.requests = 3;
        let g = Guard::new(&c).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..5 {
            assert_eq!(g.admit_confirm(a, false), Ok(()));
            g.confirm_succeeded(a);
        }
        assert_eq!(g.admit_confirm(a, false), Ok(()));
        assert_eq!(g.admit_confirm(a, false), Ok(()));
        assert!(
            matches!(g.admit_confirm(a, false), Err(Refusal::Limited { .. })),
            "client spent"
        );
        assert_eq!(
            g.admit_confirm(b, false),
            Ok(()),
            "third failure of the budget"
        );
        assert!(
            matches!(g.admit_confirm(b, false), Err(Refusal::Limited { .. })),
            "budget spent"
        );
        assert_eq!(
            g.admit_confirm(b, true),
            Ok(()),
            "naming the account still works"
        );
    }

    #[test]
    fn cooldown_then_per_email() {
        let mut c = Config::default();
        c.limits.per_email.requests = 2;
        c.recovery.resend_cooldown = std::time::Duration::from_secs(60);
        let g = Guard::new(&c).unwrap();
        assert_eq!(g.admit_email("a@x.org"), Ok(()));
        for _ in 0..5 {
            // Refused by the cooldown, and not counted against the hourly limit.
            let refusal = g.admit_email("a@x.org").unwrap_err();
            assert!(
                matches!(refusal, Refusal::Limited { retry_after_secs } if retry_after_secs <= 60)
            );
        }
        assert_eq!(g.admit_email("b@x.org"), Ok(()));

        c.recovery.resend_cooldown = std::time::Duration::ZERO;
        let g = Guard::new(&c).unwrap();
        assert_eq!(g.admit_email("a@x.org"), Ok(()));
        assert_eq!(g.admit_email("a@x.org"), Ok(()));
        let refusal = g.admit_email("a@x.org").unwrap_err();
        assert!(
            matches!(refusal, Refusal::Limited { retry_after_secs } if retry_after_secs > 3000),
            "{refusal:?}"
        );
    }
}
