//! The embedding consumer's batch processing (spec AC §4.3, with its bugs fixed).
//!
//! A batch is handled in phases so that nothing acknowledged is lost and nothing is
//! half-applied:
//! 1. **validate** every event against the config (entity, model, variants, operation,
//!    dimension, finite values) and check that each collection the batch writes exists (only
//!    those: a remote host that this batch does not use cannot fail it). An invalid event is
//!    reported with its reason (the consumer sends it to the failure topic) and the rest of the
//!    batch goes on (spec AC §8 B26);
//! 2. **plan** each valid event's writes from its payload and aggregator row: the embedding row
//!    (with the job's payload, which a real-time re-admission needs) and one point operation per
//!    variant. An event whose payload does not convert is rejected here, before anything of it
//!    is written, so a rejected event leaves no trace outside the failure topic;
//! 3. **write** the embedding store (one call per generation) and, concurrently, each
//!    collection's upserts/deletes/payload updates in event order. Every write is idempotent, so a
//!    batch that fails half-way is simply retried;
//! 4. **EOF**: only after the data before it is durable, each EOF reports its partition to the
//!    lifecycle barrier (spec AC §8 B6, B12).
//!
//! Candidate ids are opaque strings (the original exits on a non-numeric id, spec AC §8 B4). An
//! `ADD` that a variant does not take (its `variants_index_map` flag is false or its vss filter
//! rejects the item) removes the id from that collection, so a DELTA job can take items out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use skye_core::domain::{Model, Variant};
use skye_core::snapshot::ConfigSnapshot;
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation,
};
use skye_core::vector_store::{CollectionRef, VectorPoint, VectorStore, VectorStoreError};

use super::events::{EmbeddingEvent, Operation};
use super::payload::{admits, build_payload};
use super::points::{PointOp, apply, check_vector};
use super::progress::{Applied, JobProgress, ModelKey};
use super::runner::{RejectClass, Rejection};
use crate::lifecycle::{EofReport, Lifecycle, LifecycleError};
use skye_core::error::{ErrorCode, HasErrorCode};
use tracing::Instrument;

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
    pub rejected: Vec<(usize, Rejection)>,
}

/// Applies embedding events.
#[derive(Debug, Clone)]
pub struct EmbeddingIngestor {
    vectors: Arc<dyn VectorStore>,
    embeddings: Arc<dyn EmbeddingStore>,
    aggregator: Arc<dyn AggregatorStore>,
    lifecycle: Arc<Lifecycle>,
    progress: Option<Arc<JobProgress>>,
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

/// Every write of a batch, decided before the first one is made.
#[derive(Default)]
struct Plan {
    generations: Vec<(GenerationKey, Vec<EmbeddingRow>)>,
    collections: BTreeMap<CollectionRef, Vec<PointOp>>,
    /// Data events planned, per job.
    jobs: BTreeMap<JobKey, u64>,
}

/// (entity, model, embedding-store version, job partitions).
type JobKey = (String, String, i64, u32);

fn job_key(v: &Valid<'_>) -> JobKey {
    let e = v.event;
    (
        e.entity.clone(),
        e.model_name.clone(),
        e.embedding_store_version,
        v.model.number_of_partitions,
    )
}

impl Plan {
    fn add_row(&mut self, key: GenerationKey, row: EmbeddingRow) {
        match self.generations.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => rows.push(row),
            None => self.generations.push((key, vec![row])),
        }
    }
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
            progress: None,
        }
    }

    /// Reports what each applied batch did to each model's job.
    pub fn with_progress(mut self, progress: Arc<JobProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Applies a batch; `events[i]` is `Err(reason)` for a record that did not decode.
    pub async fn process(
        &self,
        events: &[Result<EmbeddingEvent, Rejection>],
    ) -> Result<BatchReport, Transient> {
        let snapshot = self.lifecycle.registry().snapshot();
        let mut report = BatchReport::default();
        let existing = self.existing_collections(&snapshot, events).await?;
        let mut valid = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let checked = event.as_ref().map_err(Clone::clone).and_then(|e| {
                validate(&snapshot, index, e, &existing)
                    .map_err(|r| Rejection::new(RejectClass::Invalid, r))
            });
            match checked {
                Ok(v) => valid.push(v),
                Err(reason) => report.rejected.push((index, reason)),
            }
        }
        let (data, eofs): (Vec<&Valid>, Vec<&Valid>) =
            valid.iter().partition(|v| !v.event.is_eof());
        let rows = self
            .aggregator_rows(&data)
            .instrument(tracing::debug_span!("aggregator_fetch"))
            .await?;
        let mut plan = plan(&data, &rows, &mut report);
        report.point_writes += plan.collections.values().map(Vec::len).sum::<usize>();
        let jobs = std::mem::take(&mut plan.jobs);
        self.write(plan).await?;
        self.progressed(jobs.into_iter().map(|(key, events)| (key, events, None)));
        for v in eofs {
            let eof_span = tracing::debug_span!("eof", partition = %v.event.partition);
            if self.report_eof(v, &mut report).instrument(eof_span).await? {
                let eof = Some(v.event.partition.clone());
                self.progressed([(job_key(v), 0, eof)]);
            }
        }
        Ok(report)
    }

    fn progressed(&self, applied: impl IntoIterator<Item = (JobKey, u64, Option<String>)>) {
        let Some(progress) = &self.progress else {
            return;
        };
        for ((entity, model, version, partitions), events, eof) in applied {
            progress.record(Applied {
                model: ModelKey { entity, model },
                version,
                partitions,
                events,
                eof,
            });
        }
    }

    /// Which of the collections the batch writes exist, checked once each. A backend error
    /// fails the batch (it is retried); a missing collection only rejects its events.
    async fn existing_collections(
        &self,
        snapshot: &ConfigSnapshot,
        events: &[Result<EmbeddingEvent, Rejection>],
    ) -> Result<HashMap<CollectionRef, bool>, Transient> {
        let mut wanted: Vec<CollectionRef> = events
            .iter()
            .filter_map(|e| e.as_ref().ok())
            .filter(|e| !e.is_eof())
            .filter_map(|e| Some((e, snapshot.model(&e.entity, &e.model_name).ok()?)))
            .flat_map(|(e, m)| {
                e.index_space
                    .variants_version_map
                    .iter()
                    .filter_map(|(name, version)| {
                        let v = m.variants.get(name).filter(|v| v.enabled)?;
                        Some(v.collection(*version))
                    })
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        let checks = wanted.iter().map(|c| self.vectors.collection_info(c));
        let mut existing = HashMap::with_capacity(wanted.len());
        for (c, info) in wanted
            .iter()
            .zip(futures_util::future::join_all(checks).await)
        {
            match info {
                Ok(_) => existing.insert(c.clone(), true),
                Err(VectorStoreError::CollectionNotFound(_)) => existing.insert(c.clone(), false),
                Err(e) => return Err(Transient(format!("collection {c}: {e}"))),
            };
        }
        Ok(existing)
    }

    /// The aggregator rows the payloads and filters of `data` need, by (table, id).
    async fn aggregator_rows(
        &self,
        data: &[&Valid<'_>],
    ) -> Result<HashMap<(String, String), AggregatorRow>, Transient> {
        let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for v in data.iter().filter(|v| v.op != Operation::Delete) {
            wanted
                .entry(&v.aggregator_table)
                .or_default()
                .push(v.event.candidate_id.clone());
        }
        let mut rows = HashMap::new();
        for (table, ids) in wanted {
            let found = self
                .aggregator
                .get(table, &ids)
                .await
                .map_err(|e| Transient(format!("aggregator store: {e}")))?;
            for (id, row) in ids.into_iter().zip(found) {
                if let Some(row) = row {
                    rows.insert((table.to_string(), id), row);
                }
            }
        }
        Ok(rows)
    }

    /// The embedding store and the collections are independent: written concurrently (each
    /// write fsyncs; overlapping them roughly halves the wait).
    async fn write(&self, plan: Plan) -> Result<(), Transient> {
        let store_writes = async {
            for ((table, model, version, ttl), rows) in plan.generations {
                let generation = Generation {
                    table: &table,
                    model: &model,
                    version,
                };
                let ttl = (ttl > 0).then(|| Duration::from_secs(ttl));
                self.embeddings
                    .put(generation, rows, ttl)
                    .await
                    .map_err(|e| Transient(format!("embedding store: {e}")))?;
            }
            Ok::<(), Transient>(())
        };
        let collection_writes = async {
            for (collection, ops) in plan.collections {
                apply(&*self.vectors, &collection, ops)
                    .await
                    .map_err(|e| Transient(format!("collection {collection}: {e}")))?;
            }
            Ok::<(), Transient>(())
        };
        let (stored, written) = tokio::join!(
            store_writes.instrument(tracing::debug_span!("embedding_store_write")),
            collection_writes.instrument(tracing::debug_span!("collection_write")),
        );
        stored.and(written)
    }

    /// Reports an EOF to the lifecycle barrier, after everything before it is durable; whether
    /// the barrier took it.
    async fn report_eof(&self, v: &Valid<'_>, report: &mut BatchReport) -> Result<bool, Transient> {
        let e = v.event;
        let eof = EofReport {
            entity: e.entity.clone(),
            model: e.model_name.clone(),
            partition: e.partition.clone(),
            variants_version_map: e.index_space.variants_version_map.clone(),
            embedding_store_version: e.embedding_store_version,
        };
        match self.lifecycle.eof(&eof).await {
            Ok(_) => {
                report.applied += 1;
                Ok(true)
            }
            Err(err) if is_transient(&err) => Err(Transient(err.to_string())),
            Err(err) => {
                let reason = format!("EOF refused: {err}");
                report
                    .rejected
                    .push((v.index, Rejection::new(RejectClass::Eof, reason)));
                Ok(false)
            }
        }
    }
}

/// Every write of the data events, or their rejection: an event whose payload does not build
/// for one of its variants contributes nothing.
fn plan(
    data: &[&Valid<'_>],
    rows: &HashMap<(String, String), AggregatorRow>,
    report: &mut BatchReport,
) -> Plan {
    let mut plan = Plan::default();
    for v in data {
        let agg = rows.get(&(v.aggregator_table.clone(), v.event.candidate_id.clone()));
        match point_ops(v, agg) {
            Ok(ops) => {
                for (collection, op) in ops {
                    plan.collections.entry(collection).or_default().push(op);
                }
                if let Some((key, row)) = embedding_row(v) {
                    plan.add_row(key, row);
                }
                *plan.jobs.entry(job_key(v)).or_default() += 1;
                report.applied += 1;
            }
            Err(reason) => report
                .rejected
                .push((v.index, Rejection::new(RejectClass::Payload, reason))),
        }
    }
    plan
}

/// The event's operation on each enabled variant it names.
fn point_ops(
    v: &Valid<'_>,
    agg: Option<&AggregatorRow>,
) -> Result<Vec<(CollectionRef, PointOp)>, String> {
    let e = v.event;
    let mut ops = Vec::new();
    for (name, version) in &e.index_space.variants_version_map {
        let Some(variant) = v.model.variants.get(name).filter(|x| x.enabled) else {
            continue; // validated: known, and disabled ones are not written
        };
        let takes = e.index_space.variants_index_map.get(name).copied() == Some(true)
            && admits(variant, agg);
        let id = e.candidate_id.clone();
        let op = match v.op {
            Operation::Delete => PointOp::Delete(id),
            _ if !takes => PointOp::Delete(id),
            Operation::Add | Operation::UpsertPayload => {
                let payload = build_payload(variant, &e.index_space.payload, agg)
                    .map_err(|reason| format!("variant '{name}': {reason}"))?;
                if v.op == Operation::Add {
                    PointOp::Upsert(VectorPoint {
                        id,
                        vector: e.index_space.embedding.clone(),
                        payload,
                    })
                } else {
                    PointOp::Payload(id, payload)
                }
            }
        };
        ops.push((variant.collection(*version), op));
    }
    Ok(ops)
}

/// The embedding-store row of an ADD (or UPSERT_PAYLOAD carrying vectors), with its generation.
fn embedding_row(v: &Valid<'_>) -> Option<(GenerationKey, EmbeddingRow)> {
    let e = v.event;
    if v.op == Operation::Delete
        || e.index_space.embedding.is_empty()
        || !v.model.embedding_store_enabled
    {
        return None;
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
        payload: e.index_space.payload.clone(),
    };
    let key = (
        v.table.clone(),
        v.model.name.clone(),
        e.embedding_store_version,
        v.model.embedding_store_ttl,
    );
    Some((key, row))
}

fn is_transient(e: &LifecycleError) -> bool {
    matches!(e.code(), ErrorCode::Unavailable | ErrorCode::Internal)
}

fn validate<'a>(
    snapshot: &'a ConfigSnapshot,
    index: usize,
    e: &'a EmbeddingEvent,
    existing: &HashMap<CollectionRef, bool>,
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
        let collection = variant.collection(*version);
        if existing.get(&collection) != Some(&true) {
            return Err(format!(
                "collection {collection} does not exist: variant '{name}' is written at version \
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
