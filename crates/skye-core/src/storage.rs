//! The embedding store and the aggregator store (spec AC §5.2, §5.3).
//!
//! Embeddings are stored once per model, per generation (`embedding_store_version`), and shared
//! by the model's variants; each row carries the per-variant "to be indexed" flags. Aggregator
//! rows hold an entity's real-time flags (e.g. `out_of_stock`) as text columns.
//!
//! Both are addressed by the table named in the entity's store (`embeddings_table`,
//! `aggregator_table`). The embedded implementation and ScyllaDB implement them; the conformance
//! suite runs against each. Writes are durable when they return `Ok`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Cause, ErrorCode, HasErrorCode};

/// One embedding row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbeddingRow {
    pub id: String,
    /// The index-space vector (`embedding`).
    pub embedding: Vec<f32>,
    /// The search-space vector (`search_embedding`); equal to `embedding` when the event had none.
    pub search_embedding: Vec<f32>,
    /// `<variant>_to_be_indexed` flags.
    pub to_be_indexed: BTreeMap<String, bool>,
    /// The job's payload texts (`index_space.payload`), kept so that an item a real-time flag
    /// re-admits gets its job payload back. Empty where the store has nowhere to keep it (see
    /// the ScyllaDB store's `payload_column`).
    pub payload: BTreeMap<String, String>,
}

/// Where a generation of a model's embeddings lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation<'a> {
    pub table: &'a str,
    pub model: &'a str,
    pub version: i64,
}

/// Errors of the embedding and aggregator stores.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// The store did not answer within its request timeout.
    #[error("storage timed out: {0}")]
    Timeout(#[source] Cause),
    #[error("storage failure: {0}")]
    Internal(#[source] Cause),
}

impl HasErrorCode for StorageError {
    fn code(&self) -> ErrorCode {
        match self {
            StorageError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            StorageError::Unavailable(_) => ErrorCode::Unavailable,
            StorageError::Timeout(_) => ErrorCode::Timeout,
            StorageError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Embeddings keyed by (model, version, id).
#[async_trait]
pub trait EmbeddingStore: Send + Sync + std::fmt::Debug {
    /// Inserts or replaces `rows`; `ttl` = `None` keeps them until their generation is dropped.
    async fn put(
        &self,
        generation: Generation<'_>,
        rows: Vec<EmbeddingRow>,
        ttl: Option<Duration>,
    ) -> Result<(), StorageError>;

    /// The rows of `ids`, in order (`None`: absent or expired). Duplicate ids are allowed.
    async fn get(
        &self,
        generation: Generation<'_>,
        ids: &[String],
    ) -> Result<Vec<Option<EmbeddingRow>>, StorageError>;

    /// Removes a whole generation (after a newer one is served); missing is `Ok`.
    async fn drop_generation(&self, generation: Generation<'_>) -> Result<(), StorageError>;
}

/// Aggregator columns of one candidate (all values as text).
pub type AggregatorRow = BTreeMap<String, String>;

/// Real-time flags keyed by candidate id.
#[async_trait]
pub trait AggregatorStore: Send + Sync + std::fmt::Debug {
    /// The rows of `ids`, in order (`None`: no row).
    async fn get(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Option<AggregatorRow>>, StorageError>;

    /// Merges columns into each row (creating it), in order: a later update of the same id wins.
    async fn merge(
        &self,
        table: &str,
        updates: Vec<(String, AggregatorRow)>,
    ) -> Result<(), StorageError>;
}
