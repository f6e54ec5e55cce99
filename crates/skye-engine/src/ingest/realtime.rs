//! The real-time aggregator consumer (spec AC §4.6) and the delta consumer (§4.7).
//!
//! **Real-time.** For each candidate of an event: the changed columns (the delta) are computed
//! against the stored aggregator row (no hard-coded defaults, spec AC §8 B10); for every enabled
//! variant of the entity's models the vss filter is evaluated on the row before and after:
//!
//! | before | after | action |
//! |---|---|---|
//! | rejected | admitted | `UPSERT` (vector from the embedding store, payload from the new row) |
//! | admitted | rejected | `DELETE` |
//! | admitted | admitted | `UPSERT_PAYLOAD` of the changed payload fields, if any |
//!
//! Each action targets the write version and, while a job runs, the read version too; an
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
use skye_core::domain::Variant;
use skye_core::event_log::{EventLog, Produce, Record, topics};
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation,
};
use skye_core::vector_store::{VectorPoint, VectorStore};
use tokio::time::Instant;

use super::embedding::Transient;
use super::events::{DeltaEvent, RealtimeEvent};
use super::payload::{admits, build_payload, typed};
use super::points::{PointOp, apply, check_vector};
use super::runner::{BatchHandler, Outcome};
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

    async fn embedding_row(
        &self,
        cache: &mut HashMap<(String, i64, String), Option<EmbeddingRow>>,
        table: &str,
        model: &str,
        version: i64,
        id: &str,
    ) -> Result<Option<EmbeddingRow>, Transient> {
        let key = (model.to_string(), version, id.to_string());
        if let Some(row) = cache.get(&key) {
            return Ok(row.clone());
        }
        let row = self
            .embeddings
            .get(
                Generation {
                    table,
                    model,
                    version,
                },
                &[id.to_string()],
            )
            .await
            .map_err(|e| Transient(format!("embedding store: {e}")))?
            .pop()
            .flatten();
        cache.insert(key, row.clone());
        Ok(row)
    }
}

#[async_trait]
impl BatchHandler for RealtimeHandler {
    async fn handle(&self, records: &[Record]) -> Result<Outcome, Transient> {
        let snapshot = self.registry.snapshot();
        let mut outcome = Outcome::default();
        let mut rows: HashMap<(String, String), Option<AggregatorRow>> = HashMap::new();
        let mut merges: Vec<(String, String, AggregatorRow)> = Vec::new();
        let mut deltas: Vec<Produce> = Vec::new();
        let mut emb_cache = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let event: RealtimeEvent = match serde_json::from_slice(&record.value) {
                Ok(e) => e,
                Err(e) => {
                    outcome
                        .rejected
                        .push((index, format!("not a real-time event: {e}")));
                    continue;
                }
            };
            let (entity, store) = match snapshot
                .entity(&event.entity)
                .and_then(|e| Ok((e, snapshot.store(&e.store_id)?)))
            {
                Ok(found) => found,
                Err(e) => {
                    outcome.rejected.push((index, e.to_string()));
                    continue;
                }
            };
            let table = store.aggregator_table.clone();
            for candidate in &event.data {
                if candidate.id.is_empty() {
                    outcome.rejected.push((index, "data[].id is empty".into()));
                    continue;
                }
                let key = (table.clone(), candidate.id.clone());
                if !rows.contains_key(&key) {
                    let found = self
                        .aggregator
                        .get(&table, std::slice::from_ref(&candidate.id))
                        .await
                        .map_err(|e| Transient(format!("aggregator store: {e}")))?
                        .pop()
                        .flatten();
                    rows.insert(key.clone(), found);
                }
                let old = rows.get(&key).cloned().flatten();
                let delta: AggregatorRow = candidate
                    .data
                    .iter()
                    .filter(|l| !l.label.is_empty())
                    .filter(|l| old.as_ref().and_then(|r| r.get(&l.label)) != Some(&l.value))
                    .map(|l| (l.label.clone(), l.value.clone()))
                    .collect();
                if delta.is_empty() {
                    continue;
                }
                let mut new = old.clone().unwrap_or_default();
                new.extend(delta.clone());
                for model in entity.models.values() {
                    for v in model.variants.values().filter(|v| v.enabled) {
                        let Some((event_type, payload)) = action(v, old.as_ref(), &new, &delta)
                        else {
                            continue;
                        };
                        for (version, es_version) in targets(v) {
                            let mut vectors = Vec::new();
                            if event_type != "DELETE" {
                                let row = self
                                    .embedding_row(
                                        &mut emb_cache,
                                        &store.embeddings_table,
                                        &model.name,
                                        es_version,
                                        &candidate.id,
                                    )
                                    .await?;
                                let Some(row) = row.filter(|r| {
                                    r.to_be_indexed.get(&v.name).copied().unwrap_or(false)
                                }) else {
                                    continue;
                                };
                                if event_type == "UPSERT" {
                                    vectors = row.embedding;
                                }
                            }
                            let delta_event = DeltaEvent {
                                entity: v.entity.clone(),
                                model: v.model.clone(),
                                variant: v.name.clone(),
                                version,
                                id: candidate.id.clone(),
                                payload: payload.clone(),
                                vectors,
                                event_type: event_type.to_string(),
                            };
                            let value = serde_json::to_vec(&delta_event)
                                .map_err(|e| Transient(format!("cannot encode a delta: {e}")))?;
                            deltas.push(Produce::new(
                                self.delta_topic.clone(),
                                format!("{}/{}", v.model, v.name),
                                value,
                            ));
                        }
                    }
                }
                rows.insert(key, Some(new));
                merges.push((table.clone(), candidate.id.clone(), delta));
            }
        }
        // Deltas first, then the rows they were computed from (spec AC §8 B9).
        if !deltas.is_empty() {
            self.log
                .produce(deltas)
                .await
                .map_err(|e| Transient(format!("delta topic: {e}")))?;
        }
        let mut by_table: BTreeMap<String, Vec<(String, AggregatorRow)>> = BTreeMap::new();
        for (table, id, delta) in merges {
            by_table.entry(table).or_default().push((id, delta));
        }
        for (table, updates) in by_table {
            self.aggregator
                .merge(&table, updates)
                .await
                .map_err(|e| Transient(format!("aggregator store: {e}")))?;
        }
        Ok(outcome)
    }
}

/// The delta action of variant `v` for a row change, with its payload (as text).
fn action(
    v: &Variant,
    old: Option<&AggregatorRow>,
    new: &AggregatorRow,
    delta: &AggregatorRow,
) -> Option<(&'static str, BTreeMap<String, String>)> {
    let fields = &v.vector_db_config.payload;
    let (was, now) = (admits(v, old), admits(v, Some(new)));
    match (was, now) {
        (false, true) => Some((
            "UPSERT",
            new.iter()
                .filter(|(k, _)| fields.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )),
        (true, false) => Some(("DELETE", BTreeMap::new())),
        (true, true) => {
            let changed: BTreeMap<String, String> = delta
                .iter()
                .filter(|(k, _)| fields.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!changed.is_empty()).then_some(("UPSERT_PAYLOAD", changed))
        }
        (false, false) => None,
    }
}

/// `(collection version, embedding-store version)` of every live collection of `v`.
fn targets(v: &Variant) -> Vec<(i64, i64)> {
    let mut out = vec![(v.vector_db_write_version, v.embedding_store_write_version)];
    if v.vector_db_read_version != v.vector_db_write_version {
        out.push((v.vector_db_read_version, v.embedding_store_read_version));
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
    buckets: Mutex<HashMap<String, Bucket>>,
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
        let b = buckets
            .entry(format!("{}/{}/{}", v.entity, v.model, v.name))
            .or_insert(Bucket {
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

#[async_trait]
impl BatchHandler for DeltaHandler {
    async fn handle(&self, records: &[Record]) -> Result<Outcome, Transient> {
        let snapshot = self.registry.snapshot();
        let mut outcome = Outcome::default();
        let mut per_collection: BTreeMap<String, Vec<PointOp>> = BTreeMap::new();
        let mut counts: HashMap<String, (Variant, usize)> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            if outcome
                .hold
                .iter()
                .any(|(t, p, _)| *t == record.topic && *p == record.partition)
            {
                continue;
            }
            let event: DeltaEvent = match serde_json::from_slice(&record.value) {
                Ok(e) => e,
                Err(e) => {
                    outcome
                        .rejected
                        .push((index, format!("not a delta event: {e}")));
                    continue;
                }
            };
            let v = match snapshot.variant(&event.entity, &event.model, &event.variant) {
                Ok(v) => v,
                Err(e) => {
                    outcome.rejected.push((index, e.to_string()));
                    continue;
                }
            };
            if v.rate_limiter.rate_limit == 0 {
                // Paused: hold the partition here; it resumes when the rate is set again.
                outcome
                    .hold
                    .push((record.topic.clone(), record.partition, record.offset));
                continue;
            }
            if !v.enabled
                || (event.version != v.vector_db_write_version
                    && event.version != v.vector_db_read_version)
            {
                tracing::debug!(variant = %v.name, version = event.version, "stale delta dropped");
                continue;
            }
            if event.id.trim().is_empty() {
                outcome.rejected.push((index, "Id is empty".into()));
                continue;
            }
            let op = match event.event_type.as_str() {
                "DELETE" => PointOp::Delete(event.id.clone()),
                "UPSERT" if event.vectors.is_empty() => {
                    outcome
                        .rejected
                        .push((index, "UPSERT without vectors".into()));
                    continue;
                }
                "UPSERT" => match snapshot
                    .model(&event.entity, &event.model)
                    .map_err(|e| e.to_string())
                    .and_then(|m| {
                        let dim = m.model_config.vector_dimension as usize;
                        check_vector("Vectors", &event.vectors, dim, &m.name)
                    })
                    .and_then(|()| build_payload(v, &event.payload, None))
                {
                    Ok(payload) => PointOp::Upsert(VectorPoint {
                        id: event.id.clone(),
                        vector: event.vectors.clone(),
                        payload,
                    }),
                    Err(e) => {
                        outcome.rejected.push((index, e));
                        continue;
                    }
                },
                "UPSERT_PAYLOAD" => {
                    let mut payload = BTreeMap::new();
                    let mut bad = None;
                    for (field, text) in &event.payload {
                        let Some(f) = v.vector_db_config.payload.get(field) else {
                            continue;
                        };
                        match typed(f.field_schema, text) {
                            Ok(value) => {
                                payload.insert(field.clone(), value);
                            }
                            Err(e) => bad = Some(format!("payload field '{field}': {e}")),
                        }
                    }
                    if let Some(reason) = bad {
                        outcome.rejected.push((index, reason));
                        continue;
                    }
                    PointOp::Payload(event.id.clone(), payload)
                }
                other => {
                    outcome
                        .rejected
                        .push((index, format!("unknown EventType '{other}'")));
                    continue;
                }
            };
            counts
                .entry(v.collection_name(0))
                .or_insert_with(|| (v.clone(), 0))
                .1 += 1;
            per_collection
                .entry(v.collection_name(event.version))
                .or_default()
                .push(op);
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
                Err(skye_core::vector_store::VectorStoreError::CollectionNotFound(_)) => {}
                Err(e) => return Err(Transient(format!("collection '{collection}': {e}"))),
            }
        }
        Ok(outcome)
    }
}
