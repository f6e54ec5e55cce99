//! How a cached similar-candidates answer learns that its collection changed: the answer's
//! cache key carries the collection's **epoch**, a value that changes with every write, so a
//! real-time flag (or a delta job) makes every answer cached before it unreachable at once.
//!
//! * The embedded engine knows its collections' epochs exactly and cheaply
//!   ([`VectorRead::content_epoch`]).
//! * A remote engine (Qdrant) does not. Where a distributed cache is configured, the consumers
//!   publish a new epoch there after each write to a remote collection ([`EpochPublisher`], a
//!   decorator of the vector store) and serving reads it at most once per [`EPOCH_MEMO`] per
//!   collection ([`SharedEpochs`]): a flag is visible to cached queries within about a second.
//! * A remote engine without a distributed cache has no shared epoch: cached answers there live
//!   until their TTL (the original's behaviour).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skye_core::cache::DistributedCache;
use skye_core::domain::VectorDbType;
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, CollectionSpec, PayloadValue, ScoredPoint, SearchQuery,
    SnapshotInfo, VariantKey, VectorPoint, VectorRead, VectorStore, VectorStoreError,
};
use tokio::time::Instant;

use super::cache::KeyBuilder;

/// How long serving trusts an epoch it read from the distributed cache.
pub const EPOCH_MEMO: Duration = Duration::from_secs(1);
/// How long a published epoch is kept (far longer than any cached answer).
const EPOCH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The epoch of a collection, as serving sees it.
#[derive(Debug, Clone)]
pub struct Freshness {
    vectors: Arc<dyn VectorRead>,
    shared: Option<SharedEpochs>,
}

impl Freshness {
    pub fn new(vectors: Arc<dyn VectorRead>, shared: Option<SharedEpochs>) -> Self {
        Freshness { vectors, shared }
    }

    /// 0 when nothing tells (a remote engine without a distributed cache).
    pub async fn epoch(&self, c: &CollectionRef) -> u64 {
        if let Some(e) = self.vectors.content_epoch(c) {
            return e;
        }
        match &self.shared {
            Some(shared) => shared.current(c).await,
            None => 0,
        }
    }
}

/// Collection epochs kept in the distributed cache.
#[derive(Debug, Clone)]
pub struct SharedEpochs {
    cache: Arc<dyn DistributedCache>,
    memo: Duration,
    seen: Arc<Mutex<HashMap<CollectionRef, (u64, Instant)>>>,
}

impl SharedEpochs {
    pub fn new(cache: Arc<dyn DistributedCache>) -> Self {
        SharedEpochs {
            cache,
            memo: EPOCH_MEMO,
            seen: Arc::default(),
        }
    }

    /// The key of a collection's epoch: readable prefix, hash of its typed parts.
    pub fn key(c: &CollectionRef) -> String {
        KeyBuilder::default()
            .str(c.variant.entity())
            .str(c.variant.model())
            .str(c.variant.variant())
            .num(c.version)
            .build()
            .distributed("skye:epoch")
    }

    /// Publishes a new epoch for `c` (after a write to it). A failure is logged: cached answers
    /// then live until their TTL.
    pub async fn publish(&self, c: &CollectionRef) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let entry = (Self::key(c), now.to_le_bytes().to_vec());
        if let Err(e) = self.cache.set_many(vec![entry], EPOCH_TTL).await {
            tracing::warn!(collection = %c, error = %e, "cannot publish a collection epoch; cached answers may be stale until their TTL");
        }
    }

    /// The epoch last published for `c`, read at most once per memo period.
    pub async fn current(&self, c: &CollectionRef) -> u64 {
        let memo = self.lock().get(c).copied();
        if let Some((epoch, at)) = memo
            && at.elapsed() < self.memo
        {
            return epoch;
        }
        let read = self.cache.get_many(&[Self::key(c)]).await;
        let epoch = match read {
            Ok(mut values) => values
                .pop()
                .flatten()
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map_or(0, u64::from_le_bytes),
            Err(e) => {
                tracing::debug!(collection = %c, error = %e, "cannot read a collection epoch");
                return memo.map_or(0, |(epoch, _)| epoch);
            }
        };
        self.lock().insert(c.clone(), (epoch, Instant::now()));
        epoch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CollectionRef, (u64, Instant)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A vector store that publishes a new epoch of every remote collection it writes (embedded
/// collections have their own).
#[derive(Debug)]
pub struct EpochPublisher {
    inner: Arc<dyn VectorStore>,
    epochs: SharedEpochs,
}

impl EpochPublisher {
    pub fn new(inner: Arc<dyn VectorStore>, epochs: SharedEpochs) -> Self {
        EpochPublisher { inner, epochs }
    }

    async fn published<T>(
        &self,
        c: &CollectionRef,
        result: Result<T, VectorStoreError>,
    ) -> Result<T, VectorStoreError> {
        if result.is_ok() && c.variant.db() != VectorDbType::Embedded {
            self.epochs.publish(c).await;
        }
        result
    }
}

#[async_trait]
impl VectorRead for EpochPublisher {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        self.inner.search(collection, queries).await
    }

    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError> {
        self.inner.collection_info(collection).await
    }

    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        self.inner.versions(variant).await
    }

    fn content_epoch(&self, collection: &CollectionRef) -> Option<u64> {
        self.inner.content_epoch(collection)
    }
}

#[async_trait]
impl VectorStore for EpochPublisher {
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError> {
        self.inner.create_collection(spec).await
    }

    async fn delete_collection(&self, collection: &CollectionRef) -> Result<(), VectorStoreError> {
        let result = self.inner.delete_collection(collection).await;
        self.published(collection, result).await
    }

    async fn upsert(
        &self,
        collection: &CollectionRef,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError> {
        let result = self.inner.upsert(collection, points).await;
        self.published(collection, result).await
    }

    async fn delete_points(
        &self,
        collection: &CollectionRef,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        let result = self.inner.delete_points(collection, ids).await;
        self.published(collection, result).await
    }

    async fn set_payload(
        &self,
        collection: &CollectionRef,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        let result = self.inner.set_payload(collection, updates).await;
        self.published(collection, result).await
    }

    async fn set_indexing_threshold(
        &self,
        collection: &CollectionRef,
        threshold: usize,
    ) -> Result<(), VectorStoreError> {
        self.inner
            .set_indexing_threshold(collection, threshold)
            .await
    }

    async fn create_snapshot(
        &self,
        collection: &CollectionRef,
    ) -> Result<SnapshotInfo, VectorStoreError> {
        self.inner.create_snapshot(collection).await
    }

    async fn list_snapshots(
        &self,
        collection: &CollectionRef,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
        self.inner.list_snapshots(collection).await
    }

    async fn delete_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        self.inner.delete_snapshot(collection, name).await
    }

    async fn recover_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        let result = self.inner.recover_snapshot(collection, name).await;
        self.published(collection, result).await
    }
}
