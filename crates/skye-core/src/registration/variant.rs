//! `POST /api/v1/model/register-variant`.

use serde_json::Value;

use super::FieldReader;
use crate::domain::variant::CRITERION_SHAPE;
use crate::domain::vector_db::{
    BOOL_PARAMS, EF_PARAMS, FLOAT_PARAMS, INTEGER_PARAMS, MAX_SEARCH_EF, VECTOR_DB_CONFIG_SHAPE,
};
use crate::domain::{
    CachingConfig, Criterion, FieldSchema, RateLimiter, Variant, VariantState, VariantType,
    VectorDbConfig, VectorDbType, VssFilter, names,
};
use crate::error::ValidationErrors;
use crate::json_compat::{Nested, Shape};
use crate::tree::parse_go_bool;

/// Highest realtime-delta partition (the delta consumer has 256 workers, spec AC §4.7).
pub const MAX_RT_PARTITION: i64 = 255;

static RATE_LIMITERS_SHAPE: Shape = Shape {
    fields: &[("rate_limit", Nested::Leaf), ("burst_limit", Nested::Leaf)],
};
static SHAPE: Shape = Shape {
    fields: &[
        ("entity", Nested::Leaf),
        ("model", Nested::Leaf),
        ("variant", Nested::Leaf),
        ("vector_db_config", Nested::Object(&VECTOR_DB_CONFIG_SHAPE)),
        ("vector_db_type", Nested::Leaf),
        ("filter", Nested::ArrayOf(&CRITERION_SHAPE)),
        ("type", Nested::Leaf),
        ("in_memory_caching_enabled", Nested::Leaf),
        ("in_memory_cache_ttl_seconds", Nested::Leaf),
        ("distributed_caching_enabled", Nested::Leaf),
        ("distributed_cache_ttl_seconds", Nested::Leaf),
        // Skye extensions: the switches the original's second writer (Horizon) sets in the tree.
        ("partial_hit_disabled", Nested::Leaf),
        ("embedding_retrieval_in_memory_enabled", Nested::Leaf),
        ("embedding_retrieval_distributed_enabled", Nested::Leaf),
        ("dot_product_in_memory_enabled", Nested::Leaf),
        ("dot_product_distributed_enabled", Nested::Leaf),
        ("rt_partition", Nested::Leaf),
        ("rate_limiters", Nested::Object(&RATE_LIMITERS_SHAPE)),
    ],
};

/// A validated variant registration. Versions are filled in by the engine from the model.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterVariant {
    pub variant: Variant,
}

impl RegisterVariant {
    pub fn from_json(value: Value) -> Result<Self, ValidationErrors> {
        let mut r = FieldReader::new(value, &SHAPE)?;
        let entity = r.name("entity");
        let model = r.name("model");
        let name = r.name("variant");
        let vector_db_type = r
            .parsed::<VectorDbType>("vector_db_type")
            .unwrap_or_default();
        let vector_db_config = r
            .typed::<VectorDbConfig>("vector_db_config", Some(&VECTOR_DB_CONFIG_SHAPE))
            .unwrap_or_default();
        check_vector_db_config(&mut r, vector_db_type, &vector_db_config);
        let criteria = r.typed::<Vec<Criterion>>("filter", None);
        for (i, c) in criteria.iter().flatten().enumerate() {
            if c.column_name.is_empty() {
                r.fail(&format!("filter[{i}].column_name"), "is required");
            }
        }
        let variant_type = r.parsed::<VariantType>("type").unwrap_or_default();
        let caching = CachingConfig {
            in_memory_caching_enabled: r.bool("in_memory_caching_enabled"),
            in_memory_cache_ttl_seconds: ttl(&mut r, "in_memory_cache_ttl_seconds"),
            distributed_caching_enabled: r.bool("distributed_caching_enabled"),
            distributed_cache_ttl_seconds: ttl(&mut r, "distributed_cache_ttl_seconds"),
            partial_hit_disabled: r.bool("partial_hit_disabled"),
            embedding_retrieval_in_memory_enabled: r.bool("embedding_retrieval_in_memory_enabled"),
            embedding_retrieval_distributed_enabled: r
                .bool("embedding_retrieval_distributed_enabled"),
            dot_product_in_memory_enabled: r.bool("dot_product_in_memory_enabled"),
            dot_product_distributed_enabled: r.bool("dot_product_distributed_enabled"),
        };
        // The original requires rt_partition ≠ 0 and refuses 0 rates; absent fields here get
        // documented defaults instead, an explicit 0 is still refused.
        let rt_partition = r.int_in("rt_partition", 1, 1, MAX_RT_PARTITION);
        let rate_limiter = read_rate_limiter(&mut r);
        r.errors.into_result()?;
        Ok(RegisterVariant {
            variant: Variant {
                entity,
                model,
                name,
                enabled: true,
                vector_db_type,
                vector_db_config,
                filter: VssFilter { criteria },
                variant_type,
                variant_state: VariantState::Completed,
                onboarded: false,
                vector_db_read_version: 1,
                vector_db_write_version: 1,
                embedding_store_read_version: 1,
                embedding_store_write_version: 1,
                rt_partition: u32::try_from(rt_partition).unwrap_or(1),
                rate_limiter,
                caching,
                default_response_percentage: 0,
            },
        })
    }
}

fn ttl(r: &mut FieldReader, field: &str) -> u64 {
    r.int_in(field, 0, 0, i64::from(i32::MAX)).unsigned_abs()
}

fn read_rate_limiter(r: &mut FieldReader) -> RateLimiter {
    let defaults = RateLimiter::default();
    let Some(mut rl) = r.nested("rate_limiters") else {
        return defaults;
    };
    let max = i64::from(i32::MAX);
    let rate = rl.int_in("rate_limit", i64::from(defaults.rate_limit), 1, max);
    let burst = rl.int_in("burst_limit", i64::from(defaults.burst_limit), 1, max);
    r.absorb(rl);
    RateLimiter {
        rate_limit: u32::try_from(rate).unwrap_or(defaults.rate_limit),
        burst_limit: u32::try_from(burst).unwrap_or(defaults.burst_limit),
    }
}

fn check_vector_db_config(r: &mut FieldReader, db: VectorDbType, config: &VectorDbConfig) {
    let field = "vector_db_config";
    if db != VectorDbType::Embedded {
        if config.read_host.is_empty() {
            r.fail(
                &format!("{field}.read_host"),
                format!("is required for {db}"),
            );
        }
        if config.port.parse::<u16>().is_err() {
            r.fail(
                &format!("{field}.port"),
                format!("must be a TCP port number for {db}, got '{}'", config.port),
            );
        }
    }
    for (name, value) in &config.params {
        let path = format!("{field}.params.{name}");
        if INTEGER_PARAMS.contains(&name.as_str()) && value.trim().parse::<u64>().is_err() {
            r.fail(
                &path,
                format!("must be a non-negative integer, got '{value}'"),
            );
        }
        if BOOL_PARAMS.contains(&name.as_str()) && parse_go_bool(value.trim()).is_none() {
            r.fail(&path, format!("must be true or false, got '{value}'"));
        }
        if EF_PARAMS.contains(&name.as_str())
            && !value
                .trim()
                .parse::<usize>()
                .is_ok_and(|ef| (1..=MAX_SEARCH_EF).contains(&ef))
        {
            r.fail(
                &path,
                format!("must be a search beam width from 1 to {MAX_SEARCH_EF}, got '{value}'"),
            );
        }
        if FLOAT_PARAMS.contains(&name.as_str())
            && !value.trim().parse::<f32>().is_ok_and(f32::is_finite)
        {
            r.fail(&path, format!("must be a number, got '{value}'"));
        }
    }
    for (name, payload) in &config.payload {
        let path = format!("{field}.payload.{name}");
        if let Err(msg) = names::check_name(name) {
            r.fail(&path, msg);
        }
        if let Err(msg) = check_default(payload.field_schema, &payload.default_value) {
            r.fail(&format!("{path}.default_value"), msg);
        }
    }
}

/// A payload default must be convertible with its schema (or be a JSON array of such values).
fn check_default(schema: FieldSchema, value: &str) -> Result<(), String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(());
    }
    let items: Vec<String> = match serde_json::from_str::<Vec<Value>>(value) {
        Ok(list) => list
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Err(_) => vec![value.to_string()],
    };
    for item in items {
        let ok = match schema {
            FieldSchema::Integer | FieldSchema::Datetime => item.parse::<i64>().is_ok(),
            FieldSchema::Float => item.parse::<f64>().is_ok_and(f64::is_finite),
            FieldSchema::Boolean => parse_go_bool(&item).is_some(),
            FieldSchema::Keyword | FieldSchema::Text | FieldSchema::Geo => true,
        };
        if !ok {
            return Err(format!("'{item}' is not a valid {schema} value"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "entity": "catalog", "model": "intent", "variant": "organic",
            "vector_db_type": "EMBEDDED",
            "vector_db_config": {
                "params": {"m": 16, "ef_construct": "200"},
                "payload": {"price": {"field_schema": "integer", "default_value": "0"},
                            "out_of_stock": {"Field_Schema": "BOOLEAN", "default_value": "false"}}
            },
            "filter": [{"Column_Name": "is_live", "filter_value": "true", "default_value": "false"}],
            "rt_partition": 3,
            "rate_limiters": {"RateLimit": 100, "BurstLimit": 200}
        })
    }

    #[test]
    fn a_complete_body_becomes_a_variant() {
        let v = RegisterVariant::from_json(body()).unwrap().variant;
        assert_eq!(v.vector_db_type, VectorDbType::Embedded);
        assert_eq!(v.vector_db_config.params["m"], "16");
        assert_eq!(
            v.vector_db_config.payload["out_of_stock"].field_schema,
            FieldSchema::Boolean
        );
        assert_eq!(v.filter.criteria()[0].column_name, "is_live");
        assert_eq!(
            v.rate_limiter,
            RateLimiter {
                rate_limit: 100,
                burst_limit: 200
            }
        );
        assert_eq!(v.rt_partition, 3);
        assert!(v.enabled);
        assert_eq!(v.variant_state, VariantState::Completed);
    }

    #[test]
    fn the_embedding_rpc_cache_switches_are_accepted() {
        let mut b = body();
        b["embedding_retrieval_distributed_enabled"] = json!(true);
        b["dot_product_in_memory_enabled"] = json!(true);
        b["partial_hit_disabled"] = json!(true);
        let c = RegisterVariant::from_json(b).unwrap().variant.caching;
        assert!(c.embedding_retrieval_distributed_enabled && c.dot_product_in_memory_enabled);
        assert!(c.partial_hit_disabled);
        assert!(!c.embedding_retrieval_in_memory_enabled && !c.dot_product_distributed_enabled);
    }

    #[test]
    fn defaults_fill_absent_limits_but_explicit_zeroes_are_refused() {
        let mut b = body();
        b.as_object_mut().unwrap().remove("rate_limiters");
        b.as_object_mut().unwrap().remove("rt_partition");
        let v = RegisterVariant::from_json(b).unwrap().variant;
        assert_eq!(v.rt_partition, 1);
        assert_eq!(v.rate_limiter, RateLimiter::default());

        let mut b = body();
        b["rt_partition"] = json!(0);
        b["rate_limiters"] = json!({"rate_limit": 0, "burst_limit": 0});
        let err = RegisterVariant::from_json(b).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn remote_backends_need_a_host_and_port_and_params_must_parse() {
        let mut b = body();
        b["vector_db_type"] = json!("QDRANT");
        b["vector_db_config"]["params"]["m"] = json!("sixteen");
        b["vector_db_config"]["payload"]["price"]["default_value"] = json!("cheap");
        let err = RegisterVariant::from_json(b).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "vector_db_config.read_host",
                "vector_db_config.port",
                "vector_db_config.params.m",
                "vector_db_config.payload.price.default_value"
            ],
            "{err}"
        );
    }

    #[test]
    fn search_params_are_checked_and_read_back() {
        for (name, bad) in [
            ("hnsw_ef", json!("0")),
            ("ef", json!("wide")),
            ("hnsw_ef", json!("100001")),
            ("score_threshold", json!("high")),
            ("score_threshold", json!("NaN")),
            ("exact", json!("sometimes")),
            ("indexed_only", json!("2")),
        ] {
            let mut b = body();
            b["vector_db_config"]["params"][name] = bad.clone();
            let err = RegisterVariant::from_json(b).unwrap_err();
            assert_eq!(err.0.len(), 1, "{name}={bad}: {err}");
            assert_eq!(err.0[0].field, format!("vector_db_config.params.{name}"));
        }
        let mut b = body();
        b["vector_db_config"]["params"] = json!({"hnsw_ef": 300, "ef": "20", "exact": "true",
            "indexed_only": "false", "score_threshold": "0.25"});
        let v = RegisterVariant::from_json(b).unwrap().variant;
        let p = v.vector_db_config.search_params();
        assert_eq!(p.ef, Some(300), "hnsw_ef wins over ef");
        assert!(p.exact && !p.indexed_only);
        assert_eq!(p.score_threshold, Some(0.25));
        let none = RegisterVariant::from_json(body()).unwrap().variant;
        assert_eq!(
            none.vector_db_config.search_params(),
            crate::domain::vector_db::SearchParams::default()
        );
    }
}
