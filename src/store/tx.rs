//! Helpers for sled transactions over the trees: typed reads and writes of reset records,
//! retiring a code's unsent mail, and mapping a transaction's outcome.

pub(super) use sled::transaction::ConflictableTransactionError as Abortable;
use sled::transaction::{TransactionError, TransactionalTree};

use super::records::Reset;
use super::{encode, id_key, Result, StoreError};

/// A transaction's way out, which commits nothing: a corrupt record, or a step that
/// queues more than the ids taken for it (run it again with this many).
#[derive(Debug)]
pub(super) enum TxAbort {
    Corrupt(String),
    NeedIds(usize),
}

pub(super) type TxResult<T> = std::result::Result<T, Abortable<TxAbort>>;

pub(super) fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> TxResult<T> {
    serde_json::from_slice(bytes).map_err(|e| Abortable::Abort(TxAbort::Corrupt(e.to_string())))
}

/// The reset record of `key` inside a transaction (default when absent).
pub(super) fn read_reset(resets: &TransactionalTree, key: &[u8]) -> TxResult<Reset> {
    match resets.get(key)? {
        Some(bytes) => parse(&bytes),
        None => Ok(Reset::default()),
    }
}

/// Stores the record, or removes it when it holds nothing.
pub(super) fn write_reset(resets: &TransactionalTree, key: &[u8], reset: &Reset) -> TxResult<()> {
    if reset.is_empty() {
        resets.remove(key)?;
    } else {
        resets.insert(key, encode(reset))?;
    }
    Ok(())
}

/// Retires the record's code inside a transaction: its mail, if that has not been sent
/// yet. Returns the code's MAC, whose index entry the caller releases once the
/// transaction committed ([`Retired::release`]).
pub(super) fn retire_code(
    outbox: &TransactionalTree,
    key: &[u8],
    reset: &Reset,
) -> TxResult<Retired> {
    let Some(code) = &reset.code else {
        return Ok(Retired::default());
    };
    if let Some(id) = code.outbox_id {
        outbox.remove(&id_key(id))?;
    }
    Ok(Retired(vec![(code.mac.clone(), key.to_vec())]))
}

/// Codes (MAC, record) a transaction retired: their index entries go once it committed.
#[derive(Default)]
pub(super) struct Retired(Vec<(Vec<u8>, Vec<u8>)>);

impl Retired {
    pub(super) fn add(&mut self, other: Retired) {
        self.0.extend(other.0);
    }

    pub(super) fn release(self, codes: &super::code_index::CodeIndex) {
        for (mac, key) in self.0 {
            codes.release(&mac, &key);
        }
    }
}

/// Maps a transaction's outcome to the store's errors.
pub(super) fn settle<T>(outcome: std::result::Result<T, TransactionError<TxAbort>>) -> Result<T> {
    match outcome {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(TxAbort::Corrupt(msg))) => Err(StoreError::Corrupt(msg)),
        Err(TransactionError::Abort(TxAbort::NeedIds(_))) => Err(StoreError::Corrupt(
            "a step queued more than it took ids for".into(),
        )),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
    }
}
