//! Flat `(key, value)` pairs → a typed [`ConfigSnapshot`].
//!
//! Follows the original loader (spec AC §2.1): path segments match field names after lower-casing
//! and dropping `-`; a JSON value may sit at an object's own path or the object may be spread
//! over sub-keys; empty values are directories. Unlike the original, one undecodable value skips
//! only the model or variant it belongs to and is reported in `load_errors`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::{TreeRoot, parse_go_bool};
use crate::domain::names::normalize;
use crate::domain::{
    CachingConfig, Entity, Model, ModelConfig, ModelMetadata, ModelType, RateLimiter, Store,
    Variant, VariantState, VariantType, VectorDbConfig, VectorDbType, VssFilter,
    variant::VSS_FILTER_SHAPE, vector_db::VECTOR_DB_CONFIG_SHAPE,
};
use crate::json_compat::{Nested, Shape, fold_keys};
use crate::snapshot::{ConfigSnapshot, LoadError};

/// Fields of one object: normalised relative path → (absolute key, value).
#[derive(Default)]
struct Fields(BTreeMap<String, (String, String)>);

type ModelId = (String, String);
type VariantId = (String, String, String);

/// Builds the snapshot of `revision` from every key of the tree.
pub fn decode(
    root: &TreeRoot,
    revision: u64,
    kvs: impl IntoIterator<Item = (String, String)>,
) -> ConfigSnapshot {
    let mut snap = ConfigSnapshot {
        revision,
        ..ConfigSnapshot::default()
    };
    let mut entity_stores: BTreeMap<String, String> = BTreeMap::new();
    let mut models: BTreeMap<ModelId, Fields> = BTreeMap::new();
    let mut partitions: BTreeMap<ModelId, Vec<(String, String, String)>> = BTreeMap::new();
    let mut variants: BTreeMap<VariantId, Fields> = BTreeMap::new();

    for (key, value) in kvs {
        let Some(rel) = root.relative(&key) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let segs: Vec<&str> = rel.split('/').collect();
        let norm = |i: usize| segs.get(i).map(|s| normalize(s)).unwrap_or_default();
        match (norm(0).as_str(), segs.len()) {
            ("storage", 2) if norm(1) == "frequencies" => {
                snap.frequencies = split_frequencies(&value);
            }
            ("storage", 3) if norm(1) == "stores" => match parse_json::<Store>(&value, None) {
                Ok(store) => {
                    snap.stores.insert(segs[2].to_string(), store);
                }
                Err(message) => snap.load_errors.push(LoadError { key, message }),
            },
            ("entity", 3) if norm(2) == "storeid" => {
                entity_stores.insert(segs[1].to_string(), value);
            }
            ("entity", n) if n >= 5 && norm(2) == "models" => {
                let id = (segs[1].to_string(), segs[3].to_string());
                match norm(4).as_str() {
                    "variants" if n >= 7 => {
                        let vid = (id.0, id.1, segs[5].to_string());
                        let field = join_normalized(&segs[6..]);
                        variants
                            .entry(vid)
                            .or_default()
                            .0
                            .insert(field, (key, value));
                    }
                    "partitionstates" if n == 6 => {
                        partitions
                            .entry(id)
                            .or_default()
                            .push((segs[5].to_string(), key, value));
                    }
                    _ => {
                        let field = join_normalized(&segs[4..]);
                        models.entry(id).or_default().0.insert(field, (key, value));
                    }
                }
            }
            _ => {}
        }
    }

    for (name, store_id) in entity_stores {
        snap.entities.insert(
            name.clone(),
            Entity {
                name,
                store_id,
                models: BTreeMap::new(),
            },
        );
    }
    for ((e, m), fields) in models {
        let parts = partitions
            .remove(&(e.clone(), m.clone()))
            .unwrap_or_default();
        match build_model(&e, &m, &fields, parts) {
            Ok(model) => {
                let entity = snap.entities.entry(e.clone()).or_insert_with(|| Entity {
                    name: e.clone(),
                    store_id: String::new(),
                    models: BTreeMap::new(),
                });
                entity.models.insert(m, model);
            }
            Err(err) => snap.load_errors.push(err),
        }
    }
    for ((e, m, v), fields) in variants {
        let Some(model) = snap
            .entities
            .get_mut(&e)
            .and_then(|ent| ent.models.get_mut(&m))
        else {
            // Variants of a model that failed to load (already reported) or has no keys.
            continue;
        };
        match build_variant(&e, &m, &v, &fields) {
            Ok(variant) => {
                model.variants.insert(v, variant);
            }
            Err(err) => snap.load_errors.push(err),
        }
    }
    snap
}

/// `",daily,FREQ_3H"` → `["daily", "FREQ_3H"]` (the original writes a leading comma).
fn split_frequencies(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn join_normalized(segs: &[&str]) -> String {
    segs.iter()
        .map(|s| normalize(s))
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_json<T: DeserializeOwned>(text: &str, shape: Option<&Shape>) -> Result<T, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if let Some(shape) = shape {
        fold_keys(&mut value, shape);
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

impl Fields {
    fn raw(&self, field: &str) -> Option<&(String, String)> {
        self.0.get(field)
    }

    fn err(&self, field: &str, message: String) -> LoadError {
        let key = self
            .raw(field)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| field.to_string());
        LoadError { key, message }
    }

    fn string(&self, field: &str) -> String {
        self.raw(field).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    fn bool(&self, field: &str, default: bool) -> Result<bool, LoadError> {
        match self.raw(field) {
            None => Ok(default),
            Some((_, v)) => parse_go_bool(v.trim())
                .ok_or_else(|| self.err(field, format!("'{v}' is not a boolean"))),
        }
    }

    fn int<T: std::str::FromStr>(&self, field: &str, default: T) -> Result<T, LoadError> {
        match self.raw(field) {
            None => Ok(default),
            Some((_, v)) => v
                .trim()
                .parse()
                .map_err(|_| self.err(field, format!("'{v}' is not a valid integer"))),
        }
    }

    fn parsed<T: std::str::FromStr>(&self, field: &str, default: T) -> Result<T, LoadError>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(field) {
            None => Ok(default),
            Some((_, v)) => v
                .parse()
                .map_err(|e: T::Err| self.err(field, e.to_string())),
        }
    }

    fn json<T: DeserializeOwned>(
        &self,
        field: &str,
        shape: Option<&Shape>,
    ) -> Result<Option<T>, LoadError> {
        match self.raw(field) {
            None => Ok(None),
            Some((_, v)) => parse_json(v, shape)
                .map(Some)
                .map_err(|m| self.err(field, m)),
        }
    }

    /// A flag stored either as `<object>/enabled` or as JSON `{"enabled": …}` at `<object>`.
    fn sub_bool(&self, object: &str, leaf: &str) -> Result<bool, LoadError> {
        let path = format!("{object}/{leaf}");
        if self.raw(&path).is_some() {
            return self.bool(&path, false);
        }
        let obj: Option<serde_json::Map<String, serde_json::Value>> = self.json(object, None)?;
        Ok(obj
            .and_then(|o| o.into_iter().find(|(k, _)| k.eq_ignore_ascii_case(leaf)))
            .map(|(_, v)| v.as_bool().unwrap_or(false))
            .unwrap_or(false))
    }
}

static MODEL_CONFIG_SHAPE: Shape = Shape {
    fields: &[
        ("distance_function", Nested::Leaf),
        ("vector_dimension", Nested::Leaf),
    ],
};
static RATE_LIMITER_SHAPE: Shape = Shape {
    fields: &[("rate_limit", Nested::Leaf), ("burst_limit", Nested::Leaf)],
};

fn build_model(
    entity: &str,
    model: &str,
    f: &Fields,
    partitions: Vec<(String, String, String)>,
) -> Result<Model, LoadError> {
    let model_config: ModelConfig = f
        .json("modelconfig", Some(&MODEL_CONFIG_SHAPE))?
        .ok_or_else(|| LoadError {
            key: format!("entity/{entity}/models/{model}/model-config"),
            message: "model-config is missing".to_string(),
        })?;
    let mut partition_states = BTreeMap::new();
    for (p, key, value) in partitions {
        let p: u32 = p.parse().map_err(|_| LoadError {
            key: key.clone(),
            message: format!("partition id '{p}' is not an integer"),
        })?;
        let done: i64 = value.trim().parse().map_err(|_| LoadError {
            key,
            message: format!("partition state '{value}' is not an integer"),
        })?;
        partition_states.insert(p, done != 0);
    }
    // Horizon writes mq-id / failure-producer-mq-id instead of the kafka-id keys (spec AC §2.7).
    let kafka_id = match f.raw("kafkaid") {
        Some(_) => f.int("kafkaid", 0)?,
        None => f.int("mqid", 0)?,
    };
    let failure_producer_kafka_id = match f.raw("failureproducerkafkaid") {
        Some(_) => f.int("failureproducerkafkaid", 0)?,
        None => f.int("failureproducermqid", 0)?,
    };
    Ok(Model {
        entity: entity.to_string(),
        name: model.to_string(),
        model_config,
        model_type: f.parsed("modeltype", ModelType::Reset)?,
        embedding_store_enabled: f.bool("embeddingstoreenabled", false)?,
        embedding_store_ttl: f.int("embeddingstorettl", 0)?,
        embedding_store_version: f.int("embeddingstoreversion", 1)?,
        kafka_id,
        failure_producer_kafka_id,
        topic_name: f.string("topicname"),
        training_data_path: f.string("trainingdatapath"),
        job_frequency: f.string("jobfrequency"),
        number_of_partitions: f.int("numberofpartitions", 0)?,
        partition_states,
        metadata: f
            .json::<ModelMetadata>("metadata", None)?
            .unwrap_or_default(),
        variants: BTreeMap::new(),
    })
}

fn build_variant(
    entity: &str,
    model: &str,
    variant: &str,
    f: &Fields,
) -> Result<Variant, LoadError> {
    let rate_limiter =
        if f.raw("ratelimiter/ratelimit").is_some() || f.raw("ratelimiter/burstlimit").is_some() {
            RateLimiter {
                rate_limit: f.int("ratelimiter/ratelimit", 0)?,
                burst_limit: f.int("ratelimiter/burstlimit", 0)?,
            }
        } else if let Some(rl) = f.json::<RateLimiter>("ratelimiter", Some(&RATE_LIMITER_SHAPE))? {
            rl
        } else {
            // The original's register-variant writes `rate-limiters/*`, a path its own reader
            // never reads (spec AC §8 B1). Honour those values rather than pausing the variant.
            RateLimiter {
                rate_limit: f.int("ratelimiters/ratelimit", 0)?,
                burst_limit: f.int("ratelimiters/burstlimit", 0)?,
            }
        };
    let caching = CachingConfig {
        in_memory_caching_enabled: f.bool("inmemorycachingenabled", false)?,
        in_memory_cache_ttl_seconds: f.int("inmemorycachettlseconds", 0)?,
        distributed_caching_enabled: f.bool("distributedcachingenabled", false)?,
        distributed_cache_ttl_seconds: f.int("distributedcachettlseconds", 0)?,
        partial_hit_disabled: f.bool("partialhitdisabled", false)?,
        embedding_retrieval_in_memory_enabled: f
            .sub_bool("embeddingretrievalinmemoryconfig", "enabled")?,
        embedding_retrieval_distributed_enabled: f
            .sub_bool("embeddingretrievaldistributedconfig", "enabled")?,
        dot_product_in_memory_enabled: f.sub_bool("dotproductinmemoryconfig", "enabled")?,
        dot_product_distributed_enabled: f.sub_bool("dotproductdistributedconfig", "enabled")?,
    };
    Ok(Variant {
        entity: entity.to_string(),
        model: model.to_string(),
        name: variant.to_string(),
        enabled: f.bool("enabled", false)?,
        vector_db_type: f.parsed("vectordbtype", VectorDbType::Embedded)?,
        vector_db_config: f
            .json::<VectorDbConfig>("vectordbconfig", Some(&VECTOR_DB_CONFIG_SHAPE))?
            .unwrap_or_default(),
        filter: f
            .json::<VssFilter>("filter", Some(&VSS_FILTER_SHAPE))?
            .unwrap_or_default(),
        variant_type: f.parsed("type", VariantType::ScaleUp)?,
        variant_state: f.parsed("variantstate", VariantState::Completed)?,
        onboarded: f.bool("onboarded", false)?,
        vector_db_read_version: f.int("vectordbreadversion", 1)?,
        vector_db_write_version: f.int("vectordbwriteversion", 1)?,
        embedding_store_read_version: f.int("embeddingstorereadversion", 1)?,
        embedding_store_write_version: f.int("embeddingstorewriteversion", 1)?,
        rt_partition: f.int("rtpartition", 0)?,
        rate_limiter,
        caching,
        default_response_percentage: f.int("defaultresponsepercentage", 0)?,
    })
}
