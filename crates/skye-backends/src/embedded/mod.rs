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

/// Why a redb file could not be opened.
pub(crate) enum OpenError {
    /// Another process holds it.
    InUse(String),
    Failed(String),
}

/// Opens (or creates) the redb file at `path`, creating its directory.
pub(crate) fn open_db(path: &std::path::Path) -> Result<redb::Database, OpenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| OpenError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    redb::Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(format!(
            "{} is in use by another Skye process",
            path.display()
        )),
        other => OpenError::Failed(format!("cannot open {}: {other}", path.display())),
    })
}
