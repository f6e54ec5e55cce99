//! Skye's embedded vector engine.
//!
//! Synchronous by design: no async runtime, no transport. Callers on an async runtime run
//! searches and builds on a blocking pool.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod collection;
pub mod distance;
pub mod error;
pub mod filter;
pub mod flat;
pub mod hnsw;
pub(crate) mod ids;
#[cfg(feature = "core")]
pub mod neutral;
pub mod npy;
pub mod payload;
pub(crate) mod payload_index;
pub(crate) mod payload_store;
pub mod persist;
pub mod vectors;

pub use collection::{
    Collection, CollectionConfig, CollectionInfo, Hit, MAPPED_VECTORS_MIN_BYTES, MemoryUsage, Plan,
    Point, SearchPath, SearchRequest, default_ef,
};
pub use distance::Metric;
pub use error::IndexError;
pub use filter::{Condition, Filter};
pub use payload::{GeoPoint, Value};
pub use persist::{DurableCollection, Recovery};
pub mod quant;
