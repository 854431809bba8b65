//! The operations a command asks for, by the names [`Admin`] gives them: run in-process
//! when this process owns the store, or sent to the running service's admin API, whose
//! answer is read back into the same typed result.
//!
//! [`Admin`]: crate::admin::Admin

use std::future::Future;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::admin_client::Answer;
use super::target::Target;
use crate::admin::accounts::{AccountView, Disabled, EmailChanged, PasswordSet};
use crate::admin::blocks::{BlockList, Blocked, Unblocked};
use crate::admin::outbox::{OutboxView, Purged, Retried, Shown};
use crate::admin::paths::{
    BLOCKS, BLOCKS_REMOVE, OUTBOX, OUTBOX_PURGE, OUTBOX_RETRY, OUTBOX_SHOW, USERS,
    USERS_CHANGE_EMAIL, USERS_DISABLE, USERS_ENABLE, USERS_IMPORT, USERS_REMOVE,
    USERS_SET_PASSWORD, USERS_SHOW, USERS_UNLOCK,
};
use crate::admin::users::{Added, ImportReport, NewAccount, Removed, Unlocked, UserList};
use crate::admin::{Admin, AdminError};
use crate::mail_address::Email;

/// An operation as a request to the admin API.
enum Request {
    Get(&'static str),
    Post(&'static str, Value),
}

use Request::{Get, Post};

impl Target {
    /// Runs `op` when this process owns the store, else sends `request` to the service.
    async fn call<'a, T, F>(
        &'a self,
        op: impl FnOnce(&'a Admin) -> F,
        request: Request,
    ) -> Answer<T>
    where
        T: DeserializeOwned,
        F: Future<Output = Result<T, AdminError>>,
    {
        match (self, request) {
            (Target::Direct(admin, _), _) => Ok(op(admin).await),
            (Target::Admin(client, _), Get(path)) => client.get(path).await,
            (Target::Admin(client, _), Post(path, body)) => client.post(path, &body).await,
        }
    }

    pub async fn list_users(&self) -> Answer<UserList> {
        self.call(Admin::list_users, Get(USERS)).await
    }

    pub async fn add_user(&self, account: NewAccount) -> Answer<Added> {
        let request = Post(USERS, json!(account));
        self.call(|admin| admin.add_user(account), request).await
    }

    pub async fn import_users(&self, accounts: Vec<NewAccount>) -> Answer<ImportReport> {
        let request = Post(USERS_IMPORT, json!({ "users": accounts }));
        self.call(|admin| admin.import_users(accounts), request)
            .await
    }

    pub async fn remove_user(&self, email: Email) -> Answer<Removed> {
        let request = Post(USERS_REMOVE, json!({ "email": email.stored }));
        self.call(|admin| admin.remove_user(email), request).await
    }

    pub async fn unlock_user(&self, email: Email) -> Answer<Unlocked> {
        let request = Post(USERS_UNLOCK, json!({ "email": email.stored }));
        self.call(|admin| admin.unlock_user(email), request).await
    }

    pub async fn change_email(&self, email: Email, new: Email) -> Answer<EmailChanged> {
        let body = json!({ "email": email.stored, "new_email": new.stored });
        let request = Post(USERS_CHANGE_EMAIL, body);
        self.call(|admin| admin.change_email(email, new), request)
            .await
    }

    pub async fn set_password(
        &self,
        email: Email,
        password: Option<String>,
    ) -> Answer<PasswordSet> {
        let body = json!({ "email": email.stored, "password": password });
        let request = Post(USERS_SET_PASSWORD, body);
        self.call(|admin| admin.set_password(email, password), request)
            .await
    }

    pub async fn set_disabled(&self, email: Email, disabled: bool) -> Answer<Disabled> {
        let path = if disabled {
            USERS_DISABLE
        } else {
            USERS_ENABLE
        };
        let request = Post(path, json!({ "email": email.stored }));
        self.call(|admin| admin.set_disabled(email, disabled), request)
            .await
    }

    pub async fn show_user(&self, email: Email) -> Answer<AccountView> {
        let request = Post(USERS_SHOW, json!({ "email": email.stored }));
        self.call(|admin| admin.show_user(email), request).await
    }

    pub async fn list_blocks(&self) -> Answer<BlockList> {
        self.call(Admin::list_blocks, Get(BLOCKS)).await
    }

    pub async fn add_block(&self, net: IpNet, reason: String) -> Answer<Blocked> {
        let request = Post(BLOCKS, json!({ "net": net, "reason": reason }));
        self.call(|admin| admin.add_block(net, reason), request)
            .await
    }

    pub async fn remove_block(&self, net: IpNet) -> Answer<Unblocked> {
        let request = Post(BLOCKS_REMOVE, json!({ "net": net }));
        self.call(|admin| admin.remove_block(net), request).await
    }

    pub async fn outbox(&self) -> Answer<OutboxView> {
        self.call(Admin::outbox, Get(OUTBOX)).await
    }

    pub async fn outbox_show(&self, id: u64) -> Answer<Shown> {
        let request = Post(OUTBOX_SHOW, json!({ "id": id }));
        self.call(|admin| admin.outbox_show(id), request).await
    }

    pub async fn outbox_retry(&self, id: u64) -> Answer<Retried> {
        let request = Post(OUTBOX_RETRY, json!({ "id": id }));
        self.call(|admin| admin.outbox_retry(id), request).await
    }

    /// One dead letter (`Some(id)`), or all of them.
    pub async fn outbox_purge(&self, id: Option<u64>) -> Answer<Purged> {
        let request = match id {
            Some(id) => json!({ "id": id }),
            None => json!({ "all": true }),
        };
        self.call(|admin| admin.outbox_purge(id), Post(OUTBOX_PURGE, request))
            .await
    }

    /// A backup is JSON lines, not one JSON value: the client takes it as it comes.
    pub async fn backup(&self) -> Answer<Vec<u8>> {
        match self {
            Target::Direct(admin, _) => Ok(admin.backup().await),
            Target::Admin(client, _) => client.backup().await,
        }
    }
}
