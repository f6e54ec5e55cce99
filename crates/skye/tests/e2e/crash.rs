//! `kill -9` during ingestion and during the state machine: every acknowledged event survives
//! and the variant still reaches COMPLETED after a restart.

use std::time::Duration;

use serde_json::{Value, json};
use skye_client::{ClientConfig, SkyeClient};
use skye_proto::{Embedding, SkyeRequest};

use crate::lifecycle::{job_events, register, wait_completed};
use crate::support::{Http, Skye};

async fn ids_served(skye: &Skye, query: Vec<f64>) -> Vec<String> {
    let client = SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "crash").timeout(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let r = client
        .similar_candidates(SkyeRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: "all".into(),
            limit: 1000,
            embeddings: vec![Embedding { embedding: query }],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<String> = r.responses[0]
        .candidates
        .iter()
        .map(|c| c.id.clone())
        .collect();
    ids.sort();
    ids
}

fn sorted_ids(ids: impl IntoIterator<Item = usize>) -> Vec<String> {
    let mut v: Vec<String> = ids.into_iter().map(|i| format!("c{i}")).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingestion_and_the_state_machine_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let mut skye = Skye::standalone(dir.path(), &[]);
    register(&skye, &http).await;
    let start = |skye: &Skye, variants: Value| {
        let (http, url) = (
            http.clone(),
            skye.url("admin", "/api/v1/qdrant/process-multi-variant"),
        );
        async move {
            let r = http
                .post(
                    &url,
                    &json!({"entity": "catalog", "model": "intent", "variants": variants}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.raw);
            r.body
        }
    };
    let ticket = start(&skye, json!(["all"])).await;
    skye.kill(); // right after the job ticket was acknowledged
    skye = Skye::standalone(dir.path(), &[]);

    let ids: Vec<usize> = (0..200).collect();
    let events = job_events(&ticket, &ids, 0, &[]);
    let (data, eofs) = events.split_at(ids.len());
    // Each chunk is acknowledged, then the process is killed at a different moment.
    for (n, chunk) in data.chunks(50).enumerate() {
        let r = http
            .post(
                &skye.url("consumers", "/api/v1/ingest/skye.embedding"),
                &Value::Array(chunk.to_vec()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.raw);
        tokio::time::sleep(Duration::from_millis(20 * n as u64)).await;
        skye.kill();
        skye = Skye::standalone(dir.path(), &[]);
    }
    // EOFs, each followed by a kill; then kills while the state machine runs.
    for eof in eofs {
        let r = http
            .post(
                &skye.url("consumers", "/api/v1/ingest/skye.embedding"),
                &Value::Array(vec![eof.clone()]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.raw);
        skye.kill();
        skye = Skye::standalone(dir.path(), &[]);
    }
    for delay in [5u64, 30, 80] {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        skye.kill();
        skye = Skye::standalone(dir.path(), &[]);
    }
    let v = wait_completed(&skye, &http, "all").await;
    assert_eq!(v["vector_db_read_version"], 1);
    let query: Vec<f64> = vec![0.5, -0.25, 1.0, 0.1];
    assert_eq!(
        ids_served(&skye, query.clone()).await,
        sorted_ids(ids.clone())
    );

    // A RESET job killed repeatedly during its state machine still switches exactly once.
    let ticket2 = start(&skye, json!(["all"])).await;
    assert_eq!(ticket2["variants"], json!({"all": 2}));
    let ids2: Vec<usize> = (500..560).collect();
    let r = http
        .post(
            &skye.url("consumers", "/api/v1/ingest/skye.embedding"),
            &Value::Array(job_events(&ticket2, &ids2, 1, &[])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    for delay in [0u64, 10, 25, 50, 100] {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        skye.kill();
        skye = Skye::standalone(dir.path(), &[]);
    }
    let v = wait_completed(&skye, &http, "all").await;
    assert_eq!(v["vector_db_read_version"], 2, "{v}");
    assert_eq!(ids_served(&skye, query).await, sorted_ids(ids2));
}
