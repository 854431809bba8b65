//! Step 2 as the service runs it: the address's limits (when the request names one), the
//! failed-confirmation allowances, the decision over the records, the flush where it wrote.

use std::time::SystemTime;

use super::{Asker, Decision, Steps, Via};
use crate::error::ApiError;
use crate::events::Event;
use crate::guard::Ticket;
use crate::mail_address::Email;
use crate::outbox::webhook::Origin;
use crate::recovery::confirm::{attempt, decide, normalize_code, records_to_read, Outcome};
use crate::recovery::{Confirm, ConfirmRequest};
use crate::store::history::{Entry, What};
use crate::store::unix_ms;

/// A confirmed code: the account's address and the `resetSession` for password-reset.
pub struct Confirmed {
    pub email: String,
    pub session: String,
}

impl Steps {
    /// confirm-otp-reset, after [`Steps::admit`]: `code` as typed, for the account
    /// `claimed` when the request names one. The address's limits, the failed-confirmation
    /// allowances, the decision, flushed where it wrote.
    pub async fn confirm(
        &self,
        mut ticket: Ticket,
        asker: &Asker,
        code: &str,
        claimed: Option<&Email>,
    ) -> Result<Confirmed, ApiError> {
        if let Some(email) = claimed {
            ticket.admit_email(&email.key)?;
        }
        let admitted = self.guard().admit_confirm(asker.client, claimed.is_some());
        if let Some(left) = self.guard().take_budget_spent() {
            self.announce_budget_spent(left).await;
        }
        admitted?;
        ticket.keep();
        let claimed = claimed.map(|e| e.key.as_str());
        let request = ConfirmRequest {
            code,
            claimed,
            client: asker.client,
            session_only: asker.via == Via::Page,
        };
        let outcome = self.decide_confirm(&request, asker).await?;
        match outcome {
            Confirm::Confirmed { email, session } => {
                self.guard().confirm_succeeded(asker.client);
                self.metrics().codes_confirmed.inc();
                Ok(Confirmed { email, session })
            }
            Confirm::Invalid => {
                self.metrics().confirmations_failed.inc();
                self.note_refused(claimed, asker)?;
                Err(ApiError::InvalidOtp)
            }
            Confirm::Locked => {
                self.metrics().confirmations_failed.inc();
                self.note_refused(claimed, asker)?;
                let client = asker.client;
                tracing::warn!(%client, "confirmation refused: the account reached recovery.max_account_failures");
                Err(ApiError::InvalidOtp)
            }
        }
    }

    /// A confirmation refused that named an account: counted, per hour, in its history.
    fn note_refused(&self, claimed: Option<&str>, asker: &Asker) -> Result<(), ApiError> {
        let Some(key) = claimed else {
            return Ok(());
        };
        if self.db().user(key)?.is_some_and(|user| !user.disabled) {
            let now_ms = unix_ms(SystemTime::now());
            let entry = Entry::new(What::ConfirmationsRefused, now_ms);
            self.db()
                .note(key, entry.client(asker.client.to_canonical().to_string()));
        }
        Ok(())
    }

    /// Consumes the code. A code-only guess that matches no code is answered after one
    /// read (no session drawn, no transaction); the rest runs on the store's writer.
    /// Failures counted against an account (or the decoy) must survive a restart too, and
    /// are answered after the flush; a code-only failure wrote nothing and waits for none.
    async fn decide_confirm(
        &self,
        req: &ConfirmRequest<'_>,
        asker: &Asker,
    ) -> Result<Confirm, ApiError> {
        let mac = self.inner.key.mac(&normalize_code(req.code));
        if req.claimed.is_none() && self.db().code_owner(&mac)?.is_none() {
            return Ok(Confirm::Invalid);
        }
        let session = crate::crypto::random_token();
        let now = SystemTime::now();
        let attempt = attempt(&self.inner.key, &self.config().recovery, req, &session, now);
        let on = Decision {
            mac: Some(attempt.mac),
            keys: records_to_read(&attempt),
            origin: asker.origin(),
            now_ms: unix_ms(now),
        };
        let now_ms = on.now_ms;
        let claimed = req.claimed.is_some();
        let wrote =
            move |outcome: &Outcome| claimed || matches!(outcome, Outcome::Confirmed { .. });
        let outcome = self
            .decide(on, move |r| decide(r, &attempt, now_ms), wrote)
            .await?;
        Ok(match outcome {
            Outcome::Confirmed { email } => Confirm::Confirmed { email, session },
            Outcome::Invalid => Confirm::Invalid,
            Outcome::Locked => Confirm::Locked,
        })
    }

    /// Queues the `recovery.budget_exhausted` event (once per spent window), durably; told
    /// again with the next refusal when that fails.
    async fn announce_budget_spent(&self, left_secs: u64) {
        let budget = self.config().recovery.failed_confirm_budget;
        let now = unix_ms(SystemTime::now());
        let event = Event::BudgetExhausted {
            budget: budget.requests,
            window_secs: budget.window.as_secs(),
            until_ms: now + left_secs * 1000,
        };
        let deliveries = self
            .inner
            .hooks
            .deliveries_of(&[event], &Origin::default(), now);
        if deliveries.is_empty() {
            return;
        }
        let queued = self
            .db()
            .blocking(move |db| db.queue_webhooks(&deliveries).map(|_| ()))
            .await;
        if let Err(e) = queued.and(self.db().durable().await) {
            self.guard().budget_spent_again(left_secs);
            tracing::error!(error = %e, "queueing the recovery.budget_exhausted event failed");
        }
    }
}
