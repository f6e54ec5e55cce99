//! Typed objects → flat `(key, value)` pairs.

use super::{TreeRoot, model_keys as mk, variant_keys as vk};
use crate::domain::{Model, Store, Variant};

/// `storage/stores/<id>` = JSON.
pub fn encode_store(root: &TreeRoot, id: &str, store: &Store) -> (String, String) {
    (root.store(id), json(store))
}

/// Every model-level key of `model` (not its variants), including `partition-states/*`.
pub fn encode_model(root: &TreeRoot, model: &Model) -> Vec<(String, String)> {
    let (e, m) = (model.entity.as_str(), model.name.as_str());
    let key = |field: &str| root.model_key(e, m, field);
    let mut kvs = vec![
        (
            key(mk::EMBEDDING_STORE_ENABLED),
            model.embedding_store_enabled.to_string(),
        ),
        (
            key(mk::EMBEDDING_STORE_TTL),
            model.embedding_store_ttl.to_string(),
        ),
        (
            key(mk::EMBEDDING_STORE_VERSION),
            model.embedding_store_version.to_string(),
        ),
        (key(mk::KAFKA_ID), model.kafka_id.to_string()),
        (key(mk::TOPIC_NAME), model.topic_name.clone()),
        (key(mk::METADATA), json(&model.metadata)),
        (key(mk::MODEL_CONFIG), json(&model.model_config)),
        (
            key(mk::TRAINING_DATA_PATH),
            model.training_data_path.clone(),
        ),
        (key(mk::MODEL_TYPE), model.model_type.to_string()),
        (
            key(mk::NUMBER_OF_PARTITIONS),
            model.number_of_partitions.to_string(),
        ),
        (
            key(mk::FAILURE_PRODUCER_KAFKA_ID),
            model.failure_producer_kafka_id.to_string(),
        ),
        (key(mk::JOB_FREQUENCY), model.job_frequency.clone()),
    ];
    for p in 0..model.number_of_partitions {
        let done = model.partition_states.get(&p).copied().unwrap_or(false);
        kvs.push((root.partition_state(e, m, p), u8::from(done).to_string()));
    }
    kvs
}

/// Every key of `variant`. `enabled` comes first and `vector-db-type` second, the order the
/// original's watchers rely on (spec AC §2.6) when the pairs are not written in one transaction.
pub fn encode_variant(root: &TreeRoot, variant: &Variant) -> Vec<(String, String)> {
    let key = |field: &str| root.variant_key(&variant.entity, &variant.model, &variant.name, field);
    let c = &variant.caching;
    vec![
        (key(vk::ENABLED), variant.enabled.to_string()),
        (key(vk::VECTOR_DB_TYPE), variant.vector_db_type.to_string()),
        (key(vk::VECTOR_DB_CONFIG), json(&variant.vector_db_config)),
        (key(vk::FILTER), json(&variant.filter)),
        (key(vk::TYPE), variant.variant_type.to_string()),
        (key(vk::VARIANT_STATE), variant.variant_state.to_string()),
        (key(vk::ONBOARDED), variant.onboarded.to_string()),
        (
            key(vk::VECTOR_DB_READ_VERSION),
            variant.vector_db_read_version.to_string(),
        ),
        (
            key(vk::VECTOR_DB_WRITE_VERSION),
            variant.vector_db_write_version.to_string(),
        ),
        (
            key(vk::EMBEDDING_STORE_READ_VERSION),
            variant.embedding_store_read_version.to_string(),
        ),
        (
            key(vk::EMBEDDING_STORE_WRITE_VERSION),
            variant.embedding_store_write_version.to_string(),
        ),
        (key(vk::RT_PARTITION), variant.rt_partition.to_string()),
        (
            key(vk::RATE_LIMIT),
            variant.rate_limiter.rate_limit.to_string(),
        ),
        (
            key(vk::BURST_LIMIT),
            variant.rate_limiter.burst_limit.to_string(),
        ),
        (
            key(vk::IN_MEMORY_CACHING_ENABLED),
            c.in_memory_caching_enabled.to_string(),
        ),
        (
            key(vk::IN_MEMORY_CACHE_TTL_SECONDS),
            c.in_memory_cache_ttl_seconds.to_string(),
        ),
        (
            key(vk::DISTRIBUTED_CACHING_ENABLED),
            c.distributed_caching_enabled.to_string(),
        ),
        (
            key(vk::DISTRIBUTED_CACHE_TTL_SECONDS),
            c.distributed_cache_ttl_seconds.to_string(),
        ),
        (
            key(vk::PARTIAL_HIT_DISABLED),
            c.partial_hit_disabled.to_string(),
        ),
        (
            key(vk::EMBEDDING_RETRIEVAL_IN_MEMORY),
            c.embedding_retrieval_in_memory_enabled.to_string(),
        ),
        (
            key(vk::EMBEDDING_RETRIEVAL_DISTRIBUTED),
            c.embedding_retrieval_distributed_enabled.to_string(),
        ),
        (
            key(vk::DOT_PRODUCT_IN_MEMORY),
            c.dot_product_in_memory_enabled.to_string(),
        ),
        (
            key(vk::DOT_PRODUCT_DISTRIBUTED),
            c.dot_product_distributed_enabled.to_string(),
        ),
        (
            key(vk::DEFAULT_RESPONSE_PERCENTAGE),
            variant.default_response_percentage.to_string(),
        ),
    ]
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Serialising these plain structs (string keys, no non-finite floats) cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}
