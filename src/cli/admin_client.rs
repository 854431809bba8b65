//! A minimal HTTP/1.1 client for the admin API (hyper's client connection over one TCP stream).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::Failure;
use crate::config::Secret;

pub struct AdminClient {
    pub addr: SocketAddr,
    pub token: Secret,
}

impl AdminClient {
    /// Sends one request; returns the status and the JSON body (Null if it was not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), Failure> {
        let (status, bytes) = self.call_raw(method, path, body).await?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_server_error() {
            return Err(Failure::runtime(format!(
                "the admin API failed: {}",
                message(&value)
            )));
        }
        Ok((status, value))
    }

    /// Sends one request; returns the status and the body as it came.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let unreachable = |e: &dyn std::fmt::Display| {
            Failure::runtime(format!("admin API at {}: {e}", self.addr))
        };
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let payload = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string())
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
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
        if status == StatusCode::UNAUTHORIZED {
            return Err(Failure::config(format!(
                "the admin API at {} refused the token: set admin.token or admin.token_file to the service's token",
                self.addr
            )));
        }
        Ok((status, bytes))
    }
}

/// The `message` of an error body.
pub fn message(value: &Value) -> String {
    value
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_string()
}
