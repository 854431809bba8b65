//! What a request was charged, given back unless it counts: a request refused by one limit
//! is charged to none of them. A [`Ticket`] holds the client's charges (per client, its
//! networks, the endpoint's global limit) and, once taken, the address's (the cooldown,
//! `per_email_per_client`, `per_email`); dropping it gives back what it holds, and
//! [`Ticket::keep`] keeps it all.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Endpoint, Guard, Refusal};

pub struct Ticket {
    guard: Arc<Guard>,
    ip: IpAddr,
    endpoint: Endpoint,
    /// The client's charges are held.
    client: bool,
    /// The address whose charges are held.
    email: Option<String>,
}

impl Guard {
    /// [`Guard::admit_client`], as a ticket that gives the charges back unless kept.
    pub fn ticket(self: &Arc<Guard>, ip: IpAddr, endpoint: Endpoint) -> Result<Ticket, Refusal> {
        self.admit_client(ip, endpoint)?;
        Ok(Ticket {
            guard: self.clone(),
            ip,
            endpoint,
            client: true,
            email: None,
        })
    }
}

impl Ticket {
    /// The endpoint's limits on the address `key` ([`Guard::admit_email`]), held too.
    pub fn admit_email(&mut self, key: &str) -> Result<(), Refusal> {
        self.guard.admit_email(self.ip, self.endpoint, key)?;
        self.email = Some(key.to_string());
        Ok(())
    }

    /// Gives back the address's charges now, and keeps the client's: the request counts,
    /// but not against the address (a refusal about the password, not the address).
    pub fn release_email(&mut self) {
        if let Some(key) = self.email.take() {
            self.guard.refund_email(self.ip, self.endpoint, &key);
        }
    }

    /// `result`, and when it is an error (a body that could not be read or parsed), the
    /// client's charges count: bad input is a request like any other.
    pub fn counts<T, E>(&mut self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.release_email();
            self.client = false;
        }
        result
    }

    /// Everything charged counts.
    pub fn keep(mut self) {
        self.client = false;
        self.email = None;
    }

    /// Everything but the client's charges is given back, which count (the request was
    /// answered, as a failure the caller counts on its own).
    pub fn keep_client(mut self) {
        self.release_email();
        self.client = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.release_email();
        if self.client {
            self.guard.refund_client(self.ip, self.endpoint);
        }
    }
}
