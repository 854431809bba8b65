//! The admin listener (loopback only, bearer token): accounts and the outbox.
//!
//! The CLI talks to this while the service runs, since sled lets one process own the store.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::json::{self, Resp};
use super::server::Peer;
use crate::accounts::{self, parse_account};
use crate::admin::paths::{
    BACKUP, BLOCKS, BLOCKS_REMOVE, METRICS, OUTBOX, OUTBOX_PURGE, OUTBOX_RETRY, OUTBOX_SHOW, USERS,
    USERS_IMPORT, USERS_REMOVE, USERS_UNLOCK, USERS_VERIFY,
};
use crate::error::{ApiError, NO_ACCOUNT};
use crate::store::outbox::{Dead, Kind, Queued, RetryRefused};
use crate::{mail_address, App};

/// The admin listener (TCP, loopback) and the local admin socket. Over TCP every request
/// but `/healthz` needs the bearer token; on the socket, which only the service's user (or
/// root) can reach, the file system's permissions authenticate the caller instead.
pub fn route(
    app: App,
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
        app.metrics().clone(),
    );
    let handler = async move {
        let result = if uri.path() == "/healthz" {
            Ok(json::json_value(StatusCode::OK, &json!({ "status": "ok" })))
        } else if client.is_some() && !app.admin_token().accepts(req.headers()) {
            Err(ApiError::Unauthorized)
        } else {
            match (&method, uri.path()) {
                (&Method::GET, USERS) => list_users(&app).await,
                (&Method::POST, USERS) => add_user(&app, req).await,
                (&Method::POST, USERS_REMOVE) => remove_user(&app, req).await,
                (&Method::POST, USERS_IMPORT) => import_users(&app, req).await,
                (&Method::POST, USERS_VERIFY) => verify_password(&app, req).await,
                (&Method::POST, USERS_UNLOCK) => unlock(&app, req).await,
                (&Method::GET, OUTBOX) => outbox(&app).await,
                (&Method::GET, METRICS) => metrics(&app).await,
                (&Method::GET, BACKUP) => backup(&app).await,
                (&Method::POST, OUTBOX_SHOW) => outbox_show(&app, req).await,
                (&Method::POST, OUTBOX_RETRY) => outbox_retry(&app, req).await,
                (&Method::POST, OUTBOX_PURGE) => outbox_purge(&app, req).await,
                (&Method::GET, BLOCKS) => list_blocks(&app).await,
                (&Method::POST, BLOCKS) => add_block(&app, req).await,
                (&Method::POST, BLOCKS_REMOVE) => remove_block(&app, req).await,
                (_, USERS | BLOCKS) => Err(ApiError::MethodNotAllowed { allow: "GET, POST" }),
                (_, BLOCKS_REMOVE | OUTBOX_SHOW | OUTBOX_RETRY | OUTBOX_PURGE) => {
                    Err(ApiError::MethodNotAllowed { allow: "POST" })
                }
                (_, USERS_REMOVE | USERS_IMPORT | USERS_VERIFY | USERS_UNLOCK) => {
                    Err(ApiError::MethodNotAllowed { allow: "POST" })
                }
                (_, OUTBOX | METRICS | BACKUP) => Err(ApiError::MethodNotAllowed { allow: "GET" }),
                _ => Err(ApiError::NotFound),
            }
        };
        result.unwrap_or_else(|e| json::error(&e))
    };
    Box::pin(logged.around(handler))
}

async fn body(app: &App, req: Request<Incoming>) -> Result<json::Object, ApiError> {
    let limit = app.config().admin.max_body_bytes;
    json::read_object(req, limit, app.config().server.body_timeout).await
}

async fn list_users(app: &App) -> Result<Resp, ApiError> {
    let users = app.db().blocking(|db| db.list_users()).await?;
    let users: Vec<Value> = users.iter().map(accounts::summary).collect();
    Ok(json::json_value(StatusCode::OK, &json!({ "users": users })))
}

async fn add_user(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let record = Value::Object(body(app, req).await?);
    let account = parse_account(&record, &app.config().passwords).map_err(ApiError::bad_request)?;
    let email = account.email.stored.clone();
    if !accounts::add(app.db(), app.hasher(), account).await? {
        return Err(ApiError::Conflict(
            "An account with this email address already exists".into(),
        ));
    }
    Ok(json::json_value(
        StatusCode::CREATED,
        &json!({ "email": email }),
    ))
}

async fn remove_user(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let obj = body(app, req).await?;
    let email = json::required_str(&obj, "email")?;
    let email = mail_address::validate(email).map_err(|e| ApiError::bad_request(e.0))?;
    if !accounts::remove(app.db(), &email.key).await? {
        return Ok(json::json_value(
            StatusCode::NOT_FOUND,
            &json!({ "message": NO_ACCOUNT }),
        ));
    }
    Ok(json::json_value(
        StatusCode::OK,
        &json!({ "removed": email.stored }),
    ))
}

async fn import_users(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let obj = body(app, req).await?;
    let Some(Value::Array(records)) = obj.get("users") else {
        return Err(ApiError::bad_request(
            "\"users\" must be an array of accounts",
        ));
    };
    let mut batch = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let account = parse_account(record, &app.config().passwords)
            .map_err(|e| ApiError::BadRequest(format!("record {}: {e}", i + 1).into()))?;
        batch.push(account);
    }
    let report = accounts::import(app.db(), app.hasher(), batch).await?;
    Ok(json::json_value(
        StatusCode::OK,
        &serde_json::to_value(report).expect("plain struct"),
    ))
}

/// Checks an email/password pair for the host application: 200 or 401, at the same cost
/// for unknown accounts (they are checked against a decoy hash).
async fn verify_password(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let obj = body(app, req).await?;
    let email = json::required_str(&obj, "email")?;
    let password = json::required_str(&obj, "password")?.to_string();
    let key = mail_address::validate(email).map_or_else(|_| String::new(), |e| e.key);
    if accounts::verify(app.db(), app.hasher(), &key, password).await? {
        return Ok(json::json_value(StatusCode::OK, &json!({ "valid": true })));
    }
    let body = json!({ "message": "Invalid email or password" });
    Ok(json::json_value(StatusCode::UNAUTHORIZED, &body))
}

/// Clears an account's count of failed confirmations (see `recovery.max_account_failures`).
async fn unlock(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let obj = body(app, req).await?;
    let email = json::required_str(&obj, "email")?;
    let email = mail_address::validate(email).map_err(|e| ApiError::bad_request(e.0))?;
    if app.db().user(&email.key)?.is_none() {
        return Ok(json::json_value(
            StatusCode::NOT_FOUND,
            &json!({ "message": NO_ACCOUNT }),
        ));
    }
    let key = email.key.clone();
    let was_locked = app.db().blocking(move |db| db.unlock(&key)).await?;
    app.db().durable().await?;
    Ok(json::json_value(
        StatusCode::OK,
        &json!({ "email": email.stored, "had_failures": was_locked }),
    ))
}

/// What an operator sees of a message: never its code.
pub fn message_view(id: u64, m: &Queued) -> Value {
    let kind = match m.kind {
        Kind::Otp { .. } => "otp",
        Kind::PasswordChanged { .. } => "password_changed",
        Kind::Decoy => "decoy",
    };
    json!({
        "id": id,
        "to": m.to,
        "kind": kind,
        "attempts": m.attempts,
        "created_ms": m.created_ms,
        "next_attempt_ms": m.next_attempt_ms,
        "expires_ms": m.expires_ms,
        "last_error": m.last_error,
    })
}

pub fn dead_view(id: u64, d: &Dead) -> Value {
    let mut view = message_view(id, &d.message);
    view["error"] = json!(d.error);
    view["failed_ms"] = json!(d.failed_ms);
    view
}

const LISTED: usize = 1_000;

async fn outbox(app: &App) -> Result<Resp, ApiError> {
    let (queued, dead) = app
        .db()
        .blocking(|db| Ok((db.queued(LISTED)?, db.dead_letters()?)))
        .await?;
    let messages: Vec<Value> = queued.iter().map(|(id, m)| message_view(*id, m)).collect();
    let dead: Vec<Value> = dead.iter().map(|(id, d)| dead_view(*id, d)).collect();
    let body = json!({
        "queued": app.db().outbox_len(),
        "messages": messages,
        "dead": dead,
        "since_start": {
            "sent": app.metrics().outbox_sent.get(),
            "retried": app.metrics().outbox_retried.get(),
            "dead": app.metrics().outbox_dead.get(),
            "expired_unsent": app.metrics().outbox_expired.get(),
        },
    });
    Ok(json::json_value(StatusCode::OK, &body))
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

fn no_message() -> Resp {
    json::json_value(
        StatusCode::NOT_FOUND,
        &json!({ "message": "No such message" }),
    )
}

async fn outbox_show(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let id = message_id(&body(app, req).await?)?;
    let found = app
        .db()
        .blocking(move |db| Ok((db.queued_message(id)?, db.dead_letter(id)?)))
        .await?;
    let view = match found {
        (Some(m), _) => json!({ "state": "queued", "message": message_view(id, &m) }),
        (None, Some(d)) => json!({ "state": "dead", "message": dead_view(id, &d) }),
        (None, None) => return Ok(no_message()),
    };
    Ok(json::json_value(StatusCode::OK, &view))
}

async fn outbox_retry(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let id = message_id(&body(app, req).await?)?;
    let now = crate::store::unix_ms(std::time::SystemTime::now());
    match app.db().blocking(move |db| db.retry_dead(id, now)).await? {
        Ok(()) => {
            app.db().durable().await?;
            app.outbox().notify_one();
            Ok(json::json_value(
                StatusCode::OK,
                &json!({ "id": id, "state": "queued" }),
            ))
        }
        Err(RetryRefused::NotFound) => Ok(no_message()),
        Err(refused) => Err(ApiError::Conflict(refused.reason().into())),
    }
}

async fn outbox_purge(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let obj = body(app, req).await?;
    let id = match obj.get("all") {
        Some(Value::Bool(true)) => None,
        _ => Some(message_id(&obj)?),
    };
    let purged = app.db().blocking(move |db| db.purge_dead(id)).await?;
    app.db().durable().await?;
    if id.is_some() && purged == 0 {
        return Ok(no_message());
    }
    Ok(json::json_value(
        StatusCode::OK,
        &json!({ "purged": purged }),
    ))
}

fn block_net(obj: &json::Object) -> Result<ipnet::IpNet, ApiError> {
    let net = json::required_str(obj, "net")?;
    crate::config::parse_net(net).map_err(ApiError::bad_request)
}

/// Reloads the guard's copy of the runtime deny list after the store changed.
async fn blocks_changed(app: &App) -> Result<(), ApiError> {
    app.db().durable().await?;
    let blocks = app.db().blocking(|db| db.blocks()).await?;
    app.guard()
        .set_blocks(blocks.into_iter().map(|(net, _)| net).collect());
    Ok(())
}

async fn list_blocks(app: &App) -> Result<Resp, ApiError> {
    let blocks = app.db().blocking(|db| db.blocks()).await?;
    let blocks: Vec<Value> = blocks
        .iter()
        .map(|(net, b)| json!({ "net": net.to_string(), "reason": b.reason, "added_ms": b.added_ms }))
        .collect();
    Ok(json::json_value(
        StatusCode::OK,
        &json!({ "blocks": blocks }),
    ))
}

async fn add_block(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let obj = body(app, req).await?;
    let net = block_net(&obj)?;
    let reason = json::optional_str(&obj, "reason")?
        .unwrap_or_default()
        .to_string();
    let added_ms = crate::store::unix_ms(std::time::SystemTime::now());
    let block = crate::store::blocks::Block { reason, added_ms };
    let new = app
        .db()
        .blocking(move |db| db.add_block(net, &block))
        .await?;
    blocks_changed(app).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json::json_value(status, &json!({ "net": net.to_string() })))
}

async fn remove_block(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let net = block_net(&body(app, req).await?)?;
    if !app.db().blocking(move |db| db.remove_block(net)).await? {
        let body = json!({ "message": "No such block" });
        return Ok(json::json_value(StatusCode::NOT_FOUND, &body));
    }
    blocks_changed(app).await?;
    Ok(json::json_value(
        StatusCode::OK,
        &json!({ "removed": net.to_string() }),
    ))
}

/// GET /metrics: the Prometheus exposition text.
async fn metrics(app: &App) -> Result<Resp, ApiError> {
    let now = crate::store::unix_ms(std::time::SystemTime::now());
    let (oldest, size) = app
        .db()
        .blocking(move |db| Ok((db.oldest_queued_age_ms(now)?, db.size_on_disk()?)))
        .await?;
    let text = app.metrics().render(crate::metrics::StoreGauges {
        depth: app.db().outbox_len(),
        oldest_age: std::time::Duration::from_millis(oldest),
        store_bytes: size,
        free_bytes: app.db().free_bytes().unwrap_or(0),
    });
    let mut resp = json::json(StatusCode::OK, bytes::Bytes::from(text));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}

/// GET /admin/v1/backup: a consistent copy of the store, as JSON lines.
async fn backup(app: &App) -> Result<Resp, ApiError> {
    let db = app.db().clone();
    let now = crate::store::unix_ms(std::time::SystemTime::now());
    let copy = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        db.backup(&mut out, now).map(|_| out)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let mut resp = json::json(StatusCode::OK, bytes::Bytes::from(copy));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}
