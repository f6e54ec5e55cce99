//! Models: one embedding space of an entity, shared by its variants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DistanceFunction, ModelType, Variant};

/// `model-config`: how vectors of this model are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub distance_function: DistanceFunction,
    pub vector_dimension: u32,
}

/// Where a feature comes from in the feature store (`metadata.details.<column>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct FeatureRef {
    #[serde(rename = "feature-group")]
    pub feature_group: String,
    pub feature: String,
}

/// `metadata`: the column mapping of the training data. Stored for the job orchestrator; Skye
/// itself does not read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ModelMetadata {
    pub entity: String,
    #[serde(rename = "key-type")]
    pub key_type: String,
    pub details: BTreeMap<String, FeatureRef>,
}

/// A registered model and its variants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub entity: String,
    pub name: String,
    pub model_config: ModelConfig,
    pub model_type: ModelType,
    pub embedding_store_enabled: bool,
    /// Seconds; 0 = rows never expire.
    pub embedding_store_ttl: u64,
    /// The embedding-store generation the next job writes; +1 per RESET job.
    pub embedding_store_version: i64,
    pub kafka_id: i64,
    pub failure_producer_kafka_id: i64,
    pub topic_name: String,
    pub training_data_path: String,
    pub job_frequency: String,
    pub number_of_partitions: u32,
    /// Per logical job partition: whether its EOF was seen in the current job.
    pub partition_states: BTreeMap<u32, bool>,
    pub metadata: ModelMetadata,
    pub variants: BTreeMap<String, Variant>,
}

impl Model {
    /// Whether every partition of the current job has reported EOF.
    pub fn all_partitions_done(&self) -> bool {
        (0..self.number_of_partitions)
            .all(|p| self.partition_states.get(&p).copied().unwrap_or(false))
    }
}
