//! Implementations of the backend traits of `skye-core`.
//!
//! * [`embedded`]: the default, single-process backends, durable under the data directory.
//! * Scale-out engines (etcd, Kafka, Redis, Qdrant, ScyllaDB, NGT/Eigenix) are cargo features of
//!   this crate;
//!   a backend that is compiled out is reported by the factory as "built without feature X".
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod embedded;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod factory;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "qdrant")]
pub mod qdrant;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "ngt-eigenix")]
pub mod remote_grpc;
#[cfg(feature = "scylla")]
pub mod scylla;
