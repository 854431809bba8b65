//! Prometheus metrics, served at `/metrics` on the admin listener (prometheus-client).
//!
//! Counters are bumped where things happen; gauges that describe the store (outbox depth,
//! oldest entry, size on disk) are read when scraped.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label sets made of static strings: counting a request allocates nothing.
type Labels = [(&'static str, &'static str); 1];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    endpoint: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    listener: &'static str,
    endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    endpoint: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookEndpoint {
    endpoint: String,
}

pub struct Metrics {
    registry: Registry,
    webhook_deliveries: Family<WebhookLabels, Counter>,
    breach_checks: Family<Labels, Counter>,
    webhook_oldest: Family<WebhookEndpoint, Gauge<f64, AtomicU64>>,
    webhook_reads: Counter,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub codes_issued: Counter,
    /// Codes issued past a spent mail budget, from `limits.mail_reserve`.
    pub codes_from_reserve: Counter,
    pub codes_confirmed: Counter,
    pub confirmations_failed: Counter,
    pub codes_expired: Counter,
    pub password_resets: Counter,
    pub password_resets_refused: Counter,
    pub untrusted_forwarded: Counter,
    pub budget_exhausted: Counter,
    refusals: Family<Labels, Counter>,
    pub bans: Counter,
    pub outbox_sent: Counter,
    pub outbox_retried: Counter,
    pub outbox_dead: Counter,
    pub outbox_expired: Counter,
    smtp_replies: Family<Labels, Counter>,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    store_bytes: Gauge,
    store_free: Gauge,
    code_mail_wait: Gauge<f64, AtomicU64>,
    mail_auth: Family<Labels, Gauge>,
}

/// What `/metrics` reads from the store when scraped.
pub struct StoreGauges {
    pub depth: usize,
    pub oldest_age: Duration,
    pub store_bytes: u64,
    /// Free bytes on the data directory's file system.
    pub free_bytes: u64,
    /// How long the oldest due code mail has waited for delivery.
    pub code_mail_wait: Duration,
    /// Each configured webhook endpoint's oldest undelivered event's age (zero: none).
    pub webhook_oldest: Vec<(String, Duration)>,
    /// Webhook queue entries read so far (`Db::webhook_queue_reads`).
    pub webhook_queue_reads: u64,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~6.5 s, doubling.
    Histogram::new((0..17).map(|i| 0.0001 * f64::from(1u32 << i)))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers each `field` of `m` under `"name"` with its help text.
macro_rules! register {
    ($registry:ident, $m:ident; $($field:ident => $name:literal, $help:literal;)*) => {
        $( $registry.register($name, $help, $m.$field.clone()); )*
    };
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("resetgate");
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            codes_issued: Counter::default(),
            codes_from_reserve: Counter::default(),
            codes_confirmed: Counter::default(),
            confirmations_failed: Counter::default(),
            codes_expired: Counter::default(),
            password_resets: Counter::default(),
            password_resets_refused: Counter::default(),
            untrusted_forwarded: Counter::default(),
            budget_exhausted: Counter::default(),
            refusals: Family::default(),
            bans: Counter::default(),
            outbox_sent: Counter::default(),
            outbox_retried: Counter::default(),
            outbox_dead: Counter::default(),
            outbox_expired: Counter::default(),
            smtp_replies: Family::default(),
            outbox_depth: Gauge::default(),
            outbox_oldest: Gauge::default(),
            store_bytes: Gauge::default(),
            store_free: Gauge::default(),
            code_mail_wait: Gauge::default(),
            mail_auth: Family::default(),
            webhook_deliveries: Family::default(),
            breach_checks: Family::default(),
            webhook_oldest: Family::default(),
            webhook_reads: Counter::default(),
            registry: Registry::default(),
        };
        register!(registry, m;
            requests => "http_requests", "HTTP requests by listener, endpoint and status";
            latency => "http_request_duration_seconds", "HTTP request latency by endpoint";
            codes_issued => "codes_issued", "One-time codes issued";
            codes_from_reserve => "codes_from_reserve", "Codes issued past a spent mail budget (limits.forgot_password.global), from limits.mail_reserve";
            codes_confirmed => "codes_confirmed", "Codes confirmed";
            confirmations_failed => "confirmations_failed", "Failed code confirmations";
            codes_expired => "codes_expired", "Codes that expired unused (swept)";
            password_resets => "password_resets", "Passwords set through password-reset";
            password_resets_refused => "password_resets_refused", "password-resets refused for want of a usable confirmation (counted as failures)";
            untrusted_forwarded => "untrusted_forwarded_headers", "Requests from a loopback or private peer with X-Forwarded-For or Forwarded while server.trusted_proxies is empty";
            budget_exhausted => "failed_confirm_budget_exhausted", "Times the global budget of failed confirmations ran out (code-only confirmations then get 429)";
            refusals => "refusals", "Requests refused by the guard, by kind";
            bans => "bans", "Clients banned after repeated refusals";
            outbox_sent => "outbox_sent", "Messages accepted by the transport";
            outbox_retried => "outbox_retried", "Delivery attempts that failed temporarily";
            outbox_dead => "outbox_dead", "Messages set aside as dead letters";
            outbox_expired => "outbox_expired_unsent", "Messages dropped because their code expired first";
            smtp_replies => "smtp_replies", "Outcomes of delivery attempts by SMTP reply class";
            outbox_depth => "outbox_depth", "Messages waiting in the outbox";
            outbox_oldest => "outbox_oldest_age_seconds", "Age of the oldest queued message";
            store_bytes => "store_size_bytes", "Size of the store on disk";
            code_mail_wait => "outbox_code_mail_wait_seconds", "How long the oldest code mail that is due has waited for delivery (over half a code's lifetime, new codes get 503)";
            store_free => "store_free_bytes", "Free space on the data directory's file system (see storage.min_free)";
            webhook_deliveries => "webhook_deliveries", "Webhook delivery attempts by endpoint and outcome (delivered, retried, dead)";
            webhook_oldest => "webhook_oldest_undelivered_seconds", "Age of the oldest queued webhook delivery, by endpoint";
            webhook_reads => "webhook_queue_reads", "Webhook queue entries read by the delivery tasks' scans and by /metrics";
            breach_checks => "breach_checks", "Online password checks (passwords.breach_api) by outcome: listed, clear, skipped";
            mail_auth => "mail_auth", "The last mail-authentication check (check-mail), by check (dkim, dmarc, spf, relay): 1 pass, 0 fail, -1 unknown";
        );
        Metrics { registry, ..m }
    }

    /// check: `dkim`, `dmarc`, `spf` or `relay`; value: 1 pass, 0 fail, -1 unknown.
    pub fn mail_auth(&self, check: &'static str, value: i64) {
        self.mail_auth.get_or_create(&[("check", check)]).set(value);
    }

    /// outcome: `listed`, `clear` or `skipped`.
    pub fn breach_check(&self, outcome: &'static str) {
        self.breach_checks
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }

    /// outcome: `delivered`, `retried` or `dead`.
    pub fn webhook(&self, endpoint: &str, outcome: &'static str) {
        let labels = WebhookLabels {
            endpoint: endpoint.to_string(),
            outcome,
        };
        self.webhook_deliveries.get_or_create(&labels).inc();
    }

    /// Every configured endpoint's delivery counters, at zero, so that they show before
    /// anything happens (the oldest-age gauge is set for each at every scrape).
    pub fn webhook_endpoints(&self, names: &[String]) {
        for endpoint in names {
            for outcome in ["delivered", "retried", "dead"] {
                let labels = WebhookLabels {
                    endpoint: endpoint.clone(),
                    outcome,
                };
                let _ = self.webhook_deliveries.get_or_create(&labels);
            }
        }
    }

    fn webhook_oldest_age(&self, endpoint: &str, age: Duration) {
        let labels = WebhookEndpoint {
            endpoint: endpoint.to_string(),
        };
        self.webhook_oldest
            .get_or_create(&labels)
            .set(age.as_secs_f64());
    }

    pub fn request(
        &self,
        listener: &'static str,
        endpoint: &'static str,
        status: u16,
        took: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                listener,
                endpoint,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { listener, endpoint })
            .observe(took.as_secs_f64());
    }

    /// kind: `deny`, `per_client`, `per_email`, `per_email_per_client`, `global`, `cooldown`,
    /// `min_free`,
    /// `confirm_failures`, `failed_confirm_budget`, `reset_failures`,
    /// `reset_failures_per_email`, `banned`, `admin_token_failures`.
    pub fn refused(&self, kind: &'static str) {
        self.refusals.get_or_create(&[("kind", kind)]).inc();
    }

    /// class: `2xx`, `4xx`, `5xx`, `none` (no reply: connection, TLS or timeout), `file`.
    pub fn smtp_reply(&self, class: &'static str) {
        self.smtp_replies.get_or_create(&[("class", class)]).inc();
    }

    /// The exposition text, after setting the gauges read from the store.
    pub fn render(&self, store: StoreGauges) -> String {
        self.outbox_depth.set(store.depth as i64);
        self.outbox_oldest.set(store.oldest_age.as_secs_f64());
        self.store_bytes.set(store.store_bytes as i64);
        self.store_free.set(store.free_bytes as i64);
        self.code_mail_wait.set(store.code_mail_wait.as_secs_f64());
        for (endpoint, age) in &store.webhook_oldest {
            self.webhook_oldest_age(endpoint, *age);
        }
        let counted = self.webhook_reads.get();
        self.webhook_reads
            .inc_by(store.webhook_queue_reads.saturating_sub(counted));
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String does not fail");
        out
    }
}

/// The path label for a request: known endpoints by name, anything else as "other", so a
/// scanner cannot blow up the label space.
pub fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/api/v1/user/forgot-password" => "forgot-password",
        "/api/v1/user/confirm-otp-reset" => "confirm-otp-reset",
        "/api/v1/user/password-reset" => "password-reset",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/openapi.json" => "openapi",
        "/metrics" => "metrics",
        p if p.starts_with("/admin/") => "admin",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let m = Metrics::new();
        m.request(
            "public",
            endpoint_label("/api/v1/user/forgot-password"),
            200,
            Duration::from_millis(2),
        );
        m.refused("per_email");
        m.codes_issued.inc();
        m.mail_auth("dmarc", -1);
        let text = m.render(StoreGauges {
            depth: 3,
            oldest_age: Duration::from_secs(5),
            store_bytes: 4096,
            free_bytes: 1 << 30,
            code_mail_wait: Duration::ZERO,
            webhook_oldest: vec![("app".into(), Duration::from_millis(1500))],
            webhook_queue_reads: 0,
        });
        assert!(text.contains("resetgate_webhook_oldest_undelivered_seconds{endpoint=\"app\"} 1.5"));
        assert!(text.contains("resetgate_http_requests_total{listener=\"public\",endpoint=\"forgot-password\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("resetgate_refusals_total{kind=\"per_email\"} 1"));
        assert!(text.contains("resetgate_codes_issued_total 1"));
        assert!(text.contains("resetgate_outbox_depth 3"));
        assert!(
            text.contains("resetgate_mail_auth{check=\"dmarc\"} -1"),
            "{text}"
        );
        assert!(text.contains("resetgate_store_size_bytes 4096"));
        assert!(text.contains("resetgate_http_request_duration_seconds_bucket"));
        assert_eq!(endpoint_label("/wp-admin.php"), "other");
    }
}
