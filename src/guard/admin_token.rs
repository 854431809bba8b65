//! The admin listener's guard over TCP: bans, and the limit on wrong or missing tokens
//! (`admin.token_failures`). The admin socket has no client address and is not guarded.

use std::net::IpAddr;

use super::{client_key, Guard, Refusal};

impl Guard {
    /// Before an admin request's token is looked at: 403 for a banned client (a ban earned
    /// on either listener), then 429 and a ban strike once the client's failures have
    /// reached `admin.token_failures` in the window, whatever token it sends now, so that
    /// a guesser learns nothing more until the window ends.
    pub fn admit_admin(&self, ip: IpAddr) -> Result<(), Refusal> {
        let client = client_key(ip.to_canonical());
        if self.bans.is_banned(client) {
            self.metrics.refused("banned");
            return Err(Refusal::Denied);
        }
        let Some(failures) = &self.admin_token_failures else {
            return Ok(());
        };
        failures.spent(&client).map_err(|retry_after_secs| {
            self.metrics.refused("admin_token_failures");
            self.bans.strike(client);
            Refusal::Limited { retry_after_secs }
        })
    }

    /// A wrong or missing token: one of the client's failures. Counted only after the
    /// check, so right tokens never count, however many requests run at once. Between
    /// [`Guard::admit_admin`] and this call nothing waits, so concurrent guesses overrun
    /// the limit by at most one per runtime worker thread.
    pub fn admin_token_failed(&self, ip: IpAddr) {
        if let Some(failures) = &self.admin_token_failures {
            let _ = failures.hit(client_key(ip.to_canonical()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, Rate};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_reach_the_limit_then_429_strikes_ban_on_both_listeners() {
        let mut c = Config::default();
        c.admin.token_failures = Rate {
            requests: 3,
            window: Duration::from_secs(900),
        };
        c.guard.ban_after = Rate {
            requests: 1,
            window: Duration::from_secs(600),
        };
        let g = Guard::new(&c, Default::default()).unwrap();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..100 {
            assert_eq!(g.admit_admin(a), Ok(()), "right tokens never count");
        }
        for _ in 0..3 {
            assert_eq!(g.admit_admin(a), Ok(()));
            g.admin_token_failed(a);
        }
        let Err(Refusal::Limited { retry_after_secs }) = g.admit_admin(a) else {
            panic!("the fourth attempt is limited");
        };
        assert!(
            (899..=900).contains(&retry_after_secs),
            "{retry_after_secs}"
        );
        assert_eq!(g.admit_admin(b), Ok(()), "another client is not");
        assert_eq!(g.admit_path(a), Ok(()), "one strike is allowed");
        assert!(matches!(g.admit_admin(a), Err(Refusal::Limited { .. })));
        assert_eq!(g.admit_admin(a), Err(Refusal::Denied), "the second banned");
        assert_eq!(
            g.admit_path(a),
            Err(Refusal::Denied),
            "on the public one too"
        );
    }

    #[test]
    fn a_ban_earned_on_the_public_listener_closes_the_admin_one() {
        let mut c = Config::default();
        c.limits.forgot_password.per_client.requests = 1;
        c.guard.ban_after.requests = 1;
        let g = Guard::new(&c, Default::default()).unwrap();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            let _ = g.admit_client(a, crate::guard::Endpoint::Forgot);
        }
        assert_eq!(g.admit_admin(a), Err(Refusal::Denied));
        assert_eq!(g.admit_admin(ip("192.0.2.2")), Ok(()));
    }

    #[test]
    fn zero_requests_switches_the_limit_off() {
        let mut c = Config::default();
        c.admin.token_failures.requests = 0;
        let g = Guard::new(&c, Default::default()).unwrap();
        for _ in 0..100 {
            g.admin_token_failed(ip("192.0.2.1"));
        }
        assert_eq!(g.admit_admin(ip("192.0.2.1")), Ok(()));
    }
}
