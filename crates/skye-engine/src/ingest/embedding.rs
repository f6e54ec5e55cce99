//! The embedding consumer's batch processing (spec AC §4.3, with its bugs fixed).
//!
//! A batch is handled in three phases so that nothing acknowledged is lost and nothing is
//! half-applied:
//! 1. **validate** every event against the config (entity, model, variants, operation,
//!    dimension, finite values). An invalid event is reported with its reason (the consumer
//!    sends it to the failure topic) and the rest of the batch goes on (spec AC §8 B26);
//! 2. **write** the embedding store (one call per generation) and, concurrently, each
//!    collection's upserts/deletes/payload updates in event order. Every write is idempotent, so a batch
//!    that fails half-way is simply retried;
//! 3. **EOF**: only after the data before it is durable, each EOF reports its partition to the
//!    lifecycle barrier (spec AC §8 B6, B12).
//!
//! Candidate ids are opaque strings (the original exits on a non-numeric id, spec AC §8 B4). An
//! `ADD` that a variant does not take (its `variants_index_map` flag is false or its vss filter
//! rejects the item) removes the id from that collection, so a DELTA job can take items out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use skye_core::domain::{Model, Variant};
use skye_core::snapshot::ConfigSnapshot;
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation,
};
use skye_core::vector_store::{VectorPoint, VectorStore};

use super::events::{EmbeddingEvent, Operation};
use super::payload::{admits, build_payload};
use super::points::{PointOp, apply, check_vector};
use crate::lifecycle::{EofReport, Lifecycle, LifecycleError};
use skye_core::error::{ErrorCode, HasErrorCode};

/// A batch could not be applied because a backend failed; retry it later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

/// What a batch did.
#[derive(Debug, Default, PartialEq)]
pub struct BatchReport {
    /// Events applied (EOFs included).
    pub applied: usize,
    /// Points written, deleted or updated across collections.
    pub point_writes: usize,
    /// `(index in the batch, reason)` of every rejected event.
    pub rejected: Vec<(usize, String)>,
}

/// Applies embedding events.
#[derive(Debug, Clone)]
pub struct EmbeddingIngestor {
    vectors: Arc<dyn VectorStore>,
    embeddings: Arc<dyn EmbeddingStore>,
    aggregator: Arc<dyn AggregatorStore>,
    lifecycle: Arc<Lifecycle>,
}

/// (embeddings table, model, embedding-store version, TTL seconds).
type GenerationKey = (String, String, i64, u64);

/// A validated event.
struct Valid<'a> {
    index: usize,
    event: &'a EmbeddingEvent,
    model: &'a Model,
    op: Operation,
    table: String,
    aggregator_table: String,
}

impl EmbeddingIngestor {
    pub fn new(
        vectors: Arc<dyn VectorStore>,
        embeddings: Arc<dyn EmbeddingStore>,
        aggregator: Arc<dyn AggregatorStore>,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        EmbeddingIngestor {
            vectors,
            embeddings,
            aggregator,
            lifecycle,
        }
    }

    /// Applies a batch; `events[i]` is `Err(reason)` for a record that did not decode.
    pub async fn process(
        &self,
        events: &[Result<EmbeddingEvent, String>],
    ) -> Result<BatchReport, Transient> {
        let snapshot = self.lifecycle.registry().snapshot();
        let existing: HashSet<String> = self
            .vectors
            .list_collections()
            .await
            .map_err(|e| Transient(e.to_string()))?
            .into_iter()
            .collect();
        let mut report = BatchReport::default();
        let mut valid = Vec::new();
        for (index, event) in events.iter().enumerate() {
            match event {
                Err(reason) => report.rejected.push((index, reason.clone())),
                Ok(event) => match validate(&snapshot, index, event, &existing) {
                    Ok(v) => valid.push(v),
                    Err(reason) => report.rejected.push((index, reason)),
                },
            }
        }

        // Phase 2a: the embedding store, grouped by generation, in event order.
        let mut generations: Vec<(GenerationKey, Vec<EmbeddingRow>)> = Vec::new();
        for v in &valid {
            let e = v.event;
            if e.is_eof()
                || v.op == Operation::Delete
                || e.index_space.embedding.is_empty()
                || !v.model.embedding_store_enabled
            {
                continue;
            }
            let search = e
                .search_space
                .as_ref()
                .map(|s| s.embedding.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| e.index_space.embedding.clone());
            let row = EmbeddingRow {
                id: e.candidate_id.clone(),
                embedding: e.index_space.embedding.clone(),
                search_embedding: search,
                to_be_indexed: e.index_space.variants_index_map.clone(),
            };
            let key = (
                v.table.clone(),
                v.model.name.clone(),
                e.embedding_store_version,
                v.model.embedding_store_ttl,
            );
            match generations.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(row),
                None => generations.push((key, vec![row])),
            }
        }
        // Phase 2b: the aggregator rows the payloads and filters need.
        let mut rows: HashMap<(String, String), AggregatorRow> = HashMap::new();
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in &valid {
            if !v.event.is_eof() && v.op != Operation::Delete {
                wanted
                    .entry(v.aggregator_table.clone())
                    .or_default()
                    .push(v.event.candidate_id.clone());
            }
        }
        for (table, ids) in wanted {
            match self.aggregator.get(&table, &ids).await {
                Ok(found) => {
                    for (id, row) in ids.into_iter().zip(found) {
                        if let Some(row) = row {
                            rows.insert((table.clone(), id), row);
                        }
                    }
                }
                Err(e) => return Err(Transient(format!("aggregator store: {e}"))),
            }
        }

        // Phase 2c: the collections, each in event order.
        let mut per_collection: BTreeMap<String, Vec<PointOp>> = BTreeMap::new();
        let mut eofs = Vec::new();
        for v in &valid {
            let e = v.event;
            if e.is_eof() {
                eofs.push(v);
                continue;
            }
            let agg = rows.get(&(v.aggregator_table.clone(), e.candidate_id.clone()));
            let mut ops = Vec::new();
            let mut failed = None;
            for (name, version) in &e.index_space.variants_version_map {
                let Some(variant) = v.model.variants.get(name) else {
                    continue; // validated
                };
                if !variant.enabled {
                    continue;
                }
                let collection = variant.collection_name(*version);
                let takes = e
                    .index_space
                    .variants_index_map
                    .get(name)
                    .copied()
                    .unwrap_or(false)
                    && admits(variant, agg);
                let op = match v.op {
                    Operation::Delete => PointOp::Delete(e.candidate_id.clone()),
                    _ if !takes => PointOp::Delete(e.candidate_id.clone()),
                    Operation::Add | Operation::UpsertPayload => {
                        match build_payload(variant, &e.index_space.payload, agg) {
                            Ok(payload) if v.op == Operation::Add => PointOp::Upsert(VectorPoint {
                                id: e.candidate_id.clone(),
                                vector: e.index_space.embedding.clone(),
                                payload,
                            }),
                            Ok(payload) => PointOp::Payload(e.candidate_id.clone(), payload),
                            Err(reason) => {
                                failed = Some(format!("variant '{name}': {reason}"));
                                break;
                            }
                        }
                    }
                };
                ops.push((collection, op));
            }
            if let Some(reason) = failed {
                report.rejected.push((v.index, reason));
                continue;
            }
            for (collection, op) in ops {
                per_collection.entry(collection).or_default().push(op);
            }
            report.applied += 1;
        }
        // The embedding store and the collections are independent: write them concurrently
        // (each write fsyncs; overlapping them roughly halves the wait).
        let store_writes = async {
            for ((table, model, version, ttl), rows) in generations {
                self.embeddings
                    .put(
                        Generation {
                            table: &table,
                            model: &model,
                            version,
                        },
                        rows,
                        (ttl > 0).then(|| Duration::from_secs(ttl)),
                    )
                    .await
                    .map_err(|e| Transient(format!("embedding store: {e}")))?;
            }
            Ok::<(), Transient>(())
        };
        report.point_writes += per_collection.values().map(Vec::len).sum::<usize>();
        let collection_writes = async {
            for (collection, ops) in per_collection {
                apply(&*self.vectors, &collection, ops)
                    .await
                    .map_err(|e| Transient(format!("collection '{collection}': {e}")))?;
            }
            Ok::<(), Transient>(())
        };
        let (stored, written) = tokio::join!(store_writes, collection_writes);
        stored?;
        written?;

        // Phase 3: EOFs, after everything before them is durable.
        for v in eofs {
            let e = v.event;
            let eof = EofReport {
                entity: e.entity.clone(),
                model: e.model_name.clone(),
                partition: e.partition.clone(),
                variants_version_map: e.index_space.variants_version_map.clone(),
                embedding_store_version: e.embedding_store_version,
            };
            match self.lifecycle.eof(&eof).await {
                Ok(_) => report.applied += 1,
                Err(err) if is_transient(&err) => return Err(Transient(err.to_string())),
                Err(err) => report
                    .rejected
                    .push((v.index, format!("EOF refused: {err}"))),
            }
        }
        Ok(report)
    }
}

fn is_transient(e: &LifecycleError) -> bool {
    matches!(e.code(), ErrorCode::Unavailable | ErrorCode::Internal)
}

fn validate<'a>(
    snapshot: &'a ConfigSnapshot,
    index: usize,
    e: &'a EmbeddingEvent,
    existing: &HashSet<String>,
) -> Result<Valid<'a>, String> {
    let model = snapshot
        .model(&e.entity, &e.model_name)
        .map_err(|err| err.to_string())?;
    let store = snapshot
        .store_of(&e.entity)
        .map_err(|err| err.to_string())?;
    if e.candidate_id.trim().is_empty() {
        return Err("candidate_id is empty".into());
    }
    let op = if e.is_eof() {
        Operation::Add
    } else {
        Operation::parse(&e.index_space.operation)?
    };
    if e.index_space.variants_version_map.is_empty() {
        return Err(
            "index_space.variants_version_map is empty: the event targets no variant".into(),
        );
    }
    for (name, version) in &e.index_space.variants_version_map {
        let variant: &Variant = model
            .variants
            .get(name)
            .ok_or_else(|| format!("unknown variant '{name}' of model '{}'", model.name))?;
        if e.is_eof() || !variant.enabled {
            continue;
        }
        let collection = variant.collection_name(*version);
        if !existing.contains(&collection) {
            return Err(format!(
                "collection '{collection}' does not exist: variant '{name}' is written at version \
                 {} (start a job with process-model to get a job ticket)",
                variant.vector_db_write_version
            ));
        }
    }
    if !e.is_eof() && op == Operation::Add {
        let dim = model.model_config.vector_dimension as usize;
        let check = |what: &str, v: &[f32]| check_vector(what, v, dim, &model.name);
        check("index_space.embedding", &e.index_space.embedding)?;
        if let Some(s) = e.search_space.as_ref().filter(|s| !s.embedding.is_empty()) {
            check("search_space.embedding", &s.embedding)?;
        }
    }
    Ok(Valid {
        index,
        event: e,
        model,
        op,
        table: store.embeddings_table.clone(),
        aggregator_table: store.aggregator_table.clone(),
    })
}
