//! The admin API's paths: the router in `http::admin` answers them, the CLI's client asks
//! them over the admin socket.

pub const USERS: &str = "/admin/v1/users";
pub const USERS_REMOVE: &str = "/admin/v1/users/remove";
pub const USERS_IMPORT: &str = "/admin/v1/users/import";
pub const USERS_VERIFY: &str = "/admin/v1/users/verify";
pub const USERS_UNLOCK: &str = "/admin/v1/users/unlock";
pub const USERS_CHANGE_EMAIL: &str = "/admin/v1/users/change-email";
pub const USERS_SET_PASSWORD: &str = "/admin/v1/users/set-password";
pub const USERS_DISABLE: &str = "/admin/v1/users/disable";
pub const USERS_ENABLE: &str = "/admin/v1/users/enable";
pub const USERS_SHOW: &str = "/admin/v1/users/show";
pub const OUTBOX: &str = "/admin/v1/outbox";
pub const OUTBOX_SHOW: &str = "/admin/v1/outbox/show";
pub const OUTBOX_RETRY: &str = "/admin/v1/outbox/retry";
pub const OUTBOX_PURGE: &str = "/admin/v1/outbox/purge";
pub const BLOCKS: &str = "/admin/v1/blocks";
pub const BLOCKS_REMOVE: &str = "/admin/v1/blocks/remove";
pub const BACKUP: &str = "/admin/v1/backup";
pub const METRICS: &str = "/metrics";
