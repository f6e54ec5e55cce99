//! A circuit breaker and latency observation around backend calls.
//!
//! Closed: calls pass; `failure_threshold` consecutive backend failures open it. Open: calls fail
//! at once with UNAVAILABLE for `open_for`. Then one probe call is let through (half-open): a
//! success closes the breaker, a failure opens it again. Only failures that say the backend is
//! unhealthy count (unavailable, internal, timeout); a client mistake (unknown collection, bad
//! input) does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionInfo, ScoredPoint, SearchQuery, VectorRead, VectorStoreError,
};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive backend failures that open the breaker; 0 disables it.
    pub failure_threshold: u32,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// One breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a call may go ahead now.
    pub fn allow(&self) -> bool {
        if self.config.failure_threshold == 0 {
            return true;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *s {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *s = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    /// Records the outcome of an allowed call.
    pub fn record(&self, backend_failure: bool) {
        if self.config.failure_threshold == 0 {
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *s = match (*s, backend_failure) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.config.failure_threshold => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (State::Closed { .. } | State::HalfOpen | State::Open { .. }, true) => {
                tracing::warn!(
                    open_for_ms = self.config.open_for.as_millis() as u64,
                    "circuit breaker opened"
                );
                State::Open {
                    until: Instant::now() + self.config.open_for,
                }
            }
        };
    }

    pub fn is_open(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(|p| p.into_inner()),
            State::Open { .. }
        )
    }
}

/// Receives the latency and outcome of every backend call (Prometheus in the binary).
pub trait BackendObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, backend: &'static str, op: &'static str, outcome: &'static str, seconds: f64);
}

/// A [`VectorRead`] behind one breaker per variant (the collection name without its version),
/// reporting every call to an observer.
#[derive(Debug)]
pub struct GuardedVectorRead {
    inner: Arc<dyn VectorRead>,
    config: BreakerConfig,
    breakers: Mutex<HashMap<String, Arc<CircuitBreaker>>>,
    observer: Option<Arc<dyn BackendObserver>>,
}

impl GuardedVectorRead {
    pub fn new(
        inner: Arc<dyn VectorRead>,
        config: BreakerConfig,
        observer: Option<Arc<dyn BackendObserver>>,
    ) -> Self {
        GuardedVectorRead {
            inner,
            config,
            breakers: Mutex::new(HashMap::new()),
            observer,
        }
    }

    fn breaker(&self, collection: &str) -> Arc<CircuitBreaker> {
        let variant = collection
            .rsplit_once('_')
            .map_or(collection, |(head, _)| head);
        self.breakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(variant.to_string())
            .or_insert_with(|| Arc::new(CircuitBreaker::new(self.config)))
            .clone()
    }

    fn finish<T>(
        &self,
        op: &'static str,
        started: Instant,
        breaker: &CircuitBreaker,
        result: Result<T, VectorStoreError>,
    ) -> Result<T, VectorStoreError> {
        let failure = result.as_ref().err().is_some_and(|e| {
            matches!(
                e.code(),
                ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::Timeout
            )
        });
        breaker.record(failure);
        if let Some(o) = &self.observer {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(_) if failure => "error",
                Err(_) => "rejected",
            };
            o.observe("vector", op, outcome, started.elapsed().as_secs_f64());
        }
        result
    }
}

fn open(collection: &str) -> VectorStoreError {
    VectorStoreError::Unavailable(format!(
        "circuit open for '{collection}' after repeated backend failures; retry later"
    ))
}

#[async_trait]
impl VectorRead for GuardedVectorRead {
    async fn search(
        &self,
        collection: &str,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        let breaker = self.breaker(collection);
        if !breaker.allow() {
            if let Some(o) = &self.observer {
                o.observe("vector", "search", "circuit_open", 0.0);
            }
            return Err(open(collection));
        }
        let started = Instant::now();
        let result = self.inner.search(collection, queries).await;
        self.finish("search", started, &breaker, result)
    }

    async fn collection_info(&self, collection: &str) -> Result<CollectionInfo, VectorStoreError> {
        let started = Instant::now();
        let breaker = self.breaker(collection);
        let result = self.inner.collection_info(collection).await;
        self.finish("collection_info", started, &breaker, result)
    }

    async fn list_collections(&self) -> Result<Vec<String>, VectorStoreError> {
        self.inner.list_collections().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_then_probes_once() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(30),
        });
        b.record(true);
        b.record(true);
        b.record(false);
        assert!(b.allow(), "a success resets the count");
        for _ in 0..3 {
            assert!(b.allow());
            b.record(true);
        }
        assert!(b.is_open());
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one probe after the open period");
        assert!(!b.allow(), "only one probe at a time");
        b.record(true);
        assert!(!b.allow(), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.record(false);
        assert!(b.allow() && b.allow(), "a good probe closes it");
    }

    #[test]
    fn a_zero_threshold_disables_it() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 0,
            open_for: Duration::from_secs(60),
        });
        for _ in 0..10 {
            b.record(true);
        }
        assert!(b.allow());
    }
}
