//! The search side of the engine: request filters, the result cache and the similar-candidates
//! service.

pub mod cache;
pub mod embeddings;
pub mod executor;
pub mod filters;
pub mod freshness;
pub mod original_cache;
pub mod payloadless;
pub mod recall;
pub mod similar;
pub mod tiers;
