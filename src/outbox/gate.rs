//! What each delivery loop (the mail dispatcher, each webhook endpoint's task) asks before
//! a round: whether to stop, to wait for room on disk, or to go on.

use tokio::sync::watch;

use crate::store::Db;

pub(super) enum Gate {
    /// Stop: asked to, or the store met a write fault (then after waiting for the stop).
    Stop,
    /// Free space is below `storage.min_free`: a delivery might not be recorded, and would
    /// then be repeated; wait for room.
    WaitForRoom,
    Go,
}

/// The gate for the next round.
pub(super) async fn gate(db: &Db, stop: &mut watch::Receiver<bool>) -> Gate {
    if *stop.borrow() {
        return Gate::Stop;
    }
    if db.fault().is_some() {
        // A sent message could not be removed: sending more would send them again and
        // again. The service exits and restarts; until then, nothing goes out.
        let _ = stop.wait_for(|stop| *stop).await;
        return Gate::Stop;
    }
    if db.low_on_space().is_some() {
        return Gate::WaitForRoom;
    }
    Gate::Go
}
