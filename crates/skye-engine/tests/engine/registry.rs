//! The registry against the embedded config store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use skye_backends::embedded::EmbeddedConfigStore;
use skye_core::config_store::{ConfigStore, Txn};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::registration::{
    RegisterEntity, RegisterFrequency, RegisterModel, RegisterStore, RegisterVariant,
};
use skye_engine::registry::Registry;

async fn registry(dir: &tempfile::TempDir) -> (Registry, Arc<dyn ConfigStore>) {
    let store: Arc<dyn ConfigStore> =
        Arc::new(EmbeddedConfigStore::open(&dir.path().join("c.redb")).unwrap());
    (Registry::open(store.clone(), "skye").await.unwrap(), store)
}

fn model_body(model: &str) -> serde_json::Value {
    json!({"entity": "catalog", "model": model, "job_frequency": "daily",
           "model_config": {"distance_function": "COSINE", "vector_dimension": 4}})
}

async fn seed(r: &Registry) {
    let id = r
        .register_store(RegisterStore::from_json(json!({"conf_id": 1, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"})).unwrap())
        .await
        .unwrap();
    assert_eq!(id, "1");
    r.register_frequency(RegisterFrequency::from_json(json!({"frequency": "daily"})).unwrap())
        .await
        .unwrap();
    r.register_entity(
        RegisterEntity::from_json(json!({"entity": "catalog", "store_id": "1"})).unwrap(),
    )
    .await
    .unwrap();
    r.register_model(RegisterModel::from_json(model_body("intent")).unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_visible_at_once_and_duplicates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = registry(&dir).await;
    seed(&r).await;
    let snap = r.snapshot();
    assert_eq!(
        snap.model("catalog", "intent")
            .unwrap()
            .model_config
            .vector_dimension,
        4
    );

    let second = r
        .register_store(RegisterStore::from_json(json!({"embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"})).unwrap())
        .await
        .unwrap();
    assert_eq!(second, "2", "store ids are allocated, never reused");
    let dup = r
        .register_frequency(RegisterFrequency::from_json(json!({"frequency": "daily"})).unwrap())
        .await;
    assert_eq!(dup.unwrap_err().code(), ErrorCode::AlreadyExists);
    // Exact match, not substring (spec AC §8 B18).
    r.register_frequency(RegisterFrequency::from_json(json!({"frequency": "dai"})).unwrap())
        .await
        .unwrap();

    let alias = r
        .register_model(RegisterModel::from_json(model_body("INTENT")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(alias.code(), ErrorCode::AlreadyExists);
    assert!(alias.to_string().contains("collide"), "{alias}");

    let no_entity = RegisterModel::from_json(json!({"entity": "nope", "model": "m",
        "model_config": {"distance_function": "DOT", "vector_dimension": 2}}))
    .unwrap();
    assert_eq!(
        r.register_model(no_entity).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    let no_store = RegisterEntity::from_json(json!({"entity": "e2", "store_id": "9"})).unwrap();
    assert_eq!(
        r.register_entity(no_store).await.unwrap_err().code(),
        ErrorCode::NotFound
    );

    let variant = || {
        RegisterVariant::from_json(
            json!({"entity": "catalog", "model": "intent", "variant": "organic"}),
        )
        .unwrap()
    };
    r.register_variant(variant()).await.unwrap();
    assert_eq!(
        r.register_variant(variant()).await.unwrap_err().code(),
        ErrorCode::AlreadyExists
    );
    let v = r
        .snapshot()
        .variant("catalog", "intent", "organic")
        .unwrap()
        .clone();
    assert_eq!(v.embedding_store_read_version, 1);
    assert!(v.enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_name_admit_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = registry(&dir).await;
    seed(&r).await;
    let r = Arc::new(r);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            r.register_model(RegisterModel::from_json(model_body("race")).unwrap())
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::AlreadyExists, "{e}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_written_by_another_writer_reach_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (r, store) = registry(&dir).await;
    seed(&r).await;
    let key = r.root().variant_key("catalog", "intent", "ad", "enabled");
    store.txn(Txn::new().put(key, "true")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while r.snapshot().variant("catalog", "intent", "ad").is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "watch did not deliver the change"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_registry_reads_back_everything() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let (r, store) = registry(&dir).await;
        seed(&r).await;
        let snap = r.snapshot();
        r.shutdown().await;
        drop(store);
        snap
    };
    let (r, _) = registry(&dir).await;
    assert_eq!(r.snapshot().entities, before.entities);
    assert_eq!(r.snapshot().frequencies, ["daily"]);
}
