use super::*;
use crate::mail_address::validate;

fn ada() -> User {
    User::new(&validate("Ada@Example.com").unwrap(), None, 0)
}

#[test]
fn the_target_is_the_account_the_decoy_or_nobody() {
    assert_eq!(
        target(Some(&ada()), false),
        Target::Account {
            to: "Ada@Example.com".into()
        }
    );
    assert_eq!(target(None, false), Target::NoAccount);
    assert_eq!(target(None, true), Target::Decoy);
}

#[test]
fn an_issue_stores_the_codes_mac_and_mails_the_code() {
    let (key, config, now) = (CodeKey::new(b"s"), Recovery::default(), SystemTime::now());
    let mut plan = Plan {
        key: key.clone(),
        config: config.clone(),
        target: target(Some(&ada()), false),
        email_key: "ada@example.com".into(),
        locale: Some("de".into()),
        now,
    };
    let issue = issue_of("123456789012", &plan);
    assert_eq!(issue.record, "ada@example.com");
    assert_eq!(issue.account.as_deref(), Some("ada@example.com"));
    assert_eq!(issue.code.mac, key.mac("123456789012").to_vec());
    assert_eq!(issue.code.expires_ms, unix_ms(now + config.code_ttl));
    assert_eq!(issue.message.to, "Ada@Example.com");
    assert_eq!(issue.message.locale.as_deref(), Some("de"));
    assert!(
        matches!(&issue.message.kind, Kind::Otp { code, ttl_secs: 600 } if code == "123456789012")
    );

    plan.target = Target::Decoy;
    let decoy = issue_of("123456789012", &plan);
    assert_eq!(decoy.record, crate::recovery::decoy_key("ada@example.com"));
    assert_eq!((decoy.account, decoy.message.kind), (None, Kind::Decoy));
}

#[test]
fn a_spent_budget_refuses_an_account_or_hides_it_as_unknown() {
    let account = Target::Account {
        to: "ada@example.com".into(),
    };
    let spent = |_| Admission::Spent {
        retry_after_secs: 7,
    };
    assert_eq!(
        admitted(account.clone(), false, spent),
        Err(Forgot::Spent {
            retry_after_secs: 7
        })
    );
    assert_eq!(
        admitted(account.clone(), true, spent),
        Ok(Target::Decoy),
        "enumeration-safe: the same work and answer as an unknown address"
    );
    assert_eq!(
        admitted(account.clone(), false, |_| Admission::Mail),
        Ok(account)
    );
    let mut asked = None;
    let decoy = admitted(Target::Decoy, true, |account| {
        asked = Some(account);
        Admission::Mail
    });
    assert_eq!(decoy, Ok(Target::Decoy));
    assert_eq!(
        asked,
        Some(false),
        "a decoy spends the budget too, as no account"
    );
    let mut asked = false;
    let none = admitted(Target::NoAccount, false, |_| {
        asked = true;
        Admission::Mail
    });
    assert_eq!(none, Err(Forgot::NoAccount));
    assert!(
        !asked,
        "an unknown address costs the default mode's budget nothing"
    );
}
