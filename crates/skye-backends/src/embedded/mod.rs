//! Backends that run inside the Skye process with no external service.

mod config_store;
mod vector_store;

pub use config_store::EmbeddedConfigStore;
pub use vector_store::EmbeddedVectorStore;
