//! The admin API over real HTTP, across a `kill -9` and a restart.

use serde_json::{Value, json};

use crate::support::{Http, Skye};

fn admin_args() -> [&'static str; 3] {
    ["admin", "--port", "0"]
}

fn variant_body(variant: &str, filter: Value) -> Value {
    json!({
        "entity": "catalog", "model": "intent", "variant": variant,
        "vector_db_type": "EMBEDDED",
        "vector_db_config": {"params": {"m": "16"},
            "payload": {"price": {"field_schema": "integer", "default_value": "0"}}},
        "filter": filter, "type": "SCALE_UP",
        "in_memory_caching_enabled": true, "in_memory_cache_ttl_seconds": 60,
        "rt_partition": 2, "rate_limiters": {"RateLimit": 100, "BurstLimit": 200}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_endpoint_and_error_over_http_and_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::start(dir.path(), &admin_args(), &[], &["admin"]);
    let http = Http::new();
    let url = |p: &str| skye.url("admin", p);

    let health = http.get(&url("/health")).await;
    assert_eq!(
        (health.status, health.body["message"].as_str()),
        (200, Some("Application is up!!!"))
    );

    // Registrations, as the original's quick-start sends them.
    let r = http.post(&url("/api/v1/model/register-store"),
        &json!({"conf_id": 1, "db": "testdb", "embeddings_table": "embeddings", "aggregator_table": "aggregator"})).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        r.body,
        json!({"message": "Store Created successfully", "store_id": "1"})
    );
    let r = http
        .post(
            &url("/api/v1/model/register-frequency"),
            &json!({"frequency": "daily"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (200, Some("Frequency Created successfully"))
    );
    let r = http
        .post(
            &url("/api/v1/model/register-entity"),
            &json!({"Entity": "catalog", "store_id": "1"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (200, Some("Entity registered successfully"))
    );
    let model = json!({
        "entity": "catalog", "model": "intent", "embedding_store_enabled": true, "embedding_store_ttl": 86400,
        "model_config": {"distance_function": "Cosine", "vector_dimension": 4},
        "model_type": "RESET", "job_frequency": "daily", "number_of_partitions": 2,
        "topic_name": "skye.embedding", "training_data_path": "file:///data/intent"
    });
    let r = http
        .post(&url("/api/v1/model/register-model"), &model)
        .await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (200, Some("Model registered successfully")),
        "{}",
        r.raw
    );
    let organic = variant_body("organic", json!([]));
    let ads = variant_body(
        "ads",
        json!([{"column_name": "is_live_ad", "filter_value": "true", "default_value": "false"}]),
    );
    for body in [&organic, &ads] {
        let r = http
            .post(&url("/api/v1/model/register-variant"), body)
            .await;
        assert_eq!(
            (r.status, r.body["message"].as_str()),
            (200, Some("Variant registered successfully")),
            "{}",
            r.raw
        );
    }

    // Reads.
    let entities = http.get(&url("/api/v1/entities")).await;
    assert_eq!(
        entities.body,
        json!({"entities": [{"entity": "catalog", "store_id": "1", "models": ["intent"]}]})
    );
    let m = http.get(&url("/api/v1/models/catalog/intent")).await;
    assert_eq!(m.status, 200);
    assert_eq!(
        m.body["model_config"],
        json!({"distance_function": "COSINE", "vector_dimension": 4})
    );
    assert_eq!(m.body["number_of_partitions"], 2);
    assert_eq!(m.body["variants"].as_object().unwrap().len(), 2);
    let v = http
        .get(&url("/api/v1/models/catalog/intent/variants/ads"))
        .await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["filter"]["criteria"][0]["column_name"], "is_live_ad");
    assert_eq!(
        v.body["rate_limiter"],
        json!({"rate_limit": 100, "burst_limit": 200})
    );
    assert_eq!(v.body["variant_state"], "COMPLETED");
    assert_eq!(v.body["vector_db_read_version"], 1);
    assert_eq!(
        http.get(&url("/api/v1/frequencies")).await.body,
        json!({"frequencies": ["daily"]})
    );
    assert_eq!(
        http.get(&url("/api/v1/stores")).await.body["stores"]["1"]["embeddings_table"],
        "embeddings"
    );

    // Errors: status, JSON body, one body only.
    let malformed = http
        .send(
            hyper::Method::POST,
            &url("/api/v1/model/register-model"),
            "{\"entity\":",
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body"),
        "{}",
        malformed.raw
    );
    assert_eq!(
        malformed.raw.matches("\"error\"").count(),
        1,
        "error written once: {}",
        malformed.raw
    );
    let empty = http
        .send(
            hyper::Method::POST,
            &url("/api/v1/model/register-entity"),
            "",
        )
        .await;
    assert_eq!(empty.status, 400);
    let not_object = http
        .post(&url("/api/v1/model/register-entity"), &json!(["catalog"]))
        .await;
    assert_eq!(not_object.status, 400);

    let invalid = http.post(&url("/api/v1/model/register-model"), &json!({
        "entity": "catalog", "model": "", "model_config": {"distance_function": "COS", "vector_dimension": "4"}
    })).await;
    assert_eq!(invalid.status, 400);
    let fields: Vec<&str> = invalid.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "model",
            "model_config.distance_function",
            "model_config.vector_dimension"
        ],
        "{}",
        invalid.raw
    );

    let unknown_entity = http.post(&url("/api/v1/model/register-model"), &json!({
        "entity": "nope", "model": "m2", "model_config": {"distance_function": "DOT", "vector_dimension": 4}
    })).await;
    assert_eq!(
        (unknown_entity.status, unknown_entity.body["error"].as_str()),
        (404, Some("entity 'nope' not found"))
    );
    let unknown_store = http
        .post(
            &url("/api/v1/model/register-entity"),
            &json!({"entity": "e2", "store_id": "42"}),
        )
        .await;
    assert_eq!(unknown_store.status, 404);
    let unknown_model = http
        .post(
            &url("/api/v1/model/register-variant"),
            &json!({"entity": "catalog", "model": "zz", "variant": "v"}),
        )
        .await;
    assert_eq!(unknown_model.status, 404);
    assert_eq!(
        http.get(&url("/api/v1/models/nope/intent")).await.status,
        404
    );
    assert_eq!(
        http.get(&url("/api/v1/models/catalog/nope")).await.status,
        404
    );
    let missing_variant = http
        .get(&url("/api/v1/models/catalog/intent/variants/nope"))
        .await;
    assert_eq!(missing_variant.status, 404);
    assert_eq!(
        missing_variant.body["error"],
        "variant 'nope' not found in model 'intent' of entity 'catalog'"
    );

    for (path, body) in [
        (
            "/api/v1/model/register-frequency",
            json!({"frequency": "daily"}),
        ),
        (
            "/api/v1/model/register-entity",
            json!({"entity": "catalog", "store_id": "1"}),
        ),
        ("/api/v1/model/register-model", model.clone()),
        ("/api/v1/model/register-variant", organic.clone()),
    ] {
        let dup = http.post(&url(path), &body).await;
        assert_eq!(dup.status, 409, "{path}: {}", dup.raw);
        assert_eq!(dup.body["code"], "already_exists");
    }
    let route = http.get(&url("/api/v1/nothing-here")).await;
    assert_eq!(
        (route.status, route.body["code"].as_str()),
        (404, Some("not_found"))
    );
    let method = http.get(&url("/api/v1/model/register-store")).await;
    assert_eq!(method.status, 405);
    assert!(method.body["error"].is_string());

    // Acknowledged writes survive kill -9; a restart reads everything back.
    let before = (m.body.clone(), v.body.clone());
    skye.kill();
    let skye = Skye::start(dir.path(), &admin_args(), &[], &["admin"]);
    let url = |p: &str| skye.url("admin", p);
    assert_eq!(
        http.get(&url("/api/v1/models/catalog/intent")).await.body,
        before.0
    );
    assert_eq!(
        http.get(&url("/api/v1/models/catalog/intent/variants/ads"))
            .await
            .body,
        before.1
    );
    let next_store = http
        .post(&url("/api/v1/model/register-store"), &json!({"conf_id": 2, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"}))
        .await;
    assert_eq!(next_store.body["store_id"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requires_a_token_when_tokens_are_configured() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::start(
        dir.path(),
        &admin_args(),
        &[("AUTH_TOKENS", "t1,t2")],
        &["admin"],
    );
    let url = skye.url("admin", "/api/v1/entities");
    assert_eq!(
        Http::new().get(&skye.url("admin", "/health")).await.status,
        200,
        "health stays open"
    );
    let missing = Http::new().get(&url).await;
    assert_eq!(
        (missing.status, missing.body["error"].as_str()),
        (401, Some("skye-auth-token header is missing"))
    );
    let wrong = Http::new()
        .with_header("skye-auth-token", "t3")
        .get(&url)
        .await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (401, Some("Invalid auth token"))
    );
    assert_eq!(
        Http::new()
            .with_header("skye-auth-token", "t2")
            .get(&url)
            .await
            .status,
        200
    );
    assert_eq!(
        Http::new()
            .with_header("authorization", "Bearer t1")
            .get(&url)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_serves_every_health_endpoint_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    assert_eq!(
        http.get(&skye.url("admin", "/health")).await.body["message"],
        "Application is up!!!"
    );
    assert_eq!(
        http.get(&skye.url("serving", "/health")).await.body["message"],
        "pong"
    );
    assert_eq!(
        http.get(&skye.url("serving", "/health/self")).await.body["message"],
        "true"
    );
    assert_eq!(
        http.get(&skye.url("consumers", "/health")).await.body["message"],
        "Application is up!!!"
    );
    let registered = http
        .post(
            &skye.url("admin", "/api/v1/model/register-frequency"),
            &json!({"frequency": "FREQ_1D"}),
        )
        .await;
    assert_eq!(registered.status, 200);
    let config = http.get(&skye.url("serving", "/health/config")).await;
    assert!(
        config.body["revision"].as_u64().unwrap() >= 1,
        "serving follows admin's writes: {}",
        config.raw
    );
    assert!(skye.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_embedded_data_dir_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Skye::start(dir.path(), &admin_args(), &[], &["admin"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skye"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "serving",
            "--port",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another Skye process"),
        "{stderr}"
    );
}

#[test]
fn config_print_masks_secrets_and_bad_config_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skye"))
        .args(["config", "print"])
        .env("AUTH_TOKENS", "very-secret")
        .env("REDIS_PASSWORD", "hunter2")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("auth_tokens = [\"****\"]"), "{text}");
    assert!(!text.contains("very-secret") && !text.contains("hunter2"));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_skye"))
        .args(["config", "print"])
        .env("PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PORT"));
}
