//! Isolation between variants that share nothing but a process: a remote vector DB that is
//! down fails only the work of its own variants, and a real-time change reaches cached answers
//! on remote collections through the epochs published in the distributed cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::json;
use skye_backends::embedded::{EmbeddedEventLog, EmbeddedStorage, EmbeddedVectorStore};
use skye_core::domain::{DistanceFunction, Variant};
use skye_core::registration::RegisterModel;
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, CollectionSpec, PayloadValue, RemoteVectorStores, ScoredPoint,
    SearchQuery, SnapshotInfo, VariantKey, VectorPoint, VectorRead, VectorStore, VectorStoreError,
};
use skye_engine::ingest::embedding::EmbeddingIngestor;
use skye_engine::ingest::events::EmbeddingEvent;
use skye_engine::lifecycle::Lifecycle;
use skye_engine::routing::VectorRouter;

/// A remote vector DB whose host is down: every call fails, and is counted.
#[derive(Debug, Default)]
struct Down {
    calls: AtomicUsize,
}

impl Down {
    fn fail<T>(&self) -> Result<T, VectorStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(VectorStoreError::Unavailable("connection refused".into()))
    }
}

#[async_trait]
impl VectorRead for Down {
    async fn search(
        &self,
        _: &CollectionRef,
        _: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        self.fail()
    }
    async fn collection_info(&self, _: &CollectionRef) -> Result<CollectionInfo, VectorStoreError> {
        self.fail()
    }
    async fn versions(&self, _: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        self.fail()
    }
}

#[async_trait]
impl VectorStore for Down {
    async fn create_collection(&self, _: CollectionSpec) -> Result<(), VectorStoreError> {
        self.fail()
    }
    async fn delete_collection(&self, _: &CollectionRef) -> Result<(), VectorStoreError> {
        self.fail()
    }
    async fn upsert(&self, _: &CollectionRef, _: Vec<VectorPoint>) -> Result<(), VectorStoreError> {
        self.fail()
    }
    async fn delete_points(
        &self,
        _: &CollectionRef,
        _: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        self.fail()
    }
    async fn set_payload(
        &self,
        _: &CollectionRef,
        _: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        self.fail()
    }
    async fn set_indexing_threshold(
        &self,
        _: &CollectionRef,
        _: usize,
    ) -> Result<(), VectorStoreError> {
        self.fail()
    }
    async fn create_snapshot(&self, _: &CollectionRef) -> Result<SnapshotInfo, VectorStoreError> {
        self.fail()
    }
    async fn list_snapshots(
        &self,
        _: &CollectionRef,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
        self.fail()
    }
    async fn delete_snapshot(&self, _: &CollectionRef, _: &str) -> Result<(), VectorStoreError> {
        self.fail()
    }
    async fn recover_snapshot(&self, _: &CollectionRef, _: &str) -> Result<(), VectorStoreError> {
        self.fail()
    }
}

#[derive(Debug)]
struct DownHosts(Arc<Down>);

impl RemoteVectorStores for DownHosts {
    fn for_variant(&self, _: &Variant, _: bool) -> Result<Arc<dyn VectorStore>, VectorStoreError> {
        Ok(self.0.clone())
    }
}

fn event(model: &str, variant: &str, id: &str) -> EmbeddingEvent {
    serde_json::from_value(json!({
        "entity": "e", "model_name": model, "candidate_id": id, "partition": "0",
        "index_space": {"embedding": [1.0, 0.5], "variants_version_map": {variant: 1},
            "variants_index_map": {variant: true}, "operation": "ADD"}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_host_that_is_down_fails_only_its_own_variants_batches() {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(dir.path(), &[json!({"variant": "local"})]).await;
    registry
        .register_model(
            RegisterModel::from_json(json!({"entity": "e", "model": "far",
                "model_config": {"distance_function": "DOT", "vector_dimension": 2}}))
            .unwrap(),
        )
        .await
        .unwrap();
    registry
        .register_variant(
            skye_core::registration::RegisterVariant::from_json(json!({"entity": "e",
                "model": "far", "variant": "remote", "vector_db_type": "QDRANT",
                "vector_db_config": {"read_host": "down.invalid", "port": "6334"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let down = Arc::new(Down::default());
    let local = Arc::new(EmbeddedVectorStore::open(&dir.path().join("vectors")).unwrap());
    let router = Arc::new(VectorRouter::new(
        registry.clone(),
        local.clone(),
        Some(Arc::new(DownHosts(down.clone()))),
    ));
    let snapshot = registry.snapshot();
    let collection = snapshot.variant("e", "m", "local").unwrap().collection(1);
    router
        .create_collection(CollectionSpec {
            collection: collection.clone(),
            dimension: 2,
            distance: DistanceFunction::Dot,
            m: 8,
            ef_construct: 32,
            indexing_threshold: 0,
            payload_schema: BTreeMap::new(),
            on_disk: None,
        })
        .await
        .unwrap();
    let storage = Arc::new(EmbeddedStorage::open(&dir.path().join("s.redb")).unwrap());
    let log = Arc::new(EmbeddedEventLog::open(&dir.path().join("e.redb")).unwrap());
    let lifecycle = Arc::new(Lifecycle::new(
        registry.clone(),
        router.clone(),
        storage.clone(),
        log,
    ));
    let ingestor = EmbeddingIngestor::new(router, storage.clone(), storage, lifecycle);

    let report = ingestor
        .process(&[Ok(event("m", "local", "a")), Ok(event("m", "local", "b"))])
        .await
        .expect("a batch of the embedded variant does not touch the remote host");
    assert_eq!((report.applied, report.rejected.len()), (2, 0));
    assert_eq!(
        down.calls.load(Ordering::SeqCst),
        0,
        "the down host was never called"
    );
    let hits = local
        .search(
            &collection,
            vec![SearchQuery {
                vector: vec![1.0, 0.0],
                limit: 5,
                exact: true,
                ..Default::default()
            }],
        )
        .await
        .unwrap();
    assert_eq!(hits[0].len(), 2);

    let e = ingestor
        .process(&[Ok(event("far", "remote", "c"))])
        .await
        .expect_err("a batch of the remote variant waits for its host");
    assert!(e.to_string().contains("connection refused"), "{e}");
    assert_eq!(
        down.calls.load(Ordering::SeqCst),
        1,
        "one check, then the batch is retried"
    );
}
