//! Which vector DB holds a collection: the variant's `vector-db-type`, carried by its typed
//! [`CollectionRef`], decides. Which ScyllaDB cluster holds a table: the `conf_id` of its store
//! ([`StorageRouter`]).
//!
//! EMBEDDED collections go to the embedded engine, the others to a remote store chosen for the
//! variant (Qdrant at its `read_host` for reads and `write_host` for writes, looked up in the
//! registry by the variant's key). A build without the remote client answers UNAVAILABLE with
//! the feature to enable, instead of silently writing somewhere else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skye_core::domain::{Store, VectorDbType};
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation, StorageError,
};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, CollectionSpec, PayloadValue, RemoteVectorStores, ScoredPoint,
    SearchQuery, SnapshotInfo, VariantKey, VectorPoint, VectorRead, VectorStore, VectorStoreError,
};

use crate::registry::Registry;

/// Routes every call to the store of the collection's variant.
#[derive(Debug)]
pub struct VectorRouter {
    registry: Arc<Registry>,
    embedded: Arc<dyn VectorStore>,
    remote: Option<Arc<dyn RemoteVectorStores>>,
}

impl VectorRouter {
    pub fn new(
        registry: Arc<Registry>,
        embedded: Arc<dyn VectorStore>,
        remote: Option<Arc<dyn RemoteVectorStores>>,
    ) -> Self {
        VectorRouter {
            registry,
            embedded,
            remote,
        }
    }

    fn route(
        &self,
        key: &VariantKey,
        write: bool,
    ) -> Result<Arc<dyn VectorStore>, VectorStoreError> {
        if key.db() == VectorDbType::Embedded {
            return Ok(self.embedded.clone());
        }
        let Some(remote) = &self.remote else {
            return Err(VectorStoreError::Unavailable(
                format!(
                    "variant {key} uses {}, and this build has no client for it (rebuild with \
                 `--features qdrant` or `--features ngt-eigenix`)",
                    key.db()
                )
                .into(),
            ));
        };
        let snapshot = self.registry.snapshot();
        let variant = snapshot
            .variant(key.entity(), key.model(), key.variant())
            .map_err(|e| VectorStoreError::CollectionNotFound(format!("{key}: {e}")))?;
        remote.for_variant(variant, write)
    }
}

#[async_trait]
impl VectorRead for VectorRouter {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        self.route(&collection.variant, false)?
            .search(collection, queries)
            .await
    }

    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError> {
        self.route(&collection.variant, true)?
            .collection_info(collection)
            .await
    }

    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        self.route(variant, true)?.versions(variant).await
    }

    fn content_epoch(&self, collection: &CollectionRef) -> Option<u64> {
        (collection.variant.db() == VectorDbType::Embedded)
            .then(|| self.embedded.content_epoch(collection))
            .flatten()
    }
}

#[async_trait]
impl VectorStore for VectorRouter {
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError> {
        self.route(&spec.collection.variant, true)?
            .create_collection(spec)
            .await
    }

    async fn delete_collection(&self, collection: &CollectionRef) -> Result<(), VectorStoreError> {
        self.route(&collection.variant, true)?
            .delete_collection(collection)
            .await
    }

    async fn upsert(
        &self,
        collection: &CollectionRef,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError> {
        self.route(&collection.variant, true)?
            .upsert(collection, points)
            .await
    }

    async fn delete_points(
        &self,
        collection: &CollectionRef,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        self.route(&collection.variant, true)?
            .delete_points(collection, ids)
            .await
    }

    async fn set_payload(
        &self,
        collection: &CollectionRef,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        self.route(&collection.variant, true)?
            .set_payload(collection, updates)
            .await
    }

    async fn set_indexing_threshold(
        &self,
        collection: &CollectionRef,
        threshold: usize,
    ) -> Result<(), VectorStoreError> {
        self.route(&collection.variant, true)?
            .set_indexing_threshold(collection, threshold)
            .await
    }

    async fn create_snapshot(
        &self,
        collection: &CollectionRef,
    ) -> Result<SnapshotInfo, VectorStoreError> {
        self.route(&collection.variant, true)?
            .create_snapshot(collection)
            .await
    }

    async fn list_snapshots(
        &self,
        collection: &CollectionRef,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
        self.route(&collection.variant, true)?
            .list_snapshots(collection)
            .await
    }

    async fn delete_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        self.route(&collection.variant, true)?
            .delete_snapshot(collection, name)
            .await
    }

    async fn recover_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        self.route(&collection.variant, true)?
            .recover_snapshot(collection, name)
            .await
    }
}

/// Which ScyllaDB cluster holds a table: the `conf_id` of the store that names it (spec AC §5.1:
/// a store's `conf_id` picks the `STORAGE_*_<n>_*` block in both families). A table no store
/// names, or a `conf_id` without a block of its own, goes to the default store.
#[derive(Debug)]
pub struct StorageRouter {
    registry: Arc<Registry>,
    embeddings: Arc<dyn EmbeddingStore>,
    aggregator: Arc<dyn AggregatorStore>,
    embeddings_by_conf_id: BTreeMap<i64, Arc<dyn EmbeddingStore>>,
    aggregator_by_conf_id: BTreeMap<i64, Arc<dyn AggregatorStore>>,
}

impl StorageRouter {
    pub fn new(
        registry: Arc<Registry>,
        (embeddings, embeddings_by_conf_id): (
            Arc<dyn EmbeddingStore>,
            BTreeMap<i64, Arc<dyn EmbeddingStore>>,
        ),
        (aggregator, aggregator_by_conf_id): (
            Arc<dyn AggregatorStore>,
            BTreeMap<i64, Arc<dyn AggregatorStore>>,
        ),
    ) -> Self {
        StorageRouter {
            registry,
            embeddings,
            aggregator,
            embeddings_by_conf_id,
            aggregator_by_conf_id,
        }
    }

    /// The `conf_id` of the store whose table `pick` returns `table`.
    fn conf_id_of(&self, table: &str, pick: fn(&Store) -> &str) -> Option<i64> {
        let snapshot = self.registry.snapshot();
        snapshot
            .stores
            .values()
            .find(|s| pick(s) == table)
            .map(|s| s.conf_id)
    }

    fn embeddings_for(&self, table: &str) -> &Arc<dyn EmbeddingStore> {
        self.conf_id_of(table, |s| &s.embeddings_table)
            .and_then(|id| self.embeddings_by_conf_id.get(&id))
            .unwrap_or(&self.embeddings)
    }

    fn aggregator_for(&self, table: &str) -> &Arc<dyn AggregatorStore> {
        self.conf_id_of(table, |s| &s.aggregator_table)
            .and_then(|id| self.aggregator_by_conf_id.get(&id))
            .unwrap_or(&self.aggregator)
    }
}

#[async_trait]
impl EmbeddingStore for StorageRouter {
    async fn put(
        &self,
        generation: Generation<'_>,
        rows: Vec<EmbeddingRow>,
        ttl: Option<Duration>,
    ) -> Result<(), StorageError> {
        self.embeddings_for(generation.table)
            .put(generation, rows, ttl)
            .await
    }

    async fn get(
        &self,
        generation: Generation<'_>,
        ids: &[String],
    ) -> Result<Vec<Option<EmbeddingRow>>, StorageError> {
        self.embeddings_for(generation.table)
            .get(generation, ids)
            .await
    }

    async fn drop_generation(&self, generation: Generation<'_>) -> Result<(), StorageError> {
        self.embeddings_for(generation.table)
            .drop_generation(generation)
            .await
    }
}

#[async_trait]
impl AggregatorStore for StorageRouter {
    async fn get(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Option<AggregatorRow>>, StorageError> {
        self.aggregator_for(table).get(table, ids).await
    }

    async fn merge(
        &self,
        table: &str,
        updates: Vec<(String, AggregatorRow)>,
    ) -> Result<(), StorageError> {
        self.aggregator_for(table).merge(table, updates).await
    }
}
