//! The limits on failures: failed confirmations per client and the global budget of
//! code-only failures (with its `recovery.budget_exhausted` news), and refused
//! password-resets per client and per address.

use std::net::IpAddr;

use super::{client_key, hit, refund, Guard, Refusal};

impl Guard {
    /// Before a code is checked: takes one of the client's failed-confirmation allowance
    /// and, for a request without `email`, one of the global budget of failed
    /// confirmations. A confirmation that succeeds gives both back ([`Guard::confirm_succeeded`]),
    /// so only failures are ever spent, and concurrent guesses cannot overrun a limit.
    pub fn admit_confirm(&self, ip: IpAddr, with_email: bool) -> Result<(), Refusal> {
        let client = client_key(ip.to_canonical());
        self.strike_on(
            client,
            "confirm_failures",
            hit(&self.confirm_failures, client),
        )?;
        if with_email {
            // Counted, never refused: a guess naming its account is bounded by that
            // account's own failure limit, and the budget must not lock everyone out.
            let _ = hit(&self.failed_confirm_budget, ());
            return Ok(());
        }
        let spent = hit(&self.failed_confirm_budget, ());
        if let Err(Refusal::Limited { retry_after_secs }) = spent {
            refund(&self.confirm_failures, &client);
            self.metrics.refused("failed_confirm_budget");
            self.budget_spent(retry_after_secs);
        }
        spent
    }

    /// The first refusal of a window in which the global budget ran out: counted and
    /// logged once, not once per refused request.
    fn budget_spent(&self, retry_after_secs: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.started.elapsed().as_secs();
        let until = self.budget_spent_until.load(Relaxed);
        if now < until {
            return;
        }
        let ends = now + retry_after_secs;
        if self
            .budget_spent_until
            .compare_exchange(until, ends, Relaxed, Relaxed)
            .is_ok()
        {
            self.metrics.budget_exhausted.inc();
            self.budget_news.store(retry_after_secs + 1, Relaxed);
            tracing::warn!(
                window_ends_in_secs = retry_after_secs,
                "the global budget of failed confirmations (recovery.failed_confirm_budget) is spent: code-only confirmations get 429 until its window ends; confirmations naming their email still work"
            );
        }
    }

    /// The seconds left in the window of a budget that was spent since the last call, once
    /// (for the `recovery.budget_exhausted` event).
    pub fn take_budget_spent(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        self.budget_news.swap(0, Relaxed).checked_sub(1)
    }

    /// Puts back what [`Guard::take_budget_spent`] took, when it could not be announced.
    pub fn budget_spent_again(&self, left_secs: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.budget_news.store(left_secs + 1, Relaxed);
    }

    /// A password-reset that found no usable confirmation: a ban strike for the client,
    /// like any refusal, and one of its failures (`limits.reset_failures_per_client`, 429
    /// once spent). It also counts against the address (`limits.reset_failures_per_email`,
    /// 429 without a strike: that refusal is about the address, not the client).
    pub fn reset_failed(&self, ip: IpAddr, key: &str) -> Result<(), Refusal> {
        let client = client_key(ip.to_canonical());
        self.bans.strike(client);
        let per_client = hit(&self.reset_failures, client);
        if per_client.is_err() {
            self.metrics.refused("reset_failures");
            return per_client;
        }
        let per_email = hit(&self.reset_failures_per_email, self.digests.of(key));
        if per_email.is_err() {
            self.metrics.refused("reset_failures_per_email");
        }
        per_email
    }

    pub fn confirm_succeeded(&self, ip: IpAddr) {
        refund(&self.confirm_failures, &client_key(ip.to_canonical()));
        refund(&self.failed_confirm_budget, &());
    }
}
