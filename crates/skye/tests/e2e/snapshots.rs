//! Snapshots through the admin API (a Skye extension), against the real binary.

use std::time::Duration;

use serde_json::{Value, json};
use skye_client::{ClientConfig, SkyeClient};

use crate::lifecycle::{job_events, register, search, vector, wait_completed};
use crate::support::{Http, Skye};

/// Snapshots through the admin API (a Skye extension): one taken of the empty collection before
/// ingestion brings it back to empty; snapshots are listed and deleted; bad requests get 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_created_listed_recovered_and_deleted_over_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    register(&skye, &http).await;
    let admin = |path: &str| skye.url("admin", &format!("/api/v1/qdrant/{path}"));
    let r = http
        .post(
            &admin("process-multi-variant"),
            &json!({"entity": "catalog", "model": "intent", "variants": ["all"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let events = job_events(&r.body, &(0..10).collect::<Vec<_>>(), 0, &[]);
    let target = json!({"entity": "catalog", "model": "intent", "variant": "all", "version": 1});
    let r = http.post(&admin("create-snapshot"), &target).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        r.body["collection"],
        json!({"entity": "catalog", "model": "intent", "variant": "all", "version": 1,
            "vector_db_type": "EMBEDDED"})
    );
    let empty = r.body["snapshot"]["name"].as_str().unwrap().to_string();

    let ingest = skye.url("consumers", "/api/v1/ingest/skye.embedding");
    assert_eq!(http.post(&ingest, &Value::Array(events)).await.status, 200);
    wait_completed(&skye, &http, "all").await;
    let client = SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(search(&client, "all", &vector(1, 0), 20).await.len(), 10);

    // Version 0 means the read version (1 here).
    let read = json!({"entity": "catalog", "model": "intent", "variant": "all"});
    let r = http.post(&admin("create-snapshot"), &read).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let full = r.body["snapshot"]["name"].as_str().unwrap().to_string();
    assert!(r.body["snapshot"]["size_bytes"].as_u64().unwrap() > 0);
    let r = http.post(&admin("list-snapshots"), &read).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let names: Vec<&str> = r.body["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [empty.as_str(), full.as_str()]);

    let mut body = read.clone();
    body["snapshot"] = json!(empty);
    let r = http.post(&admin("recover-snapshot"), &body).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(search(&client, "all", &vector(1, 0), 20).await.is_empty());
    body["snapshot"] = json!(full);
    let r = http.post(&admin("recover-snapshot"), &body).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(search(&client, "all", &vector(1, 0), 20).await.len(), 10);

    let r = http.post(&admin("delete-snapshot"), &body).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = http.post(&admin("delete-snapshot"), &body).await;
    assert_eq!(r.status, 404, "{}", r.raw);
    assert!(
        r.body["error"].as_str().unwrap().contains(&full),
        "{}",
        r.raw
    );
    for (path, bad, code) in [
        (
            "recover-snapshot",
            json!({"entity": "catalog", "model": "intent", "variant": "all"}),
            400,
        ),
        (
            "create-snapshot",
            json!({"entity": "catalog", "model": "intent", "variant": "nope"}),
            404,
        ),
        (
            "create-snapshot",
            json!({"entity": "catalog", "model": "intent", "variant": "all", "version": -1}),
            400,
        ),
        (
            "delete-snapshot",
            json!({"entity": "catalog", "model": "intent", "variant": "all", "snapshot": "../../etc"}),
            400,
        ),
    ] {
        let r = http.post(&admin(path), &bad).await;
        assert_eq!(r.status, code, "{path} {bad}: {}", r.raw);
        assert!(r.body["error"].is_string(), "{}", r.raw);
    }
}
