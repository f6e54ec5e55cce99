//! Data integrity and isolation, through the documented interfaces only: each test is a defect
//! found by black-box testing (two models in one collection, half-applied rejected events,
//! payloads lost on re-admission, invented scores, stale cached answers, strict payload formats).

use std::time::Duration;

use serde_json::{Value, json};
use skye_proto::{EmbeddingDotProductRequest, Filter, SkyeBulkEmbeddingRequest};

use crate::catalog::{
    DIM, GTE, IN, Item, LTE, admin, client, filter, flag_and_wait, hits, ids, item, job, ok,
    register_entity, register_model, vector,
};
use crate::support::{Http, Skye};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_whose_joined_names_match_never_share_a_collection() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    register_entity(&skye, &http).await;
    // `a_b` of `c` and `a` of `b_c`: both were collection `a_b_c_1`.
    for (model, variant) in [("c", "a_b"), ("b_c", "a")] {
        register_model(&skye, &http, model).await;
        ok(
            &skye,
            &http,
            "model/register-variant",
            json!({"entity": "catalog", "model": model, "variant": variant}),
        )
        .await;
    }
    let first: Vec<Item> = (0..6).map(|i| item(&format!("c-{i}"), i, &[])).collect();
    let second: Vec<Item> = (0..6).map(|i| item(&format!("bc-{i}"), i, &[])).collect();
    job(&skye, &http, "c", &["a_b"], &first).await;
    job(&skye, &http, "b_c", &["a"], &second).await;
    let client = client(&skye).await;
    let of_c = ids(&hits(&client, "c", "a_b", Vec::new(), &[]).await);
    let of_bc = ids(&hits(&client, "b_c", "a", Vec::new(), &[]).await);
    let want = |prefix: &str| -> Vec<String> {
        let mut v: Vec<String> = (0..6).map(|i| format!("{prefix}-{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(of_c, want("c"), "model c keeps its own items");
    assert_eq!(of_bc, want("bc"), "model b_c keeps its own items");

    // On Qdrant the original's names are kept, so a registration that would collide there is
    // refused.
    let qdrant = |v: &str, m: &str| {
        json!({"entity": "catalog", "model": m, "variant": v, "vector_db_type": "QDRANT",
            "vector_db_config": {"read_host": "127.0.0.1", "port": "6334"}})
    };
    register_model(&skye, &http, "y").await;
    register_model(&skye, &http, "x_y").await;
    ok(&skye, &http, "model/register-variant", qdrant("q_x", "y")).await;
    let r = admin(&skye, &http, "model/register-variant", qdrant("q", "x_y")).await;
    assert_eq!(r.status, 409, "{}", r.raw);
    let message = r.body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("q_x_y") && message.contains("q_x"),
        "names the collection and the other variant: {message}"
    );
}

/// Entity `catalog`, model `intent` with variant `instock` (filter out_of_stock = false) whose
/// payload has brand (keyword) and price (integer).
async fn catalog_with_payloads(skye: &Skye, http: &Http, caching: Value) {
    register_entity(skye, http).await;
    register_model(skye, http, "intent").await;
    let mut body = json!({"entity": "catalog", "model": "intent", "variant": "instock",
        "filter": [{"column_name": "out_of_stock", "filter_value": "false", "default_value": "false"}],
        "vector_db_config": {"payload": {
            "brand": {"field_schema": "keyword"},
            "price": {"field_schema": "integer"}}}});
    if let (Some(b), Some(c)) = (body.as_object_mut(), caching.as_object()) {
        b.extend(c.clone());
    }
    ok(skye, http, "model/register-variant", body).await;
}

/// A standalone Skye with [`catalog_with_payloads`] and one RESET job of `items` done.
async fn catalog_job(caching: Value, items: &[Item]) -> (tempfile::TempDir, Skye, Http, Value) {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    catalog_with_payloads(&skye, &http, caching).await;
    let health = job(&skye, &http, "intent", &["instock"], items).await;
    (dir, skye, http, health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_event_leaves_no_trace_outside_the_failure_topic() {
    let items = vec![
        item("good", 1, &[("brand", "acme"), ("price", "616")]),
        item("bad", 2, &[("brand", "acme"), ("price", "many")]),
    ];
    let (_dir, skye, http, health) = catalog_job(json!({}), &items).await;
    assert_eq!(
        health["consumers"]["embedding"]["rejected"], 1,
        "the bad price is rejected: {health}"
    );
    let client = client(&skye).await;
    assert_eq!(
        ids(&hits(&client, "intent", "instock", Vec::new(), &[]).await),
        ["good"]
    );
    // Nothing of the rejected event reached the embedding store…
    let stored = client
        .embeddings(SkyeBulkEmbeddingRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: "instock".into(),
            candidate_ids: vec!["bad".into(), "good".into()],
        })
        .await
        .unwrap();
    assert!(
        stored.candidates_embedding[0].embedding.is_empty(),
        "the rejected event's row was written: {:?}",
        stored.candidates_embedding[0]
    );
    assert_eq!(stored.candidates_embedding[1].embedding.len(), DIM);
    // …so a real-time round trip cannot bring it in.
    for value in ["true", "false"] {
        let body = json!([{"timestamp": 1, "type": "t", "entity": "catalog",
            "data": [{"id": "bad", "data": [{"label": "out_of_stock", "value": value}]}]}]);
        let r = http
            .post(
                &skye.url("consumers", "/api/v1/ingest/skye.realtime"),
                &body,
            )
            .await;
        assert_eq!(r.status, 200);
    }
    // The flag for "good" below is processed after those for "bad" (same partition).
    flag_and_wait(
        &skye,
        &http,
        &client,
        ("good", "out_of_stock", "true"),
        "instock",
        |h| h.is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_readmitted_by_a_realtime_flag_keeps_its_job_payload() {
    let items = vec![
        item("good", 1, &[("brand", "acme"), ("price", "616")]),
        item("other", 3, &[("brand", "zeta"), ("price", "50")]),
    ];
    let (_dir, skye, http, _) = catalog_job(json!({}), &items).await;
    let client = client(&skye).await;
    flag_and_wait(
        &skye,
        &http,
        &client,
        ("good", "out_of_stock", "true"),
        "instock",
        |h| !h.iter().any(|(i, _)| i == "good"),
    )
    .await;
    flag_and_wait(
        &skye,
        &http,
        &client,
        ("good", "out_of_stock", "false"),
        "instock",
        |h| h.iter().any(|(i, _)| i == "good"),
    )
    .await;
    let all = hits(
        &client,
        "intent",
        "instock",
        Vec::new(),
        &["brand", "price"],
    )
    .await;
    assert_eq!(ids(&all), ["good", "other"], "{all:?}");
    assert_eq!(all[0].1["brand"], "acme", "{all:?}");
    assert_eq!(all[0].1["price"], "616", "{all:?}");
    let matching = |f: Filter| {
        let client = client.clone();
        async move { ids(&hits(&client, "intent", "instock", vec![f], &[]).await) }
    };
    assert_eq!(matching(filter("brand", IN, &["acme"])).await, ["good"]);
    assert_eq!(
        matching(filter("price", LTE, &["100"])).await,
        ["other"],
        "price 616 is not <= 100"
    );
    // The planner's choice is a metric label: a filtered search of two points scores the one
    // the payload index selects, an unfiltered one scans the small collection.
    let metrics = http.get(&skye.url("serving", "/metrics")).await.raw;
    for path in ["exact_matches", "exact"] {
        assert!(
            metrics.contains(&format!("skye_index_search_path_total{{path=\"{path}\"}}")),
            "{path}: {metrics}"
        );
    }
}

fn five_items() -> Vec<Item> {
    (0..5)
        .map(|i| item(&format!("c{i}"), i, &[("brand", "acme"), ("price", "10")]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_leave_out_unknown_ids() {
    let (_dir, skye, _http, _) = catalog_job(json!({}), &five_items()).await;
    let client = client(&skye).await;
    let scores = client
        .dot_product_scores(EmbeddingDotProductRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: "instock".into(),
            candidate_ids: vec!["c3".into(), "no-such-id".into()],
            embedding: vector(0).iter().map(|x| f64::from(*x)).collect(),
        })
        .await
        .unwrap();
    let scored: Vec<&str> = scores
        .candidate_embedding_scores
        .iter()
        .map(|s| s.candidate_id.as_str())
        .collect();
    assert_eq!(scored, ["c3"], "an unknown id has no score");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_follow_realtime_flags() {
    // A long TTL: an answer cached before a flag must not outlive it by more than a moment.
    let caching = json!({"in_memory_caching_enabled": true, "in_memory_cache_ttl_seconds": 600});
    let (_dir, skye, http, _) = catalog_job(caching, &five_items()).await;
    let client = client(&skye).await;
    // Warm the cache, flag an item out of stock: the next queries stop returning it.
    assert_eq!(
        hits(&client, "intent", "instock", Vec::new(), &[])
            .await
            .len(),
        5
    );
    let took = flag_and_wait(
        &skye,
        &http,
        &client,
        ("c2", "out_of_stock", "true"),
        "instock",
        |h| h.len() == 4,
    )
    .await;
    assert!(took < Duration::from_secs(10), "{took:?}");
    // And back in stock, with the cache warm again.
    flag_and_wait(
        &skye,
        &http,
        &client,
        ("c2", "out_of_stock", "false"),
        "instock",
        |h| h.len() == 5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_registration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    let r = admin(&skye, &http, "model/register-store", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(
        r.raw.contains("embeddings_table") && r.raw.contains("aggregator_table"),
        "{}",
        r.raw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datetimes_take_rfc3339_and_geo_points_take_three_forms() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    register_entity(&skye, &http).await;
    register_model(&skye, &http, "intent").await;
    ok(
        &skye,
        &http,
        "model/register-variant",
        json!({"entity": "catalog", "model": "intent", "variant": "all",
            "vector_db_config": {"payload": {
                "listed": {"field_schema": "datetime"},
                "store": {"field_schema": "geo"}}}}),
    )
    .await;
    let items = vec![
        item(
            "rfc",
            1,
            &[
                ("listed", "2026-03-01T10:00:00+05:30"),
                ("store", "12.9,77.6"),
            ],
        ),
        item(
            "unix",
            2,
            &[("listed", "1700000000"), ("store", "[12.9, 77.6]")],
        ),
        item(
            "utc",
            3,
            &[
                ("listed", "2025-12-31T23:59:59.5Z"),
                ("store", r#"{"lat": 12.9, "lon": 77.6}"#),
            ],
        ),
    ];
    let health = job(&skye, &http, "intent", &["all"], &items).await;
    assert_eq!(
        health["consumers"]["embedding"]["rejected"], 0,
        "every documented format is accepted: {health}"
    );
    let client = client(&skye).await;
    // 2026-03-01T04:30:00Z = 1772339400.
    let after = hits(
        &client,
        "intent",
        "all",
        vec![filter("listed", GTE, &["2026-01-01T00:00:00Z"])],
        &["listed"],
    )
    .await;
    assert_eq!(ids(&after), ["rfc"], "{after:?}");
    assert_eq!(after[0].1["listed"], "1772339400");
    let unix_filter = hits(
        &client,
        "intent",
        "all",
        vec![filter("listed", LTE, &["1767225600"])],
        &[],
    )
    .await;
    assert_eq!(ids(&unix_filter), ["unix", "utc"]);
}
