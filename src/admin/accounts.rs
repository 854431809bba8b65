//! An account's lifecycle, for the application: a new address, a password set or cleared,
//! disabled or enabled, and what support sees of it (`show`: its state and history). Each
//! change is one store transaction with its event; `recovery::accounts` decides it.

use serde::{Deserialize, Serialize};

use super::{now_ms, Admin, AdminError};
use crate::error::{ACCOUNT_EXISTS, NO_ACCOUNT};
use crate::mail_address::Email;
use crate::recovery::accounts::{self, Refused};
use crate::store::history::{Entry, What};

/// `users change-email`: the account's address now.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmailChanged {
    pub email: String,
    pub previous: String,
}

/// `users set-password`: whether the account has a password now.
#[derive(Debug, Serialize, Deserialize)]
pub struct PasswordSet {
    pub email: String,
    pub has_password: bool,
}

/// `users disable` / `enable`: the account's state now, and whether this changed it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Disabled {
    pub email: String,
    pub disabled: bool,
    pub changed: bool,
}

/// `users show`: what support sees of an account. Never a code, a password or a hash.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccountView {
    pub email: String,
    pub has_password: bool,
    pub disabled: bool,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Failed confirmations in a row that still count, and whether they lock it.
    pub failures: u32,
    pub locked: bool,
    /// When the live code expires, if one is live.
    pub code_expires_ms: Option<u64>,
    /// Until when a confirmation may set the password, if one is open.
    pub confirmed_until_ms: Option<u64>,
    /// The newest entries of its history, oldest first.
    pub history: Vec<Entry>,
}

fn refused(why: Refused) -> AdminError {
    match why {
        Refused::NoAccount => AdminError::NotFound(NO_ACCOUNT.into()),
        Refused::Taken => AdminError::Conflict(ACCOUNT_EXISTS.into()),
    }
}

impl Admin {
    /// Moves the account `email` to `new`, keeping its password hash, failure count and
    /// history; its live code (and the code's unsent mail) and confirmation end. The old
    /// address is not told: the `account.email_changed` event lets the application tell it.
    pub async fn change_email(&self, email: Email, new: Email) -> Result<EmailChanged, AdminError> {
        let Some(user) = self.db().user(&email.key)? else {
            return Err(refused(Refused::NoAccount));
        };
        let (old, target) = (email.key.clone(), new.clone());
        let keys = vec![email.key.clone(), new.key.clone()];
        let now = now_ms();
        let change = move |r: &_| accounts::change_email(r, &old, &target, now);
        self.decide(keys, change).await?.map_err(refused)?;
        let (from, to) = (email.key, new.key.clone());
        self.db()
            .blocking(move |db| db.move_history(&from, &to))
            .await?;
        self.db().durable().await?;
        Ok(EmailChanged {
            email: new.stored,
            previous: user.email,
        })
    }

    /// Sets the account's password (the same policy as password-reset, the online check
    /// included when configured) or, with None, clears it; its live code and confirmation
    /// end.
    pub async fn set_password(
        &self,
        email: Email,
        password: Option<String>,
    ) -> Result<PasswordSet, AdminError> {
        let Some(user) = self.db().user(&email.key)? else {
            return Err(AdminError::NotFound(NO_ACCOUNT.into()));
        };
        let hash = match password {
            Some(password) => Some(self.checked_hash(password, &user.email).await?),
            None => None,
        };
        let has_password = hash.is_some();
        let (key, now) = (email.key.clone(), now_ms());
        let set = move |r: &_| accounts::set_password(r, &key, hash.clone(), now);
        self.decide(vec![email.key], set).await?.map_err(refused)?;
        self.db().durable().await?;
        if let Some(service) = self.running() {
            service.delivery.wake();
        }
        Ok(PasswordSet {
            email: user.email,
            has_password,
        })
    }

    /// The password's hash, if the policy (and the online check, when configured) lets it
    /// be the password of the account at `stored`.
    async fn checked_hash(&self, password: String, stored: &str) -> Result<String, AdminError> {
        crate::recovery::policy::check(&password, stored, &self.config().passwords)
            .map_err(|why| AdminError::Refused(why.to_string().into()))?;
        if let Some(breach) = self.breach() {
            if breach.check(&password).await == crate::breach::Verdict::Listed {
                let why = crate::recovery::policy::Weak::Breached;
                return Err(AdminError::Refused(why.to_string().into()));
            }
        }
        Ok(self.hasher().hash(password).await)
    }

    /// Disables the account (no codes, no resets, no logins; its live code and
    /// confirmation end) or enables it again.
    pub async fn set_disabled(&self, email: Email, disabled: bool) -> Result<Disabled, AdminError> {
        let (key, now) = (email.key.clone(), now_ms());
        let set = move |r: &_| accounts::set_disabled(r, &key, disabled, now);
        let changed = self.decide(vec![email.key], set).await?.map_err(refused)?;
        self.db().durable().await?;
        Ok(Disabled {
            email: email.stored,
            disabled,
            changed,
        })
    }

    /// What support sees of the account: its state and its recent history.
    pub async fn show_user(&self, email: Email) -> Result<AccountView, AdminError> {
        let Some(user) = self.db().user(&email.key)? else {
            return Err(AdminError::NotFound(NO_ACCOUNT.into()));
        };
        let now = now_ms();
        let record = self.db().reset(&email.key)?.unwrap_or_default();
        let lockout = crate::recovery::lockout(&self.config().recovery);
        let keep = self.config().history_keep();
        let key = email.key.clone();
        let history = self
            .db()
            .blocking(move |db| db.history(&key, keep, now))
            .await?;
        let state = crate::recovery::state::failures_at(&record, now, lockout);
        Ok(AccountView {
            email: user.email,
            has_password: user.password_hash.is_some(),
            disabled: user.disabled,
            created_ms: user.created_ms,
            updated_ms: user.updated_ms,
            failures: state,
            locked: crate::recovery::state::locked(&record, now, lockout),
            code_expires_ms: record
                .code
                .as_ref()
                .filter(|c| c.expires_ms > now)
                .map(|c| c.expires_ms),
            confirmed_until_ms: crate::recovery::state::live_confirmation(&record, now)
                .map(|c| c.until_ms),
            history,
        })
    }

    /// Notes an unlock in the account's history.
    pub(super) fn note_unlocked(&self, key: &str) {
        let entry = Entry::new(What::Unlocked, now_ms()).detail("operator");
        self.db().note(key, entry);
    }
}
