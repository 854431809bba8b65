use super::*;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> crate::config::Net {
    crate::config::Net::parse(s).unwrap()
}

#[test]
fn deny_allow_and_runtime_blocks() {
    let mut c = Config::default();
    c.guard.deny = ["10.0.0.0/8", "2001:db8::1"].map(net).to_vec();
    let g = Guard::new(&c, Default::default()).unwrap();
    let admit = |s| g.admit_path(ip(s));
    assert_eq!(admit("10.9.9.9"), Err(Refusal::Denied));
    assert_eq!(admit("::ffff:10.1.1.1"), Err(Refusal::Denied));
    assert_eq!(admit("2001:db8::1"), Err(Refusal::Denied));
    assert_eq!(admit("11.0.0.1"), Ok(()));
    g.set_blocks(vec!["11.0.0.0/24".parse().unwrap()]);
    assert_eq!(admit("11.0.0.1"), Err(Refusal::Denied));

    c.guard.allow_only = vec![net("192.0.2.0/24")];
    let g = Guard::new(&c, Default::default()).unwrap();
    assert_eq!(g.admit_path(ip("192.0.2.7")), Ok(()));
    assert_eq!(g.admit_path(ip("198.51.100.1")), Err(Refusal::Denied));
}

#[test]
fn v6_clients_share_their_64() {
    let a = client_key(ip("2001:db8:1:2:aaaa::1"));
    let b = client_key(ip("2001:db8:1:2:bbbb::2"));
    assert_eq!(a, b);
    assert_ne!(a, client_key(ip("2001:db8:1:3::1")));
}

#[test]
fn endpoints_have_their_own_limits_and_a_global_one() {
    let mut c = Config::default();
    c.limits.forgot_password.per_client.requests = 1;
    c.limits.password_reset.global.requests = 2;
    let g = Guard::new(&c, Default::default()).unwrap();
    assert_eq!(g.admit_client(ip("192.0.2.1"), Endpoint::Forgot), Ok(()));
    assert!(g.admit_client(ip("192.0.2.1"), Endpoint::Forgot).is_err());
    assert_eq!(
        g.admit_client(ip("192.0.2.1"), Endpoint::Confirm),
        Ok(()),
        "another endpoint"
    );
    assert_eq!(g.admit_client(ip("192.0.2.2"), Endpoint::Reset), Ok(()));
    assert_eq!(g.admit_client(ip("192.0.2.3"), Endpoint::Reset), Ok(()));
    assert!(
        g.admit_client(ip("192.0.2.4"), Endpoint::Reset).is_err(),
        "global"
    );
}

#[test]
fn clients_that_keep_hitting_limits_are_banned() {
    let mut c = Config::default();
    c.limits.forgot_password.per_client.requests = 1;
    c.guard.ban_after = Rate {
        requests: 2,
        window: Duration::from_secs(60),
    };
    let g = Guard::new(&c, Default::default()).unwrap();
    let a = ip("192.0.2.1");
    assert_eq!(g.admit_client(a, Endpoint::Forgot), Ok(()));
    for _ in 0..3 {
        assert!(matches!(
            g.admit_client(a, Endpoint::Forgot),
            Err(Refusal::Limited { .. })
        ));
    }
    assert_eq!(
        g.admit_path(a),
        Err(Refusal::Denied),
        "banned, on every path"
    );
    assert_eq!(g.admit_path(ip("192.0.2.2")), Ok(()));
    assert_eq!(g.admit_client(ip("192.0.2.2"), Endpoint::Forgot), Ok(()));
}

#[test]
fn confirm_limits_spend_only_failures() {
    let mut c = Config::default();
    c.limits.confirm_failures_per_client.requests = 2;
    c.recovery.failed_confirm_budget.requests = 3;
    let g = Guard::new(&c, Default::default()).unwrap();
    let (a, b, d) = (ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3"));
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
    assert_eq!(g.admit_confirm(d, true), Ok(()));
}

#[test]
fn cooldown_then_per_email() {
    let mut c = Config::default();
    c.limits.forgot_password.per_email.requests = 2;
    c.recovery.resend_cooldown = Duration::from_secs(60);
    let g = Guard::new(&c, Default::default()).unwrap();
    let a = ip("192.0.2.1");
    assert_eq!(g.admit_email(a, Endpoint::Forgot, "a@x.org"), Ok(()));
    for _ in 0..5 {
        // Refused by the cooldown, and not counted against the hourly limit.
        let refusal = g.admit_email(a, Endpoint::Forgot, "a@x.org").unwrap_err();
        assert!(matches!(refusal, Refusal::Limited { retry_after_secs } if retry_after_secs <= 60));
    }
    assert_eq!(g.admit_email(a, Endpoint::Forgot, "b@x.org"), Ok(()));
    assert_eq!(
        g.admit_email(a, Endpoint::Reset, "a@x.org"),
        Ok(()),
        "no cooldown elsewhere"
    );

    c.recovery.resend_cooldown = Duration::ZERO;
    let g = Guard::new(&c, Default::default()).unwrap();
    assert_eq!(g.admit_email(a, Endpoint::Forgot, "a@x.org"), Ok(()));
    assert_eq!(g.admit_email(a, Endpoint::Forgot, "a@x.org"), Ok(()));
    let refusal = g.admit_email(a, Endpoint::Forgot, "a@x.org").unwrap_err();
    assert!(
        matches!(refusal, Refusal::Limited { retry_after_secs } if retry_after_secs > 3000),
        "{refusal:?}"
    );
}

#[test]
fn one_client_spends_only_its_share_of_an_address() {
    let mut c = Config::default();
    c.recovery.resend_cooldown = Duration::ZERO;
    c.limits.forgot_password.per_email.requests = 4;
    c.limits.forgot_password.per_email_per_client.requests = 2;
    let g = Guard::new(&c, Default::default()).unwrap();
    let (a, b, owner) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));
    for client in [a, b] {
        assert_eq!(g.admit_email(client, Endpoint::Forgot, "o@x.org"), Ok(()));
        assert_eq!(g.admit_email(client, Endpoint::Forgot, "o@x.org"), Ok(()));
        assert!(g.admit_email(client, Endpoint::Forgot, "o@x.org").is_err());
    }
    assert!(
        g.admit_email(owner, Endpoint::Forgot, "o@x.org").is_err(),
        "the ceiling: 4 spent by two clients"
    );
    assert_eq!(
        g.admit_email(a, Endpoint::Forgot, "p@x.org"),
        Ok(()),
        "other addresses are not affected"
    );
}

#[test]
fn refusals_about_the_address_earn_no_strikes() {
    let mut c = Config::default();
    c.guard.ban_after = Rate {
        requests: 1,
        window: Duration::from_secs(60),
    };
    let g = Guard::new(&c, Default::default()).unwrap();
    let a = ip("192.0.2.1");
    assert_eq!(g.admit_email(a, Endpoint::Forgot, "o@x.org"), Ok(()));
    for _ in 0..5 {
        assert!(g.admit_email(a, Endpoint::Forgot, "o@x.org").is_err());
    }
    assert_eq!(g.admit_path(a), Ok(()), "not banned");
}
