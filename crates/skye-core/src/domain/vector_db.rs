//! `vector-db-config` (spec AC §2.3.4): where a variant's collections live and how they are built.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::FieldSchema;
use crate::json_compat::{Nested, Shape, lenient_string_map};

/// gRPC client settings for remote vector DBs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Http2Config {
    /// Search timeout in ms of remote vector DBs.
    pub deadline: u64,
    /// Timeout in ms of admin and write calls to remote vector DBs.
    pub write_deadline: u64,
    pub keep_alive_time: String,
    pub thread_pool_size: String,
    pub is_plain_text: bool,
}

/// One payload field of a variant's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PayloadField {
    pub field_schema: FieldSchema,
    /// Used when neither the event nor the aggregator row supplies the field.
    pub default_value: String,
    pub lookup_enabled: bool,
    pub is_principal: bool,
}

/// The variant's vector-DB settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct VectorDbConfig {
    pub read_host: String,
    pub write_host: String,
    /// Port of the remote vector DB, a string in the original's tree.
    #[serde(deserialize_with = "crate::json_compat::string_or_number")]
    pub port: String,
    pub http2config: Http2Config,
    /// Unused by Skye; kept so an existing tree round-trips.
    pub http1config: serde_json::Value,
    /// Index and collection parameters, all strings (`m`, `ef_construct`, `indexing_threshold`…).
    #[serde(deserialize_with = "lenient_string_map")]
    pub params: BTreeMap<String, String>,
    pub payload: BTreeMap<String, PayloadField>,
}

impl VectorDbConfig {
    /// The search-time parameters of `params` (`hnsw_ef`, or `ef`, `exact`, `indexed_only`,
    /// `score_threshold`); values registration refused never reach here, and any that do are
    /// left at their defaults.
    pub fn search_params(&self) -> SearchParams {
        let get = |name: &str| self.params.get(name).map(|v| v.trim());
        let flag = |name: &str| get(name).and_then(crate::tree::parse_go_bool) == Some(true);
        SearchParams {
            ef: get("hnsw_ef")
                .or_else(|| get("ef"))
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|ef| (1..=MAX_SEARCH_EF).contains(ef)),
            exact: flag("exact"),
            indexed_only: flag("indexed_only"),
            score_threshold: get("score_threshold")
                .and_then(|v| v.parse::<f32>().ok())
                .filter(|t| t.is_finite()),
        }
    }
}

/// How a variant's searches run, from its `params`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SearchParams {
    /// Beam width; `None`: the engine's default (the embedded engine widens it with the
    /// collection's size).
    pub ef: Option<usize>,
    /// Score every point instead of walking the graph.
    pub exact: bool,
    /// Leave out points not yet in the index (the embedded engine otherwise scans them).
    pub indexed_only: bool,
    /// Hits scoring worse are dropped: below it for COSINE/DOT, above it (a distance) for
    /// EUCLIDEAN.
    pub score_threshold: Option<f32>,
}

/// Widest beam a variant may ask for.
pub const MAX_SEARCH_EF: usize = 100_000;

/// Parameters whose values must parse as unsigned integers when present.
pub const INTEGER_PARAMS: &[&str] = &[
    "shard_number",
    "replication_factor",
    "write_consistency_factor",
    "max_indexing_threads",
    "segment_number",
    "max_segment_size_in_mb",
    "m",
    "ef_construct",
    "indexing_threshold",
    "default_indexing_threshold",
];
/// Search beam widths: integers from 1 to [`MAX_SEARCH_EF`].
pub const EF_PARAMS: &[&str] = &["ef", "hnsw_ef"];
/// Parameters whose values must parse as finite numbers when present.
pub const FLOAT_PARAMS: &[&str] = &["score_threshold"];
/// Parameters whose values must parse as booleans when present.
pub const BOOL_PARAMS: &[&str] = &[
    "on_disk",
    "on_disk_payload",
    "after_collection_index_payload",
    "exact",
    "indexed_only",
];

static PAYLOAD_FIELD_SHAPE: Shape = Shape {
    fields: &[
        ("field_schema", Nested::Leaf),
        ("default_value", Nested::Leaf),
        ("lookup_enabled", Nested::Leaf),
        ("is_principal", Nested::Leaf),
    ],
};
static HTTP2_SHAPE: Shape = Shape {
    fields: &[
        ("deadline", Nested::Leaf),
        ("write_deadline", Nested::Leaf),
        ("keep_alive_time", Nested::Leaf),
        ("thread_pool_size", Nested::Leaf),
        ("is_plain_text", Nested::Leaf),
    ],
};
/// Key shape of a `vector_db_config` object, for [`crate::json_compat::fold_keys`].
pub static VECTOR_DB_CONFIG_SHAPE: Shape = Shape {
    fields: &[
        ("read_host", Nested::Leaf),
        ("write_host", Nested::Leaf),
        ("port", Nested::Leaf),
        ("http2config", Nested::Object(&HTTP2_SHAPE)),
        ("http1config", Nested::Leaf),
        ("params", Nested::Leaf),
        ("payload", Nested::MapOf(&PAYLOAD_FIELD_SHAPE)),
    ],
};
