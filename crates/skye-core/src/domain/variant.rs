//! Variants: one served index of a model, with its own filter, vector DB and versions.

use serde::{Deserialize, Serialize};

use super::{CollectionRef, VariantKey, VariantState, VariantType, VectorDbConfig, VectorDbType};
use crate::json_compat::{Nested, Shape};

/// Key shape of one filter criterion, for [`crate::json_compat::fold_keys`].
pub static CRITERION_SHAPE: Shape = Shape {
    fields: &[
        ("column_name", Nested::Leaf),
        ("filter_value", Nested::Leaf),
        ("default_value", Nested::Leaf),
    ],
};
/// Key shape of a stored `filter` object.
pub static VSS_FILTER_SHAPE: Shape = Shape {
    fields: &[("criteria", Nested::ArrayOf(&CRITERION_SHAPE))],
};

/// One equality condition of a variant's ingestion filter (`filter.criteria[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Criterion {
    /// Aggregator column tested.
    pub column_name: String,
    /// Value the column must equal for the item to belong to the variant.
    pub filter_value: String,
    /// Value assumed when the aggregator row lacks the column.
    pub default_value: String,
}

/// The variant's ingestion filter (a.k.a. vss_filter): a conjunction of [`Criterion`]s.
///
/// `criteria: None` (registered without a filter) and `Some(vec![])` both admit every item at
/// ingestion; the original makes the former invisible to the realtime path (spec AC §2.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VssFilter {
    #[serde(default)]
    pub criteria: Option<Vec<Criterion>>,
}

impl VssFilter {
    /// The criteria, empty when none.
    pub fn criteria(&self) -> &[Criterion] {
        self.criteria.as_deref().unwrap_or(&[])
    }
}

/// Token bucket of the variant's realtime delta stream (`rate-limiter/*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimiter {
    /// Events per second; 0 pauses the variant's delta stream.
    pub rate_limit: u32,
    /// Bucket size and chunk size.
    pub burst_limit: u32,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            rate_limit: DEFAULT_RATE_LIMIT,
            burst_limit: DEFAULT_BURST_LIMIT,
        }
    }
}

/// Rate used when registration does not name one.
pub const DEFAULT_RATE_LIMIT: u32 = 1000;
/// Burst used when registration does not name one.
pub const DEFAULT_BURST_LIMIT: u32 = 1000;

/// Serving cache switches of a variant (spec serving §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CachingConfig {
    pub in_memory_caching_enabled: bool,
    pub in_memory_cache_ttl_seconds: u64,
    pub distributed_caching_enabled: bool,
    pub distributed_cache_ttl_seconds: u64,
    pub partial_hit_disabled: bool,
    pub embedding_retrieval_in_memory_enabled: bool,
    pub embedding_retrieval_distributed_enabled: bool,
    pub dot_product_in_memory_enabled: bool,
    pub dot_product_distributed_enabled: bool,
}

/// A registered variant and its live state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    pub entity: String,
    pub model: String,
    pub name: String,
    pub enabled: bool,
    pub vector_db_type: VectorDbType,
    pub vector_db_config: VectorDbConfig,
    pub filter: VssFilter,
    #[serde(rename = "type")]
    pub variant_type: VariantType,
    pub variant_state: VariantState,
    /// True once the variant's first collection was created.
    pub onboarded: bool,
    /// Collection version served.
    pub vector_db_read_version: i64,
    /// Collection version ingested into.
    pub vector_db_write_version: i64,
    /// Embedding-store generation served.
    pub embedding_store_read_version: i64,
    /// Embedding-store generation written by jobs.
    pub embedding_store_write_version: i64,
    /// Partition of the realtime delta topic (1..=255).
    pub rt_partition: u32,
    pub rate_limiter: RateLimiter,
    pub caching: CachingConfig,
    /// Percentage of requests answered with an empty result (load shedding drill); 0 = off.
    pub default_response_percentage: u32,
}

impl Variant {
    /// This variant's identity for its vector stores.
    pub fn key(&self) -> VariantKey {
        VariantKey::new(&self.entity, &self.model, &self.name, self.vector_db_type)
    }

    /// The collection holding version `version` of this variant.
    pub fn collection(&self, version: i64) -> CollectionRef {
        self.key().at(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_empty_criteria_both_read_as_no_condition() {
        let absent: VssFilter = serde_json::from_str("{}").unwrap();
        let null: VssFilter = serde_json::from_str(r#"{"criteria":null}"#).unwrap();
        assert!(absent.criteria().is_empty());
        assert_eq!(absent, null);
        let one: VssFilter = serde_json::from_str(
            r#"{"criteria":[{"column_name":"out_of_stock","filter_value":"false"}]}"#,
        )
        .unwrap();
        assert_eq!(one.criteria()[0].default_value, "");
    }
}
