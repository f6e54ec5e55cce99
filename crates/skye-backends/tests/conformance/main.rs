//! Conformance suites: one per backend trait, run against every implementation available.
//!
//! The embedded implementations always run. Scale-out implementations run when their service is
//! reachable (`.ci/run` starts them) and print `SKIPPED` loudly otherwise.

mod config_store;
mod event_log;
mod storage;
mod vector_store;
