//! The consumer loop shared by every consumer: poll a batch, hand it to a [`BatchHandler`],
//! send rejected records to the failure topic, commit; on a backend failure rewind to the
//! batch's first offsets and retry after an exponential back-off (the original retries at once
//! from an arbitrary offset, spec AC §8 B7). A handler panic is caught, logged and treated as a
//! failed batch: the loop never dies (spec AC §8 B7, B8).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use skye_core::event_log::{
    ERROR_HEADER, EventLog, EventLogError, Produce, REJECTION_HEADERS, Record, SOURCE_HEADER,
    SOURCE_TOPIC_HEADER, first_offsets, next_offsets,
};
use tokio::sync::watch;
use tracing::Instrument;

use super::embedding::Transient;

/// Why a record can never be applied, as a closed set (the metrics' `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectClass {
    /// Not an event of the topic's kind (not JSON, wrong shape).
    Decode,
    /// An event that names nothing registered, or breaks a rule of its fields.
    Invalid,
    /// A payload that does not build for a variant's schema.
    Payload,
    /// An EOF the lifecycle refused.
    Eof,
}

impl RejectClass {
    pub const ALL: [RejectClass; 4] = [
        RejectClass::Decode,
        RejectClass::Invalid,
        RejectClass::Payload,
        RejectClass::Eof,
    ];

    /// Its position in [`RejectClass::ALL`] (declaration order).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RejectClass::Decode => "decode",
            RejectClass::Invalid => "invalid",
            RejectClass::Payload => "payload",
            RejectClass::Eof => "eof",
        }
    }
}

/// A record that can never be applied: its class and the reason sent with it to the failure
/// topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub class: RejectClass,
    pub reason: String,
}

impl Rejection {
    pub fn new(class: RejectClass, reason: impl Into<String>) -> Self {
        Rejection {
            class,
            reason: reason.into(),
        }
    }
}

/// What a handler decided about a batch.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `(index in the batch, why)` of records that can never be applied.
    pub rejected: Vec<(usize, Rejection)>,
    /// Partitions to stop at: `(topic, partition, offset)` = commit up to (excluding) `offset`
    /// and deliver it again next (a paused variant's stream).
    pub hold: Vec<(String, u32, u64)>,
}

/// Processes batches of one consumer family.
#[async_trait]
pub trait BatchHandler: Send + Sync + std::fmt::Debug {
    async fn handle(&self, records: &[Record]) -> Result<Outcome, Transient>;
}

/// Where and how a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub name: &'static str,
    pub group: String,
    pub topics: Vec<String>,
    /// Where records that can never be applied go, with the reason in the `skye-error` header.
    pub failure_topic: String,
    pub batch_size: usize,
    pub poll_wait: Duration,
}

/// Counters of a running consumer (on the consumers' health endpoint and in `/metrics`).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub rejected: AtomicU64,
    /// Rejected records by [`RejectClass`], in `RejectClass::ALL` order.
    pub rejected_by: [AtomicU64; RejectClass::ALL.len()],
    pub retries: AtomicU64,
    /// Records the event bus deleted before this consumer read them.
    pub lost: AtomicU64,
    /// What the last loss was: the consumer's health stays degraded until a restart.
    pub last_loss: std::sync::Mutex<Option<String>>,
    /// Time from a batch's poll to its commit (or failure).
    pub batch_seconds: Histogram,
    /// The next offset this consumer committed, per `(topic, partition)` it has read.
    pub committed: std::sync::Mutex<std::collections::BTreeMap<(String, u32), u64>>,
}

/// Upper bounds of [`Histogram`]'s buckets, in seconds: 1 ms … ~16 s.
pub const BATCH_BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384,
];

/// A latency histogram of plain atomics (the engine has no metrics library; `/metrics`
/// renders it).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or below each bound of [`BATCH_BUCKETS`] (not cumulative), then above.
    counts: [AtomicU64; BATCH_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BATCH_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BATCH_BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// `(sum in seconds, count, cumulative count per bound of BATCH_BUCKETS)`.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(BATCH_BUCKETS.len() + 1);
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            buckets.push((
                BATCH_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY),
                total,
            ));
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, total, buckets)
    }
}

/// A copy of [`ConsumerStats`] for JSON.
#[derive(Debug, Serialize)]
pub struct StatsView {
    pub batches: u64,
    pub records: u64,
    pub rejected: u64,
    pub retries: u64,
    pub lost: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_loss: Option<String>,
}

impl ConsumerStats {
    pub fn view(&self) -> StatsView {
        StatsView {
            batches: self.batches.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            last_loss: self
                .last_loss
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Whether this consumer lost records (its health is degraded).
    pub fn degraded(&self) -> bool {
        self.lost.load(Ordering::Relaxed) > 0
    }

    fn record_loss(&self, e: &EventLogError) {
        if let EventLogError::OffsetOutOfRange { from, to, .. } = e {
            self.lost.fetch_add(to - from, Ordering::Relaxed);
        }
        *self.last_loss.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const HOLD_RECHECK: Duration = Duration::from_secs(1);

/// Runs a consumer until `stop` turns true.
pub async fn run(
    log: Arc<dyn EventLog>,
    config: ConsumerConfig,
    handler: Arc<dyn BatchHandler>,
    stats: Arc<ConsumerStats>,
    mut stop: watch::Receiver<bool>,
) {
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    let mut backoff = FIRST_BACKOFF;
    let mut sub = loop {
        match log.subscribe(&config.group, &topics).await {
            Ok(sub) => break sub,
            Err(e) => {
                tracing::error!(consumer = config.name, error = %e, "cannot subscribe; retrying");
                if wait_or_stop(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    tracing::info!(consumer = config.name, group = %config.group, topics = ?config.topics, "consumer started");
    backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow() {
            break;
        }
        let polled = tokio::select! {
            r = sub.poll(config.batch_size, config.poll_wait) => r,
            _ = stop.changed() => break,
        };
        let records = match polled {
            Ok(r) if r.is_empty() => continue,
            Ok(r) => r,
            // Records were deleted before this group read them: say so as loudly as we can,
            // then go on from what is left (the subscription has moved to the log start).
            Err(e @ EventLogError::OffsetOutOfRange { .. }) => {
                tracing::error!(consumer = config.name, group = %config.group, error = %e,
                    "EVENTS LOST: the event bus deleted records before this consumer read them; \
                     re-run the jobs whose events these were, and check the bus's retention");
                stats.record_loss(&e);
                continue;
            }
            Err(e) => {
                tracing::warn!(consumer = config.name, error = %e, "poll failed");
                if wait_or_stop(&mut stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let started = std::time::Instant::now();
        // Shared with the handler task, not copied (a batch of 384-d events is megabytes).
        let records = Arc::new(records);
        // One trace per batch: the handler's stages, then the failure produce and the commit.
        let span = tracing::info_span!("batch", consumer = config.name, records = records.len());
        let outcome = {
            let handler = handler.clone();
            let batch = records.clone();
            // A panic in the handler must not kill the loop.
            let handled = async move { handler.handle(&batch).await }.instrument(span.clone());
            match tokio::spawn(handled).await {
                Ok(r) => r,
                Err(join) => Err(Transient(format!("handler panicked: {join}"))),
            }
        };
        let settled = match outcome {
            Ok(outcome) => {
                let holding = !outcome.hold.is_empty();
                let commit = tracing::debug_span!(parent: &span, "commit");
                settle(&*log, &mut *sub, &config, &records, outcome, &stats)
                    .instrument(commit)
                    .await
                    .map(|()| holding)
            }
            Err(e) => Err(e.0),
        };
        stats.batch_seconds.observe(started.elapsed());
        match settled {
            Ok(holding) => {
                backoff = FIRST_BACKOFF;
                // A held (paused) partition is re-checked once a second, not in a busy loop.
                if holding && wait_or_stop(&mut stop, HOLD_RECHECK).await {
                    break;
                }
            }
            Err(reason) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(consumer = config.name, error = %reason, records = records.len(),
                    retry_in_ms = backoff.as_millis() as u64, "batch failed; it will be retried");
                for (topic, partition, offset) in first_offsets(&records) {
                    if let Err(e) = sub.seek(&topic, partition, offset).await {
                        tracing::error!(consumer = config.name, error = %e, "seek failed");
                    }
                }
                if wait_or_stop(&mut stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!(consumer = config.name, "consumer stopped");
}

/// Sends rejected records to the failure topic, then commits (honouring holds).
async fn settle(
    log: &dyn EventLog,
    sub: &mut dyn skye_core::event_log::Subscription,
    config: &ConsumerConfig,
    records: &[Record],
    outcome: Outcome,
    stats: &ConsumerStats,
) -> Result<(), String> {
    let held = |r: &Record| {
        outcome
            .hold
            .iter()
            .any(|(t, p, o)| *t == r.topic && *p == r.partition && r.offset >= *o)
    };
    let rejected: Vec<(&Record, &Rejection)> = outcome
        .rejected
        .iter()
        .filter_map(|(i, why)| records.get(*i).map(|r| (r, why)))
        .filter(|(r, _)| !held(r))
        .collect();
    let failures: Vec<Produce> = rejected
        .iter()
        .map(|(r, Rejection { reason, .. })| {
            tracing::warn!(consumer = config.name, topic = %r.topic, partition = r.partition,
                offset = r.offset, reason = %reason, "event rejected");
            let mut headers = r.headers.clone();
            headers.retain(|(k, _)| !REJECTION_HEADERS.contains(&k.as_str()));
            headers.push((ERROR_HEADER.to_string(), reason.clone()));
            headers.push((
                SOURCE_HEADER.to_string(),
                format!("{}/{}@{}", r.topic, r.partition, r.offset),
            ));
            headers.push((SOURCE_TOPIC_HEADER.to_string(), r.topic.clone()));
            Produce {
                topic: config.failure_topic.clone(),
                partition: None,
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            }
        })
        .collect();
    let failures_count = failures.len() as u64;
    if !failures.is_empty() {
        log.produce(failures)
            .await
            .map_err(|e| format!("cannot write the failure topic: {e}"))?;
    }
    let done = records.iter().filter(|r| !held(r)).count();
    let mut commits = next_offsets(records.iter().filter(|r| !held(r)));
    for (topic, partition, offset) in &outcome.hold {
        if let Some(c) = commits
            .iter_mut()
            .find(|(t, p, _)| t == topic && p == partition)
        {
            c.2 = c.2.min(*offset);
        } else {
            commits.push((topic.clone(), *partition, *offset));
        }
        sub.seek(topic, *partition, *offset)
            .await
            .map_err(|e| format!("seek failed: {e}"))?;
    }
    sub.commit(&commits)
        .await
        .map_err(|e| format!("commit failed: {e}"))?;
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.records.fetch_add(done as u64, Ordering::Relaxed);
    stats.rejected.fetch_add(failures_count, Ordering::Relaxed);
    for (_, why) in &rejected {
        stats.rejected_by[why.class.index()].fetch_add(1, Ordering::Relaxed);
    }
    let mut committed = stats.committed.lock().unwrap_or_else(|p| p.into_inner());
    for (topic, partition, next) in commits {
        committed.insert((topic, partition), next);
    }
    Ok(())
}

/// Sleeps `d` unless stopped first; true when stopped.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// The embedding consumer's handler: decode, then [`super::embedding::EmbeddingIngestor`].
#[derive(Debug)]
pub struct EmbeddingHandler(pub super::embedding::EmbeddingIngestor);

#[async_trait]
impl BatchHandler for EmbeddingHandler {
    async fn handle(&self, records: &[Record]) -> Result<Outcome, Transient> {
        let events: Vec<_> = tracing::debug_span!("decode").in_scope(|| {
            records
                .iter()
                .map(|r| {
                    super::wire::decode_embedding(&r.value).map_err(|e| {
                        let reason = format!("not an embedding event: {e}");
                        Rejection::new(RejectClass::Decode, reason)
                    })
                })
                .collect()
        });
        let report = self.0.process(&events).await?;
        Ok(Outcome {
            rejected: report.rejected,
            hold: Vec::new(),
        })
    }
}
