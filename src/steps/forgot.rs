//! Step 1 as the service runs it: the address's limits, the account read, the mail budget's
//! answer, a code drawn until the store takes one and flushed (on the store's writer), the
//! outbox woken.

use std::time::SystemTime;

use super::{Asker, Steps, WakeOnDrop};
use crate::error::ApiError;
use crate::guard::{Refusal, Ticket};
use crate::mail_address::Email;
use crate::recovery::forgot::{admitted, issue_of, target, Plan, Target, DRAWS};
use crate::recovery::{admission, Admission, Forgot};
use crate::store::codes::IssueRefused;
use crate::store::history::{Entry, What};
use crate::store::{unix_ms, Db, StoreError};

impl Steps {
    /// Whether a code may be issued now at all (`recovery::admission`): counted and refused
    /// with 503 when not.
    pub(super) fn admissible(&self) -> Result<(), ApiError> {
        let config = &self.config().recovery;
        let now_ms = unix_ms(SystemTime::now());
        let waited = self
            .inner
            .delivery
            .oldest_waited(now_ms, config.code_ttl / 2);
        let low = self.db().low_on_space().is_some();
        admission::forgot(low, waited, config.code_ttl).map_err(|busy| {
            self.metrics().refused(busy.kind);
            ApiError::Unavailable {
                retry_after_secs: busy.retry_after_secs,
            }
        })
    }

    /// forgot-password, after [`Steps::admit`]: the address's limits, the code issued and
    /// its mail queued (or a decoy's, or a 404), flushed. Ok means the 200.
    pub async fn forgot(
        &self,
        mut ticket: Ticket,
        asker: &Asker,
        email: Email,
    ) -> Result<(), ApiError> {
        ticket.admit_email(&email.key)?;
        let config = &self.config().recovery;
        let target = target(
            self.db().user(&email.key)?.as_ref(),
            config.hide_unknown_accounts,
        );
        let admit = |account| match self.guard().admit_mail(asker.client, account) {
            Ok(_) => Admission::Mail,
            Err(Refusal::Limited { retry_after_secs }) => Admission::Spent { retry_after_secs },
            Err(Refusal::Denied) => Admission::Spent {
                retry_after_secs: 60,
            },
        };
        let outcome = match admitted(target, config.hide_unknown_accounts, admit) {
            Ok(target) => self.issue(target, asker, &email).await?,
            Err(answer) => answer,
        };
        match outcome {
            // Refused by the mail budget: the ticket gives every charge back.
            Forgot::Spent { retry_after_secs } => {
                return Err(ApiError::RateLimited { retry_after_secs })
            }
            Forgot::NoAccount if !config.hide_unknown_accounts => {
                ticket.keep();
                return Err(ApiError::NoAccount);
            }
            Forgot::Queued => {
                self.metrics().codes_issued.inc();
            }
            Forgot::NoAccount => {}
        }
        // With hide_unknown_accounts an unknown address went through the same work for its
        // decoy record, and is answered the same way, after the same flush and wake-up.
        ticket.keep();
        Ok(())
    }

    /// Draws codes until the store takes one for `target`, on the store's writer, and
    /// waits for the flush that covers it (a refusal wrote nothing and waits for none).
    /// The outbox is woken after the flush, so that a known address's delivery (rendering,
    /// writing) does not run beside its own flush, which an unknown address's does not
    /// either: that made known addresses measurably slower. The guard wakes it even if the
    /// request is dropped while it waits.
    async fn issue(
        &self,
        target: Target,
        asker: &Asker,
        email: &Email,
    ) -> Result<Forgot, ApiError> {
        let _wake = WakeOnDrop(&self.inner.delivery);
        let plan = Plan {
            key: self.inner.key.clone(),
            config: self.config().recovery.clone(),
            target,
            email_key: email.key.clone(),
            locale: asker.locale.clone(),
            now: SystemTime::now(),
        };
        let length = plan.config.code_length;
        let draw = move || crate::crypto::random_code(length);
        let hide = plan.config.hide_unknown_accounts;
        let wrote = move |done: &Forgot| hide || *done == Forgot::Queued;
        // Noted as soon as the code is (before the flush), so that its mail's fate, which
        // the outbox may note from then on, comes after it in the account's history.
        let origin = asker.origin();
        let requested = Entry::new(What::CodeRequested, unix_ms(plan.now))
            .client(origin.client)
            .request_id(origin.request_id);
        let account = email.key.clone();
        let work = move |db: &Db| {
            let done = issue(db, plan, draw)?;
            if done == Forgot::Queued {
                db.note(&account, requested);
            }
            Ok(done)
        };
        Ok(self.db().write(work, wrote).await?)
    }
}

/// Draws codes from `draw` until the store takes one (a drawn code may be live already).
fn issue(
    db: &Db,
    mut plan: Plan,
    mut draw: impl FnMut() -> String,
) -> crate::store::Result<Forgot> {
    for _ in 0..DRAWS {
        let issue = issue_of(&draw(), &plan);
        let target = &plan.target;
        let account = issue.account.as_deref();
        match db.issue_code(&issue.record, account, issue.code, &issue.message)? {
            Ok(()) if *target == Target::Decoy => return Ok(Forgot::NoAccount),
            Ok(()) => return Ok(Forgot::Queued),
            // Removed meanwhile: enumeration-safe mode does the decoy's work instead.
            Err(IssueRefused::NoAccount) if plan.config.hide_unknown_accounts => {
                plan.target = Target::Decoy
            }
            Err(IssueRefused::NoAccount) => return Ok(Forgot::NoAccount),
            Err(IssueRefused::CodeTaken) => continue,
        }
    }
    Err(StoreError::Corrupt(format!(
        "{DRAWS} codes in a row were already live; raise recovery.code_length"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Durability, Recovery};
    use crate::crypto::CodeKey;
    use crate::mail_address::validate;
    use crate::store::users::User;

    #[test]
    fn a_taken_code_is_drawn_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        for who in ["a@example.com", "b@example.com"] {
            let email = validate(who).unwrap();
            db.add_user(&email.key, &User::new(&email, None, 0))
                .unwrap();
        }
        let key = CodeKey::new(b"s");
        let plan = |who: &str| Plan {
            key: key.clone(),
            config: Recovery::default(),
            target: Target::Account { to: who.into() },
            email_key: who.into(),
            locale: None,
            now: SystemTime::now(),
        };
        let same = || "111111111111".to_string();
        assert_eq!(
            issue(&db, plan("a@example.com"), same).unwrap(),
            Forgot::Queued
        );
        let mut draws = ["111111111111", "222222222222"]
            .into_iter()
            .map(String::from);
        let second = issue(&db, plan("b@example.com"), move || draws.next().unwrap());
        assert_eq!(second.unwrap(), Forgot::Queued);
        assert_eq!(
            db.code_owner(&key.mac("222222222222")).unwrap().as_deref(),
            Some("b@example.com"),
            "b got the second draw"
        );
        let nobody = issue(&db, plan("c@example.com"), same);
        assert_eq!(nobody.unwrap(), Forgot::NoAccount, "no account, no code");
    }
}
