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
    "ef",
    "hnsw_ef",
    "indexing_threshold",
    "default_indexing_threshold",
];
/// Parameters whose values must parse as booleans when present.
pub const BOOL_PARAMS: &[&str] = &[
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
