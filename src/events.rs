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
    #[serde(rename = "account.email_changed")]
    EmailChanged,
    #[serde(rename = "account.disabled")]
    AccountDisabled,
    #[serde(rename = "account.enabled")]
    AccountEnabled,
}

impl Kind {
    /// Every kind an endpoint may subscribe to, in the order the documentation lists them.
    pub const ALL: [Kind; 7] = [
        Kind::PasswordChanged,
        Kind::AccountLocked,
        Kind::CodeConfirmed,
        Kind::BudgetExhausted,
        Kind::EmailChanged,
        Kind::AccountDisabled,
        Kind::AccountEnabled,
    ];

    /// The name endpoints subscribe to and bodies carry.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PasswordChanged => "password.changed",
            Kind::AccountLocked => "account.locked",
            Kind::CodeConfirmed => "code.confirmed",
            Kind::BudgetExhausted => "recovery.budget_exhausted",
            Kind::EmailChanged => "account.email_changed",
            Kind::AccountDisabled => "account.disabled",
            Kind::AccountEnabled => "account.enabled",
        }
    }
}

/// Who set a password: the owner through the recovery flow, or the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Reset,
    Admin,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Reset => "reset",
            Source::Admin => "admin",
        }
    }
}

/// One event, with what its body tells beyond the request it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The password of account `account` (stored address `email`) was set to `hash` (None:
    /// cleared, by the operator).
    PasswordChanged {
        account: String,
        email: String,
        at_ms: u64,
        hash: Option<String>,
        source: Source,
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
    /// The account's address changed from `previous` to `email` (now keyed `account`).
    EmailChanged {
        account: String,
        email: String,
        previous: String,
    },
    /// The account was disabled: no codes, no resets, no logins.
    AccountDisabled { account: String, email: String },
    /// The account was enabled again.
    AccountEnabled { account: String, email: String },
}

impl Event {
    pub fn kind(&self) -> Kind {
        match self {
            Event::PasswordChanged { .. } => Kind::PasswordChanged,
            Event::AccountLocked { .. } => Kind::AccountLocked,
            Event::CodeConfirmed { .. } => Kind::CodeConfirmed,
            Event::BudgetExhausted { .. } => Kind::BudgetExhausted,
            Event::EmailChanged { .. } => Kind::EmailChanged,
            Event::AccountDisabled { .. } => Kind::AccountDisabled,
            Event::AccountEnabled { .. } => Kind::AccountEnabled,
        }
    }

    /// The account (normalized address) the event is about; "" for none.
    pub fn account(&self) -> &str {
        match self {
            Event::PasswordChanged { account, .. }
            | Event::AccountLocked { account, .. }
            | Event::CodeConfirmed { account, .. }
            | Event::EmailChanged { account, .. }
            | Event::AccountDisabled { account, .. }
            | Event::AccountEnabled { account, .. } => account,
            Event::BudgetExhausted { .. } => "",
        }
    }
}

tokio::task_local! {
    /// The id of the request being handled (its `x-request-id`), for the events it causes.
    pub static REQUEST_ID: [u8; 16];
}

/// The id of the request being handled (16 hex digits); empty outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| String::from_utf8_lossy(id).into_owned())
        .unwrap_or_default()
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
