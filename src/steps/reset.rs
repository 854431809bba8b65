//! Step 3 as the service runs it: the confirmation checked (cheaply, before anything is
//! counted against the address), the address's limits, the policy and the optional online
//! check, the hash, the change made with the check repeated, the flush; or what a refusal
//! leaves behind.

use std::time::SystemTime;

use super::{Asker, Decision, Steps, WakeOnDrop};
use crate::error::ApiError;
use crate::guard::Ticket;
use crate::mail_address::Email;
use crate::recovery::policy::Weak;
use crate::recovery::reset::{
    check, refused, refused_record, set_password, Acceptor, PasswordChange,
};
use crate::recovery::{Reset, ResetRequest};
use crate::store::unix_ms;

/// What password-reset asks: the account, the new password, and the `resetSession` if the
/// client sent one.
pub struct NewPassword<'a> {
    pub email: &'a Email,
    pub password: &'a str,
    pub session: Option<&'a str>,
}

impl Steps {
    /// password-reset, after [`Steps::admit`]: the confirmation checked, the address's
    /// limits, the policy, the new password stored and flushed. Ok means the 200.
    pub async fn reset(
        &self,
        mut ticket: Ticket,
        asker: &Asker,
        new: NewPassword<'_>,
    ) -> Result<(), ApiError> {
        let req = ResetRequest {
            email: new.email,
            password: new.password,
            session: new.session,
            client: asker.client,
            locale: asker.locale.clone(),
        };
        let outcome = match self.ready(&req)? {
            Some(refused) => refused,
            None => {
                // Counted only for requests that hold the confirmation: someone who merely
                // knows the address cannot spend the owner's allowance.
                ticket.admit_email(&req.email.key)?;
                if self.breached(req.password).await {
                    // Refused as the offline policy's refusals are: not charged to the address.
                    ticket.release_email();
                    Reset::Policy(Weak::Breached)
                } else {
                    self.set_password(&req, asker).await?
                }
            }
        };
        match outcome {
            Reset::Done => {
                ticket.keep();
                self.metrics().password_resets.inc();
                Ok(())
            }
            Reset::NoAccount | Reset::NotConfirmed => {
                Err(self.refused(&req, outcome, ticket).await)
            }
            Reset::Policy(why) => {
                ticket.keep_client();
                Err(ApiError::WeakPassword(why))
            }
        }
    }

    /// [`check`] on the account as stored now (two reads, no lock).
    fn ready(&self, req: &ResetRequest<'_>) -> Result<Option<Reset>, ApiError> {
        let k = &req.email.key;
        if self.db().user(k)?.is_none_or(|user| user.disabled) {
            return Ok(Some(Reset::NoAccount));
        }
        let record = self.db().reset(k)?.unwrap_or_default();
        let accept = Acceptor::new(&self.inner.key, self.config(), req);
        let now_ms = unix_ms(SystemTime::now());
        Ok(check(Some(&record), &accept, self.config(), req, now_ms))
    }

    /// The online check (`passwords.breach_api`), if configured: whether the range API
    /// lists the password. It runs after the confirmation and the offline policy passed,
    /// before the hash; a failure or timeout skips it (availability wins).
    async fn breached(&self, password: &str) -> bool {
        match &self.inner.breach {
            Some(breach) => breach.check(password).await == crate::breach::Verdict::Listed,
            None => false,
        }
    }

    /// Sets the password if the account's confirmation allows this request (tested again,
    /// atomically with the change). Hashing costs ~0.1 s of CPU, off the async threads.
    async fn set_password(&self, req: &ResetRequest<'_>, asker: &Asker) -> Result<Reset, ApiError> {
        let hash = self.inner.hasher.hash(req.password.to_string()).await;
        let now = SystemTime::now();
        let change = PasswordChange::new(&self.inner.key, self.config(), req, hash, now);
        let on = Decision {
            mac: None,
            keys: vec![change.key.clone()],
            origin: asker.origin(),
            now_ms: unix_ms(now),
        };
        let now_ms = on.now_ms;
        // Wakes the outbox for the change's webhooks after the flush, even if the request
        // is dropped while it waits.
        let _wake = WakeOnDrop(&self.inner.delivery);
        Ok(self
            .decide(
                on,
                move |r| set_password(r, &change, now_ms),
                |r| *r == Reset::Done,
            )
            .await?)
    }

    /// A password-reset refused for want of a usable confirmation is a failure: it counts
    /// against the client and the address, and the refused client may not use the
    /// account's next confirmation without its session (`recovery::reset::refused`),
    /// flushed only when written.
    async fn refused(
        &self,
        req: &ResetRequest<'_>,
        outcome: Reset,
        mut ticket: Ticket,
    ) -> ApiError {
        self.metrics().password_resets_refused.inc();
        ticket.release_email();
        let key = &req.email.key;
        let known = outcome == Reset::NotConfirmed;
        let hide = self.config().recovery.hide_unknown_accounts;
        if let Some(record) = refused_record(key, known, hide) {
            let client = req.client.to_canonical().to_string();
            let now_ms = unix_ms(SystemTime::now());
            let on = Decision {
                mac: None,
                keys: vec![record.clone()],
                origin: Default::default(),
                now_ms,
            };
            let noted = self
                .decide(on, move |r| refused(r, &record, &client, now_ms), |w| *w)
                .await;
            if let Err(e) = noted {
                return e.into();
            }
        }
        if let Err(refusal) = self.guard().reset_failed(req.client, key) {
            // Refused by a limit: the ticket gives the client's charge back.
            return refusal.into();
        }
        ticket.keep_client();
        match outcome {
            // Enumeration-safe mode: an unknown account looks like one without a confirmation.
            Reset::NoAccount if !hide => ApiError::NoAccountBadRequest,
            _ => ApiError::InvalidRequest,
        }
    }
}
