//! Round trips through the tree codec, and trees as the original and Horizon write them.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::domain::{DistanceFunction, Store, VariantState, VectorDbType};
use crate::registration::{RegisterModel, RegisterVariant};

fn sample_model_and_variant() -> (crate::domain::Model, crate::domain::Variant) {
    let model = RegisterModel::from_json(json!({
        "entity": "catalog", "model": "intent", "model_type": "DELTA", "number_of_partitions": 3,
        "model_config": {"distance_function": "DOT", "vector_dimension": 8},
        "embedding_store_enabled": true, "embedding_store_ttl": 60, "topic_name": "skye.embedding"
    }))
    .unwrap()
    .model;
    let variant = RegisterVariant::from_json(json!({
        "entity": "catalog", "model": "intent", "variant": "organic",
        "vector_db_config": {"params": {"m": "16"},
            "payload": {"price": {"field_schema": "integer", "default_value": "0"}}},
        "filter": [{"column_name": "is_live", "filter_value": "true"}],
        "in_memory_caching_enabled": true, "in_memory_cache_ttl_seconds": 30,
        "rt_partition": 7, "rate_limiters": {"rate_limit": 5, "burst_limit": 9}
    }))
    .unwrap()
    .variant;
    (model, variant)
}

#[test]
fn what_is_encoded_decodes_to_the_same_objects() {
    let root = TreeRoot::new("skye");
    let (model, variant) = sample_model_and_variant();
    let store = Store {
        conf_id: 1,
        embeddings_table: "emb".into(),
        ..Store::default()
    };
    let mut kvs = vec![
        encode_store(&root, "1", &store),
        (root.entity_store_id("catalog"), "1".to_string()),
        (root.frequencies(), "daily,FREQ_3H".to_string()),
    ];
    kvs.extend(encode_model(&root, &model));
    kvs.extend(encode_variant(&root, &variant));
    let snap = decode(&root, 42, kvs);
    assert!(snap.load_errors.is_empty(), "{:?}", snap.load_errors);
    assert_eq!(snap.revision, 42);
    assert_eq!(snap.frequencies, ["daily", "FREQ_3H"]);
    assert_eq!(snap.store("1").unwrap(), &store);
    let mut expected = model.clone();
    expected.variants = BTreeMap::from([(variant.name.clone(), variant.clone())]);
    assert_eq!(snap.model("catalog", "intent").unwrap(), &expected);
}

#[test]
fn a_tree_written_by_the_original_loads() {
    let root = TreeRoot::new("skye");
    let m = "/config/skye/entity/test-products/models/product-embeddings";
    let kvs: Vec<(String, String)> = [
        ("/config/skye/storage/frequencies", ",daily"),
        ("/config/skye/storage/stores/1", r#"{"conf_id":1,"embeddings_table":"embeddings","aggregator_table":"aggregator","db":"testdb"}"#),
        ("/config/skye/entity/test-products/store-id", "1"),
        (&format!("{m}/model-config"), r#"{"distance_function":"Cosine","vector_dimension":4}"#),
        (&format!("{m}/model-type"), "RESET"),
        (&format!("{m}/Embedding-Store-Version"), "2"),
        (&format!("{m}/number-of-partitions"), "2"),
        (&format!("{m}/partition-states/0"), "1"),
        (&format!("{m}/partition-states/1"), "0"),
        (&format!("{m}/mq-id"), "4"),
        (&format!("{m}/variants/v1/enabled"), "true"),
        (&format!("{m}/variants/v1/vector-db-type"), "QDRANT"),
        (&format!("{m}/variants/v1/vector-db-config"), r#"{"read_host":"172.18.0.3","write_host":"172.18.0.3","port":"6334","Http2Config":{"deadline":5000},"params":{"shard_number":"1"}}"#),
        (&format!("{m}/variants/v1/filter"), r#"{"criteria":[{"Column_Name":"sc","filter_value":"1","default_value":"0"}]}"#),
        (&format!("{m}/variants/v1/variant-state"), "INDEXING_STARTED"),
        (&format!("{m}/variants/v1/rate-limiters/rate-limit"), "100"),
        (&format!("{m}/variants/v1/rate-limiters/burst-limit"), "200"),
        (&format!("{m}/variants/v1/in-memory-cache-TTL-seconds"), "60"),
        (&format!("{m}/variants/v1/embedding-retrieval-in-memory-config"), r#"{"enabled":true,"ttl":5}"#),
        (&format!("{m}/variants/v1/dot-product-distributed-config/enabled"), "T"),
        ("/config/skye/default-in-memory-caching-ttl-seconds", "10"),
        ("/config/skye2/entity/other/store-id", "9"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let snap = decode(&root, 7, kvs);
    assert!(snap.load_errors.is_empty(), "{:?}", snap.load_errors);
    assert_eq!(snap.frequencies, ["daily"]);
    assert_eq!(
        snap.entities.len(),
        1,
        "keys of /config/skye2 must not leak in"
    );
    let model = snap.model("test-products", "product-embeddings").unwrap();
    assert_eq!(
        model.model_config.distance_function,
        DistanceFunction::Cosine
    );
    assert_eq!(model.embedding_store_version, 2);
    assert_eq!(model.kafka_id, 4);
    assert!(!model.all_partitions_done());
    let v = &model.variants["v1"];
    assert_eq!(v.vector_db_type, VectorDbType::Qdrant);
    assert_eq!(v.vector_db_config.http2config.deadline, 5000);
    assert_eq!(v.filter.criteria()[0].column_name, "sc");
    assert_eq!(v.variant_state, VariantState::IndexingStarted);
    assert_eq!(
        (v.rate_limiter.rate_limit, v.rate_limiter.burst_limit),
        (100, 200)
    );
    assert_eq!(v.caching.in_memory_cache_ttl_seconds, 60);
    assert!(v.caching.embedding_retrieval_in_memory_enabled);
    assert!(v.caching.dot_product_distributed_enabled);
}

#[test]
fn one_bad_value_skips_only_its_own_object() {
    let root = TreeRoot::new("skye");
    let (model, variant) = sample_model_and_variant();
    let mut kvs = encode_model(&root, &model);
    kvs.extend(encode_variant(&root, &variant));
    let bad = "/config/skye/entity/catalog/models/broken";
    kvs.push((
        format!("{bad}/model-config"),
        r#"{"distance_function":"DOT","vector_dimension":"4"}"#.into(),
    ));
    kvs.push((
        root.variant_key("catalog", "intent", "other", "enabled"),
        "maybe".into(),
    ));
    let snap = decode(&root, 1, kvs);
    assert_eq!(snap.load_errors.len(), 2, "{:?}", snap.load_errors);
    assert!(snap.load_errors[0].key.ends_with("broken/model-config"));
    assert!(snap.model("catalog", "broken").is_err());
    let m = snap.model("catalog", "intent").unwrap();
    assert_eq!(m.variants.keys().collect::<Vec<_>>(), ["organic"]);
}
