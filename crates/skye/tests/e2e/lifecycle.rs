//! The model lifecycle end to end through the public APIs of the real binary: register, start a
//! job, ingest over HTTP with EOFs, wait for COMPLETED, search over gRPC; then a second RESET job
//! while the first version keeps serving, and the switch.

use std::time::Duration;

use serde_json::{Value, json};
use skye_client::{ClientConfig, SkyeClient};
use skye_proto::{Embedding, EmbeddingDotProductRequest, SkyeBulkEmbeddingRequest, SkyeRequest};
use tonic::Code;

use crate::support::{Http, Skye};

const DIM: usize = 4;

/// A deterministic vector for candidate `i` of generation `g`.
pub fn vector(i: usize, g: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| (((i * 7 + d * 13 + g * 29) % 17) as f32 - 8.0) / 8.0 + 0.01 * d as f32)
        .collect()
}

pub async fn register(skye: &Skye, http: &Http) {
    register_with(skye, http, "RESET").await;
}

pub async fn register_with(skye: &Skye, http: &Http, model_type: &str) {
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
            "embedding_store_enabled": true, "number_of_partitions": 2, "model_type": model_type,
            "model_config": {"distance_function": "COSINE", "vector_dimension": DIM}}),
        ),
        (
            "register-variant",
            json!({"entity": "catalog", "model": "intent", "variant": "all",
            "vector_db_config": {"payload": {"brand": {"field_schema": "keyword"}}}}),
        ),
        (
            "register-variant",
            json!({"entity": "catalog", "model": "intent", "variant": "instock",
            "filter": [{"column_name": "out_of_stock", "filter_value": "false", "default_value": "false"}],
            "vector_db_config": {"payload": {"brand": {"field_schema": "keyword"}}}}),
        ),
    ] {
        let r = http
            .post(&skye.url("admin", &format!("/api/v1/model/{path}")), &body)
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.raw);
    }
}

/// The events of one job: `ids` over two partitions, then one EOF per partition.
pub fn job_events(
    ticket: &Value,
    ids: &[usize],
    generation: usize,
    skip_instock: &[usize],
) -> Vec<Value> {
    let versions = ticket["variants"].clone();
    let es = ticket["embedding_store_version"].clone();
    let mut events: Vec<Value> = ids
        .iter()
        .map(|&i| {
            json!({
                "entity": "catalog", "model_name": "intent", "candidate_id": format!("c{i}"),
                "embedding_store_version": es, "partition": (i % 2).to_string(),
                "index_space": {
                    "embedding": vector(i, generation),
                    "variants_version_map": versions,
                    "variants_index_map": {"all": true, "instock": !skip_instock.contains(&i)},
                    "operation": "ADD",
                    "payload": {"brand": format!("b{}", i % 3)}
                }
            })
        })
        .collect();
    for p in 0..2 {
        events.push(json!({
            "entity": "catalog", "model_name": "intent", "candidate_id": "EOF",
            "embedding_store_version": es, "partition": p.to_string(),
            "index_space": {"variants_version_map": versions}
        }));
    }
    events
}

pub async fn wait_completed(skye: &Skye, http: &Http, variant: &str) -> Value {
    let url = skye.url(
        "admin",
        &format!("/api/v1/models/catalog/intent/variants/{variant}"),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = http.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        if r.body["variant_state"] == "COMPLETED" {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "variant {variant} stuck in {}",
            r.body["variant_state"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Ids of the `k` best candidates by exact cosine.
fn exact(query: &[f32], ids: &[usize], generation: usize, k: usize) -> Vec<String> {
    let mut scored: Vec<(f32, usize)> = ids
        .iter()
        .map(|&i| (cosine(query, &vector(i, generation)), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(k)
        .map(|(_, i)| format!("c{i}"))
        .collect()
}

pub async fn search(
    client: &SkyeClient,
    variant: &str,
    query: &[f32],
    k: i32,
) -> Vec<(String, f64)> {
    let r = client
        .similar_candidates(SkyeRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: variant.into(),
            limit: k,
            embeddings: vec![Embedding {
                embedding: query.iter().map(|x| f64::from(*x)).collect(),
            }],
            attribute: vec!["brand".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    r.responses[0]
        .candidates
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.meta.as_ref().map(|m| m.score).unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn ids_of(hits: &[(String, f64)]) -> Vec<String> {
    hits.iter().map(|h| h.0.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_jobs_ingest_index_and_switch_versions_while_the_old_one_serves() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    register(&skye, &http).await;

    // Job 1: first onboarding writes version 1.
    let process = |variants: Value| {
        let http = http.clone();
        let url = skye.url("admin", "/api/v1/qdrant/process-multi-variant");
        async move {
            http.post(
                &url,
                &json!({"entity": "catalog", "model": "intent", "variants": variants}),
            )
            .await
        }
    };
    let r = process(json!(["all", "instock"])).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let ticket = r.body.clone();
    assert_eq!(
        ticket["variants"],
        json!({"all": 1, "instock": 1}),
        "{ticket}"
    );
    assert_eq!(ticket["number_of_partitions"], 2);
    // A second job while this one runs is refused.
    let busy = process(json!(["all"])).await;
    assert_eq!(busy.status, 409, "{}", busy.raw);
    assert!(
        busy.body["error"]
            .as_str()
            .unwrap()
            .contains("not completed"),
        "{}",
        busy.raw
    );

    let ids: Vec<usize> = (0..60).collect();
    let skip = [3usize, 4, 5];
    let events = job_events(&ticket, &ids, 0, &skip);
    let url = skye.url("consumers", "/api/v1/ingest/skye.embedding");
    // Data first, without the EOFs: nothing completes.
    let (data, eofs) = events.split_at(ids.len());
    let r = http.post(&url, &Value::Array(data.to_vec())).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["accepted"], 60);
    let r = http.post(&url, &Value::Array(eofs[..1].to_vec())).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = http
        .get(&skye.url("admin", "/api/v1/models/catalog/intent/variants/all"))
        .await;
    assert_eq!(
        state.body["variant_state"], "DATA_INGESTION_STARTED",
        "one EOF of two: {}",
        state.raw
    );
    let r = http.post(&url, &Value::Array(eofs[1..].to_vec())).await;
    assert_eq!(r.status, 200);
    let v = wait_completed(&skye, &http, "all").await;
    assert_eq!(v["vector_db_read_version"], 1);
    wait_completed(&skye, &http, "instock").await;

    let client = SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let query = vector(11, 0);
    let hits = search(&client, "all", &query, 10).await;
    assert_eq!(ids_of(&hits), exact(&query, &ids, 0, 10), "{hits:?}");
    let instock_ids: Vec<usize> = ids.iter().copied().filter(|i| !skip.contains(i)).collect();
    let q2 = vector(4, 0);
    let hits = search(&client, "instock", &q2, 10).await;
    assert_eq!(
        ids_of(&hits),
        exact(&q2, &instock_ids, 0, 10),
        "to_be_indexed=false stays out"
    );

    // Pagination (extension field 10): the second page of 5 is hits 5..10 of the exact order.
    let page = client
        .similar_candidates(SkyeRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: "all".into(),
            limit: 5,
            offset: 5,
            embeddings: vec![Embedding {
                embedding: query.iter().map(|x| f64::from(*x)).collect(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let got: Vec<String> = page.responses[0]
        .candidates
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(got, exact(&query, &ids, 0, 10)[5..].to_vec());
    check_candidate_queries_and_embedding_rpcs(&client, &ids).await;

    // Job 2 (RESET): writes version 2 while version 1 keeps serving.
    let r = process(json!(["all"])).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let ticket2 = r.body.clone();
    assert_eq!(ticket2["variants"], json!({"all": 2}));
    assert_eq!(
        ticket2["embedding_store_version"].as_i64(),
        ticket["embedding_store_version"].as_i64().map(|v| v + 1)
    );
    let ids2: Vec<usize> = (100..140).collect();
    let events2 = job_events(&ticket2, &ids2, 1, &[]);
    let (data2, eofs2) = events2.split_at(ids2.len());
    assert_eq!(
        http.post(&url, &Value::Array(data2.to_vec())).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = search(&client, "all", &query, 10).await;
    assert_eq!(
        ids_of(&during),
        exact(&query, &ids, 0, 10),
        "old version served during the job"
    );
    assert_eq!(
        http.post(&url, &Value::Array(eofs2.to_vec())).await.status,
        200
    );
    let v = wait_completed(&skye, &http, "all").await;
    assert_eq!(v["vector_db_read_version"], 2, "{v}");
    let q3 = vector(120, 1);
    let after = search(&client, "all", &q3, 10).await;
    assert_eq!(
        ids_of(&after),
        exact(&q3, &ids2, 1, 10),
        "new version served after the switch"
    );
    assert_eq!(after.len(), 10);
    // The other variant was not part of job 2 and still serves version 1.
    let hits = search(&client, "instock", &q2, 10).await;
    assert_eq!(ids_of(&hits), exact(&q2, &instock_ids, 0, 10));
    // The superseded collection is gone from disk (the embedded store keeps each under
    // <entity>/<model>/<variant>/<version>).
    let versions: Vec<String> =
        std::fs::read_dir(dir.path().join("collections/catalog/intent/all"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(versions, ["2"], "only version 2 of variant all is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_go_to_the_failure_topic_and_bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    register(&skye, &http).await;
    let url = skye.url("consumers", "/api/v1/ingest/skye.embedding");
    for (body, status, needle) in [
        (json!({"not": "an array"}), 400, "JSON array"),
        (json!([]), 400, "empty"),
        (json!([{"candidate_id": {"x": 1}}]), 400, "event 0"),
    ] {
        let r = http.post(&url, &body).await;
        assert_eq!(r.status, status, "{}", r.raw);
        assert!(
            r.body["error"].as_str().unwrap().contains(needle),
            "{}",
            r.raw
        );
    }
    let r = http
        .post(&skye.url("consumers", "/api/v1/ingest/nope"), &json!([{}]))
        .await;
    assert_eq!(r.status, 404, "{}", r.raw);
    for (path, body, status) in [
        ("process-model", json!({"entity": "catalog"}), 400),
        (
            "process-model",
            json!({"entity": "catalog", "model": "nope"}),
            404,
        ),
        (
            "process-multi-variant",
            json!({"entity": "catalog", "model": "intent", "variants": ["zz"]}),
            404,
        ),
        (
            "process-multi-variant-force-reset",
            json!({"entity": "catalog", "model": "intent", "variants": ["all"]}),
            400,
        ),
        (
            "trigger-indexing",
            json!({"entity": "catalog", "model": "intent", "partition": "x"}),
            400,
        ),
        (
            "trigger-indexing",
            json!({"entity": "catalog", "model": "intent", "partition": "7"}),
            400,
        ),
        (
            "promote-variant",
            json!({"entity": "catalog", "model": "intent", "variant": "all", "host": "h"}),
            409,
        ),
    ] {
        let r = http
            .post(&skye.url("admin", &format!("/api/v1/qdrant/{path}")), &body)
            .await;
        assert_eq!(r.status, status, "{path} {body}: {}", r.raw);
        assert!(r.body["error"].is_string(), "{}", r.raw);
    }

    // A job where one event has the wrong dimension and one targets an unknown variant: the
    // good events land, the job completes, the bad ones are reported.
    let r = http
        .post(
            &skye.url("admin", "/api/v1/qdrant/process-multi-variant"),
            &json!({"entity": "catalog", "model": "intent", "variants": ["all"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let ticket = r.body;
    let mut events = job_events(&ticket, &[1, 2, 3], 0, &[]);
    events[1]["index_space"]["embedding"] = json!([1.0, 2.0]);
    events[2]["index_space"]["variants_version_map"] = json!({"ghost": 1});
    assert_eq!(http.post(&url, &Value::Array(events)).await.status, 200);
    wait_completed(&skye, &http, "all").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let h = http.get(&skye.url("consumers", "/health")).await;
        if h.body["consumers"]["embedding"]["rejected"] == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", h.raw);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Mode B (by stored ids) and the two embedding RPCs, on job 1's data.
async fn check_candidate_queries_and_embedding_rpcs(client: &SkyeClient, ids: &[usize]) {
    let by_ids = |candidates: Vec<&str>| SkyeRequest {
        entity: "catalog".into(),
        model_name: "intent".into(),
        variant: "all".into(),
        limit: 10,
        candidate_ids: candidates.into_iter().map(String::from).collect(),
        ..Default::default()
    };
    let r = client
        .similar_candidates(by_ids(vec!["c11", "unknown", "c20"]))
        .await
        .unwrap();
    assert_eq!(r.responses.len(), 3);
    for (n, i) in [(0usize, 11usize), (2, 20)] {
        let got: Vec<String> = r.responses[n]
            .candidates
            .iter()
            .map(|c| c.id.clone())
            .collect();
        let others: Vec<usize> = ids.iter().copied().filter(|x| *x != i).collect();
        assert_eq!(
            got,
            exact(&vector(i, 0), &others, 0, 10),
            "query item excluded, still 10"
        );
    }
    assert!(
        r.responses[1].candidates.is_empty(),
        "unknown id: empty answer, not an error"
    );

    let e = client
        .embeddings(SkyeBulkEmbeddingRequest {
            entity: "catalog".into(),
            candidate_ids: vec!["c1".into(), "nope".into(), "c1".into()],
            model_name: "intent".into(),
            variant: "all".into(),
        })
        .await
        .unwrap();
    let got = &e.candidates_embedding;
    assert_eq!(got.len(), 3);
    let c1: Vec<f64> = vector(1, 0).iter().map(|x| f64::from(*x)).collect();
    assert_eq!(got[0].embedding, c1);
    assert_eq!(got[0].search_embedding, c1);
    assert!(got[1].embedding.is_empty() && got[1].search_embedding.is_empty());
    assert_eq!(got[2], got[0], "duplicate ids are answered each time");

    let q = [0.5f64, -1.0, 0.25, 2.0];
    let scores = client
        .dot_product_scores(EmbeddingDotProductRequest {
            entity: "catalog".into(),
            candidate_ids: vec!["c2".into(), "nope".into()],
            embedding: q.to_vec(),
            model_name: "intent".into(),
            variant: "all".into(),
        })
        .await
        .unwrap()
        .candidate_embedding_scores;
    let expected: f32 = vector(2, 0).iter().zip(q).map(|(a, b)| a * b as f32).sum();
    assert_eq!(scores[0].candidate_id, "c2");
    assert!(
        (scores[0].score - f64::from(expected)).abs() < 1e-5,
        "{scores:?}"
    );
    assert_eq!(scores.len(), 1, "a missing id has no score: {scores:?}");
    let err = client
        .dot_product_scores(EmbeddingDotProductRequest {
            entity: "catalog".into(),
            candidate_ids: vec!["c2".into()],
            embedding: vec![1.0],
            model_name: "intent".into(),
            variant: "all".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    let err = client
        .embeddings(SkyeBulkEmbeddingRequest {
            entity: "catalog".into(),
            candidate_ids: vec![],
            model_name: "intent".into(),
            variant: "all".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    let err = client
        .embeddings(SkyeBulkEmbeddingRequest {
            entity: "catalog".into(),
            candidate_ids: vec!["c1".into()],
            model_name: "intent".into(),
            variant: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound), "{err}");
}

/// A condition on `(id, brand)` hits.
type HitsCheck = dyn Fn(&[(String, String)]) -> bool;

/// Ids returned by `variant` for the query `vector(q)` (limit 60 = everything).
async fn all_hits(client: &SkyeClient, variant: &str, q: usize) -> Vec<(String, String)> {
    let r = client
        .similar_candidates(SkyeRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: variant.into(),
            limit: 100,
            embeddings: vec![Embedding {
                embedding: vector(q, 0).iter().map(|x| f64::from(*x)).collect(),
            }],
            attribute: vec!["brand".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    r.responses[0]
        .candidates
        .iter()
        .map(|c| {
            let brand = c
                .meta
                .as_ref()
                .and_then(|m| m.attributes_map.get("brand").cloned())
                .unwrap_or_default();
            (c.id.clone(), brand)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_flags_remove_and_restore_items_and_update_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    register(&skye, &http).await;
    let r = http
        .post(
            &skye.url("admin", "/api/v1/qdrant/process-multi-variant"),
            &json!({"entity": "catalog", "model": "intent", "variants": ["all", "instock"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let ids: Vec<usize> = (0..20).collect();
    let events = job_events(&r.body, &ids, 0, &[]);
    let ingest = skye.url("consumers", "/api/v1/ingest/skye.embedding");
    assert_eq!(http.post(&ingest, &Value::Array(events)).await.status, 200);
    wait_completed(&skye, &http, "all").await;
    wait_completed(&skye, &http, "instock").await;
    let client = SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(all_hits(&client, "instock", 0).await.len(), 20);

    let realtime = skye.url("consumers", "/api/v1/ingest/skye.realtime");
    let flag = |id: &str, label: &str, value: &str| {
        json!([{"timestamp": 1719308350, "type": "catalog_status", "entity": "catalog",
            "data": [{"id": id, "data": [{"label": label, "value": value}]}]}])
    };
    let eventually = |variant: &'static str, check: Box<HitsCheck>| {
        let client = client.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                let hits = all_hits(&client, variant, 0).await;
                if check(&hits) {
                    return hits;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{variant}: {hits:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // Out of stock: gone from the filtered variant only.
    assert_eq!(
        http.post(&realtime, &flag("c7", "out_of_stock", "true"))
            .await
            .status,
        200
    );
    let hits = eventually("instock", Box::new(|h| !h.iter().any(|(id, _)| id == "c7"))).await;
    assert_eq!(hits.len(), 19);
    assert_eq!(
        all_hits(&client, "all", 0).await.len(),
        20,
        "the unfiltered variant keeps it"
    );
    // Back in stock: re-added from the embedding store.
    assert_eq!(
        http.post(&realtime, &flag("c7", "out_of_stock", "false"))
            .await
            .status,
        200
    );
    eventually("instock", Box::new(|h| h.len() == 20)).await;
    // A payload field changes in place.
    assert_eq!(
        http.post(&realtime, &flag("c8", "brand", "acme"))
            .await
            .status,
        200
    );
    eventually(
        "all",
        Box::new(|h| h.iter().any(|(id, brand)| id == "c8" && brand == "acme")),
    )
    .await;
    let h = http.get(&skye.url("consumers", "/health")).await;
    assert_eq!(h.body["consumers"]["realtime"]["rejected"], 0, "{}", h.raw);
    assert_eq!(
        h.body["consumers"]["realtime-delta"]["rejected"], 0,
        "{}",
        h.raw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_jobs_update_in_place_and_force_reset_switches_to_a_new_collection() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    register_with(&skye, &http, "DELTA").await;
    let process = |path: &'static str| {
        let (http, url) = (
            http.clone(),
            skye.url("admin", &format!("/api/v1/qdrant/{path}")),
        );
        async move {
            let r = http
                .post(
                    &url,
                    &json!({"entity": "catalog", "model": "intent", "variants": ["all"]}),
                )
                .await;
            assert_eq!(r.status, 200, "{path}: {}", r.raw);
            r.body
        }
    };
    let ingest = skye.url("consumers", "/api/v1/ingest/skye.embedding");
    let client = SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();

    // Onboarding.
    let t1 = process("process-multi-variant").await;
    assert_eq!(t1["variants"], json!({"all": 1}));
    let ids: Vec<usize> = (0..30).collect();
    assert_eq!(
        http.post(&ingest, &Value::Array(job_events(&t1, &ids, 0, &[])))
            .await
            .status,
        200
    );
    wait_completed(&skye, &http, "all").await;

    // A DELTA job writes into the served collection: new items, and deletions.
    let t2 = process("process-multi-variant").await;
    assert_eq!(t2["variants"], json!({"all": 1}), "DELTA keeps the version");
    assert_eq!(t2["embedding_store_version"], t1["embedding_store_version"]);
    let added: Vec<usize> = (30..40).collect();
    let mut events = job_events(&t2, &added, 0, &[]);
    for gone in [0usize, 1] {
        let mut e = events[0].clone();
        e["candidate_id"] = json!(format!("c{gone}"));
        e["index_space"]["operation"] = json!("DELETE");
        events.insert(0, e);
    }
    assert_eq!(http.post(&ingest, &Value::Array(events)).await.status, 200);
    let v = wait_completed(&skye, &http, "all").await;
    assert_eq!(v["vector_db_read_version"], 1);
    let mut expected: Vec<usize> = (2..40).collect();
    let hits = search(&client, "all", &vector(5, 0), 100).await;
    assert_eq!(
        ids_of(&hits),
        exact(&vector(5, 0), &expected, 0, 100),
        "union minus deletions"
    );

    // Force reset: a fresh collection at read+1, switched to once indexed (spec AC §8 B2).
    let t3 = process("process-multi-variant-force-reset").await;
    assert_eq!(t3["variants"], json!({"all": 2}));
    expected = (100..110).collect();
    assert_eq!(
        http.post(&ingest, &Value::Array(job_events(&t3, &expected, 1, &[])))
            .await
            .status,
        200
    );
    let v = wait_completed(&skye, &http, "all").await;
    assert_eq!(v["vector_db_read_version"], 2, "{v}");
    let hits = search(&client, "all", &vector(104, 1), 100).await;
    assert_eq!(ids_of(&hits), exact(&vector(104, 1), &expected, 1, 100));
}
