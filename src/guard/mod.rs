//! The traffic guard: who may call (allow-only, deny lists, bans → 403) and how often
//! (limits → 429), before any work is done on the request.

mod admin_token;
mod bans;
mod client_ip;
mod counters;
mod failures;
mod limits;
mod mail;
mod networks;
mod ticket;

use std::net::IpAddr;
use std::sync::RwLock;

use ipnet::IpNet;

pub use client_ip::client_ip;
use counters::{ByClient, Counters};
pub use limits::ceil_secs;
use limits::{Digests, FixedWindow, Limit};
pub use mail::Grant;
use networks::NetworkLimits;
pub use ticket::Ticket;

use std::sync::Arc;

use crate::config::{Config, ConfigError, EndpointLimits, Rate};
use crate::metrics::Metrics;

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Denied,
    Limited { retry_after_secs: u64 },
}

/// The public endpoints, each with its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Forgot = 0,
    Confirm = 1,
    Reset = 2,
}

struct EndpointGuard {
    per_client: Option<ByClient>,
    /// The client's networks (`limits.networks`), each a few clients' worth of `per_client`.
    networks: NetworkLimits,
    per_email: Option<Counters>,
    /// Per (address, client key): how much of an address's allowance one client may spend.
    per_email_per_client: Option<Counters>,
    /// None for forgot-password, whose `global` is the mail budget ([`Guard::admit_mail`]).
    global: Option<FixedWindow<()>>,
}

impl EndpointGuard {
    fn new(endpoint: Endpoint, l: EndpointLimits, limits: &crate::config::Limits) -> EndpointGuard {
        let cap = limits.max_tracked_keys;
        let global = match endpoint {
            Endpoint::Forgot => None,
            _ => FixedWindow::new(l.global, 1),
        };
        EndpointGuard {
            per_client: ByClient::new(l.per_client, cap),
            networks: NetworkLimits::new(l.per_client, limits.networks, cap),
            per_email: by_digest(l.per_email, cap),
            per_email_per_client: by_digest(l.per_email_per_client, cap),
            global,
        }
    }
}

pub struct Guard {
    allow_only: Vec<IpNet>,
    deny: Vec<IpNet>,
    /// The runtime deny list (admin API, `resetgate blocks`), mirrored from the store.
    blocks: RwLock<Vec<IpNet>>,
    trusted_proxies: Vec<IpNet>,
    client_ip_header: crate::config::ClientIpHeader,
    endpoints: [EndpointGuard; 3],
    /// forgot-password's codes: the budget and the reserve.
    mail: mail::MailBudget,
    /// The busiest networks, named in a warning once a minute.
    watch: networks::Watch,
    cooldown: Option<Counters>,
    confirm_failures: Option<ByClient>,
    failed_confirm_budget: Option<FixedWindow<()>>,
    reset_failures: Option<ByClient>,
    reset_failures_per_email: Option<Counters>,
    /// Wrong or missing admin tokens per client key (`admin.token_failures`).
    admin_token_failures: Option<ByClient>,
    /// Keys the per-address counters.
    digests: Digests,
    bans: bans::Bans,
    metrics: Arc<Metrics>,
    /// The warning about forwarded headers nobody trusts, once a minute.
    forwarded_warned: crate::throttle::Throttle,
    /// Seconds after `started` when the spent budget's window ends (see `budget_spent`).
    budget_spent_until: std::sync::atomic::AtomicU64,
    /// A spent budget not yet announced: its window's remaining seconds, plus one (0: none).
    budget_news: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
}

impl Guard {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Result<Guard, ConfigError> {
        let cap = config.limits.max_tracked_keys;
        let l = &config.limits;
        let cooldown = Rate {
            requests: 1,
            window: config.recovery.resend_cooldown,
        };
        Ok(Guard {
            allow_only: crate::config::nets(&config.guard.allow_only),
            deny: crate::config::nets(&config.guard.deny),
            blocks: RwLock::new(Vec::new()),
            trusted_proxies: crate::config::nets(&config.server.trusted_proxies),
            client_ip_header: config.server.client_ip_header,
            endpoints: [
                (Endpoint::Forgot, l.forgot_password),
                (Endpoint::Confirm, l.confirm_otp_reset),
                (Endpoint::Reset, l.password_reset),
            ]
            .map(|(endpoint, e)| EndpointGuard::new(endpoint, e, l)),
            mail: mail::MailBudget::new(l, cap),
            watch: networks::Watch::new(
                u64::from(l.forgot_password.per_client.requests)
                    * u64::from(l.networks.ipv6_48.max(l.networks.ipv4_24).max(1)),
            ),
            cooldown: by_digest(cooldown, cap),
            confirm_failures: ByClient::new(l.confirm_failures_per_client, cap),
            failed_confirm_budget: FixedWindow::new(config.recovery.failed_confirm_budget, 1),
            reset_failures: ByClient::new(l.reset_failures_per_client, cap),
            reset_failures_per_email: by_digest(l.reset_failures_per_email, cap),
            admin_token_failures: ByClient::new(config.admin.token_failures, cap),
            digests: Digests::default(),
            bans: bans::Bans::new(&config.guard, cap, metrics.clone()),
            metrics,
            forwarded_warned: crate::throttle::Throttle::default(),
            budget_spent_until: std::sync::atomic::AtomicU64::new(0),
            budget_news: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
        })
    }

    /// Whether `peer` is one of `server.trusted_proxies`.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The client behind a connection from `peer` (see [`client_ip`]).
    pub fn client(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> IpAddr {
        if self.trusted_proxies.is_empty() {
            self.notice_untrusted_forwarding(peer, headers);
        }
        client_ip(peer, headers, &self.trusted_proxies, self.client_ip_header)
    }

    /// A loopback or private peer that sends `X-Forwarded-For` or `Forwarded` is most likely
    /// a reverse proxy that `server.trusted_proxies` does not name: then every client behind
    /// it is one client to the limits, the bans and the same-client fallback. Counted, and
    /// warned about at most once a minute.
    fn notice_untrusted_forwarding(&self, peer: IpAddr, headers: &hyper::HeaderMap) {
        let forwarded = headers.contains_key("x-forwarded-for")
            || headers.contains_key(hyper::header::FORWARDED);
        if !forwarded || !client_ip::is_local(peer) {
            return;
        }
        self.metrics.untrusted_forwarded.inc();
        if self.forwarded_warned.ready() {
            tracing::warn!(%peer, "a local peer sends X-Forwarded-For or Forwarded, but server.trusted_proxies is empty: every client behind this proxy counts as one client (limits, bans, the same-client fallback); list the proxy in server.trusted_proxies");
        }
    }

    /// Replaces the runtime deny list (after the store changed).
    pub fn set_blocks(&self, nets: Vec<IpNet>) {
        *self
            .blocks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = nets;
    }

    /// 403 for clients outside `guard.allow_only`, on a deny list, or banned: checked for
    /// every path of the public listener.
    pub fn admit_path(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        let listed = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&ip));
        let blocked = listed(
            &self
                .blocks
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if (!self.allow_only.is_empty() && !listed(&self.allow_only))
            || listed(&self.deny)
            || blocked
        {
            self.metrics.refused("deny");
            return Err(Refusal::Denied);
        }
        if self.bans.is_banned(client_key(ip)) {
            self.metrics.refused("banned");
            return Err(Refusal::Denied);
        }
        Ok(())
    }

    /// The endpoint's per-client limit, its networks' limits and (but for forgot-password,
    /// whose global limit counts mail: [`Guard::admit_mail`]) its global limit, after
    /// [`Guard::admit_path`].
    pub fn admit_client(&self, ip: IpAddr, endpoint: Endpoint) -> Result<(), Refusal> {
        let client = client_key(ip.to_canonical());
        self.watch.note(client);
        let e = &self.endpoints[endpoint as usize];
        let per_client = hit(&e.per_client, client);
        if per_client.is_err() {
            self.watch.refused();
        }
        self.strike_on(client, "per_client", per_client)?;
        if let Err((level, retry_after_secs)) = e.networks.hit(client) {
            // The network's allowance, perhaps spent by neighbours: no ban strike.
            refund(&e.per_client, &client);
            self.metrics.refused(level.kind());
            self.watch.refused();
            return Err(Refusal::Limited { retry_after_secs });
        }
        let global = hit(&e.global, ());
        if global.is_err() {
            // Not this client's fault: give its request back.
            refund(&e.per_client, &client);
            e.networks.refund(client);
            self.metrics.refused("global");
        }
        global
    }

    /// A code for forgot-password, after the address's limits: from the mail budget
    /// (`limits.forgot_password.global`), or past it, for an `account` only, from the
    /// reserve (`limits.mail_reserve`). A refusal says when the budget's window reopens.
    pub fn admit_mail(&self, ip: IpAddr, account: bool) -> Result<Grant, Refusal> {
        let client = client_key(ip.to_canonical());
        match self.mail.admit(client, account) {
            Ok(grant) => {
                if grant == Grant::Reserve {
                    self.metrics.codes_from_reserve.inc();
                }
                Ok(grant)
            }
            Err(spent) => {
                self.metrics.refused(spent.kind);
                self.watch.refused();
                Err(Refusal::Limited {
                    retry_after_secs: spent.retry_after_secs,
                })
            }
        }
    }

    /// The endpoint's limits on the address, counted on the normalized *submitted* address
    /// whether or not an account exists, so the answer reveals nothing: for forgot-password
    /// the resend cooldown first, then what this client may spend of the address's
    /// allowance (`per_email_per_client`), then the address's ceiling (`per_email`). A
    /// request refused by one limit is charged to none (the caller gives back the client
    /// stage, [`Guard::refund_client`]), so a client that obeys `Retry-After` pays nothing
    /// for the wait. These refusals are about the address, so they never earn the client a
    /// ban strike: the owner retrying while strangers spend the address's allowance must
    /// not end up banned.
    pub fn admit_email(&self, ip: IpAddr, endpoint: Endpoint, key: &str) -> Result<(), Refusal> {
        let e = &self.endpoints[endpoint as usize];
        let cooldown = self.cooldown_of(endpoint);
        let (email, pair) = self.email_keys(ip, key);
        self.refused_as("cooldown", hit(cooldown, email))?;
        let limited = hit(&e.per_email_per_client, pair);
        if let Err(refusal) = self.refused_as("per_email_per_client", limited) {
            refund(cooldown, &email);
            return Err(refusal);
        }
        let limited = hit(&e.per_email, email);
        if let Err(refusal) = self.refused_as("per_email", limited) {
            refund(cooldown, &email);
            refund(&e.per_email_per_client, &pair);
            return Err(refusal);
        }
        Ok(())
    }

    /// Gives back what [`Guard::admit_email`] charged, when a later limit refused the request.
    pub fn refund_email(&self, ip: IpAddr, endpoint: Endpoint, key: &str) {
        let e = &self.endpoints[endpoint as usize];
        let (email, pair) = self.email_keys(ip, key);
        refund(self.cooldown_of(endpoint), &email);
        refund(&e.per_email_per_client, &pair);
        refund(&e.per_email, &email);
    }

    /// The counters' keys for an address, and for the address and this client.
    fn email_keys(&self, ip: IpAddr, key: &str) -> (limits::Digest, limits::Digest) {
        let client = client_key(ip.to_canonical());
        (self.digests.of(key), self.digests.of((key, client)))
    }

    /// Gives back what [`Guard::admit_client`] charged, when a later limit refused the request.
    pub fn refund_client(&self, ip: IpAddr, endpoint: Endpoint) {
        let e = &self.endpoints[endpoint as usize];
        let client = client_key(ip.to_canonical());
        refund(&e.per_client, &client);
        e.networks.refund(client);
        refund(&e.global, &());
    }

    fn cooldown_of(&self, endpoint: Endpoint) -> &Option<Counters> {
        match endpoint {
            Endpoint::Forgot => &self.cooldown,
            _ => &None,
        }
    }

    /// Counts a refusal that is not the client's doing (no ban strike).
    fn refused_as(&self, kind: &'static str, result: Result<(), Refusal>) -> Result<(), Refusal> {
        if result.is_err() {
            self.metrics.refused(kind);
        }
        result
    }

    fn strike_on(
        &self,
        client: IpAddr,
        kind: &'static str,
        result: Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        if result.is_err() {
            self.metrics.refused(kind);
            self.bans.strike(client);
        }
        result
    }
}

/// A per-address counter, or none when its rate is switched off.
fn by_digest(rate: Rate, cap: u64) -> Option<Counters> {
    Counters::new(rate, cap)
}

fn hit<K, L: Limit<K>>(limiter: &Option<L>, key: K) -> Result<(), Refusal> {
    match limiter {
        Some(l) => l.hit(key).map_err(|s| Refusal::Limited {
            retry_after_secs: s,
        }),
        None => Ok(()),
    }
}

fn refund<K, L: Limit<K>>(limiter: &Option<L>, key: &K) {
    if let Some(l) = limiter {
        l.refund(key);
    }
}

/// IPv6 clients are counted per /64: one host usually holds a whole /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests;
