//! The real-time aggregator consumer (spec AC §4.6) and the delta consumer (§4.7).
//!
//! **Real-time.** For each candidate of an event: the changed columns (the delta) are computed
//! against the stored aggregator row (no hard-coded defaults, spec AC §8 B10); for every enabled
//! variant of the entity's models the vss filter is evaluated on the row before and after:
//!
//! | before | after | action |
//! |---|---|---|
//! | rejected | admitted | `UPSERT`: vector and job payload from the embedding store, the new row's columns on top |
//! | admitted | rejected | `DELETE` |
//! | admitted | admitted | `UPSERT_PAYLOAD` of the changed payload fields, if any |
//!
//! A re-admitted item keeps the payload its job gave it: the embedding row holds it, and the
//! aggregator row's columns (real-time changes, newer than the job) replace the fields they
//! name. Each action targets the write version and, while a job runs, the read version too; an
//! `UPSERT`/`UPSERT_PAYLOAD` is only emitted when the embedding row exists at that target's
//! generation with the variant's to-be-indexed flag set. The delta events are made durable on the
//! delta topic **before** the aggregator row is written (the original writes the row first and
//! loses the update on any later failure, spec AC §8 B9); a retried batch recomputes the same
//! deltas (they are idempotent).
//!
//! **Delta.** Delta events are applied in order per variant (they are keyed by variant), stale
//! versions (neither the read nor the write version) are dropped, a variant whose
//! `rate-limiter/rate-limit` is 0 is paused (its partition is held, nothing is lost) and the
//! others are paced by a token bucket of `rate-limit`/s with `burst-limit` burst.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skye_core::domain::{Entity, Store, Variant};
use skye_core::event_log::{EventLog, Produce, Record, topics};
use skye_core::snapshot::ConfigSnapshot;
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation,
};
use skye_core::vector_store::{
    CollectionRef, VariantKey, VectorPoint, VectorStore, VectorStoreError,
};
use tokio::time::Instant;

use super::embedding::Transient;
use super::events::{DeltaEvent, DeltaKind, RealtimeCandidate, RealtimeEvent};
use super::payload::{admits, build_payload, typed};
use super::points::{PointOp, apply, check_vector};
use super::runner::{BatchHandler, Outcome, RejectClass, Rejection};
use crate::registry::Registry;

/// Applies real-time aggregator events.
#[derive(Debug)]
pub struct RealtimeHandler {
    registry: Arc<Registry>,
    embeddings: Arc<dyn EmbeddingStore>,
    aggregator: Arc<dyn AggregatorStore>,
    log: Arc<dyn EventLog>,
    delta_topic: String,
}

/// What one batch has read and decided so far.
#[derive(Default)]
struct Pass {
    /// Aggregator rows as the batch leaves them, by (table, id).
    rows: HashMap<(String, String), Option<AggregatorRow>>,
    /// Embedding rows read, by (model, version, id).
    embedding_rows: HashMap<(String, i64, String), Option<EmbeddingRow>>,
    /// Changed columns to merge, per table, in event order.
    merges: BTreeMap<String, Vec<(String, AggregatorRow)>>,
    deltas: Vec<Produce>,
    outcome: Outcome,
}

/// One collection a delta event goes to: its version and the embedding generation beside it.
#[derive(Debug, Clone, Copy)]
struct Target {
    version: i64,
    embedding_version: i64,
}

/// A candidate's row change: the columns before, after, and those that changed.
struct Change<'a> {
    id: &'a str,
    old: Option<&'a AggregatorRow>,
    new: &'a AggregatorRow,
    delta: &'a AggregatorRow,
}

impl RealtimeHandler {
    pub fn new(
        registry: Arc<Registry>,
        embeddings: Arc<dyn EmbeddingStore>,
        aggregator: Arc<dyn AggregatorStore>,
        log: Arc<dyn EventLog>,
    ) -> Self {
        RealtimeHandler {
            registry,
            embeddings,
            aggregator,
            log,
            delta_topic: topics::REALTIME_DELTA.to_string(),
        }
    }

    /// The aggregator row of `id` as this batch has left it.
    async fn aggregator_row(
        &self,
        pass: &mut Pass,
        table: &str,
        id: &str,
    ) -> Result<Option<AggregatorRow>, Transient> {
        let ids = [id.to_string()];
        let read = self.aggregator.get(table, &ids);
        memo(&mut pass.rows, (table.to_string(), id.to_string()), async {
            read.await
                .map_err(|e| Transient(format!("aggregator store: {e}")))
                .map(|mut rows| rows.pop().flatten())
        })
        .await
    }

    async fn embedding_row(
        &self,
        pass: &mut Pass,
        generation: Generation<'_>,
        id: &str,
    ) -> Result<Option<EmbeddingRow>, Transient> {
        let key = (
            generation.model.to_string(),
            generation.version,
            id.to_string(),
        );
        let ids = [id.to_string()];
        let read = self.embeddings.get(generation, &ids);
        memo(&mut pass.embedding_rows, key, async {
            read.await
                .map_err(|e| Transient(format!("embedding store: {e}")))
                .map(|mut rows| rows.pop().flatten())
        })
        .await
    }

    /// Computes the deltas of one candidate's update and records its row change.
    async fn candidate(
        &self,
        pass: &mut Pass,
        entity: &Entity,
        store: &Store,
        candidate: &RealtimeCandidate,
    ) -> Result<(), Transient> {
        let table = &store.aggregator_table;
        let old = self.aggregator_row(pass, table, &candidate.id).await?;
        let delta: AggregatorRow = candidate
            .data
            .iter()
            .filter(|l| !l.label.is_empty())
            .filter(|l| old.as_ref().and_then(|r| r.get(&l.label)) != Some(&l.value))
            .map(|l| (l.label.clone(), l.value.clone()))
            .collect();
        if delta.is_empty() {
            return Ok(());
        }
        let mut new = old.clone().unwrap_or_default();
        new.extend(delta.clone());
        let change = Change {
            id: &candidate.id,
            old: old.as_ref(),
            new: &new,
            delta: &delta,
        };
        let variants = entity
            .models
            .values()
            .flat_map(|m| m.variants.values())
            .filter(|v| v.enabled);
        for v in variants {
            let Some(kind) = transition(v, &change) else {
                continue;
            };
            for target in targets(v) {
                if let Some(event) = self
                    .delta_event(pass, store, v, kind, target, &change)
                    .await?
                {
                    let value = serde_json::to_vec(&event)
                        .map_err(|e| Transient(format!("cannot encode a delta: {e}")))?;
                    let key = format!("{}/{}", v.model, v.name);
                    pass.deltas
                        .push(Produce::new(self.delta_topic.clone(), key, value));
                }
            }
        }
        pass.rows
            .insert((table.clone(), candidate.id.clone()), Some(new));
        pass.merges
            .entry(table.clone())
            .or_default()
            .push((candidate.id.clone(), delta));
        Ok(())
    }

    /// The delta event of `kind` for `v` at `target`; `None` when the item has no embedding row
    /// there that the variant indexes (nothing to add or update).
    async fn delta_event(
        &self,
        pass: &mut Pass,
        store: &Store,
        v: &Variant,
        kind: DeltaKind,
        target: Target,
        change: &Change<'_>,
    ) -> Result<Option<DeltaEvent>, Transient> {
        let mut event = DeltaEvent {
            entity: v.entity.clone(),
            model: v.model.clone(),
            variant: v.name.clone(),
            version: target.version,
            id: change.id.to_string(),
            payload: BTreeMap::new(),
            vectors: Vec::new(),
            event_type: kind,
        };
        if kind == DeltaKind::Delete {
            return Ok(Some(event));
        }
        let generation = Generation {
            table: &store.embeddings_table,
            model: &v.model,
            version: target.embedding_version,
        };
        let row = self.embedding_row(pass, generation, change.id).await?;
        let Some(row) = row.filter(|r| r.to_be_indexed.get(&v.name) == Some(&true)) else {
            return Ok(None);
        };
        event.payload = match kind {
            DeltaKind::Upsert => readmitted_payload(v, &row.payload, change.new),
            _ => schema_fields(v, change.delta),
        };
        if kind == DeltaKind::Upsert {
            event.vectors = row.embedding;
        }
        Ok(Some(event))
    }

    /// Deltas first, then the rows they were computed from (spec AC §8 B9).
    async fn flush(&self, pass: Pass) -> Result<Outcome, Transient> {
        if !pass.deltas.is_empty() {
            self.log
                .produce(pass.deltas)
                .await
                .map_err(|e| Transient(format!("delta topic: {e}")))?;
        }
        for (table, updates) in pass.merges {
            self.aggregator
                .merge(&table, updates)
                .await
                .map_err(|e| Transient(format!("aggregator store: {e}")))?;
        }
        Ok(pass.outcome)
    }
}

/// `map[key]`, read with `read` (only awaited) the first time.
async fn memo<K: std::hash::Hash + Eq, V: Clone>(
    map: &mut HashMap<K, V>,
    key: K,
    read: impl std::future::Future<Output = Result<V, Transient>>,
) -> Result<V, Transient> {
    if let Some(v) = map.get(&key) {
        return Ok(v.clone());
    }
    let v = read.await?;
    map.insert(key, v.clone());
    Ok(v)
}

/// A real-time record, with the entity and store it names.
fn decode_realtime<'s>(
    snapshot: &'s ConfigSnapshot,
    record: &Record,
) -> Result<(RealtimeEvent, &'s Entity, &'s Store), Rejection> {
    let event: RealtimeEvent = serde_json::from_slice(&record.value)
        .map_err(|e| Rejection::new(RejectClass::Decode, format!("not a real-time event: {e}")))?;
    let invalid =
        |e: skye_core::snapshot::LookupError| Rejection::new(RejectClass::Invalid, e.to_string());
    let entity = snapshot.entity(&event.entity).map_err(invalid)?;
    let store = snapshot.store(&entity.store_id).map_err(invalid)?;
    Ok((event, entity, store))
}

#[async_trait]
impl BatchHandler for RealtimeHandler {
    async fn handle(&self, records: &[Record]) -> Result<Outcome, Transient> {
        let snapshot = self.registry.snapshot();
        let mut pass = Pass::default();
        for (index, record) in records.iter().enumerate() {
            let (event, entity, store) = match decode_realtime(&snapshot, record) {
                Ok(found) => found,
                Err(why) => {
                    pass.outcome.rejected.push((index, why));
                    continue;
                }
            };
            for candidate in &event.data {
                if candidate.id.is_empty() {
                    pass.outcome.rejected.push((
                        index,
                        Rejection::new(RejectClass::Invalid, "data[].id is empty"),
                    ));
                    continue;
                }
                self.candidate(&mut pass, entity, store, candidate).await?;
            }
        }
        self.flush(pass).await
    }
}

/// What a row change does to `v`'s collections, if anything.
fn transition(v: &Variant, change: &Change<'_>) -> Option<DeltaKind> {
    match (admits(v, change.old), admits(v, Some(change.new))) {
        (false, true) => Some(DeltaKind::Upsert),
        (true, false) => Some(DeltaKind::Delete),
        (true, true) => {
            (!schema_fields(v, change.delta).is_empty()).then_some(DeltaKind::UpsertPayload)
        }
        (false, false) => None,
    }
}

/// The columns of `row` that are payload fields of `v`.
fn schema_fields(v: &Variant, row: &AggregatorRow) -> BTreeMap<String, String> {
    row.iter()
        .filter(|(k, _)| v.vector_db_config.payload.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The payload texts of a re-admitted item: its job payload, with the aggregator row's columns
/// on top (fields neither names take their defaults when the delta is applied).
fn readmitted_payload(
    v: &Variant,
    job: &BTreeMap<String, String>,
    row: &AggregatorRow,
) -> BTreeMap<String, String> {
    let mut payload: BTreeMap<String, String> = job
        .iter()
        .filter(|(k, text)| v.vector_db_config.payload.contains_key(*k) && !text.is_empty())
        .map(|(k, text)| (k.clone(), text.clone()))
        .collect();
    payload.extend(schema_fields(v, row));
    payload
}

/// Every live collection of `v`: the write version and, while a job runs, the read version.
fn targets(v: &Variant) -> Vec<Target> {
    let mut out = vec![Target {
        version: v.vector_db_write_version,
        embedding_version: v.embedding_store_write_version,
    }];
    if v.vector_db_read_version != v.vector_db_write_version {
        out.push(Target {
            version: v.vector_db_read_version,
            embedding_version: v.embedding_store_read_version,
        });
    }
    out
}

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Applies delta events to collections.
#[derive(Debug)]
pub struct DeltaHandler {
    registry: Arc<Registry>,
    vectors: Arc<dyn VectorStore>,
    buckets: Mutex<HashMap<VariantKey, Bucket>>,
}

impl DeltaHandler {
    pub fn new(registry: Arc<Registry>, vectors: Arc<dyn VectorStore>) -> Self {
        DeltaHandler {
            registry,
            vectors,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How long to wait before `n` more events of `v` may be applied.
    fn pace(&self, v: &Variant, n: usize) -> Duration {
        let rate = f64::from(v.rate_limiter.rate_limit.max(1));
        let burst = f64::from(v.rate_limiter.burst_limit.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets.entry(v.key()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        b.tokens -= n as f64;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }
}

/// A delta record's variant, or why it is not applied now.
enum Routed<'s> {
    Apply(&'s Variant, DeltaEvent),
    /// The variant is paused: deliver this record again later.
    Hold,
    /// For a version no longer live: nothing to do.
    Stale,
    Reject(Rejection),
}

fn route_delta<'s>(snapshot: &'s ConfigSnapshot, record: &Record) -> Routed<'s> {
    let event: DeltaEvent = match serde_json::from_slice(&record.value) {
        Ok(e) => e,
        Err(e) => {
            let why = format!("not a delta event: {e}");
            return Routed::Reject(Rejection::new(RejectClass::Decode, why));
        }
    };
    let v = match snapshot.variant(&event.entity, &event.model, &event.variant) {
        Ok(v) => v,
        Err(e) => return Routed::Reject(Rejection::new(RejectClass::Invalid, e.to_string())),
    };
    if v.rate_limiter.rate_limit == 0 {
        return Routed::Hold;
    }
    if !v.enabled
        || (event.version != v.vector_db_write_version && event.version != v.vector_db_read_version)
    {
        tracing::debug!(variant = %v.name, version = event.version, "stale delta dropped");
        return Routed::Stale;
    }
    if event.id.trim().is_empty() {
        return Routed::Reject(Rejection::new(RejectClass::Invalid, "Id is empty"));
    }
    Routed::Apply(v, event)
}

/// The point operation a delta event stands for.
fn delta_op(snapshot: &ConfigSnapshot, v: &Variant, event: DeltaEvent) -> Result<PointOp, String> {
    match event.event_type {
        DeltaKind::Delete => Ok(PointOp::Delete(event.id)),
        DeltaKind::Upsert if event.vectors.is_empty() => Err("UPSERT without vectors".into()),
        DeltaKind::Upsert => {
            let m = snapshot
                .model(&event.entity, &event.model)
                .map_err(|e| e.to_string())?;
            let dim = m.model_config.vector_dimension as usize;
            check_vector("Vectors", &event.vectors, dim, &m.name)?;
            let payload = build_payload(v, &event.payload, None)?;
            Ok(PointOp::Upsert(VectorPoint {
                id: event.id,
                vector: event.vectors,
                payload,
            }))
        }
        DeltaKind::UpsertPayload => {
            let mut payload = BTreeMap::new();
            for (field, text) in &event.payload {
                let Some(f) = v.vector_db_config.payload.get(field) else {
                    continue;
                };
                let value = typed(f.field_schema, text)
                    .map_err(|e| format!("payload field '{field}': {e}"))?;
                payload.insert(field.clone(), value);
            }
            Ok(PointOp::Payload(event.id, payload))
        }
    }
}

#[async_trait]
impl BatchHandler for DeltaHandler {
    async fn handle(&self, records: &[Record]) -> Result<Outcome, Transient> {
        let snapshot = self.registry.snapshot();
        let mut outcome = Outcome::default();
        let mut per_collection: BTreeMap<CollectionRef, Vec<PointOp>> = BTreeMap::new();
        let mut counts: HashMap<VariantKey, (&Variant, usize)> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let held =
                |(t, p, _): &(String, u32, u64)| *t == record.topic && *p == record.partition;
            if outcome.hold.iter().any(held) {
                continue;
            }
            let (v, event) = match route_delta(&snapshot, record) {
                Routed::Apply(v, event) => (v, event),
                // Paused: hold the partition here; it resumes when the rate is set again.
                Routed::Hold => {
                    outcome
                        .hold
                        .push((record.topic.clone(), record.partition, record.offset));
                    continue;
                }
                Routed::Stale => continue,
                Routed::Reject(why) => {
                    outcome.rejected.push((index, why));
                    continue;
                }
            };
            let collection = v.collection(event.version);
            match delta_op(&snapshot, v, event) {
                Ok(op) => per_collection.entry(collection).or_default().push(op),
                Err(reason) => {
                    let why = Rejection::new(RejectClass::Invalid, reason);
                    outcome.rejected.push((index, why));
                    continue;
                }
            }
            counts.entry(v.key()).or_insert((v, 0)).1 += 1;
        }
        let wait = counts
            .values()
            .map(|(v, n)| self.pace(v, *n))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        for (collection, ops) in per_collection {
            match apply(&*self.vectors, &collection, ops).await {
                Ok(()) => {}
                // The collection went away with a version switch: those deltas are stale.
                Err(VectorStoreError::CollectionNotFound(_)) => {}
                Err(e) => return Err(Transient(format!("collection {collection}: {e}"))),
            }
        }
        Ok(outcome)
    }
}
