//! A circuit breaker and latency observation around backend calls (vector stores, the
//! distributed cache).
//!
//! Closed: calls pass; `failure_threshold` consecutive backend failures open it. Open: calls fail
//! at once with UNAVAILABLE for `open_for`. Then one probe call is let through (half-open): a
//! success closes the breaker, a failure opens it again. Only failures that say the backend is
//! unhealthy count (unavailable, internal, timeout); a client mistake (unknown collection, bad
//! input) does not.
//!
//! Each allowed call holds a [`Call`]; one dropped without an outcome (its caller cancelled it
//! at a deadline) counts as a failed probe when it was the probe, so a half-open breaker never
//! waits for an outcome that will not come.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skye_core::cache::{CacheError, DistributedCache};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, ScoredPoint, SearchQuery, VariantKey, VectorRead,
    VectorStoreError,
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

    /// A call that may go ahead now, or `None` while the breaker is open.
    pub fn allow(&self) -> Option<Call<'_>> {
        if self.config.failure_threshold == 0 {
            return Some(Call::new(self, false));
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *s {
            State::Closed { .. } => Some(Call::new(self, false)),
            State::Open { until } if Instant::now() >= until => {
                *s = State::HalfOpen;
                Some(Call::new(self, true))
            }
            State::Open { .. } | State::HalfOpen => None,
        }
    }

    fn record(&self, backend_failure: bool) {
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

/// One call let through by a breaker; [`Call::record`] reports how it went.
#[derive(Debug)]
pub struct Call<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    recorded: bool,
}

impl<'a> Call<'a> {
    fn new(breaker: &'a CircuitBreaker, probe: bool) -> Self {
        Call {
            breaker,
            probe,
            recorded: false,
        }
    }

    pub fn record(mut self, backend_failure: bool) {
        self.recorded = true;
        self.breaker.record(backend_failure);
    }
}

impl Drop for Call<'_> {
    /// An abandoned probe re-opens the breaker for another period (the backend did not answer
    /// in the caller's time); an abandoned ordinary call says nothing either way.
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            self.breaker.record(true);
        }
    }
}

/// Receives the latency and outcome of every backend call (Prometheus in the binary).
pub trait BackendObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, backend: &'static str, op: &'static str, outcome: &'static str, seconds: f64);
}

/// A [`VectorRead`] behind one breaker per variant, reporting every call to an observer.
#[derive(Debug)]
pub struct GuardedVectorRead {
    inner: Arc<dyn VectorRead>,
    config: BreakerConfig,
    breakers: Mutex<HashMap<VariantKey, Arc<CircuitBreaker>>>,
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

    fn breaker(&self, variant: &VariantKey) -> Arc<CircuitBreaker> {
        self.breakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(variant.clone())
            .or_insert_with(|| Arc::new(CircuitBreaker::new(self.config)))
            .clone()
    }

    fn finish<T>(
        &self,
        op: &'static str,
        started: Instant,
        call: Call<'_>,
        result: Result<T, VectorStoreError>,
    ) -> Result<T, VectorStoreError> {
        let failure = result.as_ref().err().is_some_and(|e| {
            matches!(
                e.code(),
                ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::Timeout
            )
        });
        call.record(failure);
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

fn open(collection: &CollectionRef) -> VectorStoreError {
    VectorStoreError::Unavailable(
        format!(
            "circuit open for {} after repeated backend failures; retry later",
            collection.variant
        )
        .into(),
    )
}

#[async_trait]
impl VectorRead for GuardedVectorRead {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        let breaker = self.breaker(&collection.variant);
        let Some(call) = breaker.allow() else {
            if let Some(o) = &self.observer {
                o.observe("vector", "search", "circuit_open", 0.0);
            }
            return Err(open(collection));
        };
        let started = Instant::now();
        let result = self.inner.search(collection, queries).await;
        self.finish("search", started, call, result)
    }

    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError> {
        let breaker = self.breaker(&collection.variant);
        let Some(call) = breaker.allow() else {
            return Err(open(collection));
        };
        let started = Instant::now();
        let result = self.inner.collection_info(collection).await;
        self.finish("collection_info", started, call, result)
    }

    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        self.inner.versions(variant).await
    }

    fn content_epoch(&self, collection: &CollectionRef) -> Option<u64> {
        self.inner.content_epoch(collection)
    }
}

/// A [`DistributedCache`] behind one breaker: after repeated failures (a Redis that is down or
/// frozen) calls fail at once, which every caller takes as a miss, instead of each waiting for
/// the cache's timeout; one probe per open period finds out when it is back.
#[derive(Debug)]
pub struct GuardedCache {
    inner: Arc<dyn DistributedCache>,
    breaker: CircuitBreaker,
}

impl GuardedCache {
    pub fn new(inner: Arc<dyn DistributedCache>, config: BreakerConfig) -> Self {
        GuardedCache {
            inner,
            breaker: CircuitBreaker::new(config),
        }
    }

    fn allow(&self) -> Result<Call<'_>, CacheError> {
        self.breaker
            .allow()
            .ok_or_else(|| CacheError("circuit open after repeated cache failures; skipped".into()))
    }
}

#[async_trait]
impl DistributedCache for GuardedCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let call = self.allow()?;
        let result = self.inner.get_many(keys).await;
        call.record(result.is_err());
        result
    }

    async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let call = self.allow()?;
        let result = self.inner.set_many(entries, ttl).await;
        call.record(result.is_err());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache that fails while `down` is set, counting the calls that reached it.
    #[derive(Debug, Default)]
    struct Flaky {
        down: std::sync::atomic::AtomicBool,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl DistributedCache for Flaky {
        async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
            use std::sync::atomic::Ordering::SeqCst;
            self.calls.fetch_add(1, SeqCst);
            match self.down.load(SeqCst) {
                true => Err(CacheError("down".into())),
                false => Ok(vec![None; keys.len()]),
            }
        }

        async fn set_many(&self, _: Vec<(String, Vec<u8>)>, _: Duration) -> Result<(), CacheError> {
            self.get_many(&[]).await.map(|_| ())
        }
    }

    #[tokio::test]
    async fn a_failing_cache_is_skipped_until_a_probe_finds_it_back() {
        use std::sync::atomic::Ordering::SeqCst;
        let flaky = Arc::new(Flaky::default());
        flaky.down.store(true, SeqCst);
        let cache = GuardedCache::new(
            flaky.clone(),
            BreakerConfig {
                failure_threshold: 3,
                open_for: Duration::from_millis(30),
            },
        );
        let keys = ["k".to_string()];
        for _ in 0..10 {
            assert!(cache.get_many(&keys).await.is_err());
        }
        assert_eq!(flaky.calls.load(SeqCst), 3, "skipped once open");
        assert!(cache.set_many(Vec::new(), Duration::ZERO).await.is_err());
        flaky.down.store(false, SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get_many(&keys).await, Ok(vec![None]), "the probe");
        assert_eq!(cache.get_many(&keys).await, Ok(vec![None]), "closed again");
        assert_eq!(flaky.calls.load(SeqCst), 5);
    }

    fn fail(b: &CircuitBreaker, n: usize) {
        for _ in 0..n {
            b.allow().expect("allowed").record(true);
        }
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_once() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(30),
        });
        fail(&b, 2);
        b.allow().unwrap().record(false);
        assert!(b.allow().is_some(), "a success resets the count");
        fail(&b, 3);
        assert!(b.is_open());
        assert!(b.allow().is_none());
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.allow().expect("one probe after the open period");
        assert!(b.allow().is_none(), "only one probe at a time");
        probe.record(true);
        assert!(b.allow().is_none(), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(40));
        b.allow().unwrap().record(false);
        assert!(
            b.allow().is_some() && b.allow().is_some(),
            "a good probe closes it"
        );
    }

    #[test]
    fn an_abandoned_probe_reopens_instead_of_blocking_for_good() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_millis(20),
        });
        fail(&b, 1);
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.allow().expect("the probe");
        drop(probe); // its caller's deadline passed: no outcome was recorded
        assert!(b.is_open(), "counted as a failed probe");
        std::thread::sleep(Duration::from_millis(30));
        b.allow()
            .expect("a new probe after the next period")
            .record(false);
        assert!(!b.is_open());
        // An abandoned ordinary call changes nothing.
        drop(b.allow().unwrap());
        assert!(!b.is_open());
    }

    #[test]
    fn a_zero_threshold_disables_it() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 0,
            open_for: Duration::from_secs(60),
        });
        fail(&b, 10);
        assert!(b.allow().is_some());
    }
}
