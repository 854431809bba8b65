//! The mail budget of forgot-password: `limits.forgot_password.global` counts the codes
//! mailed, not the requests, so a flood of unknown addresses (which sends nothing) spends
//! none of it. Past a spent budget, an account may still draw a code from the reserve
//! (`limits.mail_reserve`): at most one per client key and a few per network per window,
//! within the reserve's own ceiling. So the mail a flood can cause is at most budget +
//! reserve per window, even for an attacker who knows every address, and a real user
//! asking from an address of their own still gets a code while the attacker has fewer
//! client keys than the reserve holds.

use std::net::IpAddr;

use super::counters::ByClient;
use super::limits::FixedWindow;
use super::networks::NetworkLimits;
use crate::config::{Limits, Rate};

/// Where a code's mail is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Budget,
    Reserve,
}

/// Why no mail may go out now, and for how long (the budget's window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    /// The refusal kind: `global`, or `reserve` when the reserve refused an account.
    pub kind: &'static str,
    pub retry_after_secs: u64,
}

pub struct MailBudget {
    global: Option<FixedWindow<()>>,
    reserve: Option<FixedWindow<()>>,
    /// One reserve code per client key per reserve window.
    per_client: Option<ByClient>,
    /// `limits.networks` clients' worth of that, per network.
    networks: NetworkLimits,
}

impl MailBudget {
    pub fn new(limits: &Limits, cap: u64) -> MailBudget {
        let reserve = limits.mail_reserve;
        let one = Rate {
            requests: 1,
            window: reserve.window,
        };
        let reserve_on = reserve.requests > 0;
        MailBudget {
            global: FixedWindow::new(limits.forgot_password.global, 1),
            reserve: FixedWindow::new(reserve, 1),
            per_client: reserve_on.then(|| ByClient::new(one, cap)).flatten(),
            networks: NetworkLimits::new(
                if reserve_on { one } else { Rate::off() },
                limits.networks,
                cap,
            ),
        }
    }

    /// A code for `client` (a client key): from the budget while it lasts; then, for an
    /// `account` only, from the reserve.
    pub fn admit(&self, client: IpAddr, account: bool) -> Result<Grant, Spent> {
        let Some(global) = &self.global else {
            return Ok(Grant::Budget);
        };
        let Err(retry_after_secs) = global.hit(()) else {
            return Ok(Grant::Budget);
        };
        let spent = |kind| Spent {
            kind,
            retry_after_secs,
        };
        let Some(reserve) = self.reserve.as_ref().filter(|_| account) else {
            return Err(spent("global"));
        };
        // A spent reserve refuses before a client's and a network's counter is made (and
        // given back): under a flood those would fill their tables for nothing.
        if reserve.spent(&()).is_err() {
            return Err(spent("reserve"));
        }
        if let Some(per_client) = &self.per_client {
            per_client.hit(client).map_err(|_| spent("reserve"))?;
        }
        let refund_client = || {
            if let Some(per_client) = &self.per_client {
                per_client.refund(&client);
            }
        };
        if self.networks.hit(client).is_err() {
            refund_client();
            return Err(spent("reserve"));
        }
        if reserve.hit(()).is_err() {
            refund_client();
            self.networks.refund(client);
            return Err(spent("reserve"));
        }
        Ok(Grant::Reserve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limits(global: u32, reserve: u32) -> Limits {
        let mut l = crate::config::Config::default().limits;
        l.forgot_password.global = Rate {
            requests: global,
            window: Duration::from_secs(60),
        };
        l.mail_reserve = Rate {
            requests: reserve,
            window: Duration::from_secs(60),
        };
        l
    }

    #[test]
    fn unknown_addresses_get_no_reserve_and_accounts_one_per_client() {
        let budget = MailBudget::new(&limits(2, 3), 100);
        assert_eq!(budget.admit(ip("192.0.2.1"), true), Ok(Grant::Budget));
        assert_eq!(budget.admit(ip("192.0.2.1"), false), Ok(Grant::Budget));
        let spent = budget.admit(ip("198.51.100.1"), false).unwrap_err();
        assert_eq!(spent.kind, "global");
        assert!((1..=60).contains(&spent.retry_after_secs));
        assert_eq!(budget.admit(ip("198.51.100.1"), true), Ok(Grant::Reserve));
        assert_eq!(
            budget.admit(ip("198.51.100.1"), true).unwrap_err().kind,
            "reserve",
            "one per client key"
        );
        assert_eq!(budget.admit(ip("203.0.113.1"), true), Ok(Grant::Reserve));
        assert_eq!(budget.admit(ip("2001:db8::1"), true), Ok(Grant::Reserve));
        assert_eq!(
            budget.admit(ip("2001:db8:9::1"), true).unwrap_err().kind,
            "reserve",
            "the reserve's ceiling"
        );
    }

    #[test]
    fn a_network_draws_a_few_clients_worth_of_the_reserve() {
        let budget = MailBudget::new(&limits(0, 100), 100);
        // limits.networks.ipv4_24 = 8 by default.
        for host in 1..=8 {
            let client = ip(&format!("192.0.2.{host}"));
            assert_eq!(budget.admit(client, true), Ok(Grant::Budget), "budget off");
        }
        let budget = MailBudget::new(&limits(1, 100), 100);
        assert_eq!(budget.admit(ip("192.0.2.100"), true), Ok(Grant::Budget));
        for host in 1..=8 {
            let client = ip(&format!("192.0.2.{host}"));
            assert_eq!(budget.admit(client, true), Ok(Grant::Reserve));
        }
        assert!(budget.admit(ip("192.0.2.9"), true).is_err());
        assert_eq!(budget.admit(ip("192.0.3.9"), true), Ok(Grant::Reserve));
    }
}
