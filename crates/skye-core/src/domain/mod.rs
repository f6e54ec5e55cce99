//! The registry's domain model: entity → model → variants, plus stores and job frequencies.
//!
//! These are the typed forms of the config tree of spec AC §2.2. They are built from the tree by
//! [`crate::tree`] and served to readers as an immutable [`crate::snapshot::ConfigSnapshot`].

pub mod collection;
pub mod enums;
pub mod model;
pub mod names;
pub mod variant;
pub mod vector_db;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use collection::{CollectionRef, VariantKey};
pub use enums::{
    DistanceFunction, FieldSchema, ModelType, UnknownVariant, VariantState, VariantType,
    VectorDbType,
};
pub use model::{FeatureRef, Model, ModelConfig, ModelMetadata};
pub use variant::{CachingConfig, Criterion, RateLimiter, Variant, VssFilter};
pub use vector_db::{Http2Config, PayloadField, VectorDbConfig};

/// Where an entity's embeddings and aggregator rows live (`storage/stores/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Store {
    /// Selects the storage connection block (`STORAGE_*_<conf_id>_*`) in scale-out mode.
    pub conf_id: i64,
    /// Stored for compatibility; never read (spec AC §1.1).
    pub db: String,
    pub embeddings_table: String,
    pub aggregator_table: String,
}

/// A kind of thing that is recommended (`entity/<name>`), e.g. a product catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub name: String,
    pub store_id: String,
    pub models: BTreeMap<String, Model>,
}
