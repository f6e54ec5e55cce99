//! Deadlines and the circuit breaker over real gRPC, with a controllable vector store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use skye_backends::embedded::EmbeddedConfigStore;
use skye_core::auth::AuthTokens;
use skye_core::registration::{RegisterEntity, RegisterModel, RegisterStore, RegisterVariant};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, ScoredPoint, SearchQuery, VariantKey, VectorRead,
    VectorStoreError,
};
use skye_engine::breaker::{BackendObserver, BreakerConfig, GuardedVectorRead};
use skye_engine::registry::Registry;
use skye_engine::search::similar::{Limits, SimilarService};
use skye_proto::skye_similar_candidate_service_client::SkyeSimilarCandidateServiceClient;
use skye_proto::skye_similar_candidate_service_server::SkyeSimilarCandidateServiceServer;
use skye_proto::{Embedding, SkyeRequest};
use skye_serving::{AuthInterceptor, Metrics, SimilarCandidates};
use tonic::Code;

/// Slow when asked, failing when asked; counts calls.
#[derive(Debug, Default)]
struct Flaky {
    calls: AtomicUsize,
    slow: AtomicBool,
    down: AtomicBool,
}

#[async_trait]
impl VectorRead for Flaky {
    async fn search(
        &self,
        _: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(VectorStoreError::Unavailable("connection refused".into()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_are_enforced_and_the_breaker_sheds_a_failing_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedConfigStore::open(&dir.path().join("c.redb")).unwrap());
    let registry = Arc::new(Registry::open(store, "skye").await.unwrap());
    registry
        .register_store(RegisterStore::from_json(json!({"embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"})).unwrap())
        .await
        .unwrap();
    registry
        .register_entity(
            RegisterEntity::from_json(json!({"entity": "e", "store_id": "1"})).unwrap(),
        )
        .await
        .unwrap();
    registry
        .register_model(
            RegisterModel::from_json(json!({"entity": "e", "model": "m",
                "model_config": {"distance_function": "DOT", "vector_dimension": 2}}))
            .unwrap(),
        )
        .await
        .unwrap();
    registry
        .register_variant(
            RegisterVariant::from_json(json!({"entity": "e", "model": "m", "variant": "v"}))
                .unwrap(),
        )
        .await
        .unwrap();
    let flaky = Arc::new(Flaky::default());
    let metrics = Arc::new(Metrics::default());
    let guarded = Arc::new(GuardedVectorRead::new(
        flaky.clone(),
        BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(300),
        },
        Some(metrics.clone() as Arc<dyn BackendObserver>),
    ));
    let engine = SimilarService::new(
        registry,
        guarded,
        Limits {
            max_limit: 10,
            cache_bytes: 1 << 20,
            max_concurrent: 8,
        },
    );
    let service = SimilarCandidates::new(engine, metrics.clone())
        .with_default_deadline(Duration::from_millis(200));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SkyeSimilarCandidateServiceServer::with_interceptor(
                service,
                AuthInterceptor::new(Arc::new(AuthTokens::new(vec![]))),
            ))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut client = SkyeSimilarCandidateServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let request = || SkyeRequest {
        entity: "e".into(),
        model_name: "m".into(),
        variant: "v".into(),
        limit: 1,
        embeddings: vec![Embedding {
            embedding: vec![1.0, 0.0],
        }],
        ..Default::default()
    };
    assert!(client.get_similar_candidates(request()).await.is_ok());

    // A slow backend: the server's default deadline (200 ms) answers DEADLINE_EXCEEDED.
    flaky.slow.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let e = client.get_similar_candidates(request()).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The client's own grpc-timeout wins when shorter.
    let mut short = tonic::Request::new(request());
    short.set_timeout(Duration::from_millis(50));
    let started = Instant::now();
    let e = client.get_similar_candidates(short).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(180),
        "{:?}",
        started.elapsed()
    );
    flaky.slow.store(false, Ordering::SeqCst);

    // A failing backend: three failures open the breaker; then calls fail fast without
    // reaching it, until one probe after the open period finds it healthy again.
    flaky.down.store(true, Ordering::SeqCst);
    let before = flaky.calls.load(Ordering::SeqCst);
    for _ in 0..3 {
        let e = client.get_similar_candidates(request()).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e}");
    }
    for _ in 0..5 {
        let e = client.get_similar_candidates(request()).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
        assert!(e.message().contains("circuit open"), "{e}");
    }
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst) - before,
        3,
        "shed calls never reach it"
    );
    flaky.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        client.get_similar_candidates(request()).await.is_ok(),
        "probe closes it"
    );
    assert!(client.get_similar_candidates(request()).await.is_ok());

    let text = metrics.render();
    assert!(text.contains(r#"skye_backend_request_seconds_count{backend="vector",op="search",outcome="circuit_open"} 5"#), "{text}");
    assert!(text.contains(r#"code="timeout""#), "{text}");
}
