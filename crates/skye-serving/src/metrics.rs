//! Prometheus metrics of the serving API (`GET /metrics` on the serving port).
//!
//! Names follow `skye_<area>_<name>_{total,seconds}`. Labels come from closed sets: the RPC, the
//! status code, and model/variant only when the request named a registered variant (otherwise
//! `unknown`, so arbitrary client input cannot grow the series).

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub rpc: &'static str,
    pub model: String,
    pub variant: String,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VariantLabels {
    pub model: String,
    pub variant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: &'static str,
    pub op: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CollectionLabels {
    pub collection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemoryLabels {
    pub collection: String,
    pub part: &'static str,
}

/// One embedded collection's figures, as [`Metrics::set_collections`] takes them.
#[derive(Debug, Clone)]
pub struct CollectionFigures {
    pub collection: String,
    pub points: usize,
    pub indexed_points: usize,
    pub memory: Vec<(&'static str, usize)>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    pub path: &'static str,
}

/// The serving metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub latency: Family<RequestLabels, Histogram>,
    pub results: Family<VariantLabels, Counter>,
    pub cache_hits: Family<VariantLabels, Counter>,
    pub cache_misses: Family<VariantLabels, Counter>,
    pub backend: Family<BackendLabels, Histogram>,
    /// Searches of the embedded engine by the path its planner took.
    pub plans: Family<PathLabels, Counter>,
    collection_points: Family<CollectionLabels, Gauge>,
    collection_indexed: Family<CollectionLabels, Gauge>,
    collection_memory: Family<MemoryLabels, Gauge>,
    resident: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 50 µs … ~0.8 s
            Histogram::new(exponential_buckets(0.000_05, 2.0, 15))
        });
        let results = Family::<VariantLabels, Counter>::default();
        let cache_hits = Family::<VariantLabels, Counter>::default();
        let cache_misses = Family::<VariantLabels, Counter>::default();
        let backend = Family::<BackendLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 15))
        });
        let plans = Family::<PathLabels, Counter>::default();
        let collection_points = Family::<CollectionLabels, Gauge>::default();
        let collection_indexed = Family::<CollectionLabels, Gauge>::default();
        let collection_memory = Family::<MemoryLabels, Gauge>::default();
        let resident = Gauge::default();
        let mut registry = Registry::default();
        registry.register(
            "skye_collection_points",
            "Live points of each embedded collection",
            collection_points.clone(),
        );
        registry.register(
            "skye_collection_indexed_points",
            "Live points linked into each embedded collection's graph (index build progress)",
            collection_indexed.clone(),
        );
        registry.register(
            "skye_collection_memory_bytes",
            "Heap bytes of each embedded collection by part (vectors, codes, graph, ids, payloads, payload_index)",
            collection_memory.clone(),
        );
        registry.register(
            "skye_process_resident_memory_bytes",
            "Resident memory of the process (Linux)",
            resident.clone(),
        );
        registry.register(
            "skye_index_search_path",
            "Searches of the embedded engine by planner path (exact, exact_matches, graph_filtered, graph)",
            plans.clone(),
        );
        registry.register(
            "skye_backend_request_seconds",
            "Latency of backend calls (outcome: ok, error, rejected, circuit_open)",
            backend.clone(),
        );
        registry.register(
            "skye_serving_request_seconds",
            "Latency of serving RPCs",
            latency.clone(),
        );
        registry.register(
            "skye_serving_results",
            "Candidates returned",
            results.clone(),
        );
        registry.register(
            "skye_serving_cache_hits",
            "Queries answered from the result cache",
            cache_hits.clone(),
        );
        registry.register(
            "skye_serving_cache_misses",
            "Queries the result cache could not answer",
            cache_misses.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            latency,
            results,
            cache_hits,
            cache_misses,
            backend,
            plans,
            collection_points,
            collection_indexed,
            collection_memory,
            resident,
        }
    }
}

impl skye_engine::breaker::BackendObserver for Metrics {
    fn observe(
        &self,
        backend: &'static str,
        op: &'static str,
        outcome: &'static str,
        seconds: f64,
    ) {
        self.backend
            .get_or_create(&BackendLabels {
                backend,
                op,
                outcome,
            })
            .observe(seconds);
    }
}

impl skye_core::vector_store::PlanObserver for Metrics {
    fn planned(&self, path: &'static str, _matches: Option<usize>) {
        self.plans.get_or_create(&PathLabels { path }).inc();
    }
}

impl Metrics {
    /// Replaces the collection gauges with `figures` (collections dropped since leave no series)
    /// and samples the process's resident memory; called before each exposition.
    pub fn set_collections(&self, figures: &[CollectionFigures]) {
        self.collection_points.clear();
        self.collection_indexed.clear();
        self.collection_memory.clear();
        let gauge = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        for f in figures {
            let labels = CollectionLabels {
                collection: f.collection.clone(),
            };
            self.collection_points
                .get_or_create(&labels)
                .set(gauge(f.points));
            self.collection_indexed
                .get_or_create(&labels)
                .set(gauge(f.indexed_points));
            for (part, bytes) in &f.memory {
                self.collection_memory
                    .get_or_create(&MemoryLabels {
                        collection: f.collection.clone(),
                        part,
                    })
                    .set(gauge(*bytes));
            }
        }
        if let Some(bytes) = resident_bytes() {
            self.resident.set(gauge(bytes));
        }
    }

    /// Adds figures read at each scrape (the other components' metrics in the same process).
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.register_collector(collector);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

/// The process's resident set size from `/proc/self/statm` (pages × 4 KiB); `None` off Linux.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
