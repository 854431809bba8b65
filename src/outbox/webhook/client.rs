//! One webhook endpoint as the outbox reaches it: the URL from the configuration (never from
//! a request), the signing key, TLS with the system's roots or `ca_file`, and one HTTP/1.1
//! connection (hyper's own client connection) kept open between deliveries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Config, ConfigError, HttpUrl as Target};

/// An endpoint's answer bodies are read (so the connection can serve the next delivery) up
/// to this size; a longer one closes the connection.
const MAX_ANSWER: usize = 64 * 1024;

/// How one exchange failed: before the request left (the connection was already closed),
/// or after.
enum Exchange {
    Unsent(String),
    Failed(String),
}

impl Exchange {
    fn reason(self) -> String {
        match self {
            Exchange::Unsent(r) | Exchange::Failed(r) => r,
        }
    }
}

/// What one delivery attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The endpoint answered with this status.
    Status(u16),
    /// No answer: connection, TLS or timeout; the reason.
    None(String),
}

/// One configured endpoint.
pub struct Endpoint {
    pub name: String,
    pub target: Target,
    key: Vec<u8>,
    tls: Option<TlsConnector>,
    pub timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Endpoint {
    /// Endpoint `i` of the configuration: its key decoded and its TLS roots read.
    pub fn new(config: &Config, i: usize) -> Result<Endpoint, ConfigError> {
        let w = &config.webhooks[i];
        let target = w.url.clone();
        let tls = match target.tls {
            true => Some(crate::outbox::tls::connector(
                &w.ca_file,
                &format!("webhooks[{i}].ca_file"),
            )?),
            false => None,
        };
        Ok(Endpoint {
            name: w.name.clone(),
            target,
            key: config.webhook_key(i)?,
            tls,
            timeout: w.timeout,
            retry_initial: w.retry_initial,
            retry_max: w.retry_max,
            conn: None,
        })
    }

    /// Every configured endpoint.
    pub fn all(config: &Config) -> Result<Vec<Endpoint>, ConfigError> {
        (0..config.webhooks.len())
            .map(|i| Endpoint::new(config, i))
            .collect()
    }

    /// POSTs `body` as event `id`, signed now, within `timeout`.
    pub async fn post(&mut self, id: &str, body: &str) -> Answer {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.attempt(id, body)).await {
            Ok(Ok(status)) => Answer::Status(status),
            Ok(Err(reason)) => {
                self.conn = None;
                Answer::None(reason)
            }
            Err(_) => {
                self.conn = None;
                Answer::None(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                ))
            }
        }
    }

    async fn attempt(&mut self, id: &str, body: &str) -> Result<u16, String> {
        // A kept connection the endpoint closed while idle fails before any answer: that
        // delivery goes again at once on a fresh connection, not after a backoff.
        if let Some(conn) = self.conn.take().filter(|c| !c.is_closed()) {
            match self.exchange(conn, id, body).await {
                Err(Exchange::Unsent(_)) => {}
                other => return other.map_err(Exchange::reason),
            }
        }
        let conn = self.connect().await?;
        self.exchange(conn, id, body)
            .await
            .map_err(Exchange::reason)
    }

    /// One request on `conn`, signed now; the connection is kept if the answer was read.
    async fn exchange(
        &mut self,
        mut conn: SendRequest<Full<Bytes>>,
        id: &str,
        body: &str,
    ) -> Result<u16, Exchange> {
        conn.ready()
            .await
            .map_err(|e| Exchange::Unsent(format!("connection: {e}")))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let request = hyper::Request::post(self.target.path.as_str())
            .header(hyper::header::HOST, self.target.authority())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("resetgate/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", super::sign(&self.key, id, now, body))
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .map_err(|e| Exchange::Failed(format!("request: {e}")))?;
        let answer = conn.send_request(request).await.map_err(|e| {
            let text = format!("request: {e}");
            // Closed or cancelled before the request went out: nothing reached the endpoint.
            if e.is_canceled() || e.is_closed() {
                Exchange::Unsent(text)
            } else {
                Exchange::Failed(text)
            }
        })?;
        let status = answer.status().as_u16();
        // Read the answer's body so the connection can carry the next delivery.
        let limited = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER);
        if limited.collect().await.is_ok() {
            self.conn = Some(conn);
        }
        Ok(status)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        connect(&self.target, self.tls.as_ref()).await
    }
}

/// A fresh HTTP/1.1 connection to `target`, over TLS when it is https (also used by the
/// online password check, `crate::breach`).
pub(crate) async fn connect(
    target: &Target,
    tls: Option<&TlsConnector>,
) -> Result<SendRequest<Full<Bytes>>, String> {
    let t = target;
    let tcp = TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("connecting to {}:{}: {e}", t.host, t.port))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => handshake(tcp).await,
        Some(tls) => {
            let name = rustls_pki_types::ServerName::try_from(t.host.clone())
                .map_err(|e| format!("TLS name {}: {e}", t.host))?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {}: {e}", t.host))?;
            handshake(stream).await
        }
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
