//! Scale-out mode against real services (started by `.ci/run`; SKIPPED loudly otherwise).

#[cfg(any(feature = "etcd", feature = "kafka", feature = "redis"))]
use std::time::Duration;

#[cfg(any(feature = "etcd", feature = "kafka", feature = "redis"))]
use serde_json::json;

#[cfg(any(feature = "etcd", feature = "kafka", feature = "redis"))]
use crate::support::{Http, Skye};

/// An app name (config-tree root, consumer-group prefix) no other run shares.
#[cfg(any(feature = "etcd", feature = "kafka"))]
fn unique_app() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e{nanos}")
}

/// The value of `var`, or a loud SKIPPED (a failure under `SKYE_REQUIRE_SERVICES`).
pub fn service(var: &str, test: &str) -> Option<String> {
    use std::io::Write;
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("SKYE_REQUIRE_SERVICES").is_some() => {
            panic!("{test}: {var} is not set but SKYE_REQUIRE_SERVICES is")
        }
        _ => {
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {var} is not set");
            None
        }
    }
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_share_one_etcd_tree_and_see_each_others_changes() {
    let Some(endpoints) = service("SKYE_TEST_ETCD_ENDPOINTS", "etcd e2e") else {
        return;
    };
    let app = unique_app();
    let env = [
        ("ETCD_SERVER", endpoints.as_str()),
        ("APP_NAME", app.as_str()),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Skye::start(dir_a.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let b = Skye::start(dir_b.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let http = Http::new();
    for (path, body) in [
        (
            "register-store",
            json!({"conf_id": 1, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"}),
        ),
        (
            "register-entity",
            json!({"entity": "catalog", "store_id": "1"}),
        ),
        (
            "register-model",
            json!({"entity": "catalog", "model": "intent",
            "model_config": {"distance_function": "COSINE", "vector_dimension": 4}}),
        ),
    ] {
        let r = http
            .post(&a.url("admin", &format!("/api/v1/model/{path}")), &body)
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.raw);
    }
    // B learns of A's writes through its etcd watch.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = http
            .get(&b.url("admin", "/api/v1/models/catalog/intent"))
            .await;
        if r.status == 200 {
            assert_eq!(r.body["model_config"]["vector_dimension"], 4, "{}", r.raw);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never saw the model: {}",
            r.raw
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both race for one name: exactly one wins (etcd transactions, not check-then-put).
    let body = json!({"entity": "catalog", "model": "intent", "variant": "v"});
    let (url_a, url_b) = (
        a.url("admin", "/api/v1/model/register-variant"),
        b.url("admin", "/api/v1/model/register-variant"),
    );
    let (ra, rb) = tokio::join!(http.post(&url_a, &body), http.post(&url_b, &body));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", ra.raw, rb.raw);
    // The tree survives the processes: a fresh admin reads it back.
    a.kill();
    b.kill();
    let dir_c = tempfile::tempdir().unwrap();
    let c = Skye::start(dir_c.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let r = http
        .get(&c.url("admin", "/api/v1/models/catalog/intent/variants/v"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_e2e_needs_the_etcd_feature() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED etcd e2e: built without --features etcd (the README test command enables it)"
    );
}

/// The issue's scale-out path: admin on etcd, ingestion through Kafka, serving with the Redis
/// cache — one `skye standalone` wired to the three real services.
#[cfg(all(feature = "kafka", feature = "etcd", feature = "redis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_admin_kafka_ingestion_and_redis_cached_serving_end_to_end() {
    use skye_proto::{Embedding, SkyeRequest};

    let (Some(brokers), Some(etcd), Some(redis)) = (
        service("SKYE_TEST_KAFKA_BROKERS", "scale-out e2e"),
        service("SKYE_TEST_ETCD_ENDPOINTS", "scale-out e2e"),
        service("SKYE_TEST_REDIS_ADDR", "scale-out e2e"),
    ) else {
        return;
    };
    let app = unique_app();
    let env = [
        ("APP_NAME", app.as_str()),
        ("ETCD_SERVER", etcd.as_str()),
        ("KAFKA_BROKER", brokers.as_str()),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("KAFKA_MAX_POLL_INTERVAL_MS", "10000"),
        ("REDIS_ADDR", redis.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &env);
    let http = Http::new();
    let ids: Vec<usize> = (0..40).collect();
    let client = serve_cached_variant(&skye, &ids).await;
    let request = || SkyeRequest {
        entity: "catalog".into(),
        model_name: "intent".into(),
        variant: "cached".into(),
        limit: 100,
        embeddings: vec![Embedding {
            embedding: vec![0.5, -0.25, 1.0, 0.1],
        }],
        ..Default::default()
    };
    let first = client.similar_candidates(request()).await.unwrap();
    assert_eq!(first.responses[0].candidates.len(), 40);
    // The write-back to Redis is asynchronous; a repeat is then a distributed-cache hit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = client.similar_candidates(request()).await.unwrap();
        assert_eq!(again, first);
        let metrics = http.get(&skye.url("serving", "/metrics")).await.raw;
        if metrics.contains(r#"skye_serving_cache_hits_total{model="intent",variant="cached"} "#)
            && !metrics
                .contains(r#"skye_serving_cache_hits_total{model="intent",variant="cached"} 0"#)
        {
            // The hit is the distributed layer's (the variant keeps nothing in-process).
            let distributed = r#"skye_cache_hits_total{cache="similar",layer="distributed"} "#;
            assert!(
                metrics.contains(distributed) && !metrics.contains(&format!("{distributed}0\n")),
                "{metrics}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Redis hit: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fault drill: the Redis cache is unreachable; every search is still answered (a cache error is
/// a miss) and answers fast (the Redis call has its own short timeout).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_are_served_while_redis_is_down() {
    use skye_proto::{Embedding, SkyeRequest};

    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[("REDIS_ADDR", "127.0.0.1:1")]);
    let client = serve_cached_variant(&skye, &[1, 2, 3]).await;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let r = client
            .similar_candidates(SkyeRequest {
                entity: "catalog".into(),
                model_name: "intent".into(),
                variant: "cached".into(),
                limit: 10,
                embeddings: vec![Embedding {
                    embedding: vec![1.0, 0.0, 0.0, 0.0],
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(r.responses[0].candidates.len(), 3);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // Each failed read is in the metrics: the cache layer's errors and the backend call's.
    let metrics = Http::new().get(&skye.url("serving", "/metrics")).await.raw;
    for series in [
        r#"skye_cache_errors_total{cache="similar",layer="distributed"} "#,
        r#"skye_backend_request_seconds_count{backend="cache",op="get_many",outcome="error"} "#,
    ] {
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok());
        assert!(value.is_some_and(|v| v >= 1.0), "{series}: {metrics}");
    }
}

/// Registers variant `cached` (distributed caching on, 60 s), ingests `ids` through the
/// consumers' HTTP ingest, waits for it to serve, and connects a client.
#[cfg(feature = "redis")]
pub async fn serve_cached_variant(skye: &Skye, ids: &[usize]) -> skye_client::SkyeClient {
    use crate::lifecycle::{job_events, register, wait_completed};
    use serde_json::Value;
    use skye_client::{ClientConfig, SkyeClient};

    let http = Http::new();
    register(skye, &http).await;
    let r = http
        .post(
            &skye.url("admin", "/api/v1/model/register-variant"),
            &json!({"entity": "catalog", "model": "intent", "variant": "cached",
                "distributed_caching_enabled": true, "distributed_cache_ttl_seconds": 60,
                "embedding_retrieval_distributed_enabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = http
        .post(
            &skye.url("admin", "/api/v1/qdrant/process-multi-variant"),
            &json!({"entity": "catalog", "model": "intent", "variants": ["cached"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let mut events = job_events(&r.body, ids, 0, &[]);
    for e in &mut events {
        e["index_space"]["variants_index_map"] = json!({"cached": true});
    }
    let url = skye.url("consumers", "/api/v1/ingest/skye.embedding");
    let r = http.post(&url, &Value::Array(events)).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let v = wait_completed(skye, &http, "cached").await;
    assert_eq!(v["vector_db_read_version"], 1);
    SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap()
}

/// `REDIS_KEY_FORMAT=original` against a real Redis: an entry an original pod wrote (its key
/// computed here from the spec, its value a protobuf `CandidateResponse`) is served without a
/// search, and what Skye writes back is in the same format.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_format_entries_are_shared_through_a_real_redis() {
    use prost::Message;
    use skye_backends::redis::RedisCache;
    use skye_core::cache::DistributedCache;
    use skye_proto::{
        Candidate, CandidateEmbedding, CandidateResponse, Embedding, Meta,
        SkyeBulkEmbeddingRequest, SkyeRequest,
    };

    let Some(addr) = service("SKYE_TEST_REDIS_ADDR", "original Redis format") else {
        return;
    };
    // FNV-1a 64 of the query's float32 LE bytes; no filters, no attributes (spec serving §4.2).
    let key = |v: &[f32]| {
        let h = v
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        format!("sc:catalog:intent:cached:{h:016x}:e:e:V2")
    };
    let redis = RedisCache::new(&addr, "", 0, Duration::from_secs(2)).unwrap();
    // A query vector no other run uses, so a warm Redis cannot answer for it.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let go_query = [0.25, nanos as f32, 0.5, 1.0];
    let go_answer = CandidateResponse {
        candidates: vec![Candidate {
            id: "written-by-go".into(),
            meta: Some(Meta {
                score: 0.75,
                attributes_map: Default::default(),
            }),
        }],
    };
    redis
        .set_many(
            vec![(key(&go_query), go_answer.encode_to_vec())],
            Duration::from_secs(60),
        )
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(
        dir.path(),
        &[
            ("REDIS_ADDR", addr.as_str()),
            ("REDIS_KEY_FORMAT", "original"),
        ],
    );
    let client = serve_cached_variant(&skye, &[1, 2, 3]).await;
    let request = |v: &[f32]| SkyeRequest {
        entity: "catalog".into(),
        model_name: "intent".into(),
        variant: "cached".into(),
        limit: 2,
        embeddings: vec![Embedding {
            embedding: v.iter().map(|x| f64::from(*x)).collect(),
        }],
        ..Default::default()
    };
    let served = client.similar_candidates(request(&go_query)).await.unwrap();
    assert_eq!(
        served.responses[0], go_answer,
        "the original pod's entry, not a search (the collection holds ids 1-3)"
    );

    let own_query = [1.0, nanos as f32, 0.0, 0.0];
    let searched = client
        .similar_candidates(request(&own_query))
        .await
        .unwrap();
    assert_eq!(searched.responses[0].candidates.len(), 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let written = loop {
        if let Some(v) = redis.get_many(&[key(&own_query)]).await.unwrap().remove(0) {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing written back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        CandidateResponse::decode(written.as_slice()).unwrap(),
        searched.responses[0],
        "written back as the original's value"
    );

    // The embedding RPC's cache: `e:<entity>:<model>:<id>:V2`, a CandidateEmbedding. The key has
    // no version, so a warm Redis may hold it from an earlier run: spoil it first (an
    // undecodable value is a miss and gets overwritten).
    let e_key = "e:catalog:intent:c2:V2".to_string();
    redis
        .set_many(vec![(e_key.clone(), vec![0xff])], Duration::from_secs(60))
        .await
        .unwrap();
    let stored = client
        .embeddings(SkyeBulkEmbeddingRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: "cached".into(),
            candidate_ids: vec!["c2".into()],
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let written = loop {
        let value = redis.get_many(std::slice::from_ref(&e_key)).await.unwrap();
        if let Some(Ok(v)) = value[0].as_deref().map(CandidateEmbedding::decode) {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "no e: entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(written, stored.candidates_embedding[0]);
    assert!(!written.embedding.is_empty());
}
