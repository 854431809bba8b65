//! The public listener: the documented recovery API, its OpenAPI document, the health
//! checks, and the reset page (`page`). [`Public`] is what it runs with.

use std::net::IpAddr;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

pub use super::handle::{Parts, Public};
use super::json::{self, Resp};
use super::server::Peer;
use super::{bodies, browser};
use crate::error::ApiError;
use crate::guard::Endpoint;
use crate::steps::{NewPassword, Via};

pub const FORGOT: &str = "/api/v1/user/forgot-password";
pub const CONFIRM: &str = "/api/v1/user/confirm-otp-reset";
pub const RESET: &str = "/api/v1/user/password-reset";
const OPENAPI: &str = include_str!("openapi.json");

const FORGOT_OK: &str = "OTP email queued successfully";
const CONFIRM_OK: &str = "OTP confirmed successfully";
const RESET_OK: &str = "Password reset successfully";

pub fn route(
    public: Public,
    req: Request<Incoming>,
    peer: Peer,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + Send>> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let client = public.guard().client(peer.ip(), req.headers());
    let logged = super::logged(
        "public",
        method.clone(),
        uri.clone(),
        Some(client),
        public.metrics_handle(),
    );
    let handler = async move {
        // Deny lists, allow-only and bans apply to every path, not only the endpoints.
        if let Err(refused) = public.guard().admit_path(client) {
            return json::error(&refused.into());
        }
        let app = &public;
        let cors = &app.config().server.cors_origins;
        let result = match (&method, uri.path()) {
            (&Method::POST, FORGOT | CONFIRM | RESET) => {
                let allowed = match browser::admit(req.headers(), cors) {
                    Ok(allowed) => allowed,
                    Err(e) => {
                        app.metrics().refused(match e {
                            ApiError::CrossSite => "cross_site",
                            _ => "content_type",
                        });
                        return json::error(&e);
                    }
                };
                let mut resp = match uri.path() {
                    FORGOT => forgot(app, req, client).await,
                    CONFIRM => confirm(app, req, client).await,
                    _ => reset(app, req, client).await,
                }
                .unwrap_or_else(|e| json::error(&e));
                browser::expose(&mut resp, allowed);
                return resp;
            }
            (&Method::OPTIONS, FORGOT | CONFIRM | RESET) => browser::preflight(req.headers(), cors),
            (_, FORGOT | CONFIRM | RESET) => Err(ApiError::MethodNotAllowed { allow: "POST" }),
            (&Method::GET | &Method::HEAD, "/healthz") => {
                Ok(json::json_value(StatusCode::OK, &json!({ "status": "ok" })))
            }
            (&Method::GET | &Method::HEAD, "/readyz") => Ok(ready(app).await),
            (&Method::GET | &Method::HEAD, "/openapi.json") => Ok(json::json(
                StatusCode::OK,
                Bytes::from_static(OPENAPI.as_bytes()),
            )),
            (_, "/healthz" | "/readyz" | "/openapi.json") => {
                Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
            }
            (_, path) if crate::web::serves(&app.config().web, path) => {
                super::page::route(app, req, client).await
            }
            _ => Err(ApiError::NotFound),
        };
        result.unwrap_or_else(|e| json::error(&e))
    };
    Box::pin(logged.around(handler))
}

/// GET /readyz: 200 when the store takes a durable write and the outbox worker is alive;
/// 503 with the reason otherwise (see [`Readiness`]).
async fn ready(app: &Public) -> Resp {
    match app.ready().check().await {
        None => json::json_value(StatusCode::OK, &json!({ "status": "ready" })),
        Some(reason) => json::json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "unready", "reason": reason }),
        ),
    }
}

/// The body of a public request, read once the client's limits admitted it, and parsed.
async fn body<T>(
    app: &Public,
    req: Request<Incoming>,
    parse: fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let server = &app.config().server;
    parse(&json::read_body(req, server.max_body_bytes, server.body_timeout).await?)
}

/// A 200 body: `message`, the endpoint's own fields, and `key_0`..`key_4` (the contract, docs/api.md).
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

/// POST /api/v1/user/forgot-password (docs/api.md).
async fn forgot(app: &Public, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let mut ticket = app.steps().admit(client, Endpoint::Forgot)?;
    let asker = app.asker(&req, client, Via::Api);
    let body = ticket.counts(body(app, req, bodies::forgot).await)?;
    super::note_email(&body.email.key);
    app.steps().forgot(ticket, &asker, body.email).await?;
    Ok(json::json(
        StatusCode::OK,
        forgot_ok(&app.config().recovery),
    ))
}

/// POST /api/v1/user/confirm-otp-reset (docs/api.md), with the optional `email` extension.
async fn confirm(app: &Public, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let mut ticket = app.steps().admit(client, Endpoint::Confirm)?;
    let asker = app.asker(&req, client, Via::Api);
    let body = ticket.counts(body(app, req, bodies::confirm).await)?;
    if let Some(email) = &body.email {
        super::note_email(&email.key);
    }
    let steps = app.steps();
    let confirmed = steps
        .confirm(ticket, &asker, &body.code, body.email.as_ref())
        .await?;
    let fields = json!({ "email": confirmed.email, "resetSession": confirmed.session });
    let sentence = "Code confirmed. Now choose a new password.";
    let window = app.config().recovery.confirm_window.as_secs();
    let body = ok(CONFIRM_OK, fields, window, 0, sentence);
    Ok(json::json_value(StatusCode::OK, &body))
}

/// POST /api/v1/user/password-reset (docs/api.md), with the optional `resetSession` extension.
async fn reset(app: &Public, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let mut ticket = app.steps().admit(client, Endpoint::Reset)?;
    let asker = app.asker(&req, client, Via::Api);
    let body = ticket.counts(body(app, req, bodies::reset).await)?;
    super::note_email(&body.email.key);
    let new = NewPassword {
        email: &body.email,
        password: &body.password,
        session: body.session.as_deref(),
    };
    app.steps().reset(ticket, &asker, new).await?;
    let sentence = "Your password was changed. You can now sign in with it.";
    Ok(json::json_value(
        StatusCode::OK,
        &ok(RESET_OK, json!({}), 0, 0, sentence),
    ))
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
