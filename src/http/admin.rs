//! The admin listener (TCP, bearer token; TLS off loopback) and the local admin socket:
//! routing, the token check and its limit, request bodies in and answers out. The
//! operations themselves are [`crate::admin`]'s, which the CLI calls too.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use super::json::{self, Resp};
use super::server::Peer;
use crate::admin::paths::{
    BACKUP, BLOCKS, BLOCKS_REMOVE, METRICS, OUTBOX, OUTBOX_PURGE, OUTBOX_RETRY, OUTBOX_SHOW, USERS,
    USERS_CHANGE_EMAIL, USERS_DISABLE, USERS_ENABLE, USERS_IMPORT, USERS_REMOVE,
    USERS_SET_PASSWORD, USERS_SHOW, USERS_UNLOCK, USERS_VERIFY,
};
use crate::admin::users::{parse_account, NewAccount};
use crate::admin::Admin;
use crate::admin::AdminError;
use crate::config::Config;
use crate::crypto::AdminToken;
use crate::error::ApiError;
use crate::guard::Guard;
use crate::mail_address::{self, Email};
use crate::metrics::Metrics;

/// What the admin listeners run with: the operations, the token, the guard (bans and the
/// limit on wrong tokens), the configuration and the metrics. Cheap to clone.
#[derive(Clone)]
pub struct AdminApi {
    inner: std::sync::Arc<Parts>,
}

pub struct Parts {
    pub admin: Admin,
    pub token: AdminToken,
    pub guard: std::sync::Arc<Guard>,
    pub config: std::sync::Arc<Config>,
    pub metrics: std::sync::Arc<Metrics>,
}

impl AdminApi {
    pub fn new(parts: Parts) -> AdminApi {
        AdminApi {
            inner: std::sync::Arc::new(parts),
        }
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// The admin listener (TCP) and the local admin socket. Over TCP every request but
/// `/healthz` needs the bearer token ([`authorized`]); on the socket, which only the
/// service's user (or root) can reach, the file system's permissions authenticate the
/// caller instead.
pub fn route(
    app: AdminApi,
    req: Request<Incoming>,
    peer: Peer,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + Send>> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let (listener, client) = match peer {
        Peer::Tcp(addr) => ("admin", Some(addr.ip())),
        Peer::Local => ("admin_socket", None),
    };
    let logged = super::logged(
        listener,
        method.clone(),
        uri.clone(),
        client,
        app.inner.metrics.clone(),
    );
    let handler = async move {
        let result = if uri.path() == "/healthz" {
            Ok(json::json_value(StatusCode::OK, &json!({ "status": "ok" })))
        } else if let Err(refused) = authorized(&app, client, req.headers()) {
            Err(refused)
        } else {
            answer(&app, &method, uri.path(), req).await
        };
        result.unwrap_or_else(|e| json::error(&e))
    };
    Box::pin(logged.around(handler))
}

/// Over TCP: 403 for a banned client, 429 once its wrong tokens reached
/// `admin.token_failures` (both before the token is looked at), else 401 for a wrong or
/// missing token, which counts as one failure. The socket (no client) needs no token.
fn authorized(
    app: &AdminApi,
    client: Option<std::net::IpAddr>,
    headers: &hyper::HeaderMap,
) -> Result<(), ApiError> {
    let Some(ip) = client else { return Ok(()) };
    app.inner.guard.admit_admin(ip)?;
    if app.inner.token.accepts(headers) {
        return Ok(());
    }
    app.inner.guard.admin_token_failed(ip);
    Err(ApiError::Unauthorized)
}

/// Answers an authenticated request: reads what the path takes, runs the operation, and
/// turns its answer or refusal into a response.
async fn answer(
    app: &AdminApi,
    method: &Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let admin = &app.inner.admin;
    match *method {
        Method::GET => get(app, admin, path).await,
        Method::POST => post(app, admin, path, req).await,
        _ => Err(elsewhere(path)),
    }
}

async fn get(app: &AdminApi, admin: &Admin, path: &str) -> Result<Resp, ApiError> {
    match path {
        USERS => ok(&admin.list_users().await?),
        BLOCKS => ok(&admin.list_blocks().await?),
        OUTBOX => ok(&admin.outbox().await?),
        METRICS => {
            let text = app.metrics().render(admin.store_gauges().await?);
            Ok(not_json(text, "text/plain; version=0.0.4; charset=utf-8"))
        }
        BACKUP => Ok(not_json(admin.backup().await?, "application/x-ndjson")),
        _ => Err(elsewhere(path)),
    }
}

/// The POST paths; each reads the body only once it knows the path.
async fn post(
    app: &AdminApi,
    admin: &Admin,
    path: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let config = app.config();
    let read = || json::read_object(req, config.admin.max_body_bytes, config.server.body_timeout);
    match path {
        USERS => created(&admin.add_user(account(app, read().await?)?).await?),
        USERS_REMOVE => ok(&admin.remove_user(email(&read().await?)?).await?),
        USERS_IMPORT => ok(&admin.import_users(accounts(app, &read().await?)?).await?),
        USERS_VERIFY => verify(admin, &read().await?).await,
        USERS_UNLOCK => ok(&admin.unlock_user(email(&read().await?)?).await?),
        USERS_CHANGE_EMAIL => change_email(admin, &read().await?).await,
        USERS_SET_PASSWORD => set_password(admin, &read().await?).await,
        USERS_DISABLE => ok(&admin.set_disabled(email(&read().await?)?, true).await?),
        USERS_ENABLE => ok(&admin.set_disabled(email(&read().await?)?, false).await?),
        USERS_SHOW => ok(&admin.show_user(email(&read().await?)?).await?),
        OUTBOX_SHOW => ok(&admin.outbox_show(message_id(&read().await?)?).await?),
        OUTBOX_RETRY => ok(&admin.outbox_retry(message_id(&read().await?)?).await?),
        OUTBOX_PURGE => ok(&admin.outbox_purge(purge_target(&read().await?)?).await?),
        BLOCKS => add_block(admin, &read().await?).await,
        BLOCKS_REMOVE => ok(&admin.remove_block(block_net(&read().await?)?).await?),
        _ => Err(elsewhere(path)),
    }
}

/// 405 with the methods the path takes, or 404 for a path the admin API does not have.
fn elsewhere(path: &str) -> ApiError {
    let allow = match path {
        USERS | BLOCKS => "GET, POST",
        USERS_REMOVE | USERS_IMPORT | USERS_VERIFY | USERS_UNLOCK => "POST",
        USERS_CHANGE_EMAIL | USERS_SET_PASSWORD | USERS_DISABLE | USERS_ENABLE | USERS_SHOW => {
            "POST"
        }
        BLOCKS_REMOVE | OUTBOX_SHOW | OUTBOX_RETRY | OUTBOX_PURGE => "POST",
        OUTBOX | METRICS | BACKUP => "GET",
        _ => return ApiError::NotFound,
    };
    ApiError::MethodNotAllowed { allow }
}

fn ok(answer: &impl Serialize) -> Result<Resp, ApiError> {
    json::typed(StatusCode::OK, answer)
}

fn created(answer: &impl Serialize) -> Result<Resp, ApiError> {
    json::typed(StatusCode::CREATED, answer)
}

/// A 200 whose body is not JSON (the metrics, a backup), with its content type.
fn not_json(body: impl Into<Bytes>, content_type: &'static str) -> Resp {
    let mut resp = json::json(StatusCode::OK, body.into());
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Checks an email/password pair for the host application: 200 or 401.
async fn verify(admin: &Admin, obj: &json::Object) -> Result<Resp, ApiError> {
    let email = json::required_str(obj, "email")?;
    let password = json::required_str(obj, "password")?.to_string();
    ok(&admin.verify_password(email, password).await?)
}

/// `{"email", "new_email"}`.
async fn change_email(admin: &Admin, obj: &json::Object) -> Result<Resp, ApiError> {
    let new = json::required_str(obj, "new_email")?;
    let new = mail_address::validate(new).map_err(|e| ApiError::bad_request(e.0))?;
    ok(&admin.change_email(email(obj)?, new).await?)
}

/// `{"email", "password"}`, the password a string or `null` (cleared).
async fn set_password(admin: &Admin, obj: &json::Object) -> Result<Resp, ApiError> {
    let password = match obj.get("password") {
        Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "The field 'password' must be a string or null",
            ))
        }
        None => return Err(ApiError::MissingParameters),
    };
    ok(&admin.set_password(email(obj)?, password).await?)
}

/// 201 for a new block, 200 for one whose reason was replaced.
async fn add_block(admin: &Admin, obj: &json::Object) -> Result<Resp, ApiError> {
    let net = block_net(obj)?;
    let reason = json::optional_str(obj, "reason")?.unwrap_or_default();
    let blocked = admin.add_block(net, reason.to_string()).await?;
    if blocked.created {
        created(&blocked)
    } else {
        ok(&blocked)
    }
}

fn email(obj: &json::Object) -> Result<Email, ApiError> {
    let email = json::required_str(obj, "email")?;
    mail_address::validate(email).map_err(|e| ApiError::bad_request(e.0))
}

fn account(app: &AdminApi, obj: json::Object) -> Result<NewAccount, ApiError> {
    parse_account(&Value::Object(obj), &app.config().passwords).map_err(ApiError::bad_request)
}

/// `{"users": [...]}`: every record must parse, or nothing is imported.
fn accounts(app: &AdminApi, obj: &json::Object) -> Result<Vec<NewAccount>, ApiError> {
    let Some(Value::Array(records)) = obj.get("users") else {
        return Err(ApiError::bad_request(
            "\"users\" must be an array of accounts",
        ));
    };
    let policy = &app.config().passwords;
    let parse = |(i, record)| {
        crate::admin::hashes::parse_import_record(record, policy)
            .map_err(|e| ApiError::BadRequest(format!("record {}: {e}", i + 1).into()))
    };
    records.iter().enumerate().map(parse).collect()
}

fn message_id(obj: &json::Object) -> Result<u64, ApiError> {
    match obj.get("id") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or(ApiError::bad_request("\"id\" must be a message id")),
        None | Some(Value::Null) => Err(ApiError::MissingParameters),
        Some(_) => Err(ApiError::bad_request("\"id\" must be a message id")),
    }
}

/// `{"all": true}` (None), or one message's id.
fn purge_target(obj: &json::Object) -> Result<Option<u64>, ApiError> {
    match obj.get("all") {
        Some(Value::Bool(true)) => Ok(None),
        _ => message_id(obj).map(Some),
    }
}

fn block_net(obj: &json::Object) -> Result<ipnet::IpNet, ApiError> {
    let net = json::required_str(obj, "net")?;
    crate::config::parse_net(net).map_err(ApiError::bad_request)
}

/// The admin operations' refusals, each with its documented status and text.
impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        match e {
            AdminError::NotFound(text) => ApiError::NoSuch(text),
            AdminError::Conflict(text) => ApiError::Conflict(text),
            AdminError::InvalidCredentials => ApiError::InvalidCredentials,
            AdminError::Refused(text) => ApiError::BadRequest(text),
            AdminError::Store(e) => ApiError::Store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::*;
    use crate::store::StoreError;

    #[test]
    fn admin_refusals_keep_their_statuses_and_texts() {
        for (refusal, status, text) in [
            (
                AdminError::NotFound(NO_SUCH_BLOCK.into()),
                404,
                NO_SUCH_BLOCK,
            ),
            (
                AdminError::Conflict(ACCOUNT_EXISTS.into()),
                409,
                ACCOUNT_EXISTS,
            ),
            (AdminError::InvalidCredentials, 401, INVALID_CREDENTIALS),
            (
                AdminError::Store(StoreError::Task("x".into())),
                500,
                UNEXPECTED,
            ),
        ] {
            let (got, message) = ApiError::from(refusal).status_and_message();
            assert_eq!((got.as_u16(), message.as_ref()), (status, text));
        }
    }
}
