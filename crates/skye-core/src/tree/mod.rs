//! The config tree: the key layout of spec AC §2.2 and its codec.
//!
//! Every backend of [`crate::config_store::ConfigStore`] (the embedded KV and etcd) holds the
//! same flat keys under `/config/<app_name>/`, so an existing etcd tree written by the original
//! (or by Horizon) is readable, and what Skye writes is readable by the original's loader.
//! Values are rendered like Go's `%v`: booleans `true`/`false`, integers in base 10, strings raw,
//! objects as JSON.

mod decode;
mod encode;

pub use decode::decode;
pub use encode::{encode_model, encode_store, encode_variant};

/// Model-level keys, relative to `.../models/<model>/`.
pub mod model_keys {
    pub const EMBEDDING_STORE_ENABLED: &str = "embedding-store-enabled";
    pub const EMBEDDING_STORE_TTL: &str = "embedding-store-ttl";
    pub const EMBEDDING_STORE_VERSION: &str = "embedding-store-version";
    pub const KAFKA_ID: &str = "kafka-id";
    pub const TOPIC_NAME: &str = "topic-name";
    pub const METADATA: &str = "metadata";
    pub const MODEL_CONFIG: &str = "model-config";
    pub const TRAINING_DATA_PATH: &str = "training-data-path";
    pub const MODEL_TYPE: &str = "model-type";
    pub const NUMBER_OF_PARTITIONS: &str = "number-of-partitions";
    pub const PARTITION_STATES: &str = "partition-states";
    pub const FAILURE_PRODUCER_KAFKA_ID: &str = "failure-producer-kafka-id";
    pub const JOB_FREQUENCY: &str = "job-frequency";
}

/// Variant-level keys, relative to `.../variants/<variant>/`.
pub mod variant_keys {
    pub const ENABLED: &str = "enabled";
    pub const VECTOR_DB_TYPE: &str = "vector-db-type";
    pub const VECTOR_DB_CONFIG: &str = "vector-db-config";
    pub const FILTER: &str = "filter";
    pub const TYPE: &str = "type";
    pub const VARIANT_STATE: &str = "variant-state";
    pub const ONBOARDED: &str = "onboarded";
    pub const VECTOR_DB_READ_VERSION: &str = "vector-db-read-version";
    pub const VECTOR_DB_WRITE_VERSION: &str = "vector-db-write-version";
    pub const EMBEDDING_STORE_READ_VERSION: &str = "embedding-store-read-version";
    pub const EMBEDDING_STORE_WRITE_VERSION: &str = "embedding-store-write-version";
    pub const RT_PARTITION: &str = "rt-partition";
    pub const RATE_LIMIT: &str = "rate-limiter/rate-limit";
    pub const BURST_LIMIT: &str = "rate-limiter/burst-limit";
    pub const IN_MEMORY_CACHING_ENABLED: &str = "in-memory-caching-enabled";
    pub const IN_MEMORY_CACHE_TTL_SECONDS: &str = "in-memory-cache-TTL-seconds";
    pub const DISTRIBUTED_CACHING_ENABLED: &str = "distributed-caching-enabled";
    pub const DISTRIBUTED_CACHE_TTL_SECONDS: &str = "distributed-cache-TTL-seconds";
    pub const PARTIAL_HIT_DISABLED: &str = "partial-hit-disabled";
    pub const EMBEDDING_RETRIEVAL_IN_MEMORY: &str = "embedding-retrieval-in-memory-config/enabled";
    pub const EMBEDDING_RETRIEVAL_DISTRIBUTED: &str =
        "embedding-retrieval-distributed-config/enabled";
    pub const DOT_PRODUCT_IN_MEMORY: &str = "dot-product-in-memory-config/enabled";
    pub const DOT_PRODUCT_DISTRIBUTED: &str = "dot-product-distributed-config/enabled";
    pub const DEFAULT_RESPONSE_PERCENTAGE: &str = "default-response-percentage";
}

/// Builds absolute keys under `/config/<app_name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRoot {
    root: String,
}

impl TreeRoot {
    /// The tree of application `app_name` (`skye` in every shipped deployment).
    pub fn new(app_name: &str) -> Self {
        TreeRoot {
            root: format!("/config/{app_name}"),
        }
    }

    /// `/config/<app>/`: the prefix of every key (with the slash, so that `/config/skye2` does
    /// not match `/config/skye`, spec AC §8 B16).
    pub fn prefix(&self) -> String {
        format!("{}/", self.root)
    }

    pub fn frequencies(&self) -> String {
        format!("{}/storage/frequencies", self.root)
    }

    pub fn store(&self, id: &str) -> String {
        format!("{}/storage/stores/{id}", self.root)
    }

    pub fn stores_prefix(&self) -> String {
        format!("{}/storage/stores/", self.root)
    }

    pub fn entity_store_id(&self, entity: &str) -> String {
        format!("{}/entity/{entity}/store-id", self.root)
    }

    pub fn model_prefix(&self, entity: &str, model: &str) -> String {
        format!("{}/entity/{entity}/models/{model}/", self.root)
    }

    pub fn model_key(&self, entity: &str, model: &str, field: &str) -> String {
        format!("{}{field}", self.model_prefix(entity, model))
    }

    pub fn partition_state(&self, entity: &str, model: &str, partition: u32) -> String {
        self.model_key(
            entity,
            model,
            &format!("{}/{partition}", model_keys::PARTITION_STATES),
        )
    }

    pub fn variant_prefix(&self, entity: &str, model: &str, variant: &str) -> String {
        format!("{}variants/{variant}/", self.model_prefix(entity, model))
    }

    pub fn variant_key(&self, entity: &str, model: &str, variant: &str, field: &str) -> String {
        format!("{}{field}", self.variant_prefix(entity, model, variant))
    }

    /// The key relative to the root, or `None` when it lies outside the tree.
    pub fn relative<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.root.as_str())?.strip_prefix('/')
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_original_layout() {
        let t = TreeRoot::new("skye");
        assert_eq!(t.store("1"), "/config/skye/storage/stores/1");
        assert_eq!(
            t.entity_store_id("catalog"),
            "/config/skye/entity/catalog/store-id"
        );
        assert_eq!(
            t.partition_state("catalog", "m", 3),
            "/config/skye/entity/catalog/models/m/partition-states/3"
        );
        assert_eq!(
            t.variant_key("catalog", "m", "v", variant_keys::RATE_LIMIT),
            "/config/skye/entity/catalog/models/m/variants/v/rate-limiter/rate-limit"
        );
        assert_eq!(
            t.relative("/config/skye/entity/x/store-id"),
            Some("entity/x/store-id")
        );
        assert_eq!(t.relative("/config/skye2/entity/x/store-id"), None);
    }

    #[test]
    fn go_bool_spellings() {
        assert_eq!(parse_go_bool("T"), Some(true));
        assert_eq!(parse_go_bool("False"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
    }
}

#[cfg(test)]
mod codec_tests;
