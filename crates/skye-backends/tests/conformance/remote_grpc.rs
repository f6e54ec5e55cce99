//! The NGT and Eigenix clients against in-process gRPC servers built from the same protos
//! (**protocol test doubles**: the real services are internal to their operators and install
//! nowhere). The doubles answer by brute force over a few known vectors, so the checks are the
//! client's: request fields, id and score mapping, paging and exclusion done by Skye, the
//! deadline, refused filters and writes.

#![cfg(feature = "ngt-eigenix")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skye_backends::remote_grpc::{EigenixStore, NgtStore};
use skye_core::domain::VectorDbType;
use skye_core::vector_store::{
    Condition, SearchFilter, SearchQuery, VariantKey, VectorRead, VectorStore, VectorStoreError,
};
use skye_proto::eigenix::eigenix_service_server::{EigenixService, EigenixServiceServer};
use skye_proto::ngt::embedding_service_server::{EmbeddingService, EmbeddingServiceServer};
use tonic::{Request, Response, Status};

/// A double shared between its server and the test (the server trait is foreign, so it cannot
/// be implemented on `Arc` directly).
struct Shared<T>(Arc<T>);

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Points 0..10 at (i, 0): the distance to (x, 0) is |x - i|.
fn nearest(x: f64, k: usize) -> Vec<(u64, f64)> {
    let mut all: Vec<(u64, f64)> = (0..10u64).map(|i| (i, (x - i as f64).abs())).collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

#[derive(Default)]
struct Ngt {
    seen: Mutex<Vec<skye_proto::ngt::SearchRequest>>,
    delay: Option<Duration>,
}

#[tonic::async_trait]
impl EmbeddingService for Shared<Ngt> {
    async fn search(
        &self,
        request: Request<skye_proto::ngt::SearchRequest>,
    ) -> Result<Response<skye_proto::ngt::SearchResponse>, Status> {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let r = request.into_inner();
        self.seen.lock().unwrap().push(r.clone());
        let results = nearest(r.embedding[0], r.k as usize)
            .into_iter()
            .map(|(id, d)| skye_proto::ngt::SearchResult {
                id: id as i32,
                distance: d,
            })
            .collect();
        Ok(Response::new(skye_proto::ngt::SearchResponse { results }))
    }
}

#[derive(Default)]
struct Eigenix {
    seen: Mutex<Vec<skye_proto::eigenix::BatchSearchRequest>>,
}

#[tonic::async_trait]
impl EigenixService for Shared<Eigenix> {
    async fn batch_search(
        &self,
        request: Request<skye_proto::eigenix::BatchSearchRequest>,
    ) -> Result<Response<skye_proto::eigenix::BatchSearchResponse>, Status> {
        let r = request.into_inner();
        self.seen.lock().unwrap().push(r.clone());
        let result_sets = r
            .vectors
            .iter()
            .map(|v| skye_proto::eigenix::SearchResultSet {
                results: nearest(f64::from(v.values[0]), r.limit as usize)
                    .into_iter()
                    .map(|(id, d)| skye_proto::eigenix::SearchResult {
                        id,
                        distance: d as f32,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(skye_proto::eigenix::BatchSearchResponse {
            result_sets,
        }))
    }
}

async fn serve(router: tonic::transport::server::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

fn query(x: f32, limit: usize, offset: usize, exclude: &[&str]) -> SearchQuery {
    SearchQuery {
        vector: vec![x, 0.0],
        limit,
        offset,
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn ids(hits: &[skye_core::vector_store::ScoredPoint]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngt_client_searches_pages_and_refuses_what_ngt_cannot_do() {
    let double = Arc::new(Ngt::default());
    let url = serve(
        tonic::transport::Server::builder()
            .add_service(EmbeddingServiceServer::new(Shared(double.clone()))),
    )
    .await;
    let params = BTreeMap::from([("epsilon".to_string(), "0.05".to_string())]);
    let store = NgtStore::new(&url, &params, Duration::from_secs(2)).unwrap();
    let answers = store
        .search(
            &VariantKey::new("e", "m", "v", VectorDbType::Ngt).at(1),
            vec![query(3.2, 2, 0, &[]), query(7.0, 2, 1, &["7"])],
        )
        .await
        .unwrap();
    assert_eq!(ids(&answers[0]), ["3", "4"]);
    assert!(
        (answers[0][0].score - 0.2).abs() < 1e-5,
        "distance passed through"
    );
    // Without 7, skipping the best one: 6 and 8 tie at 1.0 (6 first), then 8, then 5.
    assert_eq!(ids(&answers[1]), ["8", "5"]);
    let seen = double.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let second = seen.iter().find(|r| r.embedding[0] == 7.0).unwrap();
    assert_eq!(
        (second.k, second.epsilon, second.radius),
        (4, 0.05, 10_000.0)
    );

    let mut filtered = query(1.0, 1, 0, &[]);
    filtered.filter = Some(SearchFilter {
        must: vec![Condition::Exists { field: "x".into() }],
        must_not: vec![],
    });
    assert!(matches!(
        store
            .search(
                &VariantKey::new("e", "m", "v", VectorDbType::Ngt).at(1),
                vec![filtered]
            )
            .await,
        Err(VectorStoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.delete_points(&VariantKey::new("e", "m", "v", VectorDbType::Ngt).at(1), vec!["1".into()]).await,
        Err(VectorStoreError::InvalidArgument(m)) if m.contains("outside Skye")
    ));

    // The variant's deadline bounds a slow service.
    let slow = Arc::new(Ngt {
        delay: Some(Duration::from_secs(3)),
        ..Ngt::default()
    });
    let url = serve(
        tonic::transport::Server::builder().add_service(EmbeddingServiceServer::new(Shared(slow))),
    )
    .await;
    let store = NgtStore::new(&url, &BTreeMap::new(), Duration::from_millis(200)).unwrap();
    let started = std::time::Instant::now();
    let err = store
        .search(
            &VariantKey::new("e", "m", "v", VectorDbType::Ngt).at(1),
            vec![query(1.0, 1, 0, &[])],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, VectorStoreError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eigenix_client_sends_one_batch_to_the_model_variant_version_index() {
    let double = Arc::new(Eigenix::default());
    let url = serve(
        tonic::transport::Server::builder()
            .add_service(EigenixServiceServer::new(Shared(double.clone()))),
    )
    .await;
    let params = BTreeMap::from([
        ("use_ivf".to_string(), "false".to_string()),
        ("cent_count".to_string(), "32".to_string()),
        ("database_type".to_string(), "HNSW_LIB".to_string()),
    ]);
    let store = EigenixStore::new(&url, &params, Duration::from_secs(2)).unwrap();
    // Skye's collection name is <variant>_<model>_<version>.
    let answers = store
        .search(
            &VariantKey::new("e", "intent", "organic", VectorDbType::Eigenix).at(4),
            vec![query(0.0, 1, 0, &[]), query(9.0, 3, 0, &["8"])],
        )
        .await
        .unwrap();
    assert_eq!(ids(&answers[0]), ["0"]);
    assert_eq!(ids(&answers[1]), ["9", "7", "6"]);
    let seen = double.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one BatchSearch for the request");
    let r = &seen[0];
    assert_eq!(r.index_name, "intent_organic_4");
    assert_eq!(r.limit, 4, "the largest k of the batch");
    let p = r.search_params.as_ref().unwrap();
    assert_eq!(
        (
            p.use_ivf,
            p.cent_count,
            p.search_indexed_only,
            r.database_type
        ),
        (false, 32, true, 0)
    );
    assert!(
        store
            .search(
                &VariantKey::new("e", "intent", "organic", VectorDbType::Eigenix).at(4),
                vec![]
            )
            .await
            .unwrap()
            .is_empty()
    );
}
