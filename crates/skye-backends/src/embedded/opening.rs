//! The embedded embedding/aggregator store opened in the background
//! (`backends.integrity_check = "background"`): the process listens and answers vector searches
//! while redb verifies the file's pages on a blocking thread; every call to the store waits until
//! the check is done (nothing reads a page that was not verified), then goes to the store. A
//! file that cannot be opened makes every call fail with the reason.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skye_core::error::Cause;
use skye_core::settings::IntegrityCheck;
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation, StorageError,
};
use tokio::sync::watch;

use super::EmbeddedStorage;

type Opened = Option<Result<Arc<EmbeddedStorage>, StorageError>>;

/// An [`EmbeddedStorage`] on its way to open.
pub struct OpeningStorage {
    path: PathBuf,
    ready: watch::Receiver<Opened>,
}

impl std::fmt::Debug for OpeningStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeningStorage")
            .field("path", &self.path)
            .field("open", &self.ready.borrow().is_some())
            .finish()
    }
}

impl OpeningStorage {
    /// Starts opening `path` with a full integrity check on a blocking thread (needs a tokio
    /// runtime).
    pub fn spawn(path: PathBuf) -> Self {
        let (tx, ready) = watch::channel(None);
        let file = path.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let opened = EmbeddedStorage::open_checked(&file, IntegrityCheck::Full).map(Arc::new);
            match &opened {
                Ok(_) => tracing::info!(file = %file.display(),
                    seconds = started.elapsed().as_secs_f64(),
                    "embedding store checked and open; its calls proceed"),
                Err(e) => tracing::error!(file = %file.display(), error = %e,
                    "the embedding store cannot be opened; its calls fail"),
            }
            let _ = tx.send(Some(opened));
        });
        OpeningStorage { path, ready }
    }

    /// The store once open (every call waits here).
    async fn store(&self) -> Result<Arc<EmbeddedStorage>, StorageError> {
        let abandoned = || {
            StorageError::Unavailable(Cause::of(std::io::Error::other(format!(
                "opening {} was abandoned",
                self.path.display()
            ))))
        };
        let mut ready = self.ready.clone();
        let state = ready
            .wait_for(Option::is_some)
            .await
            .map_err(|_| abandoned())?;
        state.clone().unwrap_or_else(|| Err(abandoned()))
    }
}

#[async_trait]
impl EmbeddingStore for OpeningStorage {
    async fn put(
        &self,
        generation: Generation<'_>,
        rows: Vec<EmbeddingRow>,
        ttl: Option<Duration>,
    ) -> Result<(), StorageError> {
        self.store().await?.put(generation, rows, ttl).await
    }

    async fn get(
        &self,
        generation: Generation<'_>,
        ids: &[String],
    ) -> Result<Vec<Option<EmbeddingRow>>, StorageError> {
        EmbeddingStore::get(&*self.store().await?, generation, ids).await
    }

    async fn drop_generation(&self, generation: Generation<'_>) -> Result<(), StorageError> {
        self.store().await?.drop_generation(generation).await
    }
}

#[async_trait]
impl AggregatorStore for OpeningStorage {
    async fn get(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Option<AggregatorRow>>, StorageError> {
        AggregatorStore::get(&*self.store().await?, table, ids).await
    }

    async fn merge(
        &self,
        table: &str,
        updates: Vec<(String, AggregatorRow)>,
    ) -> Result<(), StorageError> {
        self.store().await?.merge(table, updates).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_wait_for_the_check_then_reach_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.redb");
        {
            let store = EmbeddedStorage::open(&path).unwrap();
            store
                .merge("t", vec![("a".into(), [("k".into(), "v".into())].into())])
                .await
                .unwrap();
        }
        let opening = OpeningStorage::spawn(path);
        let rows = AggregatorStore::get(&opening, "t", &["a".into(), "b".into()])
            .await
            .unwrap();
        assert_eq!(rows[0].as_ref().unwrap()["k"], "v");
        assert!(rows[1].is_none());
        opening
            .merge("t", vec![("b".into(), [("k".into(), "w".into())].into())])
            .await
            .unwrap();
        let rows = AggregatorStore::get(&opening, "t", &["b".into()])
            .await
            .unwrap();
        assert_eq!(rows[0].as_ref().unwrap()["k"], "w", "writes go through too");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_cannot_open_fails_every_call_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage.redb");
        std::fs::write(&path, b"not a redb file at all, just bytes").unwrap();
        let opening = OpeningStorage::spawn(path);
        let err = AggregatorStore::get(&opening, "t", &["a".into()])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("storage.redb"), "{err}");
        let again = opening
            .merge("t", vec![("a".into(), AggregatorRow::new())])
            .await
            .unwrap_err();
        assert_eq!(again, err, "a later call fails the same way");
    }
}
