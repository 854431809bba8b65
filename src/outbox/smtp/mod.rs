//! The SMTP transport over mail-send, with one reused connection (the transaction on it:
//! [`transaction`]).
//!
//! mail-send's builder never sets TCP_NODELAY (each message then waits ~44 ms on delayed
//! ACKs) and its greeting read has no timeout, so the connection is built here by hand from
//! its public pieces, and every step runs under `mail.smtp.timeout`.

use std::time::Duration;

use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient};
use smtp_proto::{EXT_PIPELINING, EXT_START_TLS};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{Rendered, SendError};
use crate::config::{ConfigError, Secret, Security, Smtp as Settings};
use transaction::{transaction, within, Attempt};

mod transaction;

/// An open connection, and whether its server offered PIPELINING (RFC 2920).
struct Conn {
    stream: Stream,
    pipelining: bool,
}

enum Stream {
    Plain(SmtpClient<TcpStream>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

pub struct Smtp {
    settings: Settings,
    tls: TlsConnector,
    password: Option<Secret>,
    helo: String,
    conn: Option<Conn>,
    /// The class of the last attempt's outcome, for metrics.
    pub last_class: &'static str,
    /// Whether the last failure was the relay's (unreachable, silent, closing), not a
    /// refusal: the retry may be pulled forward once the relay answers again.
    pub last_about_relay: bool,
}

impl Smtp {
    pub fn new(settings: &Settings, password: Option<Secret>) -> Result<Smtp, ConfigError> {
        let helo = if settings.helo_name.is_empty() {
            "localhost".to_string()
        } else {
            settings.helo_name.clone()
        };
        Ok(Smtp {
            tls: tls_connector(settings)?,
            settings: settings.clone(),
            password,
            helo,
            conn: None,
            last_class: "none",
            last_about_relay: false,
        })
    }

    pub fn describe(&self) -> String {
        let s = &self.settings;
        format!(
            "smtp transport: {}:{} (security {:?})",
            s.host, s.port, s.security
        )
    }

    /// Sends on the open connection; if that one fails before the server said anything
    /// (it may have been closed while idle), once more on a fresh one.
    /// Sends `message`; the relay's final reply ("250 2.0.0 Ok: queued as …").
    pub async fn send(&mut self, message: &Rendered) -> Result<String, SendError> {
        let timeout = self.settings.timeout;
        if let Some(mut conn) = self.conn.take() {
            match conn.send(message, timeout).await {
                Ok(reply) => {
                    self.conn = Some(conn);
                    self.last_class = "2xx";
                    return Ok(reply);
                }
                // A connection the server closed while idle (421, or no answer at all) fails
                // before any of the message was accepted: try once more on a fresh one. After
                // the content went out, never: the server may have taken it, and a second
                // copy would be a duplicate. Backoff retries it instead.
                Err(a) if a.before_data && (!a.failure.server_replied() || a.failure.closing()) => {
                }
                Err(a) => return self.after_failure(conn, a).await,
            }
        }
        let mut conn = match within(timeout, self.connect()).await {
            Ok(conn) => conn,
            Err(e) => {
                // Connecting, greeting, TLS or AUTH: the relay's trouble, whatever it said.
                self.last_class = e.class();
                self.last_about_relay = true;
                return Err(e.classify());
            }
        };
        match conn.send(message, timeout).await {
            Ok(reply) => {
                self.conn = Some(conn);
                self.last_class = "2xx";
                Ok(reply)
            }
            Err(a) => self.after_failure(conn, a).await,
        }
    }

    /// Keeps the connection after a refused message (RSET clears the transaction, or every
    /// later send would fail with 503); drops it after anything else. A message whose
    /// content went out unanswered is [`SendError::Unconfirmed`].
    async fn after_failure(&mut self, mut conn: Conn, a: Attempt) -> Result<String, SendError> {
        let e = a.failure;
        self.last_class = e.class();
        self.last_about_relay = e.about_relay();
        if e.server_replied() && within(self.settings.timeout, conn.rset()).await.is_ok() {
            self.conn = Some(conn);
        }
        match (a.unconfirmed, e.classify()) {
            (true, SendError::Transient(why)) => Err(SendError::Unconfirmed(why)),
            (_, classified) => Err(classified),
        }
    }

    /// Connects, greets (TLS and AUTH as configured) and says QUIT: is the relay usable?
    pub async fn probe(&self) -> Result<(), String> {
        let conn = within(self.settings.timeout, self.connect())
            .await
            .map_err(|e| match e.classify() {
                SendError::Transient(m) | SendError::Permanent(m) | SendError::Unconfirmed(m) => m,
            })?;
        let _ = within(self.settings.timeout, conn.quit()).await;
        Ok(())
    }

    pub async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = tokio::time::timeout(self.settings.timeout, conn.quit()).await;
        }
    }

    async fn connect(&self) -> Result<Conn, mail_send::Error> {
        let s = &self.settings;
        let timeout = s.timeout;
        let connecting = TcpStream::connect((s.host.as_str(), s.port));
        let stream = tokio::time::timeout(s.connect_timeout, connecting)
            .await
            .map_err(|_| mail_send::Error::Timeout)??;
        stream.set_nodelay(true)?;
        let client = SmtpClient { stream, timeout };
        let stream = match s.security {
            Security::None => {
                let mut client = client;
                client.read().await?.assert_positive_completion()?;
                Stream::Plain(client)
            }
            Security::Tls => {
                let mut client = client.into_tls(&self.tls, &s.host).await?;
                client.read().await?.assert_positive_completion()?;
                Stream::Tls(Box::new(client))
            }
            Security::Starttls => {
                let mut client = client;
                client.read().await?.assert_positive_completion()?;
                if !client.ehlo(&self.helo).await?.has_capability(EXT_START_TLS) {
                    return Err(mail_send::Error::MissingStartTls);
                }
                Stream::Tls(Box::new(client.start_tls(&self.tls, &s.host).await?))
            }
        };
        self.hello(stream).await
    }

    /// EHLO (again, after TLS) and AUTH when a username is configured.
    async fn hello(&self, mut stream: Stream) -> Result<Conn, mail_send::Error> {
        let credentials = (!self.settings.username.is_empty()).then(|| {
            let secret = self.password.as_ref().map_or("", |p| p.expose());
            Credentials::new(self.settings.username.as_str(), secret)
        });
        let caps = match &mut stream {
            Stream::Plain(c) => {
                let caps = c.ehlo(&self.helo).await?;
                if let Some(cred) = &credentials {
                    c.authenticate(cred, &caps).await?;
                }
                caps
            }
            Stream::Tls(c) => {
                let caps = c.ehlo(&self.helo).await?;
                if let Some(cred) = &credentials {
                    c.authenticate(cred, &caps).await?;
                }
                caps
            }
        };
        Ok(Conn {
            stream,
            pipelining: caps.has_capability(EXT_PIPELINING),
        })
    }
}

/// The system's trust roots, or only the CAs in `mail.smtp.ca_file` (a private relay).
fn tls_connector(settings: &Settings) -> Result<TlsConnector, ConfigError> {
    crate::outbox::tls::connector(&settings.ca_file, "mail.smtp.ca_file")
}

impl Conn {
    /// One message: MAIL, RCPT and DATA, pipelined where the server offers it.
    async fn send(&mut self, m: &Rendered, limit: Duration) -> Result<String, Attempt> {
        let pipelining = self.pipelining;
        match &mut self.stream {
            Stream::Plain(c) => transaction(c, m, limit, pipelining).await,
            Stream::Tls(c) => transaction(c.as_mut(), m, limit, pipelining).await,
        }
    }

    async fn rset(&mut self) -> Result<(), mail_send::Error> {
        match &mut self.stream {
            Stream::Plain(c) => c.rset().await,
            Stream::Tls(c) => c.rset().await,
        }
    }

    async fn quit(self) -> Result<(), mail_send::Error> {
        match self.stream {
            Stream::Plain(c) => c.quit().await,
            Stream::Tls(c) => c.quit().await,
        }
    }
}
