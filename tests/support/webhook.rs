//! A real HTTP(S) webhook receiver (tests/support/webhook_receiver.py) that checks each
//! delivery with the reference `standardwebhooks` library, and the config that points at it.

use std::io::BufRead;
use std::sync::mpsc::{channel, Receiver};

use serde_json::Value;

use super::{Python, PATIENCE};

/// A valid Standard Webhooks secret: "whsec_" + base64 of 32 random bytes (with '+', '/'
/// and '=' padding, as standard base64 has).
pub const TEST_SECRET: &str = "whsec_EMjg+VvePl/wr3Kzx8CtNyK37fF7XUhhUivhUYtxQTU=";

/// One POST the receiver answered, as it reported it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Delivery {
    /// The webhook-id header ("" when missing).
    pub id: String,
    /// The webhook-timestamp header, as sent ("" when missing).
    pub timestamp: String,
    /// The reference library accepted the signature (and the timestamp, within 5 minutes).
    pub verified: bool,
    /// The library rejects the same headers with the body altered by one byte.
    pub tamper_rejected: bool,
    /// The library rejects the body without the webhook-signature header.
    pub unsigned_rejected: bool,
    /// This webhook-id had been answered 2xx before.
    pub duplicate: bool,
    /// What the receiver answered: 401 when not verified, `--fail-status` for the first
    /// `--fail-first` verified deliveries, else 200.
    pub status: u16,
    /// The parsed JSON body (null when it is not JSON).
    pub body: Value,
    pub path: String,
    pub content_type: String,
}

impl Delivery {
    /// The body's "type" ("" when missing).
    pub fn event_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    /// The body's "data" (null when missing).
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

pub struct WebhookReceiver {
    /// Stops the receiver when dropped.
    _child: Python,
    pub port: u16,
    tls: bool,
    deliveries: Receiver<Delivery>,
}

impl WebhookReceiver {
    pub fn start(secret: &str) -> WebhookReceiver {
        WebhookReceiver::start_with(secret, &[])
    }

    /// `args` go to tests/support/webhook_receiver.py (`--fail-first N`, `--fail-status S`,
    /// `--tls-cert PATH --tls-key PATH`, `--port N`).
    pub fn start_with(secret: &str, args: &[&str]) -> WebhookReceiver {
        let args: Vec<&str> = ["--secret", secret].iter().chain(args).copied().collect();
        let (child, port, out) = Python::start("webhook_receiver.py", &args, "standardwebhooks");
        let (tx, deliveries) = channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let delivery: Delivery = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("the receiver prints deliveries ({e}): {line}"));
                if tx.send(delivery).is_err() {
                    break;
                }
            }
        });
        WebhookReceiver {
            _child: child,
            port,
            tls: args.contains(&"--tls-cert"),
            deliveries,
        }
    }

    /// The endpoint's URL for the config: http(s)://127.0.0.1:PORT/hooks.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/hooks", self.port)
    }

    /// The next request the receiver answered; panics if none comes within [`PATIENCE`].
    pub fn next_delivery(&self) -> Delivery {
        self.deliveries.recv_timeout(PATIENCE).unwrap_or_else(|e| {
            panic!(
                "no webhook reached the receiver on port {} within {PATIENCE:?} ({e})",
                self.port
            )
        })
    }

    /// Deliveries already received and not yet taken.
    pub fn pending(&self) -> Vec<Delivery> {
        self.deliveries.try_iter().collect()
    }
}

/// A `[[webhooks]]` table for an endpoint at `url` with quick retries (50ms doubling to
/// 200ms), and the TOML lines in `extra` (say `events = ["password.changed"]\n`) inside it.
///
/// Put it LAST in the config text (given to [`super::Setup::new`]), after every other
/// section: in TOML every key up to the next `[header]` belongs to this table, so a key
/// meant for another section that follows it without its own header would land inside it.
/// (`Setup::new` adds its [server]/[admin]/[storage]/[passwords] keys under their own
/// headers, either into a section the text already has or appended with its header.)
/// Several endpoints: concatenate several of these at the end.
pub fn webhook_config(name: &str, url: &str, secret: &str, extra: &str) -> String {
    let mut table = format!(
        "[[webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{secret}\"\n\
         retry_initial = \"50ms\"\nretry_max = \"200ms\"\n"
    );
    if !extra.is_empty() {
        table.push_str(extra.trim_end());
        table.push('\n');
    }
    table
}
