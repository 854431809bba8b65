use super::*;
use crate::config::Durability;
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
    let req = ForgotRequest {
        email_key: "ada@example.com",
        locale: Some("de"),
    };
    let account = target(Some(&ada()), false);
    let issue = issue_of("123456789012", &key, &config, &account, &req, now);
    assert_eq!(issue.record, "ada@example.com");
    assert_eq!(issue.account.as_deref(), Some("ada@example.com"));
    assert_eq!(issue.code.mac, key.mac("123456789012").to_vec());
    assert_eq!(issue.code.expires_ms, unix_ms(now + config.code_ttl));
    assert_eq!(issue.message.to, "Ada@Example.com");
    assert_eq!(issue.message.locale.as_deref(), Some("de"));
    assert!(
        matches!(&issue.message.kind, Kind::Otp { code, ttl_secs: 600 } if code == "123456789012")
    );

    let decoy = issue_of("123456789012", &key, &config, &Target::Decoy, &req, now);
    assert_eq!(decoy.record, crate::recovery::decoy_key("ada@example.com"));
    assert_eq!((decoy.account, decoy.message.kind), (None, Kind::Decoy));
}

#[tokio::test]
async fn a_taken_code_is_drawn_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
    for who in ["a@example.com", "b@example.com"] {
        let email = validate(who).unwrap();
        db.add_user(&email.key, &User::new(&email, None, 0))
            .unwrap();
    }
    let (key, config, now) = (CodeKey::new(b"s"), Recovery::default(), SystemTime::now());
    let req = |k| ForgotRequest {
        email_key: k,
        locale: None,
    };
    let same = || "111111111111".to_string();
    let mail = |_| Admission::Mail;
    let first = forgot(&db, &key, &config, req("a@example.com"), now, same, mail).await;
    assert_eq!(first.unwrap(), Forgot::Queued);
    let mut draws = ["111111111111", "222222222222"]
        .into_iter()
        .map(String::from);
    let draw = move || draws.next().unwrap();
    let second = forgot(&db, &key, &config, req("b@example.com"), now, draw, mail);
    assert_eq!(second.await.unwrap(), Forgot::Queued);
    assert_eq!(
        db.code_owner(&key.mac("222222222222")).unwrap().as_deref(),
        Some("b@example.com"),
        "b got the second draw"
    );
    let nobody = forgot(&db, &key, &config, req("c@example.com"), now, same, mail).await;
    assert_eq!(nobody.unwrap(), Forgot::NoAccount);
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
