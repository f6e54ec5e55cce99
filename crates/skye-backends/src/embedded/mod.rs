//! Backends that run inside the Skye process with no external service.

mod bytes;
mod cache;
mod config_store;
mod event_log;
mod storage;
mod vector_store;

pub use cache::MemoryCache;
pub use config_store::EmbeddedConfigStore;
pub use event_log::EmbeddedEventLog;
pub use storage::EmbeddedStorage;
pub use vector_store::EmbeddedVectorStore;
