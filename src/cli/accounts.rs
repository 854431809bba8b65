//! `resetgate users change-email|set-password|disable|enable|show`: an account's lifecycle,
//! through the running service's admin API or on the store directly.

use super::target::Target;
use super::users::address;
use super::{unless_missing, Failure};
use crate::admin::accounts::AccountView;
use crate::admin::AdminError;

pub async fn change_email(target: &Target, email: &str, new_email: &str) -> Result<(), Failure> {
    let (email, new) = (address(email)?, address(new_email)?);
    let (shown, wanted) = (email.stored.clone(), new.stored.clone());
    match target.change_email(email, new).await? {
        Err(AdminError::Conflict(_)) => {
            Err(Failure::refused(format!("{wanted} already has an account")))
        }
        changed => {
            let changed = unless_missing(changed, || format!("{shown} has no account"))?;
            let text = format!("{} is now {}", changed.previous, changed.email);
            super::say(text, changed);
            Ok(())
        }
    }
}

pub async fn set_password(
    target: &Target,
    email: &str,
    password: Option<String>,
) -> Result<(), Failure> {
    let email = address(email)?;
    let shown = email.stored.clone();
    let set = target.set_password(email, password).await?;
    let set = unless_missing(set, || format!("{shown} has no account"))?;
    let text = match set.has_password {
        true => format!("set the password of {}", set.email),
        false => format!("cleared the password of {}", set.email),
    };
    super::say(text, set);
    Ok(())
}

pub async fn disable(target: &Target, email: &str, disabled: bool) -> Result<(), Failure> {
    let email = address(email)?;
    let shown = email.stored.clone();
    let done = target.set_disabled(email, disabled).await?;
    let done = unless_missing(done, || format!("{shown} has no account"))?;
    let state = if disabled { "disabled" } else { "enabled" };
    let text = match done.changed {
        true => format!("{state} {}", done.email),
        false => format!("{} was already {state}", done.email),
    };
    super::say(text, done);
    Ok(())
}

pub async fn show(target: &Target, email: &str) -> Result<(), Failure> {
    let email = address(email)?;
    let shown = email.stored.clone();
    let view = unless_missing(target.show_user(email).await?, || {
        format!("{shown} has no account")
    })?;
    if super::json_output() {
        super::print_json(&view);
    } else {
        print!("{}", table(&view));
    }
    Ok(())
}

/// The account's state, then its history as a table, oldest first.
fn table(view: &AccountView) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut out = format!(
        "account     {}\npassword    {}\ndisabled    {}\nfailures    {} (locked: {})\nlive code   {}\nconfirmed   {}\n\n",
        view.email,
        yes(view.has_password),
        yes(view.disabled),
        view.failures,
        yes(view.locked),
        view.code_expires_ms.map_or("none".into(), |t| format!("expires {}", time(t))),
        view.confirmed_until_ms.map_or("no".into(), |t| format!("until {}", time(t))),
    );
    out.push_str("time                      event                  client           detail\n");
    for e in &view.history {
        let what = serde_json::to_value(e.what)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let what = match e.count {
            0 | 1 => what,
            n => format!("{what} ×{n}"),
        };
        let mut detail = e.detail.clone();
        if e.count > 1 {
            detail = format!("{detail} (the first at {})", time(e.at_ms))
                .trim()
                .to_string();
        }
        if !e.request_id.is_empty() {
            detail = format!("{detail} (request {})", e.request_id)
                .trim()
                .to_string();
        }
        let client = if e.client.is_empty() { "-" } else { &e.client };
        out.push_str(&format!(
            "{:<25} {what:<22} {client:<16} {detail}\n",
            time(e.latest_ms())
        ));
    }
    if view.history.is_empty() {
        out.push_str("(no history)\n");
    }
    out
}

fn time(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_shows_state_and_history_without_secrets() {
        use crate::store::history::{Entry, What};
        let view = super::AccountView {
            email: "Ada@example.com".into(),
            has_password: true,
            disabled: false,
            created_ms: 0,
            updated_ms: 0,
            failures: 1,
            locked: false,
            code_expires_ms: Some(600_000),
            confirmed_until_ms: None,
            history: vec![
                Entry::new(What::CodeRequested, 1_000)
                    .client("192.0.2.1")
                    .request_id("abc"),
                Entry::new(What::MailAccepted, 2_000).detail("250 2.0.0 Ok: queued as X1"),
            ],
        };
        let text = super::table(&view);
        assert!(
            text.contains("live code   expires 1970-01-01T00:10:00Z"),
            "{text}"
        );
        assert!(text.contains("code_requested"), "{text}");
        assert!(
            text.contains("192.0.2.1") && text.contains("(request abc)"),
            "{text}"
        );
        assert!(text.contains("250 2.0.0 Ok: queued as X1"), "{text}");
    }
}
