//! Overload: searches beyond the concurrency bound are refused at once, not queued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionInfo, ScoredPoint, SearchQuery, VectorRead, VectorStoreError,
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
        _: &str,
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
    async fn collection_info(&self, _: &str) -> Result<CollectionInfo, VectorStoreError> {
        Ok(CollectionInfo::default())
    }
    async fn list_collections(&self) -> Result<Vec<String>, VectorStoreError> {
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
