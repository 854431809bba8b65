//! The command line: `serve`, `check-config`, `check-mail`, `users …`, `blocks …`,
//! `outbox …`, `send-test-mail`, `send-test-webhook`, `backup`, `restore`, and `completions
//! SHELL`, made from these same clap definitions (as the man pages are, by `resetgate-man`).
//!
//! Exit codes: 0 success; 1 a runtime failure (store, network, I/O); 2 bad configuration or
//! usage; 3 the request was refused (the account exists or does not, a bad import line);
//! 75 the store met a write fault (full disk, read-only) and a restart may cure it.
//! `check-mail`: 1 a check failed, 3 a check could not be made (DNS unreachable).

mod accounts;
mod admin_client;
mod backup;
mod blocks;
mod calls;
mod check_mail;
mod docs;
mod log_format;
mod log_sink;
mod outbox;
mod send_test;
mod serve;
mod target;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde::Serialize;

use crate::admin::AdminError;
use crate::config::{self, Config};

/// `resetgate --version`: the version and the git revision built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BUILD_GIT_REVISION"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "resetgate",
    version = VERSION,
    about = "Self-hosted password-recovery service"
)]
struct Cli {
    /// The TOML configuration file (else $RESETGATE_CONFIG, else ./config.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print results (and errors) as JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: public API, admin API and the outbox worker.
    Serve,
    /// Validate the configuration (and read its secret files), then exit.
    CheckConfig,
    /// Check the sending domain's DNS (DKIM, DMARC, SPF) against what resetgate sends, and
    /// the relay; print the records to publish. Exit 1: a check failed; 3: DNS unreachable.
    CheckMail {
        /// Print only the TXT record that publishes `mail.dkim`'s key.
        #[arg(long)]
        print_dkim_record: bool,
    },
    /// Manage accounts; goes through the running service's admin API when it runs.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Block clients (403 Access denied) at runtime; goes through the admin API when the
    /// service runs.
    Blocks {
        #[command(subcommand)]
        command: blocks::BlocksCommand,
    },
    /// Write a consistent copy of the store to FILE (through the admin API while the service runs).
    Backup { file: PathBuf },
    /// Load a backup into an empty data directory (with the service stopped).
    Restore { file: PathBuf },
    /// Send one test message through the configured transport now, and report the outcome.
    SendTestMail { address: String },
    /// Send a `test.ping` event to the `[[webhooks]]` endpoint NAME now, signed as every
    /// event is (not through the outbox), and report its answer.
    SendTestWebhook { name: String },
    /// Queued messages and dead letters; goes through the admin API when the service runs.
    Outbox {
        #[command(subcommand)]
        command: outbox::OutboxCommand,
    },
    /// Print the tab-completion script for SHELL (bash, zsh or fish) to stdout.
    Completions { shell: docs::Shell },
}

/// The command line's definition, as `--help` shows it: for the completions and, in the
/// packaging tool `resetgate-man`, the man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The exit code after a store write fault (EX_TEMPFAIL): a fresh process may work.
pub const STORE_FAILED: u8 = 75;

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
    pub fn config(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
    /// An exit code whose reason the command has printed already (`check-mail`'s table).
    pub fn reported(code: u8) -> Failure {
        Failure {
            code,
            message: String::new(),
        }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Failure {
        Failure::config(e.to_string())
    }
}

/// A refusal keeps its text (exit code 3); a store failure is a runtime one (1).
impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Failure {
        match e {
            AdminError::Store(_) => Failure::runtime(e.to_string()),
            refused => Failure::refused(refused.to_string()),
        }
    }
}

/// An operation's result, where "not found" is told in the command's own words.
pub fn unless_missing<T>(
    result: Result<T, AdminError>,
    missing: impl FnOnce() -> String,
) -> Result<T, Failure> {
    match result {
        Err(AdminError::NotFound(_)) => Err(Failure::refused(missing())),
        other => Ok(other?),
    }
}

impl From<crate::StartError> for Failure {
    fn from(e: crate::StartError) -> Failure {
        match e {
            crate::StartError::Config(c) => c.into(),
            crate::StartError::StoreFailed(_) => Failure {
                code: STORE_FAILED,
                message: e.to_string(),
            },
            other => Failure::runtime(other.to_string()),
        }
    }
}

/// `--json`: how results are printed, for the whole run of the command.
static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

pub fn json_output() -> bool {
    JSON.get().copied().unwrap_or(false)
}

/// Prints a command's result: the sentence, or with `--json` the value.
pub fn say(text: impl std::fmt::Display, value: impl Serialize) {
    if json_output() {
        print_json(&value);
    } else {
        println!("{text}");
    }
}

/// Prints a value as one line of JSON, through [`serde_json::Value`]: its keys come out
/// sorted, as in the admin API's bodies.
pub fn print_json(value: &impl Serialize) {
    let value = serde_json::to_value(value).expect("answers have string keys and serialize");
    println!("{value}");
}

pub fn main() -> ExitCode {
    // Nothing this process creates (the store's files, the admin socket, generated
    // secrets, mail files, backups) is for other users, whatever the caller's umask.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let _ = JSON.set(cli.json);
    serve::install_crypto_provider();
    // These read no configuration.
    let result = match &cli.command {
        Command::Completions { shell } => Some(docs::completions(*shell)),
        _ => None,
    };
    let result = result.unwrap_or_else(|| {
        load(&cli).and_then(|config| match cli.command {
            Command::Serve => serve::serve(config),
            Command::CheckConfig => check(&config),
            Command::CheckMail { print_dkim_record } => check_mail::run(config, print_dkim_record),
            Command::Users { command } => users::run(config, command),
            Command::Blocks { command } => blocks::run(config, command),
            Command::Outbox { command } => outbox::run(config, command),
            Command::SendTestMail { address } => send_test::run(config, address),
            Command::SendTestWebhook { name } => send_test::webhook(config, name),
            Command::Backup { file } => backup::backup(config, &file),
            Command::Restore { file } => backup::restore(config, &file),
            Command::Completions { .. } => Ok(()),
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.message.is_empty() => ExitCode::from(f.code),
        Err(f) => {
            eprintln!("resetgate: {}", f.message);
            if json_output() {
                println!(
                    "{}",
                    serde_json::json!({ "error": f.message, "exit_code": f.code })
                );
            }
            ExitCode::from(f.code)
        }
    }
}

fn load(cli: &Cli) -> Result<Config, Failure> {
    let file = config::choose_file(cli.config.as_deref());
    Ok(Config::load(file.as_deref())?)
}

fn check(config: &Config) -> Result<(), Failure> {
    crate::secrets::private_dirs(config, false).map_err(secret_failure)?;
    crate::secrets::check_generated(config).map_err(secret_failure)?;
    config.server_secret()?;
    config.admin_token()?;
    crate::http::tls::Acceptor::from_config(&config.admin, config.server.header_read_timeout)?;
    config.smtp_password()?;
    crate::outbox::Transport::from_config(config)?;
    crate::outbox::dkim::Signer::from_config(&config.mail.dkim)?;
    crate::outbox::catalog::Catalog::load(&config.mail.templates_dir)?;
    crate::web::Page::new(config)?;
    crate::outbox::webhook::Endpoint::all(config)?;
    say("configuration OK", serde_json::json!({ "ok": true }));
    Ok(())
}

/// A secret or private directory that could not be had: bad configuration (2) or I/O (1).
pub fn secret_failure(e: crate::secrets::SecretError) -> Failure {
    match e {
        crate::secrets::SecretError::Config(c) => Failure::from(c),
        crate::secrets::SecretError::Io(text) => Failure::runtime(text),
    }
}

/// A multi-threaded runtime for the service and the CLI's network calls.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the runtime: {e}")))
}
