//! The embedded vector store: one durable skye-index collection per directory,
//! `<dir>/<entity>/<model>/<variant>/<version>/` (names cannot hold `/` or start with `.`, so the
//! path is unambiguous, where the original's joined `<variant>_<model>_<version>` is not).
//! Searches and writes run on the blocking pool; indexing runs in the background when a
//! collection's threshold says it is due.
//!
//! A data directory written before this layout holds flat `<variant>_<model>_<version>`
//! directories; [`EmbeddedVectorStore::adopt_legacy`] moves each one that exactly one registered
//! collection claims into place, and leaves (and reports) the ambiguous ones.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;
use skye_core::domain::{DistanceFunction, names};
use skye_core::error::Cause;
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, CollectionSpec, PayloadValue, PlanObserver, ScoredPoint,
    SearchQuery, SnapshotInfo, VariantKey, VectorPoint, VectorRead, VectorStore, VectorStoreError,
};
use skye_index::{CollectionConfig, DurableCollection, IndexError, Metric};

mod maintenance;
mod slot;

use maintenance::{renumbered_at_open, reorder_ahead};
use slot::Slot;

struct Handle {
    durable: DurableCollection,
    indexing: AtomicBool,
    /// Changed by every write: what result caches key answers on. Drawn from the store's
    /// clock, so no two states of any collection (a recovered or re-created one included) share
    /// a value, within a process or across restarts.
    epoch: AtomicU64,
    clock: Arc<AtomicU64>,
    /// Compactions run on this collection since the process started.
    compactions: AtomicU64,
    /// The collection's linked points when it was last renumbered for locality (see
    /// [`maintenance::reorder_due`]); at open, the count its locality mark recorded.
    renumbered_at: AtomicUsize,
}

/// One embedded collection's figures for the metrics.
#[derive(Debug, Clone)]
pub struct EngineFigures {
    pub collection: String,
    pub info: skye_index::CollectionInfo,
    pub memory: skye_index::MemoryUsage,
    /// Compactions run since the process started.
    pub compactions: u64,
}

impl Handle {
    fn new(durable: DurableCollection, clock: &Arc<AtomicU64>) -> Arc<Self> {
        Arc::new(Handle {
            renumbered_at: AtomicUsize::new(renumbered_at_open(durable.dir())),
            durable,
            indexing: AtomicBool::new(false),
            epoch: AtomicU64::new(clock.fetch_add(1, Ordering::AcqRel) + 1),
            clock: clock.clone(),
            compactions: AtomicU64::new(0),
        })
    }

    fn bump(&self) {
        let next = self.clock.fetch_add(1, Ordering::AcqRel) + 1;
        self.epoch.store(next, Ordering::Release);
    }
}

/// The clock epochs start from: microseconds since the epoch at open, so a restarted process
/// never reuses an epoch that a distributed cache may still hold answers for.
fn epoch_clock() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new((unix_millis() as u64).saturating_mul(1000)))
}

/// Collections kept under one directory.
pub struct EmbeddedVectorStore {
    dir: PathBuf,
    collections: RwLock<HashMap<Slot, Arc<Handle>>>,
    /// Flat directories of the layout before typed collections, by name, until adopted.
    legacy: parking_lot::Mutex<BTreeMap<String, PathBuf>>,
    clock: Arc<AtomicU64>,
    /// Told the planner's choice of every search.
    plans: std::sync::OnceLock<Arc<dyn PlanObserver>>,
    /// Set by [`EmbeddedVectorStore::close`]: background index builds stop between steps.
    closing: Arc<AtomicBool>,
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
        VectorStoreError::Internal(Cause::of(e))
    }
}

fn join_error(e: tokio::task::JoinError) -> VectorStoreError {
    VectorStoreError::Internal(Cause::new("vector store task failed", e))
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
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let clock = epoch_clock();
        let mut collections = HashMap::new();
        let mut legacy = BTreeMap::new();
        for (entity, path) in subdirs(dir)? {
            // Dot-names are ours: snapshots, and a collection replaced by a recovery that a
            // crash interrupted before its removal.
            if entity.starts_with('.') {
                continue;
            }
            if DurableCollection::exists(&path) {
                legacy.insert(entity, path);
                continue;
            }
            for (model, path) in subdirs(&path)? {
                for (variant, path) in subdirs(&path)? {
                    for (version, path) in subdirs(&path)? {
                        let Ok(version) = version.parse::<i64>() else {
                            continue;
                        };
                        if !DurableCollection::exists(&path) {
                            continue;
                        }
                        let slot = Slot {
                            entity: entity.clone(),
                            model: model.clone(),
                            variant: variant.clone(),
                            version,
                        };
                        collections.insert(slot.clone(), open_handle(&slot, &path, &clock)?);
                    }
                }
            }
        }
        if !legacy.is_empty() {
            tracing::info!(
                count = legacy.len(),
                "collections in the flat layout of an older release wait for adoption"
            );
        }
        Ok(EmbeddedVectorStore {
            dir: dir.to_path_buf(),
            collections: RwLock::new(collections),
            legacy: parking_lot::Mutex::new(legacy),
            clock,
            plans: std::sync::OnceLock::new(),
            closing: Arc::new(AtomicBool::new(false)),
        })
        .inspect(Self::resume_maintenance)
    }

    /// Stops background index builds between steps (for a process that is shutting down): each
    /// checkpoints what it linked, the points it did not reach stay pending and are linked
    /// after the restart. Writes still work.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Moves each flat `<variant>_<model>_<version>` directory of an older release to the
    /// collection among `claims` whose original name it is, when exactly one claims it and that
    /// collection does not exist yet. Returns the names left behind because two or more
    /// collections claim them (their data cannot be told apart; they stay on disk for an
    /// operator).
    pub fn adopt_legacy(&self, claims: &[CollectionRef]) -> Result<Vec<String>, VectorStoreError> {
        let mut legacy = self.legacy.lock();
        let mut ambiguous = Vec::new();
        let names: Vec<String> = legacy.keys().cloned().collect();
        for name in names {
            let mut claimants: Vec<Slot> = claims
                .iter()
                .filter(|c| c.original_name() == name)
                .map(Slot::of)
                .collect();
            claimants.sort();
            claimants.dedup();
            let slot = match claimants.as_slice() {
                [] => continue,
                [one] => one.clone(),
                _ => {
                    tracing::error!(collection = %name, claimants = ?claimants.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "a collection of an older release is claimed by several variants; left in place");
                    ambiguous.push(name);
                    continue;
                }
            };
            if self.collections.read().contains_key(&slot) {
                continue;
            }
            let (Some(from), to) = (legacy.remove(&name), self.dir.join(slot.relative()?)) else {
                continue;
            };
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            std::fs::rename(&from, &to).map_err(|e| io_error(&from, e))?;
            let handle = open_handle(&slot, &to, &self.clock)?;
            self.resume(&handle);
            self.collections.write().insert(slot.clone(), handle);
            tracing::info!(collection = %name, to = %slot, "adopted a collection of an older release");
        }
        Ok(ambiguous)
    }

    /// Reports the planner's choice of every later search to `observer` (once; a second call is
    /// ignored).
    pub fn observe_plans(&self, observer: Arc<dyn PlanObserver>) {
        let _ = self.plans.set(observer);
    }

    fn handle(&self, c: &CollectionRef) -> Result<Arc<Handle>, VectorStoreError> {
        self.collections
            .read()
            .get(&Slot::of(c))
            .cloned()
            .ok_or_else(|| VectorStoreError::CollectionNotFound(c.to_string()))
    }

    fn snapshot_dir(&self, c: &CollectionRef) -> Result<PathBuf, VectorStoreError> {
        Ok(self.dir.join(SNAPSHOTS_DIR).join(Slot::of(c).relative()?))
    }

    /// The file of snapshot `name` of `collection`, which must exist.
    fn existing_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<PathBuf, VectorStoreError> {
        // Names are file names of ours: no separators, no leading dot (no `..`).
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
        let file = snapshot_file(&self.snapshot_dir(collection)?, name);
        if file.is_file() {
            Ok(file)
        } else {
            Err(VectorStoreError::SnapshotNotFound(name.to_string()))
        }
    }

    /// The engine's own figures for a collection (tombstones and memory included).
    pub fn engine_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<skye_index::CollectionInfo, VectorStoreError> {
        Ok(self.handle(collection)?.durable.collection().info())
    }

    /// A collection's heap bytes by part.
    pub fn engine_memory(
        &self,
        collection: &CollectionRef,
    ) -> Result<skye_index::MemoryUsage, VectorStoreError> {
        Ok(self.handle(collection)?.durable.collection().memory())
    }

    /// Open collections.
    pub fn collection_count(&self) -> usize {
        self.collections.read().len()
    }

    /// The engine's figures and heap bytes of every open collection, by
    /// `entity/model/variant@version`.
    pub fn engine_infos(&self) -> Vec<EngineFigures> {
        let handles: Vec<(String, Arc<Handle>)> = self
            .collections
            .read()
            .iter()
            .map(|(slot, h)| (slot.to_string(), h.clone()))
            .collect();
        let mut infos: Vec<_> = handles
            .into_iter()
            .map(|(collection, h)| {
                let c = h.durable.collection();
                EngineFigures {
                    collection,
                    info: c.info(),
                    memory: c.memory(),
                    compactions: h.compactions.load(Ordering::Relaxed),
                }
            })
            .collect();
        infos.sort_by(|a, b| a.collection.cmp(&b.collection));
        infos
    }
}

#[async_trait]
impl VectorRead for EmbeddedVectorStore {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        let handle = self.handle(collection)?;
        let plans = self.plans.get().cloned();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _caller = span.enter();
            let c = handle.durable.collection();
            queries
                .iter()
                .map(|q| search_one(c, q, plans.as_deref()))
                .collect()
        })
        .await
        .map_err(join_error)?
    }

    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError> {
        let handle = self.handle(collection)?;
        let info = handle.durable.collection().info();
        Ok(CollectionInfo {
            points_count: info.points as u64,
            indexed_vectors_count: info.indexed_points as u64,
            indexing_threshold: info.indexing_threshold,
            reorganising: reorder_ahead(handle.renumbered_at.load(Ordering::Acquire), &info),
        })
    }

    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        let mut versions: Vec<i64> = self
            .collections
            .read()
            .keys()
            .filter(|s| s.holds(variant))
            .map(|s| s.version)
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    fn content_epoch(&self, collection: &CollectionRef) -> Option<u64> {
        self.handle(collection)
            .ok()
            .map(|h| h.epoch.load(Ordering::Acquire))
    }
}

/// One query on the blocking pool; stops early (Cancelled) once the caller has gone.
fn search_one(
    c: &skye_index::Collection,
    q: &SearchQuery,
    plans: Option<&dyn PlanObserver>,
) -> Result<Vec<ScoredPoint>, VectorStoreError> {
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
        stop: Some(q.stop.as_atomic()),
        indexed_only: q.indexed_only,
        score_threshold: q.score_threshold,
    };
    let span = tracing::debug_span!(
        "engine_search",
        path = tracing::field::Empty,
        matches = tracing::field::Empty,
        hits = tracing::field::Empty
    );
    let _entered = span.enter();
    let (hits, plan) = c.search_explained(&req).map_err(index_error)?;
    span.record("path", plan.path.label());
    span.record("hits", hits.len());
    if let Some(m) = plan.matches {
        span.record("matches", m);
    }
    if let Some(o) = plans {
        o.planned(plan.path.label(), plan.matches);
    }
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
}

#[async_trait]
impl VectorStore for EmbeddedVectorStore {
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError> {
        let slot = Slot::of(&spec.collection);
        let path = self.dir.join(slot.relative()?);
        if spec.dimension == 0 {
            return Err(VectorStoreError::InvalidArgument(
                "dimension must be positive".into(),
            ));
        }
        if self.collections.read().contains_key(&slot) {
            return Err(VectorStoreError::CollectionExists(slot.to_string()));
        }
        let mut config = CollectionConfig::new(spec.dimension as usize, metric(spec.distance));
        config.hnsw.m = spec.m.clamp(4, 128);
        config.hnsw.ef_construct = spec.ef_construct.max(config.hnsw.m);
        config.indexing_threshold = spec.indexing_threshold;
        config.on_disk = spec.on_disk;
        let durable = tokio::task::spawn_blocking(move || DurableCollection::create(&path, config))
            .await
            .map_err(join_error)?
            .map_err(index_error)?;
        let mut map = self.collections.write();
        if map.contains_key(&slot) {
            return Err(VectorStoreError::CollectionExists(slot.to_string()));
        }
        map.insert(slot, Handle::new(durable, &self.clock));
        Ok(())
    }

    async fn delete_collection(&self, collection: &CollectionRef) -> Result<(), VectorStoreError> {
        let slot = Slot::of(collection);
        let removed = self.collections.write().remove(&slot);
        if let Some(handle) = removed {
            let path = self.dir.join(slot.relative()?);
            let root = self.dir.clone();
            tokio::task::spawn_blocking(move || {
                // Searches holding the handle finish; no write or checkpoint of it reaches the
                // directory (or a new collection of the same name) again.
                handle.durable.retire();
                std::fs::remove_dir_all(&path)?;
                prune_empty_parents(&root, &path);
                Ok::<(), std::io::Error>(())
            })
            .await
            .map_err(join_error)?
            .map_err(|e| {
                VectorStoreError::Internal(Cause::new(format!("removing {slot}: {e}"), e))
            })?;
        }
        Ok(())
    }

    async fn upsert(
        &self,
        collection: &CollectionRef,
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
        handle.bump();
        self.schedule_maintenance(&handle);
        Ok(())
    }

    async fn delete_points(
        &self,
        collection: &CollectionRef,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        let handle = self.handle(collection)?;
        let h = handle.clone();
        tokio::task::spawn_blocking(move || h.durable.delete(ids))
            .await
            .map_err(join_error)?
            .map_err(index_error)?;
        handle.bump();
        self.schedule_maintenance(&handle);
        Ok(())
    }

    async fn set_payload(
        &self,
        collection: &CollectionRef,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        let handle = self.handle(collection)?;
        let h = handle.clone();
        let result = tokio::task::spawn_blocking(move || {
            for (id, fields) in updates {
                let fields = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(skye_index::Value::from(v))))
                    .collect();
                match h.durable.set_payload(&id, fields) {
                    Ok(()) | Err(IndexError::PointNotFound(_)) => {}
                    Err(e) => return Err(index_error(e)),
                }
            }
            Ok(())
        })
        .await
        .map_err(join_error)?;
        // Even a failed batch may have changed some points.
        handle.bump();
        result
    }

    async fn set_indexing_threshold(
        &self,
        collection: &CollectionRef,
        threshold: usize,
    ) -> Result<(), VectorStoreError> {
        let handle = self.handle(collection)?;
        let h = handle.clone();
        tokio::task::spawn_blocking(move || h.durable.set_indexing_threshold(threshold))
            .await
            .map_err(join_error)?
            .map_err(index_error)?;
        self.schedule_maintenance(&handle);
        Ok(())
    }

    async fn create_snapshot(
        &self,
        collection: &CollectionRef,
    ) -> Result<SnapshotInfo, VectorStoreError> {
        let handle = self.handle(collection)?;
        let dir = self.snapshot_dir(collection)?;
        let prefix = format!("v{}", collection.version);
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
        collection: &CollectionRef,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
        let dir = self.snapshot_dir(collection)?;
        if !self.collections.read().contains_key(&Slot::of(collection)) && !dir.exists() {
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

    async fn delete_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        let file = self.existing_snapshot(collection, name)?;
        tokio::task::spawn_blocking(move || {
            std::fs::remove_file(&file).map_err(|e| io_error(&file, e))
        })
        .await
        .map_err(join_error)?
    }

    async fn recover_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        let slot = Slot::of(collection);
        let live = self.dir.join(slot.relative()?);
        let file = self.existing_snapshot(collection, name)?;
        // The collection is out of the map while its files are replaced: searches get
        // CollectionNotFound for that time, writes in flight on the old files are discarded
        // (recovering means returning to the snapshot's state).
        let old = self.collections.write().remove(&slot);
        let trash = self.dir.join(format!(".recover-{}", unix_millis()));
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
                    self.collections
                        .write()
                        .insert(slot, Handle::new(*durable, &self.clock));
                }
                return Err(e);
            }
        };
        durable.collection().maybe_index();
        self.collections
            .write()
            .insert(slot, Handle::new(durable, &self.clock));
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

/// Opens one collection directory.
fn open_handle(
    slot: &Slot,
    path: &Path,
    clock: &Arc<AtomicU64>,
) -> Result<Arc<Handle>, VectorStoreError> {
    let (durable, recovery) = DurableCollection::open(path).map_err(index_error)?;
    if recovery.discarded_bytes > 0 {
        tracing::warn!(collection = %slot, bytes = recovery.discarded_bytes, "discarded an unacknowledged WAL tail");
    }
    Ok(Handle::new(durable, clock))
}

/// The sub-directories of `dir` with UTF-8 names.
fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, VectorStoreError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .flatten()
    {
        let path = entry.path();
        if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && path.is_dir()
        {
            out.push((name.to_string(), path.clone()));
        }
    }
    Ok(out)
}

/// Removes the now empty variant, model and entity directories above a deleted collection.
fn prune_empty_parents(root: &Path, collection: &Path) {
    let mut dir = collection.parent();
    while let Some(d) = dir {
        if d == root || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Snapshot files: `<dir>/.snapshots/<entity>/<model>/<variant>/<version>/<name>.skye`.
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
    VectorStoreError::Internal(Cause::new(format!("{}: {e}", path.display()), e))
}
