//! Backends that run inside the Skye process with no external service.

mod bytes;
mod cache;
mod config_store;
mod event_log;
mod opening;
mod storage;
mod vector_store;

pub use cache::MemoryCache;
pub use config_store::EmbeddedConfigStore;
pub use event_log::{EmbeddedEventLog, LogLimits};
pub use opening::OpeningStorage;
pub use storage::EmbeddedStorage;
pub use vector_store::{EmbeddedVectorStore, EngineFigures};

pub use skye_core::settings::IntegrityCheck;

/// Why a redb file could not be opened.
pub(crate) enum OpenError {
    /// Another process holds it.
    InUse(String),
    Failed(String),
}

/// Page cache of each embedded file (redb's default is 1 GiB per file, which would let three
/// files hold 3 GiB of RSS): small for the config tree and the event log, larger for the
/// embedding rows that `candidateIds` queries read. The OS page cache still caches the files.
pub(crate) const CONFIG_CACHE_BYTES: usize = 16 << 20;
pub(crate) const EVENT_LOG_CACHE_BYTES: usize = 64 << 20;
pub(crate) const STORAGE_CACHE_BYTES: usize = 256 << 20;

/// Opens (or creates) the redb file at `path`, creating its directory.
pub(crate) fn open_db(
    path: &std::path::Path,
    cache_bytes: usize,
    check: IntegrityCheck,
) -> Result<redb::Database, OpenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| OpenError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    survive_damage(path, || {
        let mut db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        // redb verifies page checksums only when it recovers from a crash; a file damaged after
        // a clean shutdown would otherwise be read as it is (rows gone or values changed
        // without an error). The check reads the whole file (about 1 s per GB here).
        if check != IntegrityCheck::Off {
            let started = std::time::Instant::now();
            if !db.check_integrity()? {
                tracing::error!(
                    file = %path.display(),
                    "damaged pages were found and the file was repaired to its last intact \
                     commit; writes after that commit may be lost"
                );
            }
            tracing::info!(file = %path.display(), seconds = started.elapsed().as_secs_f64(),
                "integrity check done (backends.integrity_check = off skips it)");
        }
        Ok(db)
    })
    .map_err(OpenError::Failed)?
    .map_err(|e: redb::DatabaseError| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(format!(
            "{} is in use by another Skye process",
            path.display()
        )),
        other => OpenError::Failed(format!("cannot open {}: {other}", path.display())),
    })
}

/// Runs `f`, which reads the redb file at `path`, turning a panic into an error. redb trusts
/// its file: a damaged one (flipped bytes, a truncated copy, a zeroed page) can make it panic
/// instead of failing. Operations run on blocking tasks, whose panics already come back as
/// errors; this guards the synchronous opening.
pub(crate) fn survive_damage<T>(
    path: &std::path::Path,
    f: impl FnOnce() -> T,
) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".to_string());
        format!(
            "{} is damaged and cannot be read ({why}); restore it from a backup, or move it \
             away to start empty",
            path.display()
        )
    })
}
