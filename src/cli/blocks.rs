//! `resetgate blocks add|remove|list`: the runtime deny list (403 `Access denied`).

use clap::Subcommand;
use hyper::{Method, StatusCode};
use ipnet::IpNet;
use serde_json::{json, Value};

use super::admin_client::message;
use super::target::{store_failure, Target};
use super::Failure;
use crate::admin::paths::{BLOCKS, BLOCKS_REMOVE};
use crate::config::{parse_net, Config};
use crate::store::blocks::Block;

#[derive(Subcommand)]
pub enum BlocksCommand {
    /// Block an address or a network (CIDR); takes effect at once and survives restarts.
    Add {
        net: String,
        /// Why, for whoever reads the list later.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Unblock an address or network exactly as it was added.
    Remove { net: String },
    /// List the blocks.
    /// The blocks (with --json: one JSON object per line).
    List,
}

pub fn run(config: Config, command: BlocksCommand) -> Result<(), Failure> {
    super::runtime()?.block_on(async move {
        let target = Target::connect(config).await?;
        match command {
            BlocksCommand::Add { net, reason } => add(&target, &net, reason).await,
            BlocksCommand::Remove { net } => remove(&target, &net).await,
            BlocksCommand::List => list(&target, super::json_output()).await,
        }
    })
}

fn net(text: &str) -> Result<IpNet, Failure> {
    parse_net(text).map_err(Failure::refused)
}

async fn add(target: &Target, text: &str, reason: String) -> Result<(), Failure> {
    let net = net(text)?;
    match target {
        Target::Admin(client, _) => {
            let body = json!({ "net": net.to_string(), "reason": reason });
            let (status, body) = client.call(Method::POST, BLOCKS, Some(&body)).await?;
            if !status.is_success() {
                return Err(Failure::refused(message(&body)));
            }
        }
        Target::Direct(db, _, _) => {
            let added_ms = crate::store::unix_ms(std::time::SystemTime::now());
            db.add_block(net, &Block { reason, added_ms })
                .map_err(store_failure)?;
            db.flush_blocking().map_err(store_failure)?;
        }
    }
    super::say(
        format!("blocked {net}"),
        json!({ "blocked": net.to_string() }),
    );
    Ok(())
}

async fn remove(target: &Target, text: &str) -> Result<(), Failure> {
    let net = net(text)?;
    let removed = match target {
        Target::Admin(client, _) => {
            let body = json!({ "net": net.to_string() });
            let (status, body) = client
                .call(Method::POST, BLOCKS_REMOVE, Some(&body))
                .await?;
            match status {
                StatusCode::OK => true,
                StatusCode::NOT_FOUND => false,
                _ => return Err(Failure::refused(message(&body))),
            }
        }
        Target::Direct(db, _, _) => {
            let removed = db.remove_block(net).map_err(store_failure)?;
            db.flush_blocking().map_err(store_failure)?;
            removed
        }
    };
    if !removed {
        return Err(Failure::refused(format!("{net} was not blocked")));
    }
    super::say(
        format!("unblocked {net}"),
        json!({ "unblocked": net.to_string() }),
    );
    Ok(())
}

async fn list(target: &Target, as_json: bool) -> Result<(), Failure> {
    let blocks: Vec<Value> = match target {
        Target::Admin(client, _) => {
            let (_, body) = client.call(Method::GET, BLOCKS, None).await?;
            body.get("blocks").and_then(Value::as_array).cloned().unwrap_or_default()
        }
        Target::Direct(db, _, _) => db
            .blocks()
            .map_err(store_failure)?
            .iter()
            .map(|(net, b)| json!({ "net": net.to_string(), "reason": b.reason, "added_ms": b.added_ms }))
            .collect(),
    };
    for block in &blocks {
        if as_json {
            println!("{block}");
        } else {
            let net = block.get("net").and_then(Value::as_str).unwrap_or_default();
            let reason = block
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default();
            println!("{net}\t{reason}");
        }
    }
    Ok(())
}
