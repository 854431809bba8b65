//! What happened, for the application: one typed enum of events. The recovery steps and
//! the admin operations emit them; each is queued, as webhook deliveries, in the same store
//! transaction as the change it tells of (`outbox::webhook::Hooks` routes them to the
//! endpoints that subscribed to their [`Kind`]).

use serde::{Deserialize, Serialize};

/// An event's type, as endpoints subscribe to it (`webhooks.events`) and as its body names
/// it (`"type"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "password.changed")]
    PasswordChanged,
    #[serde(rename = "account.locked")]
    AccountLocked,
    #[serde(rename = "code.confirmed")]
    CodeConfirmed,
    #[serde(rename = "recovery.budget_exhausted")]
    BudgetExhausted,
}

impl Kind {
    /// Every kind an endpoint may subscribe to, in the order the documentation lists them.
    pub const ALL: [Kind; 4] = [
        Kind::PasswordChanged,
        Kind::AccountLocked,
        Kind::CodeConfirmed,
        Kind::BudgetExhausted,
    ];

    /// The name endpoints subscribe to and bodies carry.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PasswordChanged => "password.changed",
            Kind::AccountLocked => "account.locked",
            Kind::CodeConfirmed => "code.confirmed",
            Kind::BudgetExhausted => "recovery.budget_exhausted",
        }
    }
}

/// One event, with what its body tells beyond the request it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The password of account `account` (stored address `email`) was set to `hash`.
    PasswordChanged {
        account: String,
        email: String,
        at_ms: u64,
        hash: String,
    },
    /// Confirmations naming the account are refused from now on (`failures` in a row).
    AccountLocked {
        account: String,
        email: String,
        failures: u32,
    },
    /// A code of the account was confirmed.
    CodeConfirmed { account: String, email: String },
    /// The global budget of failed confirmations is spent until `until_ms`.
    BudgetExhausted {
        budget: u32,
        window_secs: u64,
        until_ms: u64,
    },
}

impl Event {
    pub fn kind(&self) -> Kind {
        match self {
            Event::PasswordChanged { .. } => Kind::PasswordChanged,
            Event::AccountLocked { .. } => Kind::AccountLocked,
            Event::CodeConfirmed { .. } => Kind::CodeConfirmed,
            Event::BudgetExhausted { .. } => Kind::BudgetExhausted,
        }
    }

    /// The account (normalized address) the event is about; "" for none.
    pub fn account(&self) -> &str {
        match self {
            Event::PasswordChanged { account, .. }
            | Event::AccountLocked { account, .. }
            | Event::CodeConfirmed { account, .. } => account,
            Event::BudgetExhausted { .. } => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_and_write_as_their_names() {
        for kind in Kind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), kind);
        }
        let err = serde_json::from_str::<Kind>("\"password.chnged\"").unwrap_err();
        assert!(err.to_string().contains("password.changed"), "{err}");
    }
}
