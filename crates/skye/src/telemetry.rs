//! `/metrics` on every port. One registry per process holds the serving metrics and what the
//! consumers, the lifecycle and the embedded engine report, so each component's port shows all
//! of it (in `standalone`, all three ports show the same page).
//!
//! Most figures are read when scraped, not kept twice: consumer counters from the consumers'
//! own atomics, variant states from the registry snapshot, collection sizes from the engine.
//! Consumer lag needs the event log's end offsets, an async call, so [`Telemetry::render`]
//! fetches them before encoding.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use skye_backends::embedded::EmbeddedVectorStore;
use skye_core::domain::{Model, Variant, VariantState};
use skye_core::event_log::EventLog;
use skye_engine::ingest::failures::RedriveCounts;
use skye_engine::ingest::progress::JobProgress;
use skye_engine::ingest::runner::{ConsumerConfig, ConsumerStats, RejectClass};
use skye_engine::registry::Registry;
use skye_engine::search::recall::RecallMonitor;
use skye_engine::search::tiers::TierFigures;
use skye_serving::{CollectionFigures, Metrics};

/// The process's metrics and the sources read at each scrape.
#[derive(Debug, Clone)]
pub struct Telemetry {
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    embedded: Arc<EmbeddedVectorStore>,
    events: Arc<dyn EventLog>,
    consumers: Arc<Consumers>,
    /// `collection → compactions run`, refreshed by each scrape.
    compactions: Arc<Mutex<Vec<(String, u64)>>>,
}

/// The consumers running in this process and their last-fetched lag.
#[derive(Debug, Default)]
struct Consumers {
    watched: Mutex<Vec<Watched>>,
    /// `(consumer, topic, partition) → records behind`, refreshed by each scrape.
    lag: Mutex<BTreeMap<(&'static str, String, u32), u64>>,
    /// `failure topic → records written to it` (the sum of its end offsets).
    failures: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug)]
struct Watched {
    config: ConsumerConfig,
    stats: Arc<ConsumerStats>,
}

impl Telemetry {
    pub fn new(
        metrics: Arc<Metrics>,
        registry: Arc<Registry>,
        embedded: Arc<EmbeddedVectorStore>,
        events: Arc<dyn EventLog>,
    ) -> Self {
        let consumers = Arc::new(Consumers::default());
        let compactions = Arc::new(Mutex::new(Vec::new()));
        metrics.register_collector(Box::new(ConsumerCollector(consumers.clone())));
        metrics.register_collector(Box::new(LifecycleCollector(registry.clone())));
        metrics.register_collector(Box::new(CompactionCollector(compactions.clone())));
        Telemetry {
            metrics,
            registry,
            embedded,
            events,
            consumers,
            compactions,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Reports a consumer started in this process.
    pub fn watch_consumer(&self, config: &ConsumerConfig, stats: Arc<ConsumerStats>) {
        lock(&self.consumers.watched).push(Watched {
            config: config.clone(),
            stats,
        });
    }

    /// Reports the jobs the embedding consumer of this process applies.
    pub fn watch_jobs(&self, progress: Arc<JobProgress>) {
        self.metrics.register_collector(Box::new(JobCollector {
            progress,
            registry: self.registry.clone(),
            consumers: self.consumers.clone(),
        }));
    }

    /// Reports a serving cache (`similar`, `embeddings`), both layers.
    pub fn watch_cache(&self, cache: &'static str, figures: Arc<dyn TierFigures>) {
        self.metrics
            .register_collector(Box::new(CacheCollector(cache, figures)));
    }

    /// Reports the failure re-drives of this process's admin API.
    pub fn watch_redrives(&self, counts: Arc<RedriveCounts>) {
        self.metrics
            .register_collector(Box::new(RedriveCollector(counts)));
    }

    /// Reports the recall monitor of this process's serving.
    pub fn watch_recall(&self, monitor: Arc<RecallMonitor>) {
        self.metrics
            .register_collector(Box::new(RecallCollector(monitor)));
    }

    /// The exposition text, with every scrape-time figure refreshed first.
    pub async fn render(&self) -> String {
        let engine = self.embedded.engine_infos();
        *lock(&self.compactions) = engine
            .iter()
            .map(|f| (f.collection.clone(), f.compactions))
            .collect();
        let figures: Vec<CollectionFigures> = engine
            .into_iter()
            .map(|f| CollectionFigures {
                collection: f.collection,
                points: f.info.points,
                indexed_points: f.info.indexed_points,
                memory: f.memory.parts().to_vec(),
            })
            .collect();
        self.metrics.set_collections(&figures);
        self.refresh_lag().await;
        self.metrics.render()
    }

    /// Records behind per consumed partition (end offset − committed) and the size of each
    /// failure topic. A partition the event log cannot answer for keeps no series.
    async fn refresh_lag(&self) {
        let watched: Vec<(ConsumerConfig, Committed)> = lock(&self.consumers.watched)
            .iter()
            .map(|w| (w.config.clone(), lock(&w.stats.committed).clone()))
            .collect();
        let mut lag = BTreeMap::new();
        let mut failures = BTreeMap::new();
        for (config, committed) in watched {
            for topic in &config.topics {
                let Ok(Some(partitions)) = self.events.partitions(topic).await else {
                    continue;
                };
                for p in 0..partitions {
                    let Ok(end) = self.events.end_offset(topic, p).await else {
                        continue;
                    };
                    let done = match committed.get(&(topic.clone(), p)) {
                        Some(next) => *next,
                        // Not committed by this process yet: the group's offset in the log.
                        None => match self.events.committed(&config.group, topic, p).await {
                            Ok(next) => next.unwrap_or(0),
                            Err(_) => continue,
                        },
                    };
                    lag.insert((config.name, topic.clone(), p), end.saturating_sub(done));
                }
            }
            if let Ok(Some(partitions)) = self.events.partitions(&config.failure_topic).await {
                let mut written = 0;
                for p in 0..partitions {
                    written += self
                        .events
                        .end_offset(&config.failure_topic, p)
                        .await
                        .unwrap_or(0);
                }
                failures.insert(config.failure_topic.clone(), written);
            }
        }
        *lock(&self.consumers.lag) = lag;
        *lock(&self.consumers.failures) = failures;
    }
}

/// `(topic, partition) → next offset` a consumer committed.
type Committed = BTreeMap<(String, u32), u64>;

/// A metric read from a source at each scrape: name, help, how to read it.
type Reading<T, V> = (&'static str, &'static str, fn(&T) -> V);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn count(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `skye_consumer_*`: counters of each consumer, its batch latency, its lag.
#[derive(Debug)]
struct ConsumerCollector(Arc<Consumers>);

impl Collector for ConsumerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let watched = lock(&self.0.watched);
        let counters: [Reading<ConsumerStats, u64>; 5] = [
            (
                "skye_consumer_records",
                "Records applied (committed), by consumer.",
                |s| s.records.load(Ordering::Relaxed),
            ),
            (
                "skye_consumer_batches",
                "Batches committed, by consumer.",
                |s| s.batches.load(Ordering::Relaxed),
            ),
            (
                "skye_consumer_retries",
                "Batches that failed on a backend and were retried.",
                |s| s.retries.load(Ordering::Relaxed),
            ),
            (
                "skye_consumer_lost",
                "Records the event bus deleted before the consumer read them.",
                |s| s.lost.load(Ordering::Relaxed),
            ),
            (
                "skye_consumer_rejected",
                "Records sent to the failure topic, all reasons.",
                |s| s.rejected.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, read) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for w in watched.iter() {
                let labels = [("consumer", w.config.name)];
                ConstCounter::new(read(&w.stats)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "skye_consumer_rejected_by_reason",
            "Records sent to the failure topic, by reason class (decode, invalid, payload, eof).",
            None,
            MetricType::Counter,
        )?;
        for w in watched.iter() {
            for (class, n) in RejectClass::ALL.iter().zip(&w.stats.rejected_by) {
                let labels = [("consumer", w.config.name), ("reason", class.as_str())];
                ConstCounter::new(n.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "skye_consumer_batch_seconds",
            "Time from a batch's poll to its commit or failure.",
            None,
            MetricType::Histogram,
        )?;
        for w in watched.iter() {
            let (sum, n, buckets) = w.stats.batch_seconds.snapshot();
            let labels = [("consumer", w.config.name)];
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, n, &buckets, None)?;
        }
        drop(watched);
        let mut family = encoder.encode_descriptor(
            "skye_consumer_lag_records",
            "Records behind per topic partition (end offset minus committed), at the last scrape.",
            None,
            MetricType::Gauge,
        )?;
        for ((consumer, topic, partition), behind) in lock(&self.0.lag).iter() {
            let partition = partition.to_string();
            let labels = [
                ("consumer", *consumer),
                ("topic", topic.as_str()),
                ("partition", partition.as_str()),
            ];
            ConstGauge::new(*behind as i64).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "skye_consumer_failure_topic_records",
            "Records written to each failure topic (the sum of its end offsets).",
            None,
            MetricType::Gauge,
        )?;
        for (topic, written) in lock(&self.0.failures).iter() {
            let labels = [("topic", topic.as_str())];
            ConstGauge::new(*written as i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `skye_lifecycle_*`: each variant's state and versions and each model's job, from the
/// registry snapshot.
#[derive(Debug)]
struct LifecycleCollector(Arc<Registry>);

impl Collector for LifecycleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.0.snapshot();
        let mut family = encoder.encode_descriptor(
            "skye_lifecycle_variant_state",
            "1 for the state each variant is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for v in snapshot.variants() {
            for state in VariantState::ALL {
                let labels = [
                    ("entity", v.entity.as_str()),
                    ("model", v.model.as_str()),
                    ("variant", v.name.as_str()),
                    ("state", state.as_str()),
                ];
                let on = i64::from(v.variant_state == *state);
                ConstGauge::new(on).encode(family.encode_family(&labels)?)?;
            }
        }
        let versions: [Reading<Variant, i64>; 2] = [
            (
                "skye_lifecycle_variant_read_version",
                "Collection version each variant serves.",
                |v| v.vector_db_read_version,
            ),
            (
                "skye_lifecycle_variant_write_version",
                "Collection version each variant's jobs write.",
                |v| v.vector_db_write_version,
            ),
        ];
        for (name, help, read) in versions {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for v in snapshot.variants() {
                let labels = [
                    ("entity", v.entity.as_str()),
                    ("model", v.model.as_str()),
                    ("variant", v.name.as_str()),
                ];
                ConstGauge::new(read(v)).encode(family.encode_family(&labels)?)?;
            }
        }
        let jobs: [Reading<Model, usize>; 2] = [
            (
                "skye_lifecycle_job_partitions",
                "Partitions of each model's job (EOFs expected).",
                |m| m.number_of_partitions as usize,
            ),
            (
                "skye_lifecycle_job_eofs",
                "EOFs seen in each model's current job.",
                |m| m.partition_states.values().filter(|done| **done).count(),
            ),
        ];
        for (name, help, read) in jobs {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for m in snapshot.models() {
                let labels = [("entity", m.entity.as_str()), ("model", m.name.as_str())];
                ConstGauge::new(count(read(m))).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// `skye_search_recall_*`: the online recall monitor's window per variant.
#[derive(Debug)]
struct RecallCollector(Arc<RecallMonitor>);

impl Collector for RecallCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = self.0.figures();
        let labels = |k: &skye_core::vector_store::VariantKey| {
            [
                ("entity", k.entity().to_string()),
                ("model", k.model().to_string()),
                ("variant", k.variant().to_string()),
            ]
        };
        let mut family = encoder.encode_descriptor(
            "skye_search_recall_ratio",
            "Mean recall@k of live searches re-run exactly, over the monitor's window.",
            None,
            MetricType::Gauge,
        )?;
        for (k, f) in figures.iter().filter(|(_, f)| f.recall.is_finite()) {
            ConstGauge::new(f.recall).encode(family.encode_family(&labels(k))?)?;
        }
        let mut family = encoder.encode_descriptor(
            "skye_search_recall_checks",
            "Live searches re-run exactly by the recall monitor.",
            None,
            MetricType::Counter,
        )?;
        for (k, f) in &figures {
            ConstCounter::new(f.checked).encode(family.encode_family(&labels(k))?)?;
        }
        let mut family = encoder.encode_descriptor(
            "skye_search_recall_skipped",
            "Searches chosen for a check but skipped: the exact re-runs were all busy.",
            None,
            MetricType::Counter,
        )?;
        for (k, f) in &figures {
            ConstCounter::new(f.skipped_busy).encode(family.encode_family(&labels(k))?)?;
        }
        Ok(())
    }
}

/// `skye_collection_compactions`: compactions run per embedded collection.
#[derive(Debug)]
struct CompactionCollector(Arc<Mutex<Vec<(String, u64)>>>);

impl Collector for CompactionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "skye_collection_compactions",
            "Compactions (tombstones reclaimed, graph repaired) run per embedded collection since start.",
            None,
            MetricType::Counter,
        )?;
        for (collection, runs) in lock(&self.0).iter() {
            let labels = [("collection", collection.as_str())];
            ConstCounter::new(*runs).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `skye_cache_*`: each serving cache's layers.
#[derive(Debug)]
struct CacheCollector(&'static str, Arc<dyn TierFigures>);

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (cache, stats) = (self.0, self.1.stats());
        let memory = stats.memory;
        let remote = stats.distributed;
        let counters: [(&str, &str, u64, Option<u64>); 4] = [
            (
                "skye_cache_hits",
                "Items a cache layer answered.",
                memory.hits,
                remote.map(|r| r.hits),
            ),
            (
                "skye_cache_misses",
                "Items a cache layer was asked for and did not have.",
                memory.misses,
                remote.map(|r| r.misses),
            ),
            (
                "skye_cache_errors",
                "Items a cache layer could not be asked for (a failed read, counted as a miss by the caller).",
                0,
                remote.map(|r| r.errors),
            ),
            (
                "skye_cache_evictions",
                "Entries the in-process layer dropped to stay within its capacity.",
                memory.evictions,
                None,
            ),
        ];
        for (name, help, in_memory, distributed) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            let layers = [("memory", Some(in_memory)), ("distributed", distributed)];
            for (layer, value) in layers {
                let Some(value) = value else { continue };
                let labels = [("cache", cache), ("layer", layer)];
                ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        let gauges: [(&str, &str, u64); 2] = [
            (
                "skye_cache_bytes",
                "Bytes held by the in-process layer (keys and estimated values).",
                memory.bytes,
            ),
            (
                "skye_cache_entries",
                "Entries held by the in-process layer.",
                memory.entries,
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            let labels = [("cache", cache), ("layer", "memory")];
            ConstGauge::new(value as i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `skye_admin_redriven_records`: failure records sent back to their topic.
#[derive(Debug)]
struct RedriveCollector(Arc<RedriveCounts>);

impl Collector for RedriveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "skye_admin_redriven_records",
            "Failure-topic records re-driven to their source topic through the admin API.",
            None,
            MetricType::Counter,
        )?;
        for (topic, n) in self.0.counts() {
            ConstCounter::new(n).encode(family.encode_family(&[("topic", topic)])?)?;
        }
        Ok(())
    }
}

/// `skye_lifecycle_job_*`: each model's current job as the embedding consumer applies it, with
/// what is still unread on its topic (the consumer lag at the last scrape) as the work left.
#[derive(Debug)]
struct JobCollector {
    progress: Arc<JobProgress>,
    registry: Arc<Registry>,
    consumers: Arc<Consumers>,
}

impl JobCollector {
    /// Records still unread by the embedding consumer on the model's topic (on every embedding
    /// topic when the model's own is not one of them: an upper bound when jobs share topics).
    fn unread(&self, topic: Option<&str>) -> u64 {
        let lag = lock(&self.consumers.lag);
        let embedding = lag.iter().filter(|((c, _, _), _)| *c == "embedding");
        let own: Vec<u64> = embedding
            .clone()
            .filter(|((_, t, _), _)| Some(t.as_str()) == topic)
            .map(|(_, n)| *n)
            .collect();
        match own.is_empty() {
            true => embedding.map(|(_, n)| *n).sum(),
            false => own.iter().sum(),
        }
    }
}

impl Collector for JobCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.registry.snapshot();
        let now = std::time::Instant::now();
        let rows: Vec<_> = self
            .progress
            .figures()
            .into_iter()
            .map(|(key, job)| {
                let topic = snapshot.model(&key.entity, &key.model).ok();
                let left = match job.complete() {
                    true => 0,
                    false => self.unread(topic.map(|m| m.topic_name.as_str())),
                };
                (key, job, left)
            })
            .collect();
        let figures: [(&str, &str, JobFigure); 5] = [
            (
                "skye_lifecycle_job_age_seconds",
                "Seconds since the job's first applied event (frozen at its last event once every EOF is in).",
                |job, _, now| Some(job.age(now).as_secs_f64()),
            ),
            (
                "skye_lifecycle_job_events_applied",
                "Data events of the current job applied so far.",
                |job, _, _| Some(job.applied as f64),
            ),
            (
                "skye_lifecycle_job_events_expected",
                "Events applied plus those still unread on the job's topic (= applied once every EOF is in).",
                |job, left, _| Some((job.applied + left) as f64),
            ),
            (
                "skye_lifecycle_job_events_per_second",
                "Mean rate the job's events have been applied at.",
                |job, _, _| job.rate(),
            ),
            (
                "skye_lifecycle_job_eta_seconds",
                "Seconds left at the job's mean rate (0 once every EOF is in).",
                |job, left, _| match job.complete() {
                    true => Some(0.0),
                    false => job.rate().map(|r| left as f64 / r),
                },
            ),
        ];
        for (name, help, read) in figures {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (key, job, left) in &rows {
                let Some(value) = read(job, *left, now) else {
                    continue;
                };
                let labels = [
                    ("entity", key.entity.as_str()),
                    ("model", key.model.as_str()),
                ];
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// One job gauge: from the job's figures, the records left and the time now.
type JobFigure =
    fn(&skye_engine::ingest::progress::JobFigures, u64, std::time::Instant) -> Option<f64>;
