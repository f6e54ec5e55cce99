//! Skye's services, written against the backend traits of `skye-core` only.
//!
//! * [`registry`]: the config registry (entities, models, variants) with lock-free snapshots.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod breaker;
pub mod ingest;
pub mod lifecycle;
pub mod observed;
pub mod registry;
pub mod routing;
pub mod search;
#[cfg(test)]
mod test_support;
