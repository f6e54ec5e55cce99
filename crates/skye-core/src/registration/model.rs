//! `POST /api/v1/model/register-model`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::FieldReader;
use crate::domain::{DistanceFunction, Model, ModelConfig, ModelMetadata, ModelType};
use crate::error::ValidationErrors;
use crate::json_compat::{Nested, Shape};

/// Largest accepted vector dimension.
pub const MAX_VECTOR_DIMENSION: i64 = 65_536;
/// Largest accepted number of logical job partitions.
pub const MAX_PARTITIONS: i64 = 4096;

static MODEL_CONFIG_SHAPE: Shape = Shape {
    fields: &[
        ("distance_function", Nested::Leaf),
        ("vector_dimension", Nested::Leaf),
    ],
};
static SHAPE: Shape = Shape {
    fields: &[
        ("entity", Nested::Leaf),
        ("model", Nested::Leaf),
        ("embedding_store_enabled", Nested::Leaf),
        ("embedding_store_ttl", Nested::Leaf),
        ("model_config", Nested::Object(&MODEL_CONFIG_SHAPE)),
        ("model_type", Nested::Leaf),
        ("kafka_id", Nested::Leaf),
        ("training_data_path", Nested::Leaf),
        ("metadata", Nested::Leaf),
        ("job_frequency", Nested::Leaf),
        ("number_of_partitions", Nested::Leaf),
        ("failure_producer_kafka_id", Nested::Leaf),
        ("topic_name", Nested::Leaf),
    ],
};

/// A validated model registration. `model.embedding_store_version` is 1 and every partition
/// state is "EOF not seen".
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterModel {
    pub model: Model,
}

impl RegisterModel {
    pub fn from_json(value: Value) -> Result<Self, ValidationErrors> {
        let mut r = FieldReader::new(value, &SHAPE)?;
        let entity = r.name("entity");
        let name = r.name("model");
        let model_config = read_model_config(&mut r);
        let model_type = r
            .parsed::<ModelType>("model_type")
            .unwrap_or(ModelType::Reset);
        let embedding_store_enabled = r.bool("embedding_store_enabled");
        let embedding_store_ttl = r.int_in("embedding_store_ttl", 0, 0, i64::from(i32::MAX));
        let kafka_id = r.int_in("kafka_id", 0, 0, i64::from(i32::MAX));
        let failure_producer_kafka_id =
            r.int_in("failure_producer_kafka_id", 0, 0, i64::from(i32::MAX));
        // 0 (the Go zero value of an absent field) means one partition.
        let number_of_partitions = match r.int_in("number_of_partitions", 1, 0, MAX_PARTITIONS) {
            0 => 1,
            n => n,
        };
        let topic_name = r.string("topic_name");
        if !topic_name.is_empty()
            && !topic_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            r.fail(
                "topic_name",
                "may only contain ASCII letters, digits, '.', '_' and '-'",
            );
        }
        let training_data_path = r.string("training_data_path");
        let job_frequency = r.string("job_frequency");
        let metadata = r
            .typed::<ModelMetadata>("metadata", None)
            .unwrap_or_default();
        r.errors.into_result()?;
        let model_config = model_config.ok_or_else(ValidationErrors::new)?;
        Ok(RegisterModel {
            model: Model {
                entity,
                name,
                model_config,
                model_type,
                embedding_store_enabled,
                embedding_store_ttl: embedding_store_ttl.unsigned_abs(),
                embedding_store_version: 1,
                kafka_id,
                failure_producer_kafka_id,
                topic_name,
                training_data_path,
                job_frequency,
                number_of_partitions: u32::try_from(number_of_partitions).unwrap_or(1),
                partition_states: (0..u32::try_from(number_of_partitions).unwrap_or(1))
                    .map(|p| (p, false))
                    .collect::<BTreeMap<_, _>>(),
                metadata,
                variants: BTreeMap::new(),
            },
        })
    }
}

fn read_model_config(r: &mut FieldReader) -> Option<ModelConfig> {
    let Some(mut c) = r.nested("model_config") else {
        r.fail(
            "model_config",
            "is required ({\"distance_function\": \"COSINE\", \"vector_dimension\": 128})",
        );
        return None;
    };
    let distance = c.parsed::<DistanceFunction>("distance_function");
    if distance.is_none() && c.errors.is_empty() {
        c.fail(
            "distance_function",
            "is required (DOT, COSINE, EUCLIDEAN or MANHATTAN)",
        );
    }
    let dimension = match c.opt_int("vector_dimension") {
        Some(d) if (1..=MAX_VECTOR_DIMENSION).contains(&d) => u32::try_from(d).ok(),
        Some(d) => {
            c.fail(
                "vector_dimension",
                format!("must be between 1 and {MAX_VECTOR_DIMENSION}, got {d}"),
            );
            None
        }
        None => {
            if c.errors
                .0
                .iter()
                .all(|e| !e.field.ends_with("vector_dimension"))
            {
                c.fail("vector_dimension", "is required");
            }
            None
        }
    };
    r.absorb(c);
    Some(ModelConfig {
        distance_function: distance?,
        vector_dimension: dimension?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "entity": "catalog", "model": "intent", "embedding_store_enabled": true,
            "embedding_store_ttl": 3600,
            "model_config": {"distance_function": "Cosine", "vector_dimension": 4},
            "model_type": "RESET", "job_frequency": "daily", "number_of_partitions": 2,
            "topic_name": "skye.embedding",
            "metadata": {"entity": "catalog", "key-type": "catalog_id",
                         "details": {"catalog_id": {"feature-group": "fg", "feature": "f"}}}
        })
    }

    #[test]
    fn a_complete_body_becomes_a_model() {
        let m = RegisterModel::from_json(body()).unwrap().model;
        assert_eq!(m.model_config.distance_function, DistanceFunction::Cosine);
        assert_eq!(m.model_config.vector_dimension, 4);
        assert_eq!(m.number_of_partitions, 2);
        assert_eq!(m.partition_states.len(), 2);
        assert_eq!(m.metadata.details["catalog_id"].feature_group, "fg");
        assert_eq!(m.embedding_store_version, 1);
    }

    #[test]
    fn a_string_dimension_is_refused_with_every_other_mistake() {
        let mut b = body();
        b["model_config"]["vector_dimension"] = json!("4");
        b["model_type"] = json!("SNAPSHOT");
        b["model"] = json!("");
        let err = RegisterModel::from_json(b).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["model", "model_config.vector_dimension", "model_type"],
            "{err}"
        );
    }

    #[test]
    fn missing_model_config_is_reported() {
        let err = RegisterModel::from_json(json!({"entity": "e", "model": "m"})).unwrap_err();
        assert!(
            err.to_string().contains("model_config: is required"),
            "{err}"
        );
    }
}
