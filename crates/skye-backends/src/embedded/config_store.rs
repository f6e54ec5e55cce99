//! The embedded config store: the etcd-shaped [`ConfigStore`] contract on a local redb file.
//!
//! Why redb: the config tree is small, read rarely (once at start, then via watches) and written
//! by a handful of admin calls, so what matters is ACID transactions with compare-and-set,
//! durability on commit (fsync) and a small, pure-Rust dependency. redb gives exactly that in one
//! file; an LSM (fjall, RocksDB) would add write throughput we do not need here.
//!
//! Revisions and watches follow etcd: a global revision counter is stored with the data and
//! bumped by every transaction that changes something; each key carries its create and mod
//! revisions. Watchers are fed from an in-memory broadcast plus a short history ring so that a
//! watch started from a recent revision misses nothing; older or lost history is signalled with
//! [`WatchItem::Resync`].

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use skye_core::config_store::{
    Compare, ConfigRead, ConfigStore, ConfigStoreError, KeyValue, Op, RangeResult, Txn, TxnResult,
    WatchBatch, WatchEvent, WatchItem, WatchStream,
};
use skye_core::error::Cause;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("config_kv");
const META: TableDefinition<&str, u64> = TableDefinition::new("config_meta");
const REVISION: &str = "revision";

/// Batches kept in memory for watches that start slightly in the past.
const HISTORY: usize = 1024;
/// Capacity of the live broadcast; a watcher that falls further behind gets a resync.
const BROADCAST: usize = 1024;

/// A durable, transactional config store in one redb file.
pub struct EmbeddedConfigStore {
    db: Arc<Database>,
    /// Serialises writers so that batches are broadcast in revision order.
    writer: Arc<Mutex<Feed>>,
}

struct Feed {
    history: VecDeque<Arc<WatchBatch>>,
    tx: broadcast::Sender<Arc<WatchBatch>>,
}

impl std::fmt::Debug for EmbeddedConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedConfigStore")
            .finish_non_exhaustive()
    }
}

/// A redb error, kept as the cause.
fn storage(e: impl std::error::Error + Send + Sync + 'static) -> ConfigStoreError {
    ConfigStoreError::Storage(Cause::of(e))
}

fn failure(message: impl Into<String>) -> ConfigStoreError {
    ConfigStoreError::Storage(Cause::from(message.into()))
}

/// Stored value layout: create revision (8 bytes LE), mod revision (8 bytes LE), UTF-8 value.
fn encode(create: u64, modified: u64, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modified.to_le_bytes());
    out.extend_from_slice(value.as_bytes());
    out
}

fn decode(key: &str, bytes: &[u8]) -> Result<KeyValue, ConfigStoreError> {
    let corrupt = || failure(format!("stored value of '{key}' is corrupt"));
    let create = bytes.get(0..8).ok_or_else(corrupt)?;
    let modified = bytes.get(8..16).ok_or_else(corrupt)?;
    let value = std::str::from_utf8(&bytes[16..]).map_err(|_| corrupt())?;
    let u64_of = |b: &[u8]| -> Result<u64, ConfigStoreError> {
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| corrupt())?))
    };
    Ok(KeyValue {
        key: key.to_string(),
        value: value.to_string(),
        create_revision: u64_of(create)?,
        mod_revision: u64_of(modified)?,
    })
}

impl EmbeddedConfigStore {
    /// Opens (or creates) the store at `path`. Fails clearly when another process holds it.
    pub fn open(path: &Path) -> Result<Self, ConfigStoreError> {
        Self::open_checked(path, super::IntegrityCheck::Full)
    }

    /// [`EmbeddedConfigStore::open`] with the file's verification chosen.
    pub fn open_checked(
        path: &Path,
        check: super::IntegrityCheck,
    ) -> Result<Self, ConfigStoreError> {
        super::survive_damage(path, || Self::open_unguarded(path, check)).map_err(failure)?
    }

    fn open_unguarded(path: &Path, check: super::IntegrityCheck) -> Result<Self, ConfigStoreError> {
        let db = super::open_db(path, super::CONFIG_CACHE_BYTES, check).map_err(|e| match e {
            super::OpenError::InUse(m) => ConfigStoreError::Unavailable(m.into()),
            super::OpenError::Failed(m) => failure(m),
        })?;
        let (tx, _) = broadcast::channel(BROADCAST);
        Ok(EmbeddedConfigStore {
            db: Arc::new(db),
            writer: Arc::new(Mutex::new(Feed {
                history: VecDeque::with_capacity(HISTORY),
                tx,
            })),
        })
    }

    fn current_revision(&self) -> Result<u64, ConfigStoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        match read.open_table(META) {
            Ok(meta) => Ok(meta
                .get(REVISION)
                .map_err(storage)?
                .map(|g| g.value())
                .unwrap_or(0)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(storage(e)),
        }
    }

    fn range_blocking(db: &Database, prefix: &str) -> Result<RangeResult, ConfigStoreError> {
        let read = db.begin_read().map_err(storage)?;
        let revision = match read.open_table(META) {
            Ok(meta) => meta
                .get(REVISION)
                .map_err(storage)?
                .map(|g| g.value())
                .unwrap_or(0),
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(RangeResult::default()),
            Err(e) => return Err(storage(e)),
        };
        let table = match read.open_table(KV) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok(RangeResult {
                    revision,
                    kvs: Vec::new(),
                });
            }
            Err(e) => return Err(storage(e)),
        };
        let mut kvs = Vec::new();
        for entry in table.range(prefix..).map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            kvs.push(decode(k.value(), v.value())?);
        }
        Ok(RangeResult { revision, kvs })
    }

    fn txn_blocking(
        db: &Database,
        feed: &Mutex<Feed>,
        txn: Txn,
    ) -> Result<TxnResult, ConfigStoreError> {
        let mut feed = feed
            .lock()
            .map_err(|_| failure("config store writer lock poisoned"))?;
        let write = db.begin_write().map_err(storage)?;
        let (result, events) = {
            let mut table = write.open_table(KV).map_err(storage)?;
            let mut meta = write.open_table(META).map_err(storage)?;
            let revision = meta
                .get(REVISION)
                .map_err(storage)?
                .map(|g| g.value())
                .unwrap_or(0);
            let get = |table: &redb::Table<&str, &[u8]>,
                       key: &str|
             -> Result<Option<KeyValue>, ConfigStoreError> {
                match table.get(key).map_err(storage)? {
                    Some(v) => Ok(Some(decode(key, v.value())?)),
                    None => Ok(None),
                }
            };
            for compare in &txn.compares {
                let holds = match compare {
                    Compare::Absent(k) => get(&table, k)?.is_none(),
                    Compare::ModRevision(k, rev) => {
                        get(&table, k)?.is_some_and(|kv| kv.mod_revision == *rev)
                    }
                    Compare::Value(k, val) => get(&table, k)?.is_some_and(|kv| &kv.value == val),
                };
                if !holds {
                    return Ok(TxnResult {
                        succeeded: false,
                        revision,
                    });
                }
            }
            let next = revision + 1;
            let mut events = Vec::new();
            for op in &txn.ops {
                match op {
                    Op::Put(k, v) => {
                        if k.is_empty() {
                            return Err(ConfigStoreError::InvalidRequest("empty key".into()));
                        }
                        let create = get(&table, k)?.map(|kv| kv.create_revision).unwrap_or(next);
                        table
                            .insert(k.as_str(), encode(create, next, v).as_slice())
                            .map_err(storage)?;
                        events.push(WatchEvent::Put(KeyValue {
                            key: k.clone(),
                            value: v.clone(),
                            create_revision: create,
                            mod_revision: next,
                        }));
                    }
                    Op::Delete(k) => {
                        if let Some(old) = get(&table, k)? {
                            table.remove(k.as_str()).map_err(storage)?;
                            events.push(WatchEvent::Delete(KeyValue {
                                mod_revision: next,
                                ..old
                            }));
                        }
                    }
                    Op::DeletePrefix(p) => {
                        let mut doomed = Vec::new();
                        for entry in table.range(p.as_str()..).map_err(storage)? {
                            let (k, v) = entry.map_err(storage)?;
                            if !k.value().starts_with(p.as_str()) {
                                break;
                            }
                            doomed.push(decode(k.value(), v.value())?);
                        }
                        for old in doomed {
                            table.remove(old.key.as_str()).map_err(storage)?;
                            events.push(WatchEvent::Delete(KeyValue {
                                mod_revision: next,
                                ..old
                            }));
                        }
                    }
                }
            }
            if events.is_empty() {
                (
                    TxnResult {
                        succeeded: true,
                        revision,
                    },
                    events,
                )
            } else {
                meta.insert(REVISION, next).map_err(storage)?;
                (
                    TxnResult {
                        succeeded: true,
                        revision: next,
                    },
                    events,
                )
            }
        };
        if events.is_empty() {
            write.abort().map_err(storage)?;
            return Ok(result);
        }
        write.commit().map_err(storage)?;
        let batch = Arc::new(WatchBatch {
            revision: result.revision,
            events,
        });
        if feed.history.len() == HISTORY {
            feed.history.pop_front();
        }
        feed.history.push_back(batch.clone());
        // No receiver is not an error: nobody watches yet.
        let _ = feed.tx.send(batch);
        Ok(result)
    }
}

fn filter_batch(batch: &WatchBatch, prefix: &str) -> Option<WatchBatch> {
    let events: Vec<WatchEvent> = batch
        .events
        .iter()
        .filter(|e| match e {
            WatchEvent::Put(kv) | WatchEvent::Delete(kv) => kv.key.starts_with(prefix),
        })
        .cloned()
        .collect();
    (!events.is_empty()).then_some(WatchBatch {
        revision: batch.revision,
        events,
    })
}

#[async_trait]
impl ConfigRead for EmbeddedConfigStore {
    async fn range(&self, prefix: &str) -> Result<RangeResult, ConfigStoreError> {
        let db = self.db.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || Self::range_blocking(&db, &prefix))
            .await
            .map_err(|e| ConfigStoreError::Storage(Cause::new("range task failed", e)))?
    }

    async fn watch(
        &self,
        prefix: &str,
        start_revision: u64,
    ) -> Result<WatchStream, ConfigStoreError> {
        let (rx, backlog, resync) = {
            let feed = self
                .writer
                .lock()
                .map_err(|_| failure("config store writer lock poisoned"))?;
            let current = self.current_revision()?;
            let oldest_kept = feed
                .history
                .front()
                .map(|b| b.revision)
                .unwrap_or(current + 1);
            // History before `oldest_kept` is gone; a watch that needs it must reload.
            let resync = start_revision <= current && start_revision < oldest_kept;
            let backlog: Vec<WatchItem> = feed
                .history
                .iter()
                .filter(|b| b.revision >= start_revision)
                .filter_map(|b| filter_batch(b, prefix))
                .map(WatchItem::Batch)
                .collect();
            (feed.tx.subscribe(), backlog, resync)
        };
        let head = resync
            .then_some(WatchItem::Resync)
            .into_iter()
            .chain(backlog)
            .map(Ok);
        let prefix = prefix.to_string();
        let live = BroadcastStream::new(rx).filter_map(move |item| match item {
            Ok(batch) => filter_batch(&batch, &prefix).map(|b| Ok(WatchItem::Batch(b))),
            Err(BroadcastStreamRecvError::Lagged(_)) => Some(Ok(WatchItem::Resync)),
        });
        Ok(Box::pin(tokio_stream::iter(head).chain(live)))
    }
}

#[async_trait]
impl ConfigStore for EmbeddedConfigStore {
    async fn txn(&self, txn: Txn) -> Result<TxnResult, ConfigStoreError> {
        let db = self.db.clone();
        let feed = self.writer.clone();
        tokio::task::spawn_blocking(move || Self::txn_blocking(&db, &feed, txn))
            .await
            .map_err(|e| ConfigStoreError::Storage(Cause::new("transaction task failed", e)))?
    }
}
