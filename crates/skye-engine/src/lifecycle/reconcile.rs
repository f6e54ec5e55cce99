//! The state machine (spec AC §3.4) as a reconciler over the config tree.
//!
//! | state | action (idempotent) | next |
//! |---|---|---|
//! | `DATA_INGESTION_COMPLETED` | the write collection links everything loaded (threshold 1) | `INDEXING_STARTED` |
//! | `INDEXING_STARTED` | re-checked until the write collection is ≥ 95 % indexed (the rest is scanned exactly meanwhile) and its store has no reorganisation ahead that would stall its searches | `INDEXING_IN_PROGRESS` |
//! | `INDEXING_IN_PROGRESS` | threshold for incremental updates: `params.default_indexing_threshold`, else `params.indexing_threshold`, else 20,000 | `INDEXING_COMPLETED_WITH_RESET` when the job wrote a new collection (RESET *or* force-reset, spec AC §8 B2), else `INDEXING_COMPLETED` |
//! | `INDEXING_COMPLETED_WITH_RESET` | read versions := write versions, in the same transaction as the state | `MODEL_VERSION_UPDATED` |
//! | `MODEL_VERSION_UPDATED` | older collections of the variant dropped; the previous embedding generation dropped when no variant of the model uses it | `INDEXING_COMPLETED` |
//! | `INDEXING_COMPLETED` | — | `COMPLETED` |
//!
//! `DATA_INGESTION_STARTED` is left by the EOF barrier, `COMPLETED` by a new job. A failing
//! step is retried with exponential back-off (to 30 s) and logged; it never blocks other variants.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use skye_core::config_store::{Compare, Txn};
use skye_core::domain::{Model, Variant, VariantState};
use skye_core::storage::Generation;
use skye_core::tree::variant_keys;
use tokio::time::Instant;

use super::{DEFAULT_INDEXING_THRESHOLD, Lifecycle, LifecycleError, param_usize};

/// How often indexing progress is re-checked.
const INDEX_POLL: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Drives every variant of the tree through the state machine.
#[derive(Debug)]
pub struct Reconciler {
    lifecycle: Arc<Lifecycle>,
    /// Per variant: earliest next attempt and current back-off.
    later: HashMap<String, (Instant, Duration)>,
}

impl Reconciler {
    pub fn new(lifecycle: Arc<Lifecycle>) -> Self {
        Reconciler {
            lifecycle,
            later: HashMap::new(),
        }
    }

    /// Runs until `stop` resolves, one pass every `tick` (each pass reads the latest snapshot).
    pub async fn run(mut self, tick: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.pass().await;
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// One pass over every variant; returns how many moved.
    pub async fn pass(&mut self) -> usize {
        let snapshot = self.lifecycle.registry.snapshot();
        let mut moved = 0;
        let now = Instant::now();
        for entity in snapshot.entities.values() {
            for model in entity.models.values() {
                for v in model.variants.values() {
                    if !in_flight(v.variant_state) {
                        continue;
                    }
                    let id = format!("{}/{}/{}", v.entity, v.model, v.name);
                    if self.later.get(&id).is_some_and(|(at, _)| *at > now) {
                        continue;
                    }
                    match self.lifecycle.advance(model, v).await {
                        Ok(Step::Moved(next)) => {
                            moved += 1;
                            self.later.remove(&id);
                            tracing::info!(variant = %id, from = %v.variant_state, to = %next,
                                "variant state advanced");
                        }
                        Ok(Step::Wait) => {
                            self.later.insert(id, (now + INDEX_POLL, INDEX_POLL));
                        }
                        Err(e) => {
                            let backoff = self
                                .later
                                .get(&id)
                                .map(|(_, b)| (*b * 2).min(MAX_BACKOFF))
                                .unwrap_or(Duration::from_secs(1));
                            tracing::warn!(variant = %id, state = %v.variant_state, error = %e,
                                retry_in_ms = backoff.as_millis() as u64, "lifecycle step failed");
                            self.later.insert(id, (now + backoff, backoff));
                        }
                    }
                }
            }
        }
        moved
    }
}

/// Whether a collection being built may start serving: ≥ 95 % linked (the rest is scanned
/// exactly until linked) and no reorganisation ahead (the embedded store's renumbering after a
/// bulk build holds the collection's write lock for seconds: the old version serves until then).
fn ready_to_serve(info: &skye_core::vector_store::CollectionInfo) -> bool {
    let pending = info.points_count.saturating_sub(info.indexed_vectors_count);
    (pending as f64) <= 0.05 * info.points_count as f64 && !info.reorganising
}

fn in_flight(state: VariantState) -> bool {
    !matches!(
        state,
        VariantState::Completed | VariantState::DataIngestionStarted
    )
}

/// Outcome of one attempt.
#[derive(Debug)]
pub(crate) enum Step {
    Moved(VariantState),
    Wait,
}

impl Lifecycle {
    /// Does `v`'s current step and moves it on (guarded by its current state).
    pub(crate) async fn advance(&self, m: &Model, v: &Variant) -> Result<Step, LifecycleError> {
        let write = v.collection(v.vector_db_write_version);
        let threshold = param_usize(v, "indexing_threshold")
            .unwrap_or(DEFAULT_INDEXING_THRESHOLD)
            .max(1);
        let root = self.registry.root();
        let key = |field: &str| root.variant_key(&v.entity, &v.model, &v.name, field);
        let mut txn = Txn::new().when(Compare::Value(
            key(variant_keys::VARIANT_STATE),
            v.variant_state.as_str().to_string(),
        ));
        let next = match v.variant_state {
            VariantState::DataIngestionCompleted => {
                // Link everything the job loaded now; the variant's own threshold applies to
                // the incremental updates that follow (INDEXING_IN_PROGRESS).
                self.vectors.set_indexing_threshold(&write, 1).await?;
                VariantState::IndexingStarted
            }
            VariantState::IndexingStarted => {
                if !ready_to_serve(&self.vectors.collection_info(&write).await?) {
                    return Ok(Step::Wait);
                }
                VariantState::IndexingInProgress
            }
            VariantState::IndexingInProgress => {
                let t = param_usize(v, "default_indexing_threshold").unwrap_or(threshold);
                self.vectors
                    .set_indexing_threshold(&write, t.max(1))
                    .await?;
                if v.vector_db_write_version != v.vector_db_read_version
                    || v.embedding_store_write_version != v.embedding_store_read_version
                {
                    VariantState::IndexingCompletedWithReset
                } else {
                    VariantState::IndexingCompleted
                }
            }
            VariantState::IndexingCompletedWithReset => {
                txn = txn
                    .put(
                        key(variant_keys::VECTOR_DB_READ_VERSION),
                        v.vector_db_write_version.to_string(),
                    )
                    .put(
                        key(variant_keys::EMBEDDING_STORE_READ_VERSION),
                        v.embedding_store_write_version.to_string(),
                    );
                VariantState::ModelVersionUpdated
            }
            VariantState::ModelVersionUpdated => {
                self.drop_superseded(m, v).await?;
                VariantState::IndexingCompleted
            }
            VariantState::IndexingCompleted => VariantState::Completed,
            VariantState::Completed | VariantState::DataIngestionStarted => return Ok(Step::Wait),
        };
        txn = txn.put(key(variant_keys::VARIANT_STATE), next.as_str());
        if !self.registry.commit(txn).await? {
            // Someone else moved it (another reconciler, an admin reset): re-read next pass.
            return Ok(Step::Wait);
        }
        self.announce(v, next).await;
        Ok(Step::Moved(next))
    }

    /// Drops the variant's collections older than the one now served, and the embedding
    /// generation just replaced when no variant of the model still reads or writes it.
    async fn drop_superseded(&self, m: &Model, v: &Variant) -> Result<(), LifecycleError> {
        let key = v.key();
        for version in self.vectors.versions(&key).await? {
            if version < v.vector_db_read_version {
                let old = key.at(version);
                self.vectors.delete_collection(&old).await?;
                tracing::info!(collection = %old, "superseded collection dropped");
            }
        }
        let old = v.embedding_store_read_version - 1;
        let in_use = m.variants.values().any(|o| {
            o.embedding_store_read_version <= old || o.embedding_store_write_version == old
        });
        if old >= 0 && !in_use {
            let snapshot = self.registry.snapshot();
            if let Some(table) = snapshot
                .entities
                .get(&m.entity)
                .and_then(|e| snapshot.stores.get(&e.store_id))
                .map(|s| s.embeddings_table.clone())
            {
                self.embeddings
                    .drop_generation(Generation {
                        table: &table,
                        model: &m.name,
                        version: old,
                    })
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skye_core::vector_store::CollectionInfo;

    fn info(points: u64, indexed: u64, reorganising: bool) -> CollectionInfo {
        CollectionInfo {
            points_count: points,
            indexed_vectors_count: indexed,
            indexing_threshold: 1,
            reorganising,
        }
    }

    #[test]
    fn a_new_version_serves_once_mostly_linked_and_not_reorganising() {
        assert!(ready_to_serve(&info(1000, 950, false)));
        assert!(ready_to_serve(&info(0, 0, false)), "an empty job");
        assert!(!ready_to_serve(&info(1000, 949, false)));
        assert!(!ready_to_serve(&info(1000, 1000, true)));
    }
}
