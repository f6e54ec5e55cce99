//! The vector router: a collection goes to the store of its variant's `vector-db-type`.

use std::sync::{Arc, Mutex};

use serde_json::json;
use skye_backends::embedded::EmbeddedVectorStore;
use skye_core::domain::{DistanceFunction, Variant};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionRef, CollectionSpec, RemoteVectorStores, SearchQuery, VectorRead, VectorStore,
    VectorStoreError,
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

fn spec(collection: CollectionRef) -> CollectionSpec {
    CollectionSpec {
        collection,
        dimension: 2,
        distance: DistanceFunction::Dot,
        m: 8,
        ef_construct: 32,
        indexing_threshold: 0,
        payload_schema: Default::default(),
        on_disk: None,
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
    let snapshot = registry.snapshot();
    let of = |name: &str| snapshot.variant("e", "m", name).unwrap().clone();
    let (local_v, remote_v) = (of("local"), of("remote"));
    let bench = CollectionRef::embedded("bench", "only", "v", 7);
    router
        .create_collection(spec(local_v.collection(1)))
        .await
        .unwrap();
    router
        .create_collection(spec(remote_v.collection(1)))
        .await
        .unwrap();
    router.create_collection(spec(bench.clone())).await.unwrap();
    assert_eq!(local.versions(&local_v.key()).await.unwrap(), [1]);
    assert_eq!(
        local.versions(&bench.variant).await.unwrap(),
        [7],
        "collections of no registered variant stay local"
    );
    assert_eq!(
        local.versions(&remote_v.key()).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(remote.store.versions(&remote_v.key()).await.unwrap(), [1]);
    assert_eq!(router.versions(&remote_v.key()).await.unwrap(), [1]);
    router
        .search(
            &remote_v.collection(1),
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
    assert!(
        router.content_epoch(&local_v.collection(1)).is_some()
            && router.content_epoch(&remote_v.collection(1)).is_none(),
        "only the embedded engine has content epochs"
    );

    // Without a client for QDRANT, its variants fail clearly instead of landing locally.
    let bare = VectorRouter::new(registry.clone(), local, None);
    let e = bare
        .create_collection(spec(remote_v.collection(2)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(e.to_string().contains("--features qdrant"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_land_in_the_cluster_of_their_stores_conf_id() {
    use std::collections::BTreeMap;

    use skye_backends::embedded::EmbeddedStorage;
    use skye_core::registration::RegisterStore;
    use skye_core::storage::{AggregatorStore, EmbeddingRow, EmbeddingStore, Generation};
    use skye_engine::routing::StorageRouter;

    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(dir.path(), &[]).await;
    // Store "2": conf_id 2; store "3": conf_id 7, which has no block of its own.
    for body in [
        json!({"conf_id": 2, "embeddings_table": "emb2", "aggregator_table": "agg2"}),
        json!({"conf_id": 7, "embeddings_table": "emb7", "aggregator_table": "agg7"}),
    ] {
        registry
            .register_store(RegisterStore::from_json(body).unwrap())
            .await
            .unwrap();
    }
    let open = |name: &str| Arc::new(EmbeddedStorage::open(&dir.path().join(name)).unwrap());
    let (main, second) = (open("main.redb"), open("second.redb"));
    let router = StorageRouter::new(
        registry,
        (
            main.clone(),
            BTreeMap::from([(2, second.clone() as Arc<dyn EmbeddingStore>)]),
        ),
        (
            main.clone(),
            BTreeMap::from([(2, second.clone() as Arc<dyn AggregatorStore>)]),
        ),
    );
    let row = |id: &str| EmbeddingRow {
        id: id.into(),
        embedding: vec![1.0, 0.0],
        search_embedding: vec![1.0, 0.0],
        ..Default::default()
    };
    let generation = |table| Generation {
        table,
        model: "m",
        version: 1,
    };
    for table in ["emb2", "emb7", "unregistered"] {
        router
            .put(generation(table), vec![row(table)], None)
            .await
            .unwrap();
        let flag = BTreeMap::from([("out_of_stock".to_string(), "true".to_string())]);
        let agg = table.replace("emb", "agg");
        AggregatorStore::merge(&router, &agg, vec![(table.to_string(), flag)])
            .await
            .unwrap();
    }
    let has = |store: &Arc<EmbeddedStorage>, table: &'static str| {
        let store = store.clone();
        async move {
            let e = EmbeddingStore::get(store.as_ref(), generation(table), &[table.into()])
                .await
                .unwrap()[0]
                .is_some();
            let agg = table.replace("emb", "agg");
            let a = AggregatorStore::get(store.as_ref(), &agg, &[table.into()])
                .await
                .unwrap()[0]
                .is_some();
            assert_eq!(e, a, "{table}: both families follow the same conf_id");
            e
        }
    };
    assert!(has(&second, "emb2").await && !has(&main, "emb2").await);
    assert!(
        has(&main, "emb7").await,
        "a conf_id without a block: the default"
    );
    assert!(has(&main, "unregistered").await);
    assert!(!has(&second, "emb7").await && !has(&second, "unregistered").await);
    // Reads go the same way.
    let read = EmbeddingStore::get(&router, generation("emb2"), &["emb2".into()])
        .await
        .unwrap();
    assert_eq!(read[0].as_ref().unwrap().id, "emb2");
}
