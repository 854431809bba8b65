//! Helpers for sled transactions over the trees: typed reads and writes of reset records,
//! retiring a code's index entry and unsent mail, and mapping a transaction's outcome.

use sled::transaction::{
    ConflictableTransactionError as Abortable, TransactionError, TransactionalTree,
};

use super::records::Reset;
use super::{encode, id_key, Result, StoreError};

/// A transaction's way out: a corrupt record, which commits nothing.
#[derive(Debug)]
pub(super) struct Corrupt(String);

pub(super) type TxResult<T> = std::result::Result<T, Abortable<Corrupt>>;

pub(super) fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> TxResult<T> {
    serde_json::from_slice(bytes).map_err(|e| Abortable::Abort(Corrupt(e.to_string())))
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

/// Retires the record's code: its index entry (if it still points at this record) and
/// its mail, if that has not been sent yet.
pub(super) fn retire_code(
    codes: &TransactionalTree,
    outbox: &TransactionalTree,
    key: &[u8],
    reset: &Reset,
) -> TxResult<()> {
    if let Some(code) = &reset.code {
        if codes.get(&code.mac)?.as_deref() == Some(key) {
            codes.remove(&code.mac[..])?;
        }
        if let Some(id) = code.outbox_id {
            outbox.remove(&id_key(id))?;
        }
    }
    Ok(())
}

/// Maps a transaction's outcome to the store's errors.
pub(super) fn settle<T>(outcome: std::result::Result<T, TransactionError<Corrupt>>) -> Result<T> {
    match outcome {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(Corrupt(msg))) => Err(StoreError::Corrupt(msg)),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
    }
}
