//! The runtime deny list (`cidr_block`): networks an operator blocked through the admin API
//! or `resetgate blocks`, kept across restarts.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{decode, encode, Db, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Block {
    pub reason: String,
    pub added_ms: u64,
}

impl Db {
    /// Adds or updates a block; true if the network was not blocked before.
    pub fn add_block(&self, net: IpNet, block: &Block) -> Result<bool> {
        let _gate = self.writing();
        Ok(self
            .inner
            .blocks
            .insert(net.to_string(), encode(block))?
            .is_none())
    }

    pub fn remove_block(&self, net: IpNet) -> Result<bool> {
        let _gate = self.writing();
        Ok(self.inner.blocks.remove(net.to_string())?.is_some())
    }

    /// Every block; entries whose key no longer parses are skipped with a warning.
    pub fn blocks(&self) -> Result<Vec<(IpNet, Block)>> {
        let mut out = Vec::new();
        for entry in self.inner.blocks.iter() {
            let (key, value) = entry?;
            let text = String::from_utf8_lossy(&key);
            match text.parse::<IpNet>() {
                Ok(net) => out.push((net, decode("block", &value)?)),
                Err(_) => tracing::warn!(key = %text, "skipping an unreadable block entry"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;

    #[test]
    fn blocks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 8, Durability::Flush).unwrap();
        let net: IpNet = "203.0.113.0/24".parse().unwrap();
        let block = Block {
            reason: "spam".into(),
            added_ms: 5,
        };
        assert!(db.add_block(net, &block).unwrap());
        assert!(!db.add_block(net, &block).unwrap(), "already there");
        assert_eq!(db.blocks().unwrap(), vec![(net, block)]);
        assert!(db.remove_block(net).unwrap());
        assert!(!db.remove_block(net).unwrap());
        assert!(db.blocks().unwrap().is_empty());
    }
}
