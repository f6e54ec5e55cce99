//! The online recall monitor: a [`VectorRead`] decorator that re-runs a share of live searches
//! as exact searches in the background, with the same filter, exclusions and limit, and keeps
//! per variant the overlap of the two answers over a sliding window.
//!
//! Its cost is bounded twice: one query in `sample_every` is chosen, and at most
//! `max_in_flight` exact searches run at once (a chosen query that finds them all busy is
//! skipped and counted as such, never queued). The caller's search never waits for the check.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, ScoredPoint, SearchQuery, StopFlag, VariantKey, VectorRead,
    VectorStoreError,
};
use tokio::sync::Semaphore;

/// How much of the traffic is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecallConfig {
    /// One query in this many is re-run exactly; 0 turns the monitor off.
    pub sample_every: u64,
    /// Checks kept per variant (the window the ratio is the mean of).
    pub window: usize,
    /// Exact searches running at once, at most.
    pub max_in_flight: usize,
}

impl Default for RecallConfig {
    fn default() -> Self {
        RecallConfig {
            sample_every: 1_000,
            window: 200,
            max_in_flight: 1,
        }
    }
}

/// One variant's figures over the window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecallFigures {
    /// Mean recall@k of the checks in the window (k = each query's own limit).
    pub recall: f64,
    /// Checks in the window.
    pub samples: usize,
    /// Checks done since the start.
    pub checked: u64,
    /// Chosen queries skipped because `max_in_flight` exact searches were already running.
    pub skipped_busy: u64,
}

#[derive(Debug, Default)]
struct Window {
    recalls: VecDeque<f64>,
    checked: u64,
    skipped_busy: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct RecallMonitor {
    inner: Arc<dyn VectorRead>,
    config: RecallConfig,
    seen: AtomicU64,
    permits: Arc<Semaphore>,
    windows: Arc<Windows>,
}

impl RecallMonitor {
    pub fn new(inner: Arc<dyn VectorRead>, config: RecallConfig) -> Self {
        RecallMonitor {
            inner,
            config,
            seen: AtomicU64::new(0),
            permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            windows: Arc::default(),
        }
    }

    pub fn config(&self) -> RecallConfig {
        self.config
    }

    /// Every variant checked so far, with its figures.
    pub fn figures(&self) -> Vec<(VariantKey, RecallFigures)> {
        lock(&self.windows)
            .iter()
            .filter_map(|(k, w)| Some((k.clone(), figures_of(w)?)))
            .collect()
    }

    /// The figures of one variant; `None` before its first check.
    pub fn of(&self, variant: &VariantKey) -> Option<RecallFigures> {
        lock(&self.windows).get(variant).and_then(figures_of)
    }

    /// The query of this batch to check, if the sampling picks one.
    fn pick(&self, queries: &[SearchQuery]) -> Option<usize> {
        let every = self.config.sample_every;
        if every == 0 || queries.is_empty() {
            return None;
        }
        let n = queries.len() as u64;
        let first = self.seen.fetch_add(n, Ordering::Relaxed);
        // The batch covers sequence numbers [first, first + n): pick the multiple of `every`.
        let next = first.div_ceil(every) * every;
        (next < first + n).then(|| (next - first) as usize)
    }

    /// Runs `exact` (a query's exact twin) in the background and scores `answer` against it.
    fn check(&self, collection: &CollectionRef, exact: SearchQuery, answer: &[ScoredPoint]) {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            lock(&self.windows)
                .entry(collection.variant.clone())
                .or_default()
                .skipped_busy += 1;
            return;
        };
        let got: HashSet<String> = answer.iter().map(|p| p.id.clone()).collect();
        let (inner, windows, collection) =
            (self.inner.clone(), self.windows.clone(), collection.clone());
        let window = self.config.window.max(1);
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(mut truth) = inner.search(&collection, vec![exact]).await else {
                return;
            };
            let truth = truth.pop().unwrap_or_default();
            if truth.is_empty() {
                return;
            }
            let found = truth.iter().filter(|p| got.contains(&p.id)).count();
            let recall = found as f64 / truth.len() as f64;
            let mut windows = lock(&windows);
            let w = windows.entry(collection.variant.clone()).or_default();
            w.checked += 1;
            w.recalls.push_back(recall);
            while w.recalls.len() > window {
                w.recalls.pop_front();
            }
        });
    }
}

/// `query` as an exact search of the whole collection: same vector, filter, exclusions, page
/// and threshold; no payload fetched; its own stop flag (the caller will have gone).
fn exact_twin(query: &SearchQuery) -> SearchQuery {
    SearchQuery {
        vector: query.vector.clone(),
        limit: query.limit,
        offset: query.offset,
        filter: query.filter.clone(),
        with_payload: Vec::new(),
        exclude: query.exclude.clone(),
        ef: None,
        exact: true,
        indexed_only: false,
        score_threshold: query.score_threshold,
        stop: StopFlag::new(),
    }
}

type Windows = Mutex<HashMap<VariantKey, Window>>;

fn lock(windows: &Windows) -> MutexGuard<'_, HashMap<VariantKey, Window>> {
    windows.lock().unwrap_or_else(|p| p.into_inner())
}

fn figures_of(w: &Window) -> Option<RecallFigures> {
    (!w.recalls.is_empty() || w.skipped_busy > 0).then(|| RecallFigures {
        recall: if w.recalls.is_empty() {
            f64::NAN
        } else {
            w.recalls.iter().sum::<f64>() / w.recalls.len() as f64
        },
        samples: w.recalls.len(),
        checked: w.checked,
        skipped_busy: w.skipped_busy,
    })
}

#[async_trait]
impl VectorRead for RecallMonitor {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        let picked = self.pick(&queries).filter(|i| !queries[*i].exact);
        let Some(i) = picked else {
            return self.inner.search(collection, queries).await;
        };
        let twin = exact_twin(&queries[i]);
        let answers = self.inner.search(collection, queries).await?;
        if let Some(answer) = answers.get(i) {
            self.check(collection, twin, answer);
        }
        Ok(answers)
    }

    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError> {
        self.inner.collection_info(collection).await
    }

    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        self.inner.versions(variant).await
    }

    fn content_epoch(&self, collection: &CollectionRef) -> Option<u64> {
        self.inner.content_epoch(collection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nothing;

    #[async_trait]
    impl VectorRead for Nothing {
        async fn search(
            &self,
            _: &CollectionRef,
            queries: Vec<SearchQuery>,
        ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
            Ok(vec![Vec::new(); queries.len()])
        }
        async fn collection_info(
            &self,
            c: &CollectionRef,
        ) -> Result<CollectionInfo, VectorStoreError> {
            Err(VectorStoreError::CollectionNotFound(c.to_string()))
        }
        async fn versions(&self, _: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn one_query_in_every_n_is_picked_across_batches() {
        let monitor = RecallMonitor::new(
            Arc::new(Nothing),
            RecallConfig {
                sample_every: 4,
                ..RecallConfig::default()
            },
        );
        let batch = |n: usize| vec![SearchQuery::default(); n];
        let picks: Vec<Option<usize>> = [1, 3, 2, 1, 5, 4]
            .into_iter()
            .map(|n| monitor.pick(&batch(n)))
            .collect();
        // Sequence numbers 0 | 1 2 3 | 4 5 | 6 | 7 8 9 10 11 | 12 13 14 15.
        assert_eq!(picks, vec![Some(0), None, Some(0), None, Some(1), Some(0)]);
        let off = RecallMonitor::new(
            Arc::new(Nothing),
            RecallConfig {
                sample_every: 0,
                ..RecallConfig::default()
            },
        );
        assert_eq!(off.pick(&batch(10)), None);
    }
}
