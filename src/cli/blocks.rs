//! `resetgate blocks add|remove|list`: the runtime deny list (403 `Access denied`).

use clap::Subcommand;
use ipnet::IpNet;
use serde_json::json;

use super::target::Target;
use super::{unless_missing, Failure};
use crate::config::{parse_net, Config};

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
    target.add_block(net, reason).await??;
    super::say(format!("blocked {net}"), json!({ "blocked": net }));
    Ok(())
}

async fn remove(target: &Target, text: &str) -> Result<(), Failure> {
    let net = net(text)?;
    let removed = target.remove_block(net).await?;
    unless_missing(removed, || format!("{net} was not blocked"))?;
    super::say(format!("unblocked {net}"), json!({ "unblocked": net }));
    Ok(())
}

async fn list(target: &Target, as_json: bool) -> Result<(), Failure> {
    for block in target.list_blocks().await??.blocks {
        if as_json {
            super::print_json(&block);
        } else {
            println!("{}\t{}", block.net, block.reason);
        }
    }
    Ok(())
}
