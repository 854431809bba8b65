//! A minimal HTTP/1.1 client for the running service's admin socket (hyper's client
//! connection over one Unix stream).
//!
//! The socket lives in the data directory, which only the service's user can enter, and the
//! service accepts only its own user and root on it: the file system authenticates both
//! sides, so no token travels. Before a request goes out, the client also checks who
//! answers (`SO_PEERCRED`): this user, root, or (for root) the owner of a data directory
//! whose parent directories all belong to root and are closed to other writers.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::net::UnixStream;

use super::Failure;
use crate::admin::paths::BACKUP;
use crate::admin::AdminError;

/// An operation's answer, wherever it ran. The outer error: the call could not be made or
/// failed in the service (exit code 1), or the admin API refused the request itself (3).
/// The inner one: the operation's own refusal, which a command may word its own way.
pub type Answer<T> = Result<Result<T, AdminError>, Failure>;

pub struct AdminClient {
    /// `<data_dir>/admin.sock`, under the canonical data directory.
    pub socket: PathBuf,
    /// The data directory, canonical, whose owner may answer on the socket when this is root.
    pub data_dir: PathBuf,
}

impl AdminClient {
    /// `GET path`, read into the operation's result type.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Answer<T> {
        let (status, body) = self.send(Method::GET, path, Bytes::new()).await?;
        answer(status, &body)
    }

    /// `POST path` with `request` as the JSON body, read into the operation's result type.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        request: &impl Serialize,
    ) -> Answer<T> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Failure::runtime(format!("cannot encode the request: {e}")))?;
        let (status, body) = self.send(Method::POST, path, body.into()).await?;
        answer(status, &body)
    }

    /// `GET /admin/v1/backup`: the copy as it came.
    pub async fn backup(&self) -> Answer<Vec<u8>> {
        let (status, body) = self.send(Method::GET, BACKUP, Bytes::new()).await?;
        if status != StatusCode::OK {
            return Err(Failure::runtime(format!("the admin API answered {status}")));
        }
        Ok(Ok(body.to_vec()))
    }

    /// Sends one request; returns the status and the body as it came.
    async fn send(
        &self,
        method: Method,
        path: &str,
        payload: Bytes,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let unreachable = |e: &dyn std::fmt::Display| {
            Failure::runtime(format!("admin socket {}: {e}", self.socket.display()))
        };
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| unreachable(&e))?;
        self.check_peer(&stream)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "localhost")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(payload))
            .map_err(|e| unreachable(&e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        Ok((status, bytes))
    }

    /// Talks only to a process that runs as this user or as root, or, when this is root, as
    /// the owner of a data directory that no one else could have put there: every directory
    /// above it belongs to root and is closed to other writers (a relative `./data` run from
    /// /tmp is not). The owner of a directory above could otherwise move the real data
    /// directory aside, put their own there with a socket, and be handed passwords or a
    /// forged backup; from here that owner would look like the service's user, so only root
    /// may own the directories above. `data_dir` and `socket` are canonical: the socket
    /// reached is the one under the directories checked.
    fn check_peer(&self, stream: &UnixStream) -> Result<(), Failure> {
        let peer = stream
            .peer_cred()
            .map_err(|e| Failure::runtime(format!("admin socket: {e}")))?
            .uid();
        let me = rustix::process::geteuid().as_raw();
        if peer == me || peer == 0 {
            return Ok(());
        }
        let refuse = |why: String| {
            Failure::runtime(format!(
                "not talking to the process on the admin socket {} (uid {peer}): {why}",
                self.socket.display()
            ))
        };
        if me != 0 {
            return Err(refuse(format!(
                "it runs as neither this user (uid {me}) nor root"
            )));
        }
        let dir = &self.data_dir;
        let owner = std::fs::metadata(dir)
            .map_err(|e| refuse(e.to_string()))?
            .uid();
        if owner != peer {
            return Err(refuse(format!("{} belongs to uid {owner}", dir.display())));
        }
        crate::secrets::root_owned_above(dir).map_err(refuse)?;
        Ok(())
    }
}

/// Reads a success into the operation's result type, and a refusal into the
/// [`AdminError`] the operation gave (404, 409) or a failure of the call itself.
fn answer<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Answer<T> {
    if status.is_success() {
        let answer = serde_json::from_slice(body)
            .map_err(|e| Failure::runtime(format!("unexpected answer: {e}")))?;
        return Ok(Ok(answer));
    }
    let value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = message(&value);
    match status {
        StatusCode::NOT_FOUND => Ok(Err(AdminError::NotFound(text.into()))),
        StatusCode::CONFLICT => Ok(Err(AdminError::Conflict(text.into()))),
        s if s.is_server_error() => Err(Failure::runtime(format!("the admin API failed: {text}"))),
        _ => Err(Failure::refused(text)),
    }
}

/// The `message` of an error body.
fn message(value: &Value) -> String {
    value
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_string()
}
