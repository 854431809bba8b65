//! `resetgate outbox list|show|retry|purge`: queued messages and dead letters (never codes).

use clap::Subcommand;

use super::target::Target;
use super::Failure;
use crate::admin::outbox::{MessageView, OutboxView};
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
        match command {
            OutboxCommand::List => list(&target.outbox().await??),
            OutboxCommand::Show { id } => super::print_json(&target.outbox_show(id).await??),
            OutboxCommand::Retry { id } => {
                let retried = target.outbox_retry(id).await??;
                super::say(format!("message {id} queued again"), retried);
            }
            OutboxCommand::Purge { id, .. } => {
                let purged = target.outbox_purge(id).await??;
                super::say(format!("purged {} dead letters", purged.purged), purged);
            }
        }
        Ok(())
    })
}

/// The whole view as JSON, or a line per message: id, state, kind, recipient, attempts,
/// next attempt and the last error.
fn list(view: &OutboxView) {
    if super::json_output() {
        return super::print_json(view);
    }
    for m in &view.messages {
        line(m, "queued", m.last_error.as_deref());
    }
    for d in &view.dead {
        line(&d.message, "dead", Some(&d.error));
    }
}

fn line(m: &MessageView, state: &str, error: Option<&str>) {
    println!(
        "{}\t{state}\t{}\t{}\tattempts={}\tnext={}\t{}",
        m.id,
        m.kind,
        m.to,
        m.attempts,
        m.next_attempt_ms,
        error.unwrap_or("")
    );
}
