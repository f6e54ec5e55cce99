//! The vector-DB trait: collections of points (vector + payload) searched by similarity.
//!
//! One collection holds one version of one variant, named by a typed [`CollectionRef`] that
//! every call carries; each store derives its own storage name from it (the embedded engine: a
//! directory per entity/model/variant/version; Qdrant: the original's `<variant>_<model>_<version>`,
//! spec serving §3.3.1). The embedded engine (skye-index) and remote engines (Qdrant, NGT,
//! Eigenix) implement it; the same conformance suite runs against each. Types here are
//! engine-neutral; backends translate them.
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

pub use crate::domain::{CollectionRef, VariantKey};
use crate::domain::{DistanceFunction, FieldSchema};
use crate::error::{Cause, ErrorCode, HasErrorCode};

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
    pub collection: CollectionRef,
    pub dimension: u32,
    pub distance: DistanceFunction,
    /// Graph degree.
    pub m: usize,
    pub ef_construct: usize,
    /// Pending points that trigger indexing; 0 = indexing off (bulk load).
    pub indexing_threshold: usize,
    /// Payload fields and their types.
    pub payload_schema: BTreeMap<String, FieldSchema>,
    /// Float vectors on disk (memory-mapped) or in RAM; `None`: the engine's default (the
    /// embedded engine maps them above a size, Qdrant keeps them in RAM).
    pub on_disk: Option<bool>,
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
    /// Only points already in the index (see [`crate::domain::vector_db::SearchParams`]).
    pub indexed_only: bool,
    /// Hits scoring worse are left out: below it for COSINE/DOT, above it for EUCLIDEAN.
    pub score_threshold: Option<f32>,
    /// Set once nobody waits for the answer any more; the engine checks it while it works.
    pub stop: StopFlag,
}

/// A stop signal for work that outlives its caller: set when the caller's deadline passes or
/// it goes away, checked by the engine between units of work (graph hops, scanned blocks), so a
/// search that nobody waits for stops within a fraction of a millisecond instead of running to
/// the end on a blocking thread.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        StopFlag::default()
    }

    pub fn stop(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The flag itself, for engines that poll it in their inner loops.
    pub fn as_atomic(&self) -> &std::sync::atomic::AtomicBool {
        &self.0
    }
}

/// Two flags are equal when they are in the same state (queries compare by content).
impl PartialEq for StopFlag {
    fn eq(&self, other: &Self) -> bool {
        self.is_stopped() == other.is_stopped()
    }
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
    /// The store has work ahead on the collection that stalls its searches while it runs (the
    /// embedded engine's locality renumbering after a bulk build): a new version should not
    /// start serving before it is done.
    pub reorganising: bool,
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
    Unavailable(#[source] Cause),
    #[error("the search was abandoned by its caller")]
    Cancelled,
    /// The engine did not answer within the call's deadline (retryable).
    #[error("vector store timed out: {0}")]
    Timeout(#[source] Cause),
    #[error("vector store failure: {0}")]
    Internal(#[source] Cause),
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
            VectorStoreError::Cancelled => ErrorCode::Cancelled,
            VectorStoreError::Timeout(_) => ErrorCode::Timeout,
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
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError>;

    /// `CollectionNotFound` when the collection does not exist.
    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError>;

    /// The versions of `variant` that have a collection here, ascending.
    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError>;

    /// A value that changes with every acknowledged write to `collection`, for result caches to
    /// key answers on (a cached answer is then never older than the writes it could miss).
    /// `None` when the store cannot tell cheaply (remote engines; absent collections).
    fn content_epoch(&self, _collection: &CollectionRef) -> Option<u64> {
        None
    }
}

/// What ingestion and the lifecycle need.
#[async_trait]
pub trait VectorStore: VectorRead {
    /// Creates a collection; `CollectionExists` when the name is taken (so a repeated lifecycle
    /// step can tell it already happened).
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError>;

    /// Drops a collection; dropping a missing one is `Ok` (idempotent).
    async fn delete_collection(&self, collection: &CollectionRef) -> Result<(), VectorStoreError>;

    /// Inserts or replaces points (all-or-nothing per call).
    async fn upsert(
        &self,
        collection: &CollectionRef,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError>;

    /// Deletes points; missing ids are ignored.
    async fn delete_points(
        &self,
        collection: &CollectionRef,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError>;

    /// Merges payload fields into existing points; missing ids are ignored.
    async fn set_payload(
        &self,
        collection: &CollectionRef,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError>;

    /// 0 turns indexing off; a positive value links pending points once that many are waiting.
    async fn set_indexing_threshold(
        &self,
        collection: &CollectionRef,
        threshold: usize,
    ) -> Result<(), VectorStoreError>;

    /// Writes a point-in-time copy of `collection` (every acknowledged write included).
    async fn create_snapshot(
        &self,
        collection: &CollectionRef,
    ) -> Result<SnapshotInfo, VectorStoreError>;

    /// The snapshots of `collection`, oldest first.
    async fn list_snapshots(
        &self,
        collection: &CollectionRef,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError>;

    /// Deletes one snapshot; `SnapshotNotFound` when there is none by that name.
    async fn delete_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError>;

    /// Replaces the contents of `collection` (created when absent) with snapshot `name` of it.
    async fn recover_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError>;
}

/// A point-in-time copy of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
    pub size_bytes: u64,
}

/// Told how each search of an engine with a query planner was answered: the path (a bounded
/// label: `exact`, `exact_matches`, `graph_filtered`, `graph`) and, for a filtered search, how
/// many points the payload indexes selected. Serving exports it as a metric.
pub trait PlanObserver: Send + Sync + std::fmt::Debug {
    fn planned(&self, path: &'static str, matches: Option<usize>);
}

/// Remote vector DBs by variant (Qdrant in skye-backends), for the router that picks a
/// collection's store from its variant's `vector-db-type`.
pub trait RemoteVectorStores: Send + Sync + std::fmt::Debug {
    /// The store for `variant`'s collections (its `vector_db_config` names the hosts); `write`
    /// picks its write host.
    fn for_variant(
        &self,
        variant: &crate::domain::Variant,
        write: bool,
    ) -> Result<std::sync::Arc<dyn VectorStore>, VectorStoreError>;
}
