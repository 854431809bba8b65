//! The SMTP transport over mail-send, with one reused connection.
//!
//! mail-send's builder never sets TCP_NODELAY (each message then waits ~44 ms on delayed
//! ACKs) and its greeting read has no timeout, so the connection is built here by hand from
//! its public pieces, and every step runs under `mail.smtp.timeout`.

use std::time::Duration;

use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient};
use smtp_proto::EXT_START_TLS;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{Rendered, SendError};
use crate::config::{Secret, Security, Smtp as Settings};

enum Conn {
    Plain(SmtpClient<TcpStream>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

pub struct Smtp {
    settings: Settings,
    password: Option<Secret>,
    helo: String,
    conn: Option<Conn>,
}

impl Smtp {
    pub fn new(settings: &Settings, password: Option<Secret>) -> Smtp {
        let helo = if settings.helo_name.is_empty() {
            "localhost".to_string()
        } else {
            settings.helo_name.clone()
        };
        Smtp {
            settings: settings.clone(),
            password,
            helo,
            conn: None,
        }
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
    pub async fn send(&mut self, message: &Rendered) -> Result<(), SendError> {
        let timeout = self.settings.timeout;
        if let Some(mut conn) = self.conn.take() {
            match within(timeout, conn.send(message)).await {
                Ok(()) => {
                    self.conn = Some(conn);
                    return Ok(());
                }
                Err(e) if e.server_replied() => return self.after_failure(conn, e).await,
                Err(_) => {} // stale connection: fall through to a fresh one
            }
        }
        let mut conn = within(timeout, self.connect())
            .await
            .map_err(|e| e.classify())?;
        match within(timeout, conn.send(message)).await {
            Ok(()) => {
                self.conn = Some(conn);
                Ok(())
            }
            Err(e) => self.after_failure(conn, e).await,
        }
    }

    /// Keeps the connection after a refused message (RSET clears the transaction, or every
    /// later send would fail with 503); drops it after anything else.
    async fn after_failure(&mut self, mut conn: Conn, e: Failure) -> Result<(), SendError> {
        if e.server_replied() && within(self.settings.timeout, conn.rset()).await.is_ok() {
            self.conn = Some(conn);
        }
        Err(e.classify())
    }

    pub async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = tokio::time::timeout(self.settings.timeout, conn.quit()).await;
        }
    }

    async fn connect(&self) -> Result<Conn, mail_send::Error> {
        let s = &self.settings;
        let timeout = s.timeout;
        let stream = TcpStream::connect((s.host.as_str(), s.port)).await?;
        stream.set_nodelay(true)?;
        let client = SmtpClient { stream, timeout };
        let conn = match s.security {
            Security::None => {
                let mut client = client;
                client.read().await?.assert_positive_completion()?;
                Conn::Plain(client)
            }
            Security::Tls => {
                let mut client = client.into_tls(&connector()?, &s.host).await?;
                client.read().await?.assert_positive_completion()?;
                Conn::Tls(Box::new(client))
            }
            Security::Starttls => {
                let mut client = client;
                client.read().await?.assert_positive_completion()?;
                if !client.ehlo(&self.helo).await?.has_capability(EXT_START_TLS) {
                    return Err(mail_send::Error::MissingStartTls);
                }
                Conn::Tls(Box::new(client.start_tls(&connector()?, &s.host).await?))
            }
        };
        self.hello(conn).await
    }

    /// EHLO (again, after TLS) and AUTH when a username is configured.
    async fn hello(&self, mut conn: Conn) -> Result<Conn, mail_send::Error> {
        let credentials = (!self.settings.username.is_empty()).then(|| {
            let secret = self.password.as_ref().map_or("", |p| p.expose());
            Credentials::new(self.settings.username.as_str(), secret)
        });
        match &mut conn {
            Conn::Plain(c) => {
                let caps = c.ehlo(&self.helo).await?;
                if let Some(cred) = &credentials {
                    c.authenticate(cred, &caps).await?;
                }
            }
            Conn::Tls(c) => {
                let caps = c.ehlo(&self.helo).await?;
                if let Some(cred) = &credentials {
                    c.authenticate(cred, &caps).await?;
                }
            }
        }
        Ok(conn)
    }
}

fn connector() -> Result<TlsConnector, mail_send::Error> {
    mail_send::smtp::tls::build_tls_connector(false)
        .map_err(|e| mail_send::Error::Io(std::io::Error::other(e)))
}

impl Conn {
    async fn send(&mut self, m: &Rendered) -> Result<(), mail_send::Error> {
        let message = mail_send::smtp::message::Message::new(
            m.envelope_from.as_str(),
            [m.to.as_str()],
            m.bytes.as_slice(),
        );
        match self {
            Conn::Plain(c) => c.send(message).await.map(drop),
            Conn::Tls(c) => c.send(message).await.map(drop),
        }
    }

    async fn rset(&mut self) -> Result<(), mail_send::Error> {
        match self {
            Conn::Plain(c) => c.rset().await,
            Conn::Tls(c) => c.rset().await,
        }
    }

    async fn quit(self) -> Result<(), mail_send::Error> {
        match self {
            Conn::Plain(c) => c.quit().await,
            Conn::Tls(c) => c.quit().await,
        }
    }
}

/// A failed step: mail-send's error, or our own deadline.
enum Failure {
    Smtp(mail_send::Error),
    TimedOut,
}

async fn within<T>(
    limit: Duration,
    step: impl std::future::Future<Output = Result<T, mail_send::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failure::Smtp(e)),
        Err(_) => Err(Failure::TimedOut),
    }
}

impl Failure {
    fn server_replied(&self) -> bool {
        matches!(self, Failure::Smtp(mail_send::Error::UnexpectedReply(_)))
    }

    /// 5xx replies are permanent; everything else may work later. Configuration problems
    /// (TLS, auth) are retried too: the message is not at fault, and the operator is told.
    fn classify(self) -> SendError {
        match self {
            Failure::TimedOut => {
                SendError::Transient("the SMTP server did not answer in time".into())
            }
            Failure::Smtp(mail_send::Error::UnexpectedReply(r)) if r.code >= 500 => {
                SendError::Permanent(format!("{} {}", r.code, r.message))
            }
            Failure::Smtp(e) => SendError::Transient(e.to_string()),
        }
    }
}
