//! The config store: a revisioned key-value tree with transactions and prefix watches.
//!
//! It is the shape of etcd's v3 API, which the scale-out backend maps to one-to-one; the embedded
//! backend implements the same contract on a local transactional KV. Everything above it (the
//! registry, the lifecycle state machine) is written against this trait only, and the same
//! conformance suite runs against every implementation.
//!
//! Contract:
//! * every successful [`ConfigStore::txn`] that changes something gets a new store revision,
//!   strictly greater than every earlier one; a transaction is atomic and durable when it
//!   returns (it survives `kill -9`);
//! * [`ConfigStore::watch`] delivers every change under a prefix after `start_revision`, in
//!   revision order, each transaction's events together in one [`WatchBatch`]. When the backend
//!   cannot deliver a contiguous history (slow reader, compaction, reconnect) it yields
//!   [`WatchItem::Resync`] and the reader must reload the prefix with [`ConfigRead::range`];
//! * dropping a watch stream cancels it.

use std::pin::Pin;

use async_trait::async_trait;
use futures_core::Stream;

use crate::error::{ErrorCode, HasErrorCode};

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Revision of the transaction that created the key.
    pub create_revision: u64,
    /// Revision of the transaction that last wrote the key.
    pub mod_revision: u64,
}

/// The keys under a prefix, read at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResult {
    /// Store revision at which the read happened.
    pub revision: u64,
    /// Matching keys in key order.
    pub kvs: Vec<KeyValue>,
}

/// A condition a transaction checks before applying its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key exists with this `mod_revision` (optimistic concurrency).
    ModRevision(String, u64),
    /// The key exists with exactly this value.
    Value(String, String),
}

/// A write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, String),
    Delete(String),
    DeletePrefix(String),
}

/// All-or-nothing: if every compare holds, apply every op.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }

    pub fn put(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.ops.push(Op::Put(key.into(), value.into()));
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete(key.into()));
        self
    }
}

/// Outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held (and so the ops were applied).
    pub succeeded: bool,
    /// Store revision after the transaction (unchanged when it failed or changed nothing).
    pub revision: u64,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put(KeyValue),
    /// A key was removed; `mod_revision` of the carried value is the deleting revision.
    Delete(KeyValue),
}

/// The events of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBatch {
    pub revision: u64,
    pub events: Vec<WatchEvent>,
}

/// One item of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    Batch(WatchBatch),
    /// History was lost; reload the prefix and watch again from the reload's revision + 1.
    Resync,
}

/// A watch: ends only when the store shuts down or the connection is lost for good.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchItem, ConfigStoreError>> + Send>>;

/// Errors of a config store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigStoreError {
    /// The store cannot be reached or is shutting down; retry later.
    #[error("config store unavailable: {0}")]
    Unavailable(#[source] crate::error::Cause),
    /// The store's data is corrupt or an I/O error happened.
    #[error("config store failure: {0}")]
    Storage(#[source] crate::error::Cause),
    /// The request is malformed (e.g. an empty key).
    #[error("invalid config store request: {0}")]
    InvalidRequest(String),
}

impl HasErrorCode for ConfigStoreError {
    fn code(&self) -> ErrorCode {
        match self {
            ConfigStoreError::Unavailable(_) => ErrorCode::Unavailable,
            ConfigStoreError::Storage(_) => ErrorCode::Internal,
            ConfigStoreError::InvalidRequest(_) => ErrorCode::InvalidArgument,
        }
    }
}

/// Reading side: what serving needs.
#[async_trait]
pub trait ConfigRead: Send + Sync + std::fmt::Debug {
    /// Every key starting with `prefix`, at the current revision.
    async fn range(&self, prefix: &str) -> Result<RangeResult, ConfigStoreError>;

    /// Changes under `prefix` with a revision ≥ `start_revision`.
    async fn watch(
        &self,
        prefix: &str,
        start_revision: u64,
    ) -> Result<WatchStream, ConfigStoreError>;
}

/// Writing side: what admin and the lifecycle need.
#[async_trait]
pub trait ConfigStore: ConfigRead {
    /// Applies `txn` atomically and durably.
    async fn txn(&self, txn: Txn) -> Result<TxnResult, ConfigStoreError>;
}
