//! Durable collections: a snapshot file plus a write-ahead log in one directory.
//!
//! Every write is appended to the WAL and fsync'd before it is applied, so a write that
//! returned `Ok` survives `kill -9`. [`DurableCollection::checkpoint`] writes a full snapshot
//! (graph included, so no rebuild on restart) atomically (temp file, fsync, rename, fsync dir)
//! and then empties the WAL; records already covered by the snapshot are skipped on replay.
//!
//! Collections whose config maps their vectors (see [`CollectionConfig::maps_vectors`]) keep
//! them in `vectors.<generation>.f32` beside the snapshot: a checkpoint first appends the rows
//! written since the last one to that file (fsync), then writes the snapshot naming the file
//! and its row count, then, when no point waits to be linked, maps the rows and frees their heap
//! copies. Files of other generations are removed once a snapshot no longer names them.

mod codec;
mod snapshot;
mod wal;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLockUpgradableReadGuard};

pub use codec::CodecError;
pub use wal::Op;

use crate::collection::{Collection, CollectionConfig, Point};
use crate::error::IndexError;
use crate::payload::Value;
use wal::Wal;

const SNAPSHOT: &str = "snapshot.skye";
const WAL: &str = "wal.log";
/// WAL size after which a write triggers a checkpoint.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 256 << 20;

fn storage(path: &Path, e: impl std::fmt::Display) -> IndexError {
    IndexError::Storage(format!("{}: {e}", path.display()))
}

fn codec_error(path: &Path, e: CodecError) -> IndexError {
    match e {
        CodecError::Io(io) => storage(path, io),
        CodecError::Corrupt(reason) => IndexError::Corrupt {
            path: path.display().to_string(),
            reason,
        },
    }
}

/// A collection whose writes are durable.
#[derive(Debug)]
pub struct DurableCollection {
    collection: Collection,
    wal: Mutex<Wal>,
    dir: PathBuf,
    checkpoint_bytes: u64,
    /// Set by [`DurableCollection::retire`]: no write or checkpoint touches the files again.
    retired: AtomicBool,
}

/// What [`DurableCollection::open`] recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// WAL records replayed on top of the snapshot.
    pub replayed: usize,
    /// Bytes of an unacknowledged, incomplete WAL tail that were discarded.
    pub discarded_bytes: u64,
}

impl DurableCollection {
    /// Creates an empty collection in `dir` (which must not hold one).
    pub fn create(dir: &Path, config: CollectionConfig) -> Result<Self, IndexError> {
        Self::init(dir, Collection::new(config))
    }

    /// Makes `collection` the initial state of a new collection directory.
    fn init(dir: &Path, collection: Collection) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| storage(dir, e))?;
        if dir.join(SNAPSHOT).exists() || dir.join(WAL).exists() {
            return Err(IndexError::Storage(format!(
                "{} already holds a collection",
                dir.display()
            )));
        }
        checkpoint_into(dir, &collection, 0)?;
        let (wal, _) = Wal::open(&dir.join(WAL)).map_err(|e| codec_error(dir, e))?;
        Ok(Self::from_parts(collection, wal, dir))
    }

    fn from_parts(collection: Collection, wal: Wal, dir: &Path) -> Self {
        DurableCollection {
            collection,
            wal: Mutex::new(wal),
            dir: dir.to_path_buf(),
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            retired: AtomicBool::new(false),
        }
    }

    /// Opens the collection in `dir`: loads the snapshot and replays the WAL.
    pub fn open(dir: &Path) -> Result<(Self, Recovery), IndexError> {
        let snap_path = dir.join(SNAPSHOT);
        let file = File::open(&snap_path).map_err(|e| storage(&snap_path, e))?;
        let (collection, snap_seq) =
            Collection::read_snapshot_in(BufReader::with_capacity(1 << 20, file), Some(dir))
                .map_err(|e| codec_error(&snap_path, e))?;
        let mapped = collection.inner.read().vectors.file();
        remove_stale_vectors(dir, mapped.map(|f| f.generation));
        let wal_path = dir.join(WAL);
        let (mut wal, replay) = Wal::open(&wal_path).map_err(|e| codec_error(&wal_path, e))?;
        let mut replayed = 0;
        for (seq, op) in replay.ops {
            if seq <= snap_seq {
                continue;
            }
            apply(&collection, op).map_err(|e| IndexError::Corrupt {
                path: wal_path.display().to_string(),
                reason: format!("record {seq} does not apply: {e}"),
            })?;
            replayed += 1;
        }
        wal.last_seq = wal.last_seq.max(snap_seq);
        let durable = Self::from_parts(collection, wal, dir);
        Ok((
            durable,
            Recovery {
                replayed,
                discarded_bytes: replay.truncated_bytes,
            },
        ))
    }

    /// Whether `dir` holds a collection.
    pub fn exists(dir: &Path) -> bool {
        dir.join(SNAPSHOT).exists()
    }

    /// Sets the WAL size that triggers an automatic checkpoint.
    pub fn set_checkpoint_bytes(&mut self, bytes: u64) {
        self.checkpoint_bytes = bytes;
    }

    /// The in-memory collection, for searches and reads.
    pub fn collection(&self) -> &Collection {
        &self.collection
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops every later write and checkpoint (they fail) and waits for one in progress, so the
    /// directory can be removed or replaced while readers still hold the collection.
    pub fn retire(&self) {
        let _wal = self.wal.lock();
        self.retired.store(true, Ordering::Release);
    }

    fn check_live(&self) -> Result<(), IndexError> {
        if self.retired.load(Ordering::Acquire) {
            return Err(IndexError::Storage(format!(
                "{}: the collection was deleted or replaced",
                self.dir.display()
            )));
        }
        Ok(())
    }

    fn write(&self, op: Op) -> Result<usize, IndexError> {
        let mut wal = self.wal.lock();
        self.check_live()?;
        wal.append(&op).map_err(|e| codec_error(wal.path(), e))?;
        let result = apply(&self.collection, op)?;
        if wal.size() >= self.checkpoint_bytes {
            self.checkpoint_locked(&mut wal)?;
        }
        Ok(result)
    }

    /// Validates, logs durably, then applies. Returns the points written.
    pub fn upsert(&self, points: Vec<Point>) -> Result<usize, IndexError> {
        self.collection.validate(&points)?;
        self.write(Op::Upsert(points))
    }

    /// Returns how many of `ids` existed.
    pub fn delete(&self, ids: Vec<String>) -> Result<usize, IndexError> {
        self.write(Op::Delete(ids))
    }

    pub fn set_payload(
        &self,
        id: &str,
        fields: Vec<(String, Option<Value>)>,
    ) -> Result<(), IndexError> {
        if !self.collection.contains(id) {
            return Err(IndexError::PointNotFound(id.to_string()));
        }
        self.write(Op::SetPayload {
            id: id.to_string(),
            fields,
        })
        .map(|_| ())
    }

    pub fn set_indexing_threshold(&self, threshold: usize) -> Result<(), IndexError> {
        self.write(Op::SetIndexingThreshold(threshold)).map(|_| ())
    }

    /// Writes a snapshot of everything and empties the WAL.
    pub fn checkpoint(&self) -> Result<(), IndexError> {
        let mut wal = self.wal.lock();
        self.check_live()?;
        self.checkpoint_locked(&mut wal)
    }

    fn checkpoint_locked(&self, wal: &mut Wal) -> Result<(), IndexError> {
        checkpoint_into(&self.dir, &self.collection, wal.last_seq)?;
        wal.reset().map_err(|e| codec_error(&self.dir, e))
    }

    /// Writes a self-contained copy of the collection to one file.
    pub fn snapshot_to(&self, path: &Path) -> Result<(), IndexError> {
        let wal = self.wal.lock();
        write_file_atomically(path, |out| {
            self.collection.write_snapshot(out, wal.last_seq)
        })
    }

    /// Creates a collection in `dir` from a file written by [`DurableCollection::snapshot_to`].
    pub fn restore_from(file: &Path, dir: &Path) -> Result<Self, IndexError> {
        let input = File::open(file).map_err(|e| storage(file, e))?;
        let (collection, _) = Collection::read_snapshot(BufReader::with_capacity(1 << 20, input))
            .map_err(|e| codec_error(file, e))?;
        Self::init(dir, collection)
    }
}

fn apply(collection: &Collection, op: Op) -> Result<usize, IndexError> {
    match op {
        Op::Upsert(points) => collection.upsert(points),
        Op::Delete(ids) => Ok(collection.delete(&ids)),
        Op::SetPayload { id, fields } => collection.set_payload(&id, fields).map(|()| 1),
        Op::SetIndexingThreshold(t) => {
            collection.set_indexing_threshold(t);
            Ok(0)
        }
    }
}

/// Writes `collection`'s snapshot into `dir`: when its config maps the vectors, the rows not
/// in the vectors file yet are appended to it first and mapped after the snapshot landed.
fn checkpoint_into(dir: &Path, collection: &Collection, seq: u64) -> Result<(), IndexError> {
    let config = collection.config();
    // Searches go on meanwhile; writers and compaction wait.
    let inner = collection.inner.upgradable_read();
    let bytes = inner.vectors.len() * config.dim * std::mem::size_of::<f32>();
    // Once rows are in a vectors file, later ones follow them there.
    let maps = inner.vectors.file().is_some() || config.maps_vectors(bytes);
    let file = match bytes > 0 && maps {
        true => Some(
            inner
                .vectors
                .spill(dir, latest_generation(dir))
                .map_err(|e| storage(dir, e))?,
        ),
        false => None,
    };
    write_file_atomically(&dir.join(SNAPSHOT), |out| {
        snapshot::write_inner(&config, &inner, out, seq, file)
    })?;
    // While points wait to be linked, their rows stay on the heap as well: the graph build
    // reads every row many times, faster from the heap than through the map.
    let pending = inner.linked.load(Ordering::Acquire) < inner.vectors.len();
    if let Some(f) = file
        && (inner.vectors.file() != Some(f) || (!pending && inner.vectors.installable()))
    {
        let mut inner = RwLockUpgradableReadGuard::upgrade(inner);
        inner.vectors.record(f);
        if !pending {
            inner.vectors.install(dir).map_err(|e| storage(dir, e))?;
        }
    }
    remove_stale_vectors(dir, file.map(|f| f.generation));
    Ok(())
}

/// Generations of the vectors files in `dir`.
fn vector_generations(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_prefix("vectors.")?
                .strip_suffix(".f32")?
                .parse()
                .ok()
        })
        .collect()
}

fn latest_generation(dir: &Path) -> u64 {
    vector_generations(dir).into_iter().max().unwrap_or(0)
}

/// Removes the vectors files of `dir` other than generation `keep` (crash leftovers, files a
/// compaction or a switch to heap vectors replaced). A failure only leaves a file behind.
fn remove_stale_vectors(dir: &Path, keep: Option<u64>) {
    for generation in vector_generations(dir) {
        if Some(generation) != keep {
            let path = crate::vectors::vectors_path(dir, generation);
            let _ = std::fs::remove_file(path);
        }
    }
}

fn write_file_atomically<W>(path: &Path, write: W) -> Result<(), IndexError>
where
    W: FnOnce(BufWriter<File>) -> Result<BufWriter<File>, CodecError>,
{
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp).map_err(|e| storage(&tmp, e))?;
    let writer =
        write(BufWriter::with_capacity(1 << 20, file)).map_err(|e| codec_error(&tmp, e))?;
    let file = writer.into_inner().map_err(|e| storage(&tmp, e.error()))?;
    file.sync_all().map_err(|e| storage(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| storage(path, e))?;
    if let Some(parent) = path.parent() {
        // Make the rename itself durable.
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| storage(parent, e))?;
    }
    Ok(())
}
