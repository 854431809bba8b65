//! `resetgate users add|remove|list|import`.
//!
//! sled lets one process own the data directory, so while the service runs these go through
//! its admin API; when nothing listens there, they open the store themselves.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Subcommand;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::admin_client::message;
use super::target::{store_failure, Target};
use super::Failure;
use crate::accounts::{self, parse_account};
use crate::admin::paths::{USERS, USERS_IMPORT, USERS_REMOVE, USERS_UNLOCK};
use crate::config::Config;
use crate::store::users::ImportReport;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add an account.
    Add {
        email: String,
        /// Read an initial password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an account and its pending reset.
    Remove { email: String },
    /// List the accounts.
    /// (With --json: one JSON object per line.)
    List,
    /// Import JSON lines `{"email": "...", "password": "..."?}`; all or nothing.
    Import { file: PathBuf },
    /// Clear an account's count of failed code confirmations.
    Unlock { email: String },
}

pub fn run(config: Config, command: UsersCommand) -> Result<(), Failure> {
    super::runtime()?.block_on(async move {
        let target = Target::connect(config).await?;
        match command {
            UsersCommand::Add {
                email,
                password_stdin,
            } => add(&target, email, password_stdin).await,
            UsersCommand::Remove { email } => remove(&target, &email).await,
            UsersCommand::List => list(&target, super::json_output()).await,
            UsersCommand::Import { file } => import(&target, &file).await,
            UsersCommand::Unlock { email } => unlock(&target, &email).await,
        }
    })
}

async fn add(target: &Target, email: String, password_stdin: bool) -> Result<(), Failure> {
    let mut record = json!({ "email": email });
    if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::runtime(format!("reading the password: {e}")))?;
        record["password"] = Value::String(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let account = parse_account(&record, &target.config().passwords).map_err(Failure::refused)?;
    let shown = account.email.stored.clone();
    let added = match target {
        Target::Admin(client, _) => {
            let (status, body) = client.call(Method::POST, USERS, Some(&record)).await?;
            match status {
                StatusCode::CREATED => true,
                StatusCode::CONFLICT => false,
                _ => return Err(Failure::refused(message(&body))),
            }
        }
        Target::Direct(db, _, hasher) => accounts::add(db, hasher, account)
            .await
            .map_err(store_failure)?,
    };
    if !added {
        return Err(Failure::refused(format!("{shown} already has an account")));
    }
    super::say(format!("added {shown}"), json!({ "added": shown }));
    Ok(())
}

async fn remove(target: &Target, email: &str) -> Result<(), Failure> {
    let email =
        crate::mail_address::validate(email).map_err(|e| Failure::refused(e.to_string()))?;
    let removed = match target {
        Target::Admin(client, _) => {
            let body = json!({ "email": email.stored });
            let (status, body) = client.call(Method::POST, USERS_REMOVE, Some(&body)).await?;
            match status {
                StatusCode::OK => true,
                StatusCode::NOT_FOUND => false,
                _ => return Err(Failure::refused(message(&body))),
            }
        }
        Target::Direct(db, _, _) => accounts::remove(db, &email.key)
            .await
            .map_err(store_failure)?,
    };
    if !removed {
        return Err(Failure::refused(format!("{} has no account", email.stored)));
    }
    super::say(
        format!("removed {}", email.stored),
        json!({ "removed": email.stored }),
    );
    Ok(())
}

async fn list(target: &Target, as_json: bool) -> Result<(), Failure> {
    let users: Vec<Value> = match target {
        Target::Admin(client, _) => {
            let (_, body) = client.call(Method::GET, USERS, None).await?;
            body.get("users")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
        Target::Direct(db, _, _) => db
            .list_users()
            .map_err(store_failure)?
            .iter()
            .map(accounts::summary)
            .collect(),
    };
    for user in &users {
        if as_json {
            println!("{user}");
        } else {
            println!(
                "{}",
                user.get("email")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

async fn import(target: &Target, file: &std::path::Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", file.display())))?;
    let mut records = Vec::new();
    let mut accounts_ = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |e: String| {
            Failure::refused(format!(
                "{}:{}: {e}; nothing was imported",
                file.display(),
                n + 1
            ))
        };
        let value: Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not JSON ({e})")))?;
        accounts_.push(parse_account(&value, &target.config().passwords).map_err(bad)?);
        records.push(value);
    }
    let report: ImportReport = match target {
        Target::Admin(client, _) => {
            let body = json!({ "users": records });
            let (status, body) = client.call(Method::POST, USERS_IMPORT, Some(&body)).await?;
            if status != StatusCode::OK {
                return Err(Failure::refused(message(&body)));
            }
            serde_json::from_value(body)
                .map_err(|e| Failure::runtime(format!("unexpected answer: {e}")))?
        }
        Target::Direct(db, _, hasher) => accounts::import(db, hasher, accounts_)
            .await
            .map_err(store_failure)?,
    };
    let text = format!(
        "imported {} new accounts ({} existed already)",
        report.added, report.existing
    );
    super::say(
        text,
        json!({ "added": report.added, "existing": report.existing }),
    );
    Ok(())
}

async fn unlock(target: &Target, email: &str) -> Result<(), Failure> {
    let email =
        crate::mail_address::validate(email).map_err(|e| Failure::refused(e.to_string()))?;
    match target {
        Target::Admin(client, _) => {
            let body = json!({ "email": email.stored });
            let (status, body) = client.call(Method::POST, USERS_UNLOCK, Some(&body)).await?;
            if status != StatusCode::OK {
                return Err(Failure::refused(message(&body)));
            }
        }
        Target::Direct(db, _, _) => {
            if db.user(&email.key).map_err(store_failure)?.is_none() {
                return Err(Failure::refused(format!("{} has no account", email.stored)));
            }
            db.unlock(&email.key).map_err(store_failure)?;
            db.flush_blocking().map_err(store_failure)?;
        }
    }
    super::say(
        format!("unlocked {}", email.stored),
        json!({ "unlocked": email.stored }),
    );
    Ok(())
}
