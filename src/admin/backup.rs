//! A consistent copy of the store (`GET /admin/v1/backup`, `resetgate backup`), and loading
//! one into an empty store (`resetgate restore`, with no service running).

use std::io::BufRead;

use super::{now_ms, Admin, AdminError};

impl Admin {
    /// The whole store as JSON lines. Writes pause while it is taken (sled has no snapshot
    /// across trees), so it runs off the async threads like every wait on the store.
    pub async fn backup(&self) -> Result<Vec<u8>, AdminError> {
        let now = now_ms();
        let copy = self
            .db()
            .blocking(move |db| {
                let mut out = Vec::new();
                db.backup(&mut out, now).map(|_| out)
            })
            .await?;
        Ok(copy)
    }

    /// Loads a backup into this store, which must be empty; returns how many records.
    pub async fn restore(&self, input: impl BufRead + Send + 'static) -> Result<u64, AdminError> {
        Ok(self.db().blocking(move |db| db.restore(input)).await?)
    }
}
