//! Overload: searches beyond the concurrency bound are refused at once, not queued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, ScoredPoint, SearchQuery, VariantKey, VectorRead,
    VectorStoreError,
};
use skye_engine::search::similar::{Limits, SimilarRequest, SimilarService};
use tokio::sync::Notify;

/// A vector store whose searches wait until released (a controllable slow backend).
#[derive(Debug, Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl VectorRead for Gate {
    async fn search(
        &self,
        _: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        self.entered.notify_one();
        self.release.notified().await;
        Ok(queries
            .iter()
            .map(|_| {
                vec![ScoredPoint {
                    id: "x".into(),
                    score: 1.0,
                    payload: Default::default(),
                }]
            })
            .collect())
    }
    async fn collection_info(&self, _: &CollectionRef) -> Result<CollectionInfo, VectorStoreError> {
        Ok(CollectionInfo::default())
    }
    async fn versions(&self, _: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        Ok(Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_beyond_the_bound_get_resource_exhausted_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(dir.path(), &[json!({"variant": "v"})]).await;
    let gate = Arc::new(Gate::default());
    let service = SimilarService::new(
        registry,
        gate.clone(),
        Limits {
            max_limit: 10,
            cache_bytes: 1 << 20,
            max_concurrent: 1,
        },
    );
    let request = || SimilarRequest {
        entity: "e".into(),
        model: "m".into(),
        variant: "v".into(),
        limit: 1,
        embeddings: vec![vec![1.0, 0.0]],
        ..Default::default()
    };
    let busy = {
        let service = service.clone();
        let req = request();
        tokio::spawn(async move { service.similar(req, 0).await })
    };
    gate.entered.notified().await;
    let started = Instant::now();
    let refused = service.similar(request(), 0).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::ResourceExhausted, "{refused}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not queued"
    );
    gate.release.notify_one();
    assert_eq!(busy.await.unwrap().unwrap().answers[0][0].id, "x");
    // The permit is back: the next search runs.
    let next = tokio::spawn({
        let service = service.clone();
        let req = request();
        async move { service.similar(req, 0).await }
    });
    gate.entered.notified().await;
    gate.release.notify_one();
    assert!(next.await.unwrap().is_ok());
}

/// A store whose search runs on a blocking thread for 300 ms without looking at its stop
/// flag, then records whether the flag was set (as an engine between two checks would).
#[derive(Debug, Default)]
struct Stubborn {
    saw_stop: std::sync::Mutex<Vec<bool>>,
}

#[async_trait]
impl VectorRead for Stubborn {
    async fn search(
        &self,
        _: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        let stop = queries[0].stop.clone();
        let stopped = tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.is_stopped()
        })
        .await
        .unwrap();
        self.saw_stop.lock().unwrap().push(stopped);
        if stopped {
            return Err(VectorStoreError::Cancelled);
        }
        Ok(queries.iter().map(|_| Vec::new()).collect())
    }
    async fn collection_info(&self, _: &CollectionRef) -> Result<CollectionInfo, VectorStoreError> {
        Ok(CollectionInfo::default())
    }
    async fn versions(&self, _: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        Ok(Vec::new())
    }
}

/// A search abandoned at its caller's deadline keeps its permit until the engine's work ends
/// (so the bound is on running work, not on waiting requests), and the engine is told to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_search_holds_its_permit_until_its_work_ends_and_is_told_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(dir.path(), &[json!({"variant": "v"})]).await;
    let store = Arc::new(Stubborn::default());
    let service = SimilarService::new(
        registry,
        store.clone(),
        Limits {
            max_limit: 10,
            cache_bytes: 0,
            max_concurrent: 1,
        },
    );
    let request = || SimilarRequest {
        entity: "e".into(),
        model: "m".into(),
        variant: "v".into(),
        limit: 1,
        embeddings: vec![vec![1.0, 0.0]],
        ..Default::default()
    };
    let abandoned = tokio::time::timeout(Duration::from_millis(50), service.similar(request(), 0));
    assert!(
        abandoned.await.is_err(),
        "the caller gave up at its deadline"
    );
    let refused = service.similar(request(), 0).await.unwrap_err();
    assert_eq!(
        refused.code(),
        ErrorCode::ResourceExhausted,
        "the abandoned search still runs, so its permit is still taken: {refused}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.saw_stop.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the abandoned search never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *store.saw_stop.lock().unwrap(),
        [true],
        "its stop flag was set"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    service
        .similar(request(), 0)
        .await
        .expect("the permit came back when the work ended");
}
