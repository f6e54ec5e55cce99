//! getSimilarCandidates over real gRPC (tonic client ↔ server on port 0), against the embedded
//! registry and vector store.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use skye_backends::embedded::{EmbeddedConfigStore, EmbeddedVectorStore};
use skye_core::auth::AuthTokens;
use skye_core::config_store::Txn;
use skye_core::domain::DistanceFunction;
use skye_core::registration::{RegisterEntity, RegisterModel, RegisterStore, RegisterVariant};
use skye_core::vector_store::{
    CollectionRef, CollectionSpec, PayloadValue, VectorPoint, VectorStore,
};
use skye_engine::registry::Registry;
use skye_engine::search::similar::{Limits, SimilarService};
use skye_proto::skye_similar_candidate_service_client::SkyeSimilarCandidateServiceClient;
use skye_proto::skye_similar_candidate_service_server::SkyeSimilarCandidateServiceServer;
use skye_proto::{Embedding, Filter, Filters, Operator, SkyeRequest};
use skye_serving::{AuthInterceptor, Metrics, SimilarCandidates};
use tonic::Code;
use tonic::transport::Channel;

struct Fixture {
    _dir: tempfile::TempDir,
    client: SkyeSimilarCandidateServiceClient<Channel>,
    engine: SimilarService,
    registry: Arc<Registry>,
    vectors: Arc<EmbeddedVectorStore>,
    metrics: Arc<Metrics>,
}

/// Version `version` of `variant` of catalog/intent.
fn at(variant: &str, version: i64) -> CollectionRef {
    CollectionRef::embedded("catalog", "intent", variant, version)
}

fn spec(collection: CollectionRef) -> CollectionSpec {
    CollectionSpec {
        collection,
        dimension: 3,
        distance: DistanceFunction::Cosine,
        m: 16,
        ef_construct: 64,
        indexing_threshold: 0,
        payload_schema: BTreeMap::new(),
        on_disk: None,
    }
}

async fn fixture(tokens: Vec<String>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedConfigStore::open(&dir.path().join("config.redb")).unwrap());
    let registry = Arc::new(Registry::open(store, "skye").await.unwrap());
    registry
        .register_store(RegisterStore::from_json(json!({"conf_id": 1, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"})).unwrap())
        .await
        .unwrap();
    registry
        .register_entity(
            RegisterEntity::from_json(json!({"entity": "catalog", "store_id": "1"})).unwrap(),
        )
        .await
        .unwrap();
    registry
        .register_model(
            RegisterModel::from_json(json!({"entity": "catalog", "model": "intent",
            "model_config": {"distance_function": "COSINE", "vector_dimension": 3}}))
            .unwrap(),
        )
        .await
        .unwrap();
    registry
        .register_variant(
            RegisterVariant::from_json(
                json!({"entity": "catalog", "model": "intent", "variant": "organic",
            "vector_db_config": {"payload": {
                "brand": {"field_schema": "keyword"}, "price": {"field_schema": "integer"},
                "in_stock": {"field_schema": "boolean"}}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    registry
        .register_variant(
            RegisterVariant::from_json(
                json!({"entity": "catalog", "model": "intent", "variant": "cached",
            "in_memory_caching_enabled": true, "in_memory_cache_ttl_seconds": 60}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let vectors = Arc::new(EmbeddedVectorStore::open(&dir.path().join("collections")).unwrap());
    vectors
        .create_collection(spec(at("organic", 1)))
        .await
        .unwrap();
    let points: Vec<VectorPoint> = (0..30)
        .map(|i| VectorPoint {
            id: format!("c{i}"),
            vector: vec![1.0, i as f32 / 10.0, 0.0],
            payload: BTreeMap::from([
                (
                    "brand".to_string(),
                    PayloadValue::Keyword(if i % 2 == 0 { "acme" } else { "zed" }.into()),
                ),
                ("price".to_string(), PayloadValue::Integer(i * 10)),
                ("in_stock".to_string(), PayloadValue::Bool(i % 3 != 0)),
            ]),
        })
        .collect();
    vectors
        .upsert(&at("organic", 1), points.clone())
        .await
        .unwrap();
    vectors
        .create_collection(spec(at("cached", 1)))
        .await
        .unwrap();
    vectors.upsert(&at("cached", 1), points).await.unwrap();
    let engine = SimilarService::new(
        registry.clone(),
        vectors.clone(),
        Limits {
            max_limit: 100,
            cache_bytes: 1 << 20,
            max_concurrent: 8,
        },
    );
    let metrics = Arc::new(Metrics::default());
    let service = SimilarCandidates::new(engine.clone(), metrics.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SkyeSimilarCandidateServiceServer::with_interceptor(
                service,
                AuthInterceptor::new(Arc::new(AuthTokens::new(tokens))),
            ))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let client = SkyeSimilarCandidateServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        client,
        engine,
        registry,
        vectors,
        metrics,
    }
}

fn request(embedding: Vec<f64>, limit: i32) -> SkyeRequest {
    SkyeRequest {
        entity: "catalog".into(),
        model_name: "intent".into(),
        variant: "organic".into(),
        limit,
        embeddings: vec![Embedding { embedding }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_candidates_rank_filter_and_return_attributes() {
    let mut f = fixture(vec![]).await;
    let mut req = request(vec![1.0, 0.5, 0.0], 3);
    req.embeddings.push(Embedding { embedding: vec![] });
    req.attribute = vec!["price".into(), "in_stock".into()];
    let resp = f
        .client
        .get_similar_candidates(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.responses.len(), 2, "one response per query, in order");
    let ids: Vec<&str> = resp.responses[0]
        .candidates
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(ids, ["c5", "c6", "c4"], "by angle to (1, 0.5, 0)");
    let meta = resp.responses[0].candidates[0].meta.as_ref().unwrap();
    assert!(
        (meta.score - 1.0).abs() < 1e-6,
        "cosine similarity of identical directions"
    );
    assert_eq!(
        meta.attributes_map.get("price").map(String::as_str),
        Some("50")
    );
    assert_eq!(
        meta.attributes_map.get("in_stock").map(String::as_str),
        Some("true")
    );
    assert!(
        resp.responses[1].candidates.is_empty(),
        "an empty embedding gets an empty answer"
    );

    let mut filtered = request(vec![1.0, 0.5, 0.0], 5);
    filtered.global_filters = Some(Filters {
        filter: vec![
            Filter {
                field: "brand".into(),
                op: Operator::In as i32,
                values: vec!["zed".into()],
            },
            Filter {
                field: "price".into(),
                op: Operator::Btwe as i32,
                values: vec!["10".into(), "90".into()],
            },
            Filter {
                field: "in_stock".into(),
                op: Operator::Nin as i32,
                values: vec!["false".into()],
            },
        ],
    });
    let resp = f
        .client
        .get_similar_candidates(filtered)
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = resp.responses[0]
        .candidates
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["c5", "c7", "c1"],
        "odd (zed), price 10..=90, not every third"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_get_the_right_status() {
    let mut f = fixture(vec![]).await;
    let cases: Vec<(SkyeRequest, Code, &str)> = vec![
        (
            request(vec![1.0, 0.0, 0.0], 0),
            Code::InvalidArgument,
            "limit is required",
        ),
        (
            request(vec![1.0, 0.0, 0.0], 101),
            Code::InvalidArgument,
            "exceeds the maximum",
        ),
        (
            request(vec![1.0, 0.0], 1),
            Code::InvalidArgument,
            "has 2 dimensions",
        ),
        (
            request(vec![f64::NAN, 0.0, 0.0], 1),
            Code::InvalidArgument,
            "NaN",
        ),
        (
            SkyeRequest {
                variant: "nope".into(),
                ..request(vec![1.0, 0.0, 0.0], 1)
            },
            Code::NotFound,
            "variant 'nope' not found",
        ),
        (
            SkyeRequest {
                model_name: "nope".into(),
                ..request(vec![1.0, 0.0, 0.0], 1)
            },
            Code::NotFound,
            "model 'nope' not found",
        ),
        (
            SkyeRequest {
                entity: "".into(),
                ..request(vec![1.0, 0.0, 0.0], 1)
            },
            Code::InvalidArgument,
            "Entity is required",
        ),
        (
            SkyeRequest {
                embeddings: vec![],
                ..request(vec![], 1)
            },
            Code::InvalidArgument,
            "candidateIds or embeddings is required",
        ),
        (
            SkyeRequest {
                candidate_ids: vec!["c1".into()],
                ..request(vec![1.0, 0.0, 0.0], 1)
            },
            Code::InvalidArgument,
            "only one is required",
        ),
        (
            SkyeRequest {
                filters: vec![Filters::default(), Filters::default()],
                ..request(vec![1.0, 0.0, 0.0], 1)
            },
            Code::InvalidArgument,
            "filter should be present for each embedding",
        ),
        (
            SkyeRequest {
                global_filters: Some(Filters {
                    filter: vec![Filter {
                        field: "color".into(),
                        op: 0,
                        values: vec!["red".into()],
                    }],
                }),
                ..request(vec![1.0, 0.0, 0.0], 1)
            },
            Code::InvalidArgument,
            "payload schema",
        ),
        (
            SkyeRequest {
                global_filters: Some(Filters {
                    filter: vec![Filter {
                        field: "price".into(),
                        op: 42,
                        values: vec![],
                    }],
                }),
                ..request(vec![1.0, 0.0, 0.0], 1)
            },
            Code::InvalidArgument,
            "unknown operator 42",
        ),
    ];
    for (req, code, text) in cases {
        let status = f.client.get_similar_candidates(req).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(
            status.message().contains(text),
            "{} does not mention {text}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_tokens_are_checked_when_tokens_are_configured() {
    let mut f = fixture(vec!["secret".into()]).await;
    let with = |caller: Option<&str>, token: Option<&str>| {
        let mut req = tonic::Request::new(request(vec![1.0, 0.0, 0.0], 1));
        if let Some(c) = caller {
            req.metadata_mut()
                .insert("skye-caller-id", c.parse().unwrap());
        }
        if let Some(t) = token {
            req.metadata_mut()
                .insert("skye-auth-token", t.parse().unwrap());
        }
        req
    };
    let e = f
        .client
        .get_similar_candidates(with(None, Some("secret")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "skye-caller-id header is missing")
    );
    let e = f
        .client
        .get_similar_candidates(with(Some("app"), None))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "skye-auth-token header is missing")
    );
    let e = f
        .client
        .get_similar_candidates(with(Some("app"), Some("wrong")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::Unauthenticated, "Invalid auth token")
    );
    let ok = f
        .client
        .get_similar_candidates(with(Some("app"), Some("secret")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.responses[0].candidates.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_hit_the_cache_and_a_version_switch_never_serves_stale_results() {
    let mut f = fixture(vec![]).await;
    let ask = |variant: &str| SkyeRequest {
        variant: variant.into(),
        ..request(vec![1.0, 0.5, 0.0], 2)
    };
    let first = f
        .client
        .get_similar_candidates(ask("cached"))
        .await
        .unwrap()
        .into_inner();
    let again = f
        .client
        .get_similar_candidates(ask("cached"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(
        (f.engine.cache_stats().hits, f.engine.cache_stats().misses),
        (1, 1)
    );
    let text = f.metrics.render();
    assert!(
        text.contains(r#"skye_serving_cache_hits_total{model="intent",variant="cached"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skye_serving_results_total{model="intent",variant="cached"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"skye_serving_request_seconds_count{rpc="getSimilarCandidates",model="intent",variant="cached",code="ok"} 2"#),
        "{text}"
    );
    f.client
        .get_similar_candidates(ask("organic"))
        .await
        .unwrap();
    assert_eq!(
        f.engine.cache_stats().hits + f.engine.cache_stats().misses,
        2,
        "variants without caching bypass it"
    );

    // Version 2 of the variant holds one different point; switching the read version must
    // answer from it at once, cache or not.
    f.vectors
        .create_collection(spec(at("cached", 2)))
        .await
        .unwrap();
    let point = VectorPoint {
        id: "fresh".into(),
        vector: vec![1.0, 0.5, 0.0],
        payload: BTreeMap::new(),
    };
    f.vectors
        .upsert(&at("cached", 2), vec![point])
        .await
        .unwrap();
    let key =
        f.registry
            .root()
            .variant_key("catalog", "intent", "cached", "vector-db-read-version");
    f.registry
        .store()
        .txn(Txn::new().put(key, "2"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while f
        .registry
        .snapshot()
        .variant("catalog", "intent", "cached")
        .unwrap()
        .vector_db_read_version
        != 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the switch did not reach the snapshot"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let switched = f
        .client
        .get_similar_candidates(ask("cached"))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = switched.responses[0]
        .candidates
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(ids, ["fresh"]);
}
