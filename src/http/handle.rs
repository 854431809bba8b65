//! What the public listener runs with ([`Public`]): the recovery API (`public`) and the
//! reset page (`page`) share it.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;

use super::ready::Readiness;
use crate::config::Config;
use crate::guard::Guard;
use crate::metrics::Metrics;
use crate::outbox::catalog::Catalog;
use crate::steps::{Asker, Steps, Via};

/// What the public listener runs with. Cheap to clone.
#[derive(Clone)]
pub struct Public {
    inner: Arc<Parts>,
}

/// What [`Public`] holds: the configuration, the recovery steps, the reset page, the guard
/// (who the client is, who may call), the message catalog (a request's locale), the
/// metrics and the readiness check.
pub struct Parts {
    pub config: Arc<Config>,
    pub steps: Steps,
    pub page: crate::web::Page,
    pub guard: Arc<Guard>,
    pub catalog: Arc<Catalog>,
    pub metrics: Arc<Metrics>,
    pub ready: Readiness,
}

impl Public {
    pub fn new(parts: Parts) -> Public {
        Public {
            inner: Arc::new(parts),
        }
    }

    pub(super) fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(super) fn steps(&self) -> &Steps {
        &self.inner.steps
    }

    pub(super) fn page(&self) -> &crate::web::Page {
        &self.inner.page
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(super) fn metrics_handle(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    pub(super) fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    pub(super) fn ready(&self) -> &Readiness {
        &self.inner.ready
    }

    /// Who asks, as the steps need it: the client, the request's id and the catalog locale
    /// that the request's `Accept-Language` asks for.
    pub(super) fn asker(&self, req: &Request<Incoming>, client: IpAddr, via: Via) -> Asker {
        let header = req.headers().get(hyper::header::ACCEPT_LANGUAGE);
        Asker {
            client,
            request_id: super::current_request_id(),
            locale: self
                .inner
                .catalog
                .choose(header.and_then(|v| v.to_str().ok())),
            via,
        }
    }
}
