//! The operator's operations: users, blocks, the outbox and backups, shared by the admin
//! API (`http::admin`) and the CLI.

pub mod paths;
