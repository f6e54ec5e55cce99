//! The embedded embedding store and aggregator store: one redb file (`storage.redb`), one fsynced
//! transaction per write call.
//!
//! A row whose search embedding equals its embedding (the common case: events without a
//! `search_space`) stores the vector once. TTLs are honoured on read (an expired row reads as
//! absent) and expired rows are purged when their generation is dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use skye_core::error::Cause;
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation, StorageError,
};

use super::bytes::{Reader, Writer};

/// (table, model, version, id) → encoded embedding row.
const EMBEDDINGS: TableDefinition<(&str, &str, i64, &str), &[u8]> =
    TableDefinition::new("embeddings");
/// (table, candidate id) → encoded aggregator columns.
const AGGREGATES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("aggregates");

const SAME_SEARCH_EMBEDDING: u8 = 1;
/// The row ends with the job's payload (rows written before payloads were kept have none).
const HAS_PAYLOAD: u8 = 2;

/// A redb (or I/O) error, kept as the cause.
fn internal(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Internal(Cause::of(e))
}

fn failure(message: String) -> StorageError {
    StorageError::Internal(Cause::from(message))
}

/// Embeddings and aggregator rows under the data directory.
#[derive(Clone)]
pub struct EmbeddedStorage {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStorage").finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn encode_row(row: &EmbeddingRow, expires_at: u64) -> Vec<u8> {
    let same = row.search_embedding == row.embedding || row.search_embedding.is_empty();
    let mut w = Writer::with_capacity(16 + 4 * row.embedding.len() * if same { 1 } else { 2 });
    w.u64(expires_at);
    w.u8(if same { SAME_SEARCH_EMBEDDING } else { 0 } | HAS_PAYLOAD);
    w.f32s(&row.embedding);
    if !same {
        w.f32s(&row.search_embedding);
    }
    w.u32(row.to_be_indexed.len() as u32);
    for (variant, flag) in &row.to_be_indexed {
        w.str(variant);
        w.u8(u8::from(*flag));
    }
    w.u32(row.payload.len() as u32);
    for (field, text) in &row.payload {
        w.str(field);
        w.str(text);
    }
    w.0
}

/// `None` when expired.
fn decode_row(id: &str, bytes: &[u8], now: u64) -> Result<Option<EmbeddingRow>, StorageError> {
    let corrupt = |_| failure(format!("embedding row '{id}' is corrupt"));
    let mut r = Reader(bytes);
    let expires_at = r.u64().map_err(corrupt)?;
    if expires_at != 0 && expires_at <= now {
        return Ok(None);
    }
    let flags = r.u8().map_err(corrupt)?;
    let embedding = r.f32s().map_err(corrupt)?;
    let search_embedding = if flags & SAME_SEARCH_EMBEDDING != 0 {
        embedding.clone()
    } else {
        r.f32s().map_err(corrupt)?
    };
    let n = r.u32().map_err(corrupt)?;
    let mut to_be_indexed = BTreeMap::new();
    for _ in 0..n {
        let variant = r.str().map_err(corrupt)?;
        to_be_indexed.insert(variant, r.u8().map_err(corrupt)? != 0);
    }
    let mut payload = BTreeMap::new();
    if flags & HAS_PAYLOAD != 0 {
        for _ in 0..r.u32().map_err(corrupt)? {
            let field = r.str().map_err(corrupt)?;
            payload.insert(field, r.str().map_err(corrupt)?);
        }
    }
    Ok(Some(EmbeddingRow {
        id: id.to_string(),
        embedding,
        search_embedding,
        to_be_indexed,
        payload,
    }))
}

fn encode_columns(row: &AggregatorRow) -> Vec<u8> {
    let mut w = Writer::with_capacity(64);
    w.u32(row.len() as u32);
    for (k, v) in row {
        w.str(k);
        w.str(v);
    }
    w.0
}

fn decode_columns(id: &str, bytes: &[u8]) -> Result<AggregatorRow, StorageError> {
    let corrupt = |_| failure(format!("aggregator row '{id}' is corrupt"));
    let mut r = Reader(bytes);
    let n = r.u32().map_err(corrupt)?;
    let mut row = AggregatorRow::new();
    for _ in 0..n {
        row.insert(r.str().map_err(corrupt)?, r.str().map_err(corrupt)?);
    }
    Ok(row)
}

impl EmbeddedStorage {
    /// Opens (or creates) the storage file at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_checked(path, super::IntegrityCheck::Full)
    }

    /// [`EmbeddedStorage::open`] with the file's verification chosen.
    pub fn open_checked(path: &Path, check: super::IntegrityCheck) -> Result<Self, StorageError> {
        super::survive_damage(path, || Self::open_unguarded(path, check)).map_err(failure)?
    }

    fn open_unguarded(path: &Path, check: super::IntegrityCheck) -> Result<Self, StorageError> {
        let db = super::open_db(path, super::STORAGE_CACHE_BYTES, check).map_err(|e| match e {
            super::OpenError::InUse(m) => StorageError::Unavailable(m.into()),
            super::OpenError::Failed(m) => failure(m),
        })?;
        let write = db.begin_write().map_err(internal)?;
        write.open_table(EMBEDDINGS).map_err(internal)?;
        write.open_table(AGGREGATES).map_err(internal)?;
        write.commit().map_err(internal)?;
        Ok(EmbeddedStorage { db: Arc::new(db) })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Internal(Cause::new("storage task failed", e)))?
}

/// A generation's parts, owned, for a blocking task.
fn owned(g: Generation<'_>) -> (String, String, i64) {
    (g.table.to_string(), g.model.to_string(), g.version)
}

fn check_ids(ids: &[String]) -> Result<(), StorageError> {
    if ids.iter().any(String::is_empty) {
        return Err(StorageError::InvalidArgument(
            "candidate id is empty".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl EmbeddingStore for EmbeddedStorage {
    async fn put(
        &self,
        generation: Generation<'_>,
        rows: Vec<EmbeddingRow>,
        ttl: Option<Duration>,
    ) -> Result<(), StorageError> {
        if rows.iter().any(|r| r.id.is_empty()) {
            return Err(StorageError::InvalidArgument(
                "candidate id is empty".into(),
            ));
        }
        let expires_at = ttl.map(|t| now_secs() + t.as_secs().max(1)).unwrap_or(0);
        let db = self.db.clone();
        let (table, model, version) = owned(generation);
        blocking(move || {
            let write = db.begin_write().map_err(internal)?;
            {
                let mut t = write.open_table(EMBEDDINGS).map_err(internal)?;
                for row in &rows {
                    t.insert(
                        (table.as_str(), model.as_str(), version, row.id.as_str()),
                        encode_row(row, expires_at).as_slice(),
                    )
                    .map_err(internal)?;
                }
            }
            write.commit().map_err(internal)
        })
        .await
    }

    async fn get(
        &self,
        generation: Generation<'_>,
        ids: &[String],
    ) -> Result<Vec<Option<EmbeddingRow>>, StorageError> {
        check_ids(ids)?;
        let db = self.db.clone();
        let (table, model, version) = owned(generation);
        let ids = ids.to_vec();
        blocking(move || {
            let now = now_secs();
            let read = db.begin_read().map_err(internal)?;
            let t = read.open_table(EMBEDDINGS).map_err(internal)?;
            ids.iter()
                .map(|id| {
                    match t
                        .get((table.as_str(), model.as_str(), version, id.as_str()))
                        .map_err(internal)?
                    {
                        Some(v) => decode_row(id, v.value(), now),
                        None => Ok(None),
                    }
                })
                .collect()
        })
        .await
    }

    async fn drop_generation(&self, generation: Generation<'_>) -> Result<(), StorageError> {
        let db = self.db.clone();
        let (table, model, version) = owned(generation);
        blocking(move || {
            let write = db.begin_write().map_err(internal)?;
            {
                let mut t = write.open_table(EMBEDDINGS).map_err(internal)?;
                t.retain_in(
                    (table.as_str(), model.as_str(), version, "")
                        ..(
                            table.as_str(),
                            model.as_str(),
                            version.saturating_add(1),
                            "",
                        ),
                    |_, _| false,
                )
                .map_err(internal)?;
            }
            write.commit().map_err(internal)
        })
        .await
    }
}

#[async_trait]
impl AggregatorStore for EmbeddedStorage {
    async fn get(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Option<AggregatorRow>>, StorageError> {
        check_ids(ids)?;
        let db = self.db.clone();
        let table = table.to_string();
        let ids = ids.to_vec();
        blocking(move || {
            let read = db.begin_read().map_err(internal)?;
            let t = read.open_table(AGGREGATES).map_err(internal)?;
            ids.iter()
                .map(
                    |id| match t.get((table.as_str(), id.as_str())).map_err(internal)? {
                        Some(v) => decode_columns(id, v.value()).map(Some),
                        None => Ok(None),
                    },
                )
                .collect()
        })
        .await
    }

    async fn merge(
        &self,
        table: &str,
        updates: Vec<(String, AggregatorRow)>,
    ) -> Result<(), StorageError> {
        if updates.iter().any(|(id, _)| id.is_empty()) {
            return Err(StorageError::InvalidArgument(
                "candidate id is empty".into(),
            ));
        }
        let db = self.db.clone();
        let table = table.to_string();
        blocking(move || {
            let write = db.begin_write().map_err(internal)?;
            {
                let mut t = write.open_table(AGGREGATES).map_err(internal)?;
                for (id, columns) in &updates {
                    let mut row = match t.get((table.as_str(), id.as_str())).map_err(internal)? {
                        Some(v) => decode_columns(id, v.value())?,
                        None => AggregatorRow::new(),
                    };
                    row.extend(columns.iter().map(|(k, v)| (k.clone(), v.clone())));
                    t.insert(
                        (table.as_str(), id.as_str()),
                        encode_columns(&row).as_slice(),
                    )
                    .map_err(internal)?;
                }
            }
            write.commit().map_err(internal)
        })
        .await
    }
}
