//! Prometheus metrics of the serving API (`GET /metrics` on the serving port).
//!
//! Names follow `skye_<area>_<name>_{total,seconds}`. Labels come from closed sets: the RPC, the
//! status code, and model/variant only when the request named a registered variant (otherwise
//! `unknown`, so arbitrary client input cannot grow the series).

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        let mut registry = Registry::default();
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
