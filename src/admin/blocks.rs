//! The runtime deny list: list, add, remove. In the running service a change reaches the
//! guard at once; either way it survives restarts.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{now_ms, Admin, AdminError};
use crate::error::NO_SUCH_BLOCK;
use crate::store::blocks::Block;

/// `GET /admin/v1/blocks`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockList {
    pub blocks: Vec<BlockView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BlockView {
    pub net: IpNet,
    pub reason: String,
    pub added_ms: u64,
}

/// A network was blocked, or its block updated.
#[derive(Debug, Serialize, Deserialize)]
pub struct Blocked {
    pub net: IpNet,
    /// Not in the body: the admin API says it with the status (201 new, 200 updated).
    #[serde(skip)]
    pub created: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Unblocked {
    pub removed: IpNet,
}

impl Admin {
    pub async fn list_blocks(&self) -> Result<BlockList, AdminError> {
        let blocks = self.db().blocking(|db| db.blocks()).await?;
        let blocks = blocks
            .into_iter()
            .map(|(net, b)| BlockView {
                net,
                reason: b.reason,
                added_ms: b.added_ms,
            })
            .collect();
        Ok(BlockList { blocks })
    }

    /// Blocks a network, or replaces the reason of its block.
    pub async fn add_block(&self, net: IpNet, reason: String) -> Result<Blocked, AdminError> {
        let block = Block {
            reason,
            added_ms: now_ms(),
        };
        let created = self
            .db()
            .blocking(move |db| db.add_block(net, &block))
            .await?;
        self.blocks_changed().await?;
        Ok(Blocked { net, created })
    }

    /// Unblocks a network exactly as it was added.
    pub async fn remove_block(&self, net: IpNet) -> Result<Unblocked, AdminError> {
        if !self.db().blocking(move |db| db.remove_block(net)).await? {
            return Err(AdminError::NotFound(NO_SUCH_BLOCK.into()));
        }
        self.blocks_changed().await?;
        Ok(Unblocked { removed: net })
    }

    /// Makes the change durable and, in the service, reloads the guard's copy of the list.
    async fn blocks_changed(&self) -> Result<(), AdminError> {
        self.db().durable().await?;
        if let Some(service) = self.running() {
            let blocks = self.db().blocking(|db| db.blocks()).await?;
            service
                .guard
                .set_blocks(blocks.into_iter().map(|(net, _)| net).collect());
        }
        Ok(())
    }
}
