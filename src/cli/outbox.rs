//! `resetgate outbox list|show|retry|purge`: queued messages and dead letters (never codes).

use clap::Subcommand;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::admin_client::message;
use super::target::{store_failure, Target};
use super::Failure;
use crate::admin::paths::{OUTBOX, OUTBOX_PURGE, OUTBOX_RETRY, OUTBOX_SHOW};
use crate::config::Config;

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Queued messages and dead letters: recipient, kind, attempts, next attempt, last error.
    /// (With --json: the whole view as one JSON object.)
    List,
    /// One message, queued or dead, as JSON.
    Show { id: u64 },
    /// Send a dead letter again (not one whose code expired).
    Retry { id: u64 },
    /// Delete a dead letter, or all of them.
    Purge {
        #[arg(required_unless_present = "all")]
        id: Option<u64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

pub fn run(config: Config, command: OutboxCommand) -> Result<(), Failure> {
    super::runtime()?.block_on(async move {
        let target = Target::connect(config).await?;
        let Target::Admin(client, _) = &target else {
            return direct(&target, command);
        };
        let (method, path, body) = match &command {
            OutboxCommand::List => (Method::GET, OUTBOX, None),
            OutboxCommand::Show { id } => (Method::POST, OUTBOX_SHOW, Some(json!({ "id": id }))),
            OutboxCommand::Retry { id } => (Method::POST, OUTBOX_RETRY, Some(json!({ "id": id }))),
            OutboxCommand::Purge { id, .. } => match id {
                Some(id) => (Method::POST, OUTBOX_PURGE, Some(json!({ "id": id }))),
                None => (Method::POST, OUTBOX_PURGE, Some(json!({ "all": true }))),
            },
        };
        let (status, answer) = client.call(method, path, body.as_ref()).await?;
        if status != StatusCode::OK {
            return Err(Failure::refused(message(&answer)));
        }
        print(&command, &answer);
        Ok(())
    })
}

/// The same commands on the store itself, when no service runs.
fn direct(target: &Target, command: OutboxCommand) -> Result<(), Failure> {
    let Target::Direct(db, _, _) = target else {
        unreachable!("called for the direct target")
    };
    let now = crate::store::unix_ms(std::time::SystemTime::now());
    let answer = match &command {
        OutboxCommand::List => {
            let messages: Vec<Value> = db
                .queued(1_000)
                .map_err(store_failure)?
                .iter()
                .map(|(id, m)| crate::http::admin::message_view(*id, m))
                .collect();
            let dead: Vec<Value> = db
                .dead_letters()
                .map_err(store_failure)?
                .iter()
                .map(|(id, d)| crate::http::admin::dead_view(*id, d))
                .collect();
            json!({ "queued": db.outbox_len(), "messages": messages, "dead": dead })
        }
        OutboxCommand::Show { id } => match (db.queued_message(*id), db.dead_letter(*id)) {
            (Ok(Some(m)), _) => {
                json!({ "state": "queued", "message": crate::http::admin::message_view(*id, &m) })
            }
            (_, Ok(Some(d))) => {
                json!({ "state": "dead", "message": crate::http::admin::dead_view(*id, &d) })
            }
            _ => return Err(Failure::refused("No such message")),
        },
        OutboxCommand::Retry { id } => match db.retry_dead(*id, now).map_err(store_failure)? {
            Ok(()) => json!({ "id": id, "state": "queued" }),
            Err(refused) => return Err(Failure::refused(refused.reason())),
        },
        OutboxCommand::Purge { id, .. } => {
            let purged = db.purge_dead(*id).map_err(store_failure)?;
            if id.is_some() && purged == 0 {
                return Err(Failure::refused("No such message"));
            }
            json!({ "purged": purged })
        }
    };
    db.flush_blocking().map_err(store_failure)?;
    print(&command, &answer);
    Ok(())
}

fn print(command: &OutboxCommand, answer: &Value) {
    match command {
        OutboxCommand::List if !super::json_output() => {
            let line = |state: &str, m: &Value| {
                println!(
                    "{}\t{state}\t{}\t{}\tattempts={}\tnext={}\t{}",
                    m["id"],
                    m["kind"].as_str().unwrap_or("?"),
                    m["to"].as_str().unwrap_or("?"),
                    m["attempts"],
                    m["next_attempt_ms"],
                    m["error"]
                        .as_str()
                        .or(m["last_error"].as_str())
                        .unwrap_or("")
                )
            };
            for m in answer["messages"].as_array().into_iter().flatten() {
                line("queued", m);
            }
            for m in answer["dead"].as_array().into_iter().flatten() {
                line("dead", m);
            }
        }
        OutboxCommand::Retry { id } => {
            super::say(format!("message {id} queued again"), answer.clone())
        }
        OutboxCommand::Purge { .. } => super::say(
            format!("purged {} dead letters", answer["purged"]),
            answer.clone(),
        ),
        _ => println!("{answer}"),
    }
}
