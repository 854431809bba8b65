//! One SMTP transaction on an open connection, and how its failures are classified.

use std::time::Duration;

use mail_send::smtp::message::Parameters;
use mail_send::smtp::AssertReply;
use mail_send::SmtpClient;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::super::{Rendered, SendError};

/// A failed transaction, and whether it failed before the message's content went out, or
/// after all of it went out (the final dot) without an answer: then the relay may have
/// taken the message, and sending it again may make a second copy.
pub(super) struct Attempt {
    pub(super) failure: Failure,
    pub(super) before_data: bool,
    pub(super) unconfirmed: bool,
}

impl Attempt {
    fn new(failure: Failure, before_data: bool) -> Attempt {
        Attempt {
            failure,
            before_data,
            unconfirmed: false,
        }
    }
}

/// MAIL, RCPT and DATA, each step within `limit`, so that a refusal is known to be about
/// this message (RCPT, DATA) or about the sender and configuration (MAIL). With
/// `pipelining`, the three commands go out in one write and their replies come back
/// together (RFC 2920): one round trip where there were three.
pub(super) async fn transaction<T>(
    c: &mut SmtpClient<T>,
    m: &Rendered,
    limit: Duration,
    pipelining: bool,
) -> Result<String, Attempt>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    if pipelining {
        return pipelined(c, m, limit).await;
    }
    let none = Parameters::default();
    let failed = Attempt::new;
    within(limit, c.mail_from(&m.envelope_from, &none))
        .await
        .map_err(|f| failed(f, true))?;
    within(limit, c.rcpt_to(&m.to, &none))
        .await
        .map_err(|f| failed(f.about_message(), true))?;
    within(limit, async {
        c.cmd(b"DATA\r\n").await?.assert_code(354)?;
        Ok::<(), mail_send::Error>(())
    })
    .await
    .map_err(|f: Failure| failed(f.about_message(), true))?;
    content(c, m, limit).await
}

/// The message's content, after the go-ahead: the server's final reply, as one line.
/// Once the final dot is written, a failure without a reply (a timeout, a dropped
/// connection) leaves the outcome unknown: the relay may have queued the message.
async fn content<T>(c: &mut SmtpClient<T>, m: &Rendered, limit: Duration) -> Result<String, Attempt>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    within(limit, async {
        c.write_message(&m.bytes).await?;
        Ok::<(), mail_send::Error>(())
    })
    .await
    .map_err(|f| Attempt::new(f.about_message(), false))?;
    let reply = within(limit, c.read()).await.map_err(|f| Attempt {
        unconfirmed: !f.server_replied(),
        ..Attempt::new(f.about_message(), false)
    })?;
    let line = reply_line(&reply);
    reply
        .assert_positive_completion()
        .map_err(|e| Attempt::new(Failure::from(e).about_message(), false))?;
    Ok(line)
}

/// A reply as the relay's log shows it: "250 2.0.0 Ok: queued as 4Fh2".
pub(super) fn reply_line(r: &smtp_proto::Response<String>) -> String {
    let esc = match r.esc {
        [0, 0, 0] => String::new(),
        [a, b, c] => format!("{a}.{b}.{c} "),
    };
    format!("{} {esc}{}", r.code, r.message.trim())
}

/// The pipelined form of [`transaction`].
async fn pipelined<T>(
    c: &mut SmtpClient<T>,
    m: &Rendered,
    limit: Duration,
) -> Result<String, Attempt>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let failed = Attempt::new;
    let commands = format!(
        "MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\n",
        m.envelope_from, m.to
    );
    let replies = within(limit, async {
        // One write: the three commands travel together.
        c.stream.write_all(commands.as_bytes()).await?;
        c.stream.flush().await?;
        c.read_many(3).await
    });
    let replies = replies.await.map_err(|f| failed(f, true))?;
    let [mail, rcpt, data] = <[_; 3]>::try_from(replies)
        .map_err(|_| failed(mail_send::Error::UnparseableReply.into(), true))?;
    let go_ahead = data.code == 354;
    let refused = match (
        mail.assert_positive_completion(),
        rcpt.assert_positive_completion(),
    ) {
        (Err(e), _) => Some(Failure::from(e)),
        (Ok(()), Err(e)) => Some(Failure::from(e).about_message()),
        (Ok(()), Ok(())) => data
            .assert_code(354)
            .err()
            .map(|e| Failure::from(e).about_message()),
    };
    if let Some(refused) = refused {
        if go_ahead {
            // A server that says 354 after refusing the sender or recipient gets an empty
            // message, which it must refuse: the connection is then ready for RSET.
            let _ = within(limit, end_data(c)).await;
        }
        return Err(failed(refused, true));
    }
    content(c, m, limit).await
}

/// Ends a DATA section that has no content.
async fn end_data<T>(c: &mut SmtpClient<T>) -> Result<(), mail_send::Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    c.stream.write_all(b".\r\n").await?;
    c.stream.flush().await?;
    c.read().await.map(|_| ())
}

/// A failed step: mail-send's error (and whether the server refused the message itself,
/// at RCPT or DATA), or our own deadline.
pub(super) enum Failure {
    Smtp {
        error: mail_send::Error,
        about_message: bool,
    },
    TimedOut,
}

impl From<mail_send::Error> for Failure {
    fn from(error: mail_send::Error) -> Failure {
        Failure::Smtp {
            error,
            about_message: false,
        }
    }
}

pub(super) async fn within<T, E: Into<Failure>>(
    limit: Duration,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Failure::TimedOut),
    }
}

impl Failure {
    /// The same failure, marked as the server's answer to the message itself.
    fn about_message(self) -> Failure {
        match self {
            Failure::Smtp { error, .. } => Failure::Smtp {
                error,
                about_message: true,
            },
            timed_out => timed_out,
        }
    }

    fn reply(&self) -> Option<u16> {
        match self {
            Failure::Smtp {
                error: mail_send::Error::UnexpectedReply(r),
                ..
            } => Some(r.code),
            _ => None,
        }
    }

    pub(super) fn server_replied(&self) -> bool {
        self.reply().is_some()
    }

    /// The reply class for metrics: `4xx`, `5xx`, or `none` without a reply.
    pub(super) fn class(&self) -> &'static str {
        match self.reply() {
            Some(code) if code >= 500 => "5xx",
            Some(code) if code >= 400 => "4xx",
            _ => "none",
        }
    }

    /// 421: the server is closing the connection.
    pub(super) fn closing(&self) -> bool {
        self.reply() == Some(421)
    }

    /// Whether the relay itself was the trouble (no answer at all, or 421), rather than a
    /// refusal of this message or of the sender: a probe can tell when that is over.
    pub(super) fn about_relay(&self) -> bool {
        !self.server_replied() || self.closing()
    }

    /// Only a 5xx refusal of the message itself (RCPT, DATA) is permanent. A 5xx at the
    /// greeting, EHLO, AUTH or MAIL means the configuration is wrong: the message is not at
    /// fault, so it is retried (until its code expires) while the log tells the operator.
    pub(super) fn classify(self) -> SendError {
        match self {
            Failure::TimedOut => {
                SendError::Transient("the SMTP server did not answer in time".into())
            }
            Failure::Smtp {
                error: mail_send::Error::UnexpectedReply(r),
                about_message: true,
            } if r.code >= 500 => SendError::Permanent(format!("{} {}", r.code, r.message)),
            Failure::Smtp { error, .. } => SendError::Transient(error.to_string()),
        }
    }
}
