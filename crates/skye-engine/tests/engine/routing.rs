//! The vector router: a collection goes to the store of its variant's `vector-db-type`.

use std::sync::{Arc, Mutex};

use serde_json::json;
use skye_backends::embedded::EmbeddedVectorStore;
use skye_core::domain::{DistanceFunction, Variant};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionSpec, RemoteVectorStores, SearchQuery, VectorRead, VectorStore, VectorStoreError,
};
use skye_engine::routing::VectorRouter;

/// A "remote" store (another embedded engine) that records who asked for it.
#[derive(Debug)]
struct FakeRemote {
    store: Arc<EmbeddedVectorStore>,
    asked: Mutex<Vec<(String, bool)>>,
}

impl RemoteVectorStores for FakeRemote {
    fn for_variant(
        &self,
        variant: &Variant,
        write: bool,
    ) -> Result<Arc<dyn VectorStore>, VectorStoreError> {
        self.asked
            .lock()
            .unwrap()
            .push((variant.name.clone(), write));
        Ok(self.store.clone())
    }
}

fn spec(name: &str) -> CollectionSpec {
    CollectionSpec {
        name: name.into(),
        dimension: 2,
        distance: DistanceFunction::Dot,
        m: 8,
        ef_construct: 32,
        indexing_threshold: 0,
        payload_schema: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_land_in_their_variants_store() {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(
        dir.path(),
        &[
            json!({"variant": "local"}),
            json!({"variant": "remote", "vector_db_type": "QDRANT", "vector_db_config": {
                "read_host": "qa", "write_host": "qb", "port": "6334",
                "http2config": {"deadline": 200, "write_deadline": 2000}}}),
        ],
    )
    .await;
    let local = Arc::new(EmbeddedVectorStore::open(&dir.path().join("local")).unwrap());
    let remote = Arc::new(FakeRemote {
        store: Arc::new(EmbeddedVectorStore::open(&dir.path().join("remote")).unwrap()),
        asked: Mutex::new(Vec::new()),
    });
    let router = VectorRouter::new(registry.clone(), local.clone(), Some(remote.clone()));
    router.create_collection(spec("local_m_1")).await.unwrap();
    router.create_collection(spec("remote_m_1")).await.unwrap();
    router
        .create_collection(spec("bench_only_7"))
        .await
        .unwrap();
    assert_eq!(
        local.list_collections().await.unwrap(),
        ["bench_only_7", "local_m_1"],
        "EMBEDDED variants and unclaimed names stay local"
    );
    assert_eq!(
        remote.store.list_collections().await.unwrap(),
        ["remote_m_1"]
    );
    assert_eq!(
        router.list_collections().await.unwrap(),
        ["bench_only_7", "local_m_1", "remote_m_1"]
    );
    router
        .search(
            "remote_m_1",
            vec![SearchQuery {
                vector: vec![1.0, 0.0],
                limit: 1,
                ..Default::default()
            }],
        )
        .await
        .unwrap();
    let asked = remote.asked.lock().unwrap().clone();
    assert_eq!(
        asked[0],
        ("remote".to_string(), true),
        "create uses the write host"
    );
    assert_eq!(
        asked.last().unwrap(),
        &("remote".to_string(), false),
        "search reads"
    );

    // Without a client for QDRANT, its variants fail clearly instead of landing locally.
    let bare = VectorRouter::new(registry, local, None);
    let e = bare
        .create_collection(spec("remote_m_2"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(e.to_string().contains("--features qdrant"), "{e}");
}
