//! The public listener: the documented recovery API, its OpenAPI document, the health check.

use std::net::IpAddr;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::json::{self, Resp};
use super::server::Peer;
use super::{bodies, browser, steps};
use crate::error::ApiError;
use crate::guard::Endpoint;
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
            (&Method::POST, FORGOT | CONFIRM | RESET) => {
                let cors = &app.config().server.cors_origins;
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
                    FORGOT => forgot(&app, req, client).await,
                    CONFIRM => confirm(&app, req, client).await,
                    _ => reset(&app, req, client).await,
                }
                .unwrap_or_else(|e| json::error(&e));
                browser::expose(&mut resp, allowed);
                return resp;
            }
            (&Method::OPTIONS, FORGOT | CONFIRM | RESET) => {
                browser::preflight(req.headers(), &app.config().server.cors_origins)
            }
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
            (_, path) if crate::web::serves(&app, path) => {
                crate::web::route(&app, req, client).await
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

/// The catalog locale that the request's `Accept-Language` asks for.
pub(crate) fn locale(app: &App, req: &Request<Incoming>) -> Option<String> {
    let header = req.headers().get(hyper::header::ACCEPT_LANGUAGE);
    app.catalog().choose(header.and_then(|v| v.to_str().ok()))
}

/// POST /api/v1/user/forgot-password (API.md §1).
async fn forgot(app: &App, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    steps::forgot_admissible(app)?;
    let locale = locale(app, &req);
    let body = bodies::forgot(&body(app, req, client, Endpoint::Forgot).await?)?;
    steps::forgot(app, client, locale, body).await?;
    Ok(json::json(
        StatusCode::OK,
        forgot_ok(&app.config().recovery),
    ))
}

/// POST /api/v1/user/confirm-otp-reset (API.md §2), with the optional `email` extension.
async fn confirm(app: &App, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let body = bodies::confirm(&body(app, req, client, Endpoint::Confirm).await?)?;
    let confirmed = steps::confirm(app, client, body, steps::Via::Api).await?;
    let fields = json!({ "email": confirmed.email, "resetSession": confirmed.session });
    let sentence = "Code confirmed. Now choose a new password.";
    let window = app.config().recovery.confirm_window.as_secs();
    let body = ok(CONFIRM_OK, fields, window, 0, sentence);
    Ok(json::json_value(StatusCode::OK, &body))
}

/// POST /api/v1/user/password-reset (API.md §3), with the optional `resetSession` extension.
async fn reset(app: &App, req: Request<Incoming>, client: IpAddr) -> Result<Resp, ApiError> {
    let locale = locale(app, &req);
    let body = bodies::reset(&body(app, req, client, Endpoint::Reset).await?)?;
    steps::reset(app, client, locale, body).await?;
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
