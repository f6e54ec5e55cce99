//! The vector-DB trait: collections of points (vector + payload) searched by similarity.
//!
//! One collection holds one version of one variant (`<variant>_<model>_<version>`, spec serving
//! §3.3.1). The embedded engine (skye-index) and remote engines (Qdrant, NGT, Eigenix) implement
//! it; the same conformance suite runs against each. Types here are engine-neutral; backends
//! translate them.
//!
//! Contract:
//! * writes are durable when they return `Ok` and are visible to searches that start after;
//! * `search` returns, per query, at most `limit` points best first (after skipping `offset`),
//!   never a deleted point, never one that fails the filter, never an id in `exclude`;
//! * scores follow the distance function: similarity for DOT/COSINE (higher is better),
//!   distance for EUCLIDEAN/MANHATTAN (lower is better);
//! * every error maps to an [`ErrorCode`]: unknown collection → `NotFound`, bad input →
//!   `InvalidArgument`, engine down → `Unavailable`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::{DistanceFunction, FieldSchema};
use crate::error::{ErrorCode, HasErrorCode};

/// A typed payload value.
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadValue {
    Keyword(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// Latitude, longitude in degrees.
    Geo(f64, f64),
    List(Vec<PayloadValue>),
}

/// One point to write.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorPoint {
    pub id: String,
    pub vector: Vec<f32>,
    pub payload: BTreeMap<String, PayloadValue>,
}

/// How a collection is created.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    pub name: String,
    pub dimension: u32,
    pub distance: DistanceFunction,
    /// Graph degree.
    pub m: usize,
    pub ef_construct: usize,
    /// Pending points that trigger indexing; 0 = indexing off (bulk load).
    pub indexing_threshold: usize,
    /// Payload fields and their types.
    pub payload_schema: BTreeMap<String, FieldSchema>,
}

/// One condition of a search filter (the engine-neutral form of the gRPC operators).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Field equals any of the values (a list field: any element).
    Match {
        field: String,
        any: Vec<PayloadValue>,
    },
    /// Field present and not an empty list.
    Exists { field: String },
    /// Every word of `query` occurs in the field's text, ignoring case.
    Text { field: String, query: String },
    /// Numeric field within the bounds.
    Range {
        field: String,
        gt: Option<f64>,
        gte: Option<f64>,
        lt: Option<f64>,
        lte: Option<f64>,
    },
    /// Geo field within `radius_m` metres of (`lat`, `lon`).
    GeoRadius {
        field: String,
        lat: f64,
        lon: f64,
        radius_m: f64,
    },
}

/// All of `must`, none of `must_not`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchFilter {
    pub must: Vec<Condition>,
    pub must_not: Vec<Condition>,
}

impl SearchFilter {
    /// No condition at all: every point passes.
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
    }
}

/// One k-NN query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    pub vector: Vec<f32>,
    pub limit: usize,
    pub offset: usize,
    pub filter: Option<SearchFilter>,
    /// Payload fields returned with each hit (rendered as text).
    pub with_payload: Vec<String>,
    /// Ids never returned (e.g. the query item).
    pub exclude: Vec<String>,
    /// Beam width override.
    pub ef: Option<usize>,
    /// Force exact search.
    pub exact: bool,
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    pub id: String,
    pub score: f32,
    /// Requested payload fields present on the point, as text.
    pub payload: BTreeMap<String, String>,
}

/// Counts the lifecycle polls (spec AC §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CollectionInfo {
    pub points_count: u64,
    pub indexed_vectors_count: u64,
    pub indexing_threshold: usize,
}

/// Errors of a vector store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VectorStoreError {
    #[error("collection '{0}' not found")]
    CollectionNotFound(String),
    #[error("collection '{0}' already exists")]
    CollectionExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("snapshot '{0}' not found")]
    SnapshotNotFound(String),
    #[error("vector store unavailable: {0}")]
    Unavailable(String),
    #[error("vector store failure: {0}")]
    Internal(String),
}

impl HasErrorCode for VectorStoreError {
    fn code(&self) -> ErrorCode {
        match self {
            VectorStoreError::CollectionNotFound(_) | VectorStoreError::SnapshotNotFound(_) => {
                ErrorCode::NotFound
            }
            VectorStoreError::CollectionExists(_) => ErrorCode::AlreadyExists,
            VectorStoreError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            VectorStoreError::Unavailable(_) => ErrorCode::Unavailable,
            VectorStoreError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// What serving needs.
#[async_trait]
pub trait VectorRead: Send + Sync + std::fmt::Debug {
    /// Runs every query against `collection`; one result list per query, in order.
    async fn search(
        &self,
        collection: &str,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError>;

    async fn collection_info(&self, collection: &str) -> Result<CollectionInfo, VectorStoreError>;

    /// Names of every collection.
    async fn list_collections(&self) -> Result<Vec<String>, VectorStoreError>;
}

/// What ingestion and the lifecycle need.
#[async_trait]
pub trait VectorStore: VectorRead {
    /// Creates a collection; `CollectionExists` when the name is taken (so a repeated lifecycle
    /// step can tell it already happened).
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError>;

    /// Drops a collection; dropping a missing one is `Ok` (idempotent).
    async fn delete_collection(&self, collection: &str) -> Result<(), VectorStoreError>;

    /// Inserts or replaces points (all-or-nothing per call).
    async fn upsert(
        &self,
        collection: &str,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError>;

    /// Deletes points; missing ids are ignored.
    async fn delete_points(
        &self,
        collection: &str,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError>;

    /// Merges payload fields into existing points; missing ids are ignored.
    async fn set_payload(
        &self,
        collection: &str,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError>;

    /// 0 turns indexing off; a positive value links pending points once that many are waiting.
    async fn set_indexing_threshold(
        &self,
        collection: &str,
        threshold: usize,
    ) -> Result<(), VectorStoreError>;

    /// Writes a point-in-time copy of `collection` (every acknowledged write included).
    async fn create_snapshot(&self, collection: &str) -> Result<SnapshotInfo, VectorStoreError>;

    /// The snapshots of `collection`, oldest first.
    async fn list_snapshots(&self, collection: &str)
    -> Result<Vec<SnapshotInfo>, VectorStoreError>;

    /// Deletes one snapshot; `SnapshotNotFound` when there is none by that name.
    async fn delete_snapshot(&self, collection: &str, name: &str) -> Result<(), VectorStoreError>;

    /// Replaces the contents of `collection` (created when absent) with snapshot `name` of it.
    async fn recover_snapshot(&self, collection: &str, name: &str) -> Result<(), VectorStoreError>;
}

/// A point-in-time copy of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
    pub size_bytes: u64,
}

/// Remote vector DBs by variant (Qdrant in skye-backends), for the router that picks a
/// collection's store from its variant's `vector-db-type`.
pub trait RemoteVectorStores: Send + Sync + std::fmt::Debug {
    /// The store for `variant`'s collections; `write` picks its write host.
    fn for_variant(
        &self,
        variant: &crate::domain::Variant,
        write: bool,
    ) -> Result<std::sync::Arc<dyn VectorStore>, VectorStoreError>;
}
