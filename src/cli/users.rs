//! `resetgate users add|remove|list|import`.
//!
//! sled lets one process own the data directory, so while the service runs these go through
//! its admin API; when nothing listens there, they open the store themselves.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{json, Value};

use super::target::Target;
use super::{unless_missing, Failure};
use crate::admin::hashes::parse_import_record;
use crate::admin::users::{parse_account, NewAccount};
use crate::admin::AdminError;
use crate::config::{Config, Passwords};
use crate::mail_address::Email;

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
    /// Import JSON lines `{"email": "...", "password": "..."?}` (or `"password_hash"`, a
    /// hash made elsewhere, instead of `"password"`); all or nothing.
    Import { file: PathBuf },
    /// Clear an account's count of failed code confirmations.
    Unlock { email: String },
    /// Move an account to a new address, keeping its password, failure count and history.
    ChangeEmail { email: String, new_email: String },
    /// Set an account's password (from the first line of standard input), or clear it.
    SetPassword {
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required_unless_present = "clear", conflicts_with = "clear")]
        password_stdin: bool,
        /// Remove the password: only a reset sets one again.
        #[arg(long)]
        clear: bool,
    },
    /// Disable an account: no codes, no resets, no logins.
    Disable { email: String },
    /// Enable a disabled account.
    Enable { email: String },
    /// An account's state and recent history (never a code, password or hash).
    Show { email: String },
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
            UsersCommand::ChangeEmail { email, new_email } => {
                super::accounts::change_email(&target, &email, &new_email).await
            }
            UsersCommand::SetPassword { email, clear, .. } => {
                let password = (!clear).then(read_password).transpose()?;
                super::accounts::set_password(&target, &email, password).await
            }
            UsersCommand::Disable { email } => {
                super::accounts::disable(&target, &email, true).await
            }
            UsersCommand::Enable { email } => {
                super::accounts::disable(&target, &email, false).await
            }
            UsersCommand::Show { email } => super::accounts::show(&target, &email).await,
        }
    })
}

async fn add(target: &Target, email: String, password_stdin: bool) -> Result<(), Failure> {
    let mut record = json!({ "email": email });
    if password_stdin {
        record["password"] = Value::String(read_password()?);
    }
    let account = parse_account(&record, &target.config().passwords).map_err(Failure::refused)?;
    let shown = account.email.stored.clone();
    match target.add_user(account).await? {
        Err(AdminError::Conflict(_)) => {
            return Err(Failure::refused(format!("{shown} already has an account")))
        }
        added => added?,
    };
    super::say(format!("added {shown}"), json!({ "added": shown }));
    Ok(())
}

async fn remove(target: &Target, email: &str) -> Result<(), Failure> {
    let email = address(email)?;
    let shown = email.stored.clone();
    let removed = target.remove_user(email).await?;
    unless_missing(removed, || format!("{shown} has no account"))?;
    super::say(format!("removed {shown}"), json!({ "removed": shown }));
    Ok(())
}

async fn list(target: &Target, as_json: bool) -> Result<(), Failure> {
    for user in target.list_users().await??.users {
        if as_json {
            super::print_json(&user);
        } else {
            println!("{}", user.email);
        }
    }
    Ok(())
}

async fn import(target: &Target, file: &Path) -> Result<(), Failure> {
    let accounts = read_accounts(file, &target.config().passwords)?;
    let report = target.import_users(accounts).await??;
    let text = format!(
        "imported {} new accounts ({} existed already)",
        report.added, report.existing
    );
    super::say(text, report);
    Ok(())
}

/// The accounts in a file of JSON lines; the first bad line refuses them all.
fn read_accounts(file: &Path, policy: &Passwords) -> Result<Vec<NewAccount>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", file.display())))?;
    let mut accounts = Vec::new();
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
        accounts.push(parse_import_record(&value, policy).map_err(bad)?);
    }
    Ok(accounts)
}

async fn unlock(target: &Target, email: &str) -> Result<(), Failure> {
    let email = address(email)?;
    let shown = email.stored.clone();
    let unlocked = target.unlock_user(email).await?;
    unless_missing(unlocked, || format!("{shown} has no account"))?;
    super::say(format!("unlocked {shown}"), json!({ "unlocked": shown }));
    Ok(())
}

/// The first line of standard input, without its line ending.
pub(super) fn read_password() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::runtime(format!("reading the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub(super) fn address(email: &str) -> Result<Email, Failure> {
    crate::mail_address::validate(email).map_err(|e| Failure::refused(e.to_string()))
}
