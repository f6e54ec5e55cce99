//! The embedded vector store: one durable skye-index collection per directory under
//! `<data_dir>/collections/`. Searches and writes run on the blocking pool; indexing runs in
//! the background when a collection's threshold says it is due.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;
use skye_core::domain::{DistanceFunction, names};
use skye_core::vector_store::{
    CollectionInfo, CollectionSpec, PayloadValue, ScoredPoint, SearchQuery, SnapshotInfo,
    VectorPoint, VectorRead, VectorStore, VectorStoreError,
};
use skye_index::{CollectionConfig, DurableCollection, IndexError, Metric};

struct Handle {
    durable: DurableCollection,
    indexing: AtomicBool,
}

/// Collections kept under one directory.
pub struct EmbeddedVectorStore {
    dir: PathBuf,
    collections: RwLock<HashMap<String, Arc<Handle>>>,
}

impl std::fmt::Debug for EmbeddedVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedVectorStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn index_error(e: IndexError) -> VectorStoreError {
    if e.is_client_error() {
        VectorStoreError::InvalidArgument(e.to_string())
    } else {
        VectorStoreError::Internal(e.to_string())
    }
}

fn join_error(e: tokio::task::JoinError) -> VectorStoreError {
    VectorStoreError::Internal(format!("vector store task failed: {e}"))
}

fn metric(d: DistanceFunction) -> Metric {
    match d {
        DistanceFunction::Dot => Metric::Dot,
        DistanceFunction::Cosine => Metric::Cosine,
        DistanceFunction::Euclidean => Metric::Euclidean,
        DistanceFunction::Manhattan => Metric::Manhattan,
    }
}

impl EmbeddedVectorStore {
    /// Opens every collection under `dir` (recovering each from its snapshot and WAL).
    pub fn open(dir: &Path) -> Result<Self, VectorStoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| VectorStoreError::Internal(format!("{}: {e}", dir.display())))?;
        let mut collections = HashMap::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| VectorStoreError::Internal(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            // Dot-names are ours: snapshots, and a collection replaced by a recovery that a
            // crash interrupted before its removal.
            if name.starts_with('.') || !path.is_dir() || !DurableCollection::exists(&path) {
                continue;
            }
            let (durable, recovery) = DurableCollection::open(&path).map_err(index_error)?;
            if recovery.discarded_bytes > 0 {
                tracing::warn!(collection = %name, bytes = recovery.discarded_bytes, "discarded an unacknowledged WAL tail");
            }
            durable.collection().maybe_index();
            collections.insert(
                name,
                Arc::new(Handle {
                    durable,
                    indexing: AtomicBool::new(false),
                }),
            );
        }
        Ok(EmbeddedVectorStore {
            dir: dir.to_path_buf(),
            collections: RwLock::new(collections),
        })
    }

    fn handle(&self, name: &str) -> Result<Arc<Handle>, VectorStoreError> {
        self.collections
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| VectorStoreError::CollectionNotFound(name.to_string()))
    }

    fn snapshot_dir(&self, collection: &str) -> PathBuf {
        self.dir.join(SNAPSHOTS_DIR).join(collection)
    }

    /// The file of snapshot `name` of `collection`, which must exist.
    fn existing_snapshot(&self, collection: &str, name: &str) -> Result<PathBuf, VectorStoreError> {
        // Names are file names of ours: no separators, no leading dot (no `..`).
        names::check_name(collection)
            .map_err(|m| VectorStoreError::InvalidArgument(format!("collection name {m}")))?;
        if name.starts_with('.') {
            return Err(VectorStoreError::InvalidArgument(format!(
                "snapshot name '{name}' must not start with '.'"
            )));
        }
        if let Err(m) = names::check_name(name.get(..names::MAX_NAME_LEN).unwrap_or(name)) {
            return Err(VectorStoreError::InvalidArgument(format!(
                "snapshot name {m}"
            )));
        }
        let file = snapshot_file(&self.snapshot_dir(collection), name);
        if file.is_file() {
            Ok(file)
        } else {
            Err(VectorStoreError::SnapshotNotFound(name.to_string()))
        }
    }

    /// The engine's own figures for a collection (tombstones and memory included).
    pub fn engine_info(&self, name: &str) -> Result<skye_index::CollectionInfo, VectorStoreError> {
        Ok(self.handle(name)?.durable.collection().info())
    }

    /// Background upkeep after writes (one task per collection at a time): links pending points
    /// when the indexing threshold says so, and compacts when deleted or overwritten points
    /// (tombstones) reach a quarter of the live ones. Without compaction, steady churn (real-time
    /// flags removing and re-adding items) grows memory and slows searches without bound.
    fn schedule_maintenance(handle: &Arc<Handle>) {
        if !upkeep_due(handle.durable.collection()) || handle.indexing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let handle = handle.clone();
        tokio::task::spawn_blocking(move || {
            loop {
                let c = handle.durable.collection();
                let reclaimed = if compaction_due(&c.info()) {
                    c.compact()
                } else {
                    0
                };
                let linked = c.index_pending();
                // Persist the graph with the points: a restart then loads it instead of
                // replaying the WAL and rebuilding the index.
                if (linked > 0 || reclaimed > 0)
                    && let Err(e) = handle.durable.checkpoint()
                {
                    tracing::warn!(error = %e, "checkpoint after indexing failed; the WAL still holds every write");
                }
                handle.indexing.store(false, Ordering::Release);
                tracing::debug!(linked, reclaimed, "collection maintenance done");
                // Writes that landed meanwhile found the flag set and left their upkeep to this
                // task: look again, or the last batch of a job could wait for a next write.
                if !upkeep_due(c) || handle.indexing.swap(true, Ordering::AcqRel) {
                    break;
                }
            }
        });
    }
}

/// Whether a collection has points to link or tombstones to compact.
fn upkeep_due(c: &skye_index::Collection) -> bool {
    compaction_due(&c.info()) || c.indexing_due()
}

/// Tombstones that trigger a compaction: at least this many…
const COMPACT_MIN_TOMBSTONES: usize = 1_000;

/// …and at least a quarter of the live points. Only with indexing on (threshold > 0): a
/// compaction re-links every point, which a bulk load defers.
fn compaction_due(info: &skye_index::CollectionInfo) -> bool {
    info.indexing_threshold > 0
        && info.tombstones >= COMPACT_MIN_TOMBSTONES
        && info.tombstones * 4 >= info.points
}

#[async_trait]
impl VectorRead for EmbeddedVectorStore {
    async fn search(
        &self,
        collection: &str,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        let handle = self.handle(collection)?;
        tokio::task::spawn_blocking(move || {
            let c = handle.durable.collection();
            queries
                .iter()
                .map(|q| {
                    let filter = q.filter.as_ref().map(skye_index::Filter::from);
                    let req = skye_index::SearchRequest {
                        vector: &q.vector,
                        limit: q.limit,
                        offset: q.offset,
                        filter: filter.as_ref(),
                        ef: q.ef,
                        exact: q.exact,
                        with_payload: &q.with_payload,
                        exclude: &q.exclude,
                    };
                    let hits = c.search(&req).map_err(index_error)?;
                    Ok(hits
                        .into_iter()
                        .map(|h| ScoredPoint {
                            id: h.id,
                            score: h.score,
                            payload: h
                                .payload
                                .into_iter()
                                .map(|(k, v)| (k, v.render()))
                                .collect(),
                        })
                        .collect())
                })
                .collect()
        })
        .await
        .map_err(join_error)?
    }

    async fn collection_info(&self, collection: &str) -> Result<CollectionInfo, VectorStoreError> {
        let info = self.handle(collection)?.durable.collection().info();
        Ok(CollectionInfo {
            points_count: info.points as u64,
            indexed_vectors_count: info.indexed_points as u64,
            indexing_threshold: info.indexing_threshold,
        })
    }

    async fn list_collections(&self) -> Result<Vec<String>, VectorStoreError> {
        let mut names: Vec<String> = self.collections.read().keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}

#[async_trait]
impl VectorStore for EmbeddedVectorStore {
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError> {
        names::check_name(&spec.name)
            .map_err(|m| VectorStoreError::InvalidArgument(format!("collection name {m}")))?;
        if spec.dimension == 0 {
            return Err(VectorStoreError::InvalidArgument(
                "dimension must be positive".into(),
            ));
        }
        if self.collections.read().contains_key(&spec.name) {
            return Err(VectorStoreError::CollectionExists(spec.name));
        }
        let mut config = CollectionConfig::new(spec.dimension as usize, metric(spec.distance));
        config.hnsw.m = spec.m.clamp(4, 128);
        config.hnsw.ef_construct = spec.ef_construct.max(config.hnsw.m);
        config.indexing_threshold = spec.indexing_threshold;
        let path = self.dir.join(&spec.name);
        let durable = tokio::task::spawn_blocking(move || DurableCollection::create(&path, config))
            .await
            .map_err(join_error)?
            .map_err(index_error)?;
        let mut map = self.collections.write();
        if map.contains_key(&spec.name) {
            return Err(VectorStoreError::CollectionExists(spec.name));
        }
        map.insert(
            spec.name,
            Arc::new(Handle {
                durable,
                indexing: AtomicBool::new(false),
            }),
        );
        Ok(())
    }

    async fn delete_collection(&self, collection: &str) -> Result<(), VectorStoreError> {
        let removed = self.collections.write().remove(collection);
        if let Some(handle) = removed {
            let path = self.dir.join(collection);
            tokio::task::spawn_blocking(move || {
                // Searches holding the handle finish; no write or checkpoint of it reaches the
                // directory (or a new collection of the same name) again.
                handle.durable.retire();
                std::fs::remove_dir_all(&path)
            })
            .await
            .map_err(join_error)?
            .map_err(|e| VectorStoreError::Internal(format!("removing {collection}: {e}")))?;
        }
        Ok(())
    }

    async fn upsert(
        &self,
        collection: &str,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError> {
        let handle = self.handle(collection)?;
        let points = points
            .into_iter()
            .map(|p| skye_index::Point {
                id: p.id,
                vector: p.vector,
                payload: p
                    .payload
                    .iter()
                    .map(|(k, v)| (k.clone(), skye_index::Value::from(v)))
                    .collect(),
            })
            .collect();
        let h = handle.clone();
        tokio::task::spawn_blocking(move || h.durable.upsert(points))
            .await
            .map_err(join_error)?
            .map_err(index_error)?;
        Self::schedule_maintenance(&handle);
        Ok(())
    }

    async fn delete_points(
        &self,
        collection: &str,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        let handle = self.handle(collection)?;
        let h = handle.clone();
        tokio::task::spawn_blocking(move || h.durable.delete(ids))
            .await
            .map_err(join_error)?
            .map_err(index_error)?;
        Self::schedule_maintenance(&handle);
        Ok(())
    }

    async fn set_payload(
        &self,
        collection: &str,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        let handle = self.handle(collection)?;
        tokio::task::spawn_blocking(move || {
            for (id, fields) in updates {
                let fields = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(skye_index::Value::from(v))))
                    .collect();
                match handle.durable.set_payload(&id, fields) {
                    Ok(()) | Err(IndexError::PointNotFound(_)) => {}
                    Err(e) => return Err(index_error(e)),
                }
            }
            Ok(())
        })
        .await
        .map_err(join_error)?
    }

    async fn set_indexing_threshold(
        &self,
        collection: &str,
        threshold: usize,
    ) -> Result<(), VectorStoreError> {
        let handle = self.handle(collection)?;
        let h = handle.clone();
        tokio::task::spawn_blocking(move || h.durable.set_indexing_threshold(threshold))
            .await
            .map_err(join_error)?
            .map_err(index_error)?;
        Self::schedule_maintenance(&handle);
        Ok(())
    }

    async fn create_snapshot(&self, collection: &str) -> Result<SnapshotInfo, VectorStoreError> {
        let handle = self.handle(collection)?;
        let dir = self.snapshot_dir(collection);
        let prefix = collection.to_string();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            let mut millis = unix_millis();
            let name = loop {
                let name = format!("{prefix}-{millis}");
                if !snapshot_file(&dir, &name).exists() {
                    break name;
                }
                millis += 1;
            };
            handle
                .durable
                .snapshot_to(&snapshot_file(&dir, &name))
                .map_err(index_error)?;
            snapshot_info(&dir, &name)
        })
        .await
        .map_err(join_error)?
    }

    async fn list_snapshots(
        &self,
        collection: &str,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
        let dir = self.snapshot_dir(collection);
        if !self.collections.read().contains_key(collection) && !dir.exists() {
            return Err(VectorStoreError::CollectionNotFound(collection.to_string()));
        }
        tokio::task::spawn_blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error(&dir, e)),
            };
            let mut out = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                if let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(SNAPSHOT_EXT))
                {
                    out.push(snapshot_info(&dir, name)?);
                }
            }
            out.sort_by(|a, b| (a.created_unix, &a.name).cmp(&(b.created_unix, &b.name)));
            Ok(out)
        })
        .await
        .map_err(join_error)?
    }

    async fn delete_snapshot(&self, collection: &str, name: &str) -> Result<(), VectorStoreError> {
        let file = self.existing_snapshot(collection, name)?;
        tokio::task::spawn_blocking(move || {
            std::fs::remove_file(&file).map_err(|e| io_error(&file, e))
        })
        .await
        .map_err(join_error)?
    }

    async fn recover_snapshot(&self, collection: &str, name: &str) -> Result<(), VectorStoreError> {
        names::check_name(collection)
            .map_err(|m| VectorStoreError::InvalidArgument(format!("collection name {m}")))?;
        let file = self.existing_snapshot(collection, name)?;
        // The collection is out of the map while its files are replaced: searches get
        // CollectionNotFound for that time, writes in flight on the old files are discarded
        // (recovering means returning to the snapshot's state).
        let old = self.collections.write().remove(collection);
        let live = self.dir.join(collection);
        let trash = self
            .dir
            .join(format!(".recover-{collection}-{}", unix_millis()));
        // Ok: the recovered collection. Err: why, and the previous collection reopened from
        // its files when there was one (the old handle is retired and cannot be reused).
        let restored = tokio::task::spawn_blocking({
            let (live, trash) = (live.clone(), trash.clone());
            let had_old = old.is_some();
            move || {
                if let Some(old) = &old {
                    // No write or checkpoint of the old collection may land in the new files.
                    old.durable.retire();
                }
                if live.exists() {
                    std::fs::rename(&live, &trash).map_err(|e| (io_error(&live, e), None))?;
                }
                DurableCollection::restore_from(&file, &live).map_err(|e| {
                    let _ = std::fs::remove_dir_all(&live);
                    let back = (had_old && std::fs::rename(&trash, &live).is_ok())
                        .then(|| DurableCollection::open(&live).ok())
                        .flatten()
                        .map(|(durable, _)| Box::new(durable));
                    (index_error(e), back)
                })
            }
        })
        .await
        .map_err(join_error)?;
        let durable = match restored {
            Ok(durable) => durable,
            Err((e, back)) => {
                if let Some(durable) = back {
                    self.collections.write().insert(
                        collection.to_string(),
                        Arc::new(Handle {
                            durable: *durable,
                            indexing: AtomicBool::new(false),
                        }),
                    );
                }
                return Err(e);
            }
        };
        durable.collection().maybe_index();
        self.collections.write().insert(
            collection.to_string(),
            Arc::new(Handle {
                durable,
                indexing: AtomicBool::new(false),
            }),
        );
        if trash.exists() {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&trash) {
                    tracing::warn!(path = %trash.display(), error = %e, "cannot remove the replaced collection");
                }
            });
        }
        Ok(())
    }
}

/// Snapshot files: `<dir>/.snapshots/<collection>/<name>.skye`.
const SNAPSHOTS_DIR: &str = ".snapshots";
const SNAPSHOT_EXT: &str = ".skye";

fn snapshot_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{SNAPSHOT_EXT}"))
}

fn snapshot_info(dir: &Path, name: &str) -> Result<SnapshotInfo, VectorStoreError> {
    let path = snapshot_file(dir, name);
    let meta = std::fs::metadata(&path).map_err(|e| io_error(&path, e))?;
    let created_unix = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    Ok(SnapshotInfo {
        name: name.to_string(),
        created_unix,
        size_bytes: meta.len(),
    })
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn io_error(path: &Path, e: std::io::Error) -> VectorStoreError {
    VectorStoreError::Internal(format!("{}: {e}", path.display()))
}
