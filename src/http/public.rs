//! The public listener: the documented recovery API, its OpenAPI document, the health check.

use std::net::IpAddr;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::bodies;
use super::json::{self, Resp};
use super::server::Peer;
use crate::error::ApiError;
use crate::guard::{Endpoint, Refusal};
use crate::recovery::{self, Confirm, ConfirmRequest, Forgot, ForgotRequest, Reset, ResetRequest};
use crate::App;

pub const FORGOT: &str = "/api/v1/user/forgot-password";
pub const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
pub const RESET: &str = "/api/v1/user/password-reset";
const OPENAPI: &str = include_str!("openapi.json");

const FORGOT_OK: &str = "OTP email queued successfully";
const CONFIRM_OK: &str = "OTP confirmed successfully";
const RESET_OK: &str = "Password reset successfully";

pub fn route(
    app: App,
    req: Request<Incoming>,
    peer: Peer,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + Send>> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let client = app.guard().client(peer.ip(), req.headers());
    let logged = super::logged(
        "public",
        method.clone(),
        uri.clone(),
        Some(client),
        app.metrics().clone(),
    );
    let handler = async move {
        // Deny lists, allow-only and bans apply to every path, not only the endpoints.
        if let Err(refused) = app.guard().admit_path(client) {
            return json::error(&refused.into());
        }
        let result = match (&method, uri.path()) {
            (&Method::POST, FORGOT) => forgot(&app, req, client).await,
            (&Method::POST, CONFIRM) => confirm(&app, req, client).await,
            (&Method::POST, RESET) => reset(&app, req, client).await,
            (_, FORGOT | CONFIRM | RESET) => Err(ApiError::MethodNotAllowed { allow: "POST" }),
            (&Method::GET | &Method::HEAD, "/healthz") => {
                Ok(json::json_value(StatusCode::OK, &json!({ "status": "ok" })))
            }
            (&Method::GET | &Method::HEAD, "/readyz") => Ok(ready(&app).await),
            (&Method::GET | &Method::HEAD, "/openapi.json") => Ok(json::json(
                StatusCode::OK,
                Bytes::from_static(OPENAPI.as_bytes()),
            )),
            (_, "/healthz" | "/readyz" | "/openapi.json") => {
                Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
            }
            _ => Err(ApiError::NotFound),
        };
        result.unwrap_or_else(|e| json::error(&e))
    };
    Box::pin(logged.around(handler))
}

/// GET /readyz: 200 when the store takes a durable write and the outbox worker is alive;
/// 503 with the reason otherwise (see [`App::readiness`]).
async fn ready(app: &App) -> Resp {
    match app.readiness().await {
        None => json::json_value(StatusCode::OK, &json!({ "status": "ready" })),
        Some(reason) => json::json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "unready", "reason": reason }),
        ),
    }
}

/// The body of a public request, after the guard admitted the client.
async fn body(
    app: &App,
    req: Request<Incoming>,
    client: IpAddr,
    endpoint: Endpoint,
) -> Result<Bytes, ApiError> {
    app.guard().admit_client(client, endpoint)?;
    let server = &app.config().server;
    json::read_body(req, server.max_body_bytes, server.body_timeout).await
}

/// A 200 body: `message`, the endpoint's own fields, and `key_0`..`key_4` (API.md).
fn ok(message: &str, fields: Value, next_step_secs: u64, retry_secs: u64, sentence: &str) -> Value {
    let mut body = json!({
        "message": message,
        "key_0": next_step_secs,
        "key_1": message,
        "key_2": retry_secs,
        "key_3": sentence,
        "key_4": true,
    });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    body
}

/// POST /api/v1/user/forgot-password (API.md §1).
/// The catalog locale that the request's `Accept-Language` asks for.
fn locale(app: &App, req: &Request<Incoming>) -> Option<String> {
    let header = req.headers().get(hyper::header::ACCEPT_LANGUAGE);
    app.catalog().choose(header.and_then(|v| v.to_str().ok()))
}

async fn forgot(app: &App, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
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
    let locale = locale(app, &req);
    let body = bodies::forgot(&body(app, req, client, Endpoint::Forgot).await?)?;
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
    let outcome = recovery::forgot(db, key, config, request, now, draw).await?;
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
    Ok(json::json(
        StatusCode::OK,
        forgot_ok(&app.config().recovery),
    ))
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

/// POST /api/v1/user/confirm-otp-reset (API.md §2), with the optional `email` extension.
async fn confirm(app: &App, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let body = bodies::confirm(&body(app, req, client, Endpoint::Confirm).await?)?;
    let refund_client = || app.guard().refund_client(client, Endpoint::Confirm);
    if let Some(email) = &body.email {
        super::note_email(&email.key);
        let admitted = app
            .guard()
            .admit_email(client, Endpoint::Confirm, &email.key);
        refunding(admitted, refund_client)?;
    }
    let admitted = app.guard().admit_confirm(client, body.email.is_some());
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
    };
    let (db, key) = (app.db(), app.code_key());
    let session = crate::crypto::random_token;
    let outcome = recovery::confirm(db, key, config, request, now, session).await?;
    // Failures counted against an account (or the decoy) must survive a restart too; a
    // code-only failure wrote nothing and needs no flush.
    if claimed.is_some() || matches!(outcome, Confirm::Confirmed { .. }) {
        app.db().durable().await?;
    }
    match outcome {
        Confirm::Confirmed { email, session } => {
            app.guard().confirm_succeeded(client);
            app.metrics().codes_confirmed.inc();
            let fields = json!({ "email": email, "resetSession": session });
            let sentence = "Code confirmed. Now choose a new password.";
            let body = ok(
                CONFIRM_OK,
                fields,
                config.confirm_window.as_secs(),
                0,
                sentence,
            );
            Ok(json::json_value(StatusCode::OK, &body))
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

/// POST /api/v1/user/password-reset (API.md §3), with the optional `resetSession` extension.
async fn reset(app: &App, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let locale = locale(app, &req);
    let body = bodies::reset(&body(app, req, client, Endpoint::Reset).await?)?;
    super::note_email(&body.email.key);
    let request = ResetRequest {
        email: &body.email,
        password: &body.password,
        session: body.session.as_deref(),
        client,
        locale,
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
            recovery::reset_password(db, key, app.hasher(), config, request, now).await?
        }
    };
    match outcome {
        Reset::Done => {
            app.metrics().password_resets.inc();
            app.outbox().notify_one();
            app.db().durable().await?;
            let sentence = "Your password was changed. You can now sign in with it.";
            Ok(json::json_value(
                StatusCode::OK,
                &ok(RESET_OK, json!({}), 0, 0, sentence),
            ))
        }
        Reset::NoAccount | Reset::NotConfirmed => {
            if charged_email {
                app.guard()
                    .refund_email(client, Endpoint::Reset, &body.email.key);
            }
            Err(refused_reset(app, &body.email.key, outcome, client).await)
        }
        Reset::Policy(why) => Err(ApiError::BadRequest(why.into())),
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

/// The constant 200 body of forgot-password: built once for the configured code lifetime
/// and cooldown (and again only if another configuration asks, as in tests).
fn forgot_ok(config: &crate::config::Recovery) -> Bytes {
    type Built = (u64, u64, Bytes);
    static BUILT: std::sync::OnceLock<Built> = std::sync::OnceLock::new();
    let (ttl, cooldown) = (config.code_ttl.as_secs(), config.resend_cooldown.as_secs());
    let build = || {
        let sentence = "Please check your email for the OTP to reset your password.";
        let body = ok(FORGOT_OK, json!({}), ttl, cooldown, sentence);
        (ttl, cooldown, Bytes::from(body.to_string()))
    };
    match BUILT.get_or_init(build) {
        (t, c, body) if (*t, *c) == (ttl, cooldown) => body.clone(),
        _ => build().2,
    }
}
