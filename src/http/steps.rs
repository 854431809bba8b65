//! The three recovery steps as the public listener runs them, whatever the request's
//! format: the guard's limits on the address, the recovery decision, the metrics and the
//! flush before the answer. `public.rs` parses JSON around them and answers JSON; every
//! caller of the steps gets the same limits, answers and enumeration behaviour.

use std::net::IpAddr;
use std::time::SystemTime;

use super::bodies::{ConfirmBody, ForgotBody, ResetBody};
use crate::error::ApiError;
use crate::guard::{Endpoint, Refusal};
use crate::recovery::{
    self, Admission, Confirm, ConfirmRequest, Forgot, ForgotRequest, Reset, ResetRequest,
};
use crate::App;

/// Where a step was asked for: the JSON API, or the reset page (whose password form always
/// carries the `resetSession`, so its confirmations offer no same-client fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Page,
}

/// A confirmed code: the account's address and the `resetSession` for password-reset.
pub struct Confirmed {
    pub email: String,
    pub session: String,
}

/// What forgot-password checks before it reads the request: room on disk, and an outbox
/// that can deliver a new code before it expires.
pub fn forgot_admissible(app: &App) -> Result<(), ApiError> {
    if app.db().low_on_space().is_some() {
        // Refused before anything is written or counted: a full disk would fail the write
        // anyway, and sled then refuses every later write. Confirmations and password
        // changes, which write little, go on.
        app.metrics().refused("min_free");
        return Err(ApiError::Unavailable {
            retry_after_secs: 60,
        });
    }
    let patience = app.config().recovery.code_ttl / 2;
    if app
        .outbox_behind(crate::store::unix_ms(SystemTime::now()))
        .is_some()
    {
        // A code issued now would wait behind mail that has already waited half a code's
        // lifetime: refuse it rather than acknowledge a mail that arrives too late.
        app.metrics().refused("outbox_behind");
        let retry_after_secs = patience.as_secs().clamp(1, 60);
        return Err(ApiError::Unavailable { retry_after_secs });
    }
    Ok(())
}

/// forgot-password, after [`forgot_admissible`] and the client's limits: the address's
/// limits, the code issued and its mail queued, flushed. Ok means the 200.
pub async fn forgot(
    app: &App,
    client: IpAddr,
    locale: Option<String>,
    body: ForgotBody,
) -> Result<(), ApiError> {
    let email = body.email;
    super::note_email(&email.key);
    let admitted = app
        .guard()
        .admit_email(client, Endpoint::Forgot, &email.key);
    refunding(admitted, || {
        app.guard().refund_client(client, Endpoint::Forgot)
    })?;
    let config = &app.config().recovery;
    let request = ForgotRequest {
        email_key: &email.key,
        locale: locale.as_deref(),
    };
    let length = config.code_length;
    let draw = move || crate::crypto::random_code(length);
    let (db, key, now) = (app.db(), app.code_key(), SystemTime::now());
    let admit = |account| match app.guard().admit_mail(client, account) {
        Ok(_) => Admission::Mail,
        Err(Refusal::Limited { retry_after_secs }) => Admission::Spent { retry_after_secs },
        Err(Refusal::Denied) => Admission::Spent {
            retry_after_secs: 60,
        },
    };
    let outcome = recovery::forgot(db, key, config, request, now, draw, admit).await?;
    if let Forgot::Spent { retry_after_secs } = outcome {
        // Refused by the mail budget: charged to no limit, as any refusal.
        app.guard()
            .refund_email(client, Endpoint::Forgot, &email.key);
        app.guard().refund_client(client, Endpoint::Forgot);
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    if outcome == Forgot::NoAccount && !config.hide_unknown_accounts {
        return Err(ApiError::NoAccount);
    }
    if outcome == Forgot::Queued {
        app.metrics().codes_issued.inc();
    }
    // With hide_unknown_accounts an unknown address went through the same work for its
    // decoy record, and is answered the same way, after the same flush and wake-up.
    // The outbox is woken after the flush, so that a known address's delivery (rendering,
    // writing) does not run beside its own flush, which an unknown address's does not
    // either: that made known addresses measurably slower. The guard wakes it even if the
    // request is dropped while it waits.
    let _wake = WakeOnDrop(app.outbox());
    app.db().durable().await?;
    Ok(())
}

/// A later limit refused the request: what the earlier ones charged is given back, so
/// that a request refused by one limit is charged to none.
fn refunding(admitted: Result<(), Refusal>, refund: impl FnOnce()) -> Result<(), Refusal> {
    if admitted.is_err() {
        refund();
    }
    admitted
}

/// Wakes the outbox when dropped: at the end of a request, or when the request is dropped.
struct WakeOnDrop<'a>(&'a tokio::sync::Notify);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// confirm-otp-reset, after the client's limits: the address's limits (when it names
/// one), the failed-confirmation allowances, the decision, flushed where it wrote.
pub async fn confirm(
    app: &App,
    client: IpAddr,
    body: ConfirmBody,
    via: Via,
) -> Result<Confirmed, ApiError> {
    let refund_client = || app.guard().refund_client(client, Endpoint::Confirm);
    if let Some(email) = &body.email {
        super::note_email(&email.key);
        let admitted = app
            .guard()
            .admit_email(client, Endpoint::Confirm, &email.key);
        refunding(admitted, refund_client)?;
    }
    let admitted = app.guard().admit_confirm(client, body.email.is_some());
    if let Some(left) = app.guard().take_budget_spent() {
        announce_budget_spent(app, left).await;
    }
    refunding(admitted, || {
        refund_client();
        if let Some(email) = &body.email {
            app.guard()
                .refund_email(client, Endpoint::Confirm, &email.key);
        }
    })?;
    let config = &app.config().recovery;
    let claimed = body.email.as_ref().map(|e| e.key.as_str());
    let now = SystemTime::now();
    let request = ConfirmRequest {
        code: &body.code,
        claimed,
        client,
        session_only: via == Via::Page,
    };
    let (db, key) = (app.db(), app.code_key());
    let session = crate::crypto::random_token;
    let announce = || recovery::Announce::new(app.hooks(), client, &super::current_request_id());
    let outcome = recovery::confirm(db, key, config, announce, request, now, session).await?;
    // Failures counted against an account (or the decoy) must survive a restart too; a
    // code-only failure wrote nothing and needs no flush.
    if claimed.is_some() || matches!(outcome, Confirm::Confirmed { .. }) {
        app.db().durable().await?;
    }
    match outcome {
        Confirm::Confirmed { email, session } => {
            app.guard().confirm_succeeded(client);
            app.metrics().codes_confirmed.inc();
            Ok(Confirmed { email, session })
        }
        Confirm::Invalid => {
            app.metrics().confirmations_failed.inc();
            Err(ApiError::InvalidOtp)
        }
        Confirm::Locked => {
            app.metrics().confirmations_failed.inc();
            tracing::warn!(%client, "confirmation refused: the account reached recovery.max_account_failures");
            Err(ApiError::InvalidOtp)
        }
    }
}

/// Queues the `recovery.budget_exhausted` event (once per spent window), durably.
async fn announce_budget_spent(app: &App, left_secs: u64) {
    const KIND: &str = "recovery.budget_exhausted";
    if !app.hooks().wants(KIND) {
        return;
    }
    let budget = app.config().recovery.failed_confirm_budget;
    let now = crate::store::unix_ms(SystemTime::now());
    let event =
        crate::outbox::webhook::Event::new(KIND, crate::outbox::webhook::event::new_id(), "", now)
            .with("budget", budget.requests)
            .with("window_seconds", budget.window.as_secs())
            .with(
                "until",
                crate::outbox::webhook::event::rfc3339(now + left_secs * 1000),
            );
    let deliveries = app.hooks().deliveries(&event, now);
    let queued = app
        .db()
        .blocking(move |db| db.queue_webhooks(&deliveries).map(|_| ()))
        .await;
    match queued.and(app.db().durable().await) {
        Ok(()) => {}
        Err(e) => {
            // Told again with the next refusal, rather than lost.
            app.guard().budget_spent_again(left_secs);
            tracing::error!(error = %e, "queueing the recovery.budget_exhausted event failed");
        }
    }
}

/// password-reset, after the client's limits: the confirmation checked, the address's
/// limits, the policy, the new password stored and flushed. Ok means the 200.
pub async fn reset(
    app: &App,
    client: IpAddr,
    locale: Option<String>,
    body: ResetBody,
) -> Result<(), ApiError> {
    super::note_email(&body.email.key);
    let request = ResetRequest {
        email: &body.email,
        password: &body.password,
        session: body.session.as_deref(),
        client,
        locale,
        request_id: super::current_request_id(),
    };
    let (db, key, config) = (app.db(), app.code_key(), app.config());
    let now = SystemTime::now();
    let mut charged_email = false;
    let outcome = match recovery::reset_ready(db, key, config, &request, now)? {
        Some(refused) => refused,
        None => {
            charged_email = true;
            // Counted only for requests that hold the confirmation: someone who merely
            // knows the address cannot spend the owner's allowance.
            let admitted = app
                .guard()
                .admit_email(client, Endpoint::Reset, &body.email.key);
            refunding(admitted, || {
                app.guard().refund_client(client, Endpoint::Reset)
            })?;
            if breached(app, &body.password).await {
                // Refused as the offline policy's refusals are: not charged to the address.
                app.guard()
                    .refund_email(client, Endpoint::Reset, &body.email.key);
                Reset::Policy(recovery::policy::Weak::Breached)
            } else {
                let hooks = app.hooks();
                recovery::reset_password(db, key, app.hasher(), config, hooks, request, now).await?
            }
        }
    };
    match outcome {
        Reset::Done => {
            app.metrics().password_resets.inc();
            app.outbox().notify_one();
            app.db().durable().await?;
            Ok(())
        }
        Reset::NoAccount | Reset::NotConfirmed => {
            if charged_email {
                app.guard()
                    .refund_email(client, Endpoint::Reset, &body.email.key);
            }
            Err(refused_reset(app, &body.email.key, outcome, client).await)
        }
        Reset::Policy(why) => Err(ApiError::WeakPassword(why)),
    }
}

/// The online check (`passwords.breach_api`), if configured: whether the range API lists the
/// password. It runs after the confirmation and the offline policy passed, before the hash;
/// a failure or timeout skips it (availability wins).
async fn breached(app: &App, password: &str) -> bool {
    match app.breach() {
        Some(breach) => breach.check(password).await == crate::breach::Verdict::Listed,
        None => false,
    }
}

/// A password-reset refused for want of a usable confirmation is a failure: it counts
/// against the client and the address, and the refused client may not use the account's
/// next confirmation without its session (`recovery::refused_reset`).
async fn refused_reset(app: &App, key: &str, outcome: Reset, client: IpAddr) -> ApiError {
    app.metrics().password_resets_refused.inc();
    let known = outcome == Reset::NotConfirmed;
    let noted = recovery::refused_reset(
        app.db(),
        app.config(),
        key,
        known,
        client,
        SystemTime::now(),
    );
    if let Err(e) = noted.await {
        return e.into();
    }
    let counted = app.guard().reset_failed(client, key);
    if let Err(refusal) = refunding(counted, || {
        app.guard().refund_client(client, Endpoint::Reset)
    }) {
        return refusal.into();
    }
    match outcome {
        // Enumeration-safe mode: an unknown account looks like one without a confirmation.
        Reset::NoAccount if !app.config().recovery.hide_unknown_accounts => {
            ApiError::NoAccountBadRequest
        }
        _ => ApiError::InvalidRequest,
    }
}
