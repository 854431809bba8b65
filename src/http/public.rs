//! The public listener: the documented recovery API and the health check.

use std::net::SocketAddr;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::json::{self, Resp};
use crate::error::ApiError;
use crate::recovery::{self, Forgot};
use crate::{mail_address, App};

pub const FORGOT: &str = "/api/v1/user/forgot-password";
const FORGOT_OK: &str = "OTP email queued successfully";

pub fn route(
    app: App,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + Send>> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    Box::pin(super::logged(
        "public",
        method.clone(),
        uri.clone(),
        peer,
        async move {
            let result = match (&method, uri.path()) {
                (&Method::POST, FORGOT) => forgot(&app, req, peer).await,
                (_, FORGOT) => Err(ApiError::MethodNotAllowed { allow: "POST" }),
                (&Method::GET | &Method::HEAD, "/healthz") => {
                    Ok(json::json_value(StatusCode::OK, &json!({ "status": "ok" })))
                }
                (_, "/healthz") => Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
                _ => Err(ApiError::NotFound),
            };
            result.unwrap_or_else(|e| json::error(&e))
        },
    ))
}

/// POST /api/v1/user/forgot-password (API.md §1).
async fn forgot(app: &App, req: Request<Incoming>, peer: SocketAddr) -> Result<Resp, ApiError> {
    app.guard.admit_client(peer.ip())?;
    let server = &app.config.server;
    let body = json::read_object(req, server.max_body_bytes, server.body_timeout).await?;
    let email = json::required_str(&body, "email")?;
    let email = mail_address::validate(email).map_err(|e| ApiError::bad_request(e.0))?;
    app.guard.admit_email(&email.key)?;
    let outcome = recovery::forgot(
        &app.db,
        &app.code_key,
        &app.config.recovery,
        &email.key,
        SystemTime::now(),
    )?;
    match outcome {
        Forgot::NoAccount => Err(ApiError::NoAccount),
        Forgot::Queued => {
            app.db.durable().await?;
            app.outbox.notify_one();
            Ok(json::json(StatusCode::OK, app.forgot_ok.clone()))
        }
    }
}

/// The constant 200 body of forgot-password, built once from the configuration.
pub fn forgot_ok_body(config: &crate::config::Config) -> Bytes {
    let body = json!({
        "message": FORGOT_OK,
        "key_0": config.recovery.code_ttl.as_secs(),
        "key_1": FORGOT_OK,
        "key_2": config.recovery.resend_cooldown.as_secs(),
        "key_3": "Please check your email for the OTP to reset your password.",
        "key_4": true,
    });
    Bytes::from(body.to_string())
}
