//! QDRANT variants end to end through the binary against a live Qdrant (the server of
//! `../shared/qdrant/`, started by `scripts/services.sh`; SKIPPED loudly without one): payload
//! indexes from the schema, a RESET job to COMPLETED, every filter operator answering as an
//! EMBEDDED twin of the same model does, candidateIds, the embedding RPCs, real-time flags,
//! snapshots, a second RESET with no failed query during the switch, and a Qdrant restart in the
//! middle of a job (nothing lost; while it is down, searches answer a retryable code).

#![cfg(feature = "qdrant")]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use skye_proto::{Filter, SkyeRequest};
use tonic::Code;

use crate::catalog::{
    Item, admin, client, eof, filter, flag_and_wait, hits, ids, item, job, job_events, ok,
    post_events, register_entity, start_job, vector, wait_completed,
};
use crate::support::{Http, Skye};

/// The live Qdrant's gRPC URL, or a loud SKIPPED (a failure under `SKYE_REQUIRE_SERVICES`
/// unless `scripts/services.sh` found no Qdrant binary).
fn live_qdrant(test: &str) -> Option<String> {
    if std::env::var_os("SKYE_TEST_NO_QDRANT").is_some() {
        eprintln!("SKIPPED {test}: no Qdrant server here (../shared/qdrant/qdrant not found)");
        return None;
    }
    crate::scaleout::service("SKYE_TEST_QDRANT_URL", test)
}

/// `(host, port)` of a gRPC URL such as `http://127.0.0.1:16334`.
fn host_port(url: &str) -> (String, String) {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let (host, port) = rest.rsplit_once(':').expect("host:port");
    (host.to_string(), port.trim_end_matches('/').to_string())
}

/// A model name no other run shares (Qdrant outlives a test).
fn unique_model() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("q{nanos}")
}

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// The schema both variants share; `qd` lives on Qdrant at `host:port`, `emb` in Skye.
async fn register_twins(skye: &Skye, http: &Http, model: &str, (host, port): (&str, &str)) {
    register_entity(skye, http).await;
    ok(
        skye,
        http,
        "model/register-model",
        json!({"entity": "catalog", "model": model, "embedding_store_enabled": true,
            "number_of_partitions": 1, "model_type": "RESET",
            "model_config": {"distance_function": "COSINE", "vector_dimension": 4}}),
    )
    .await;
    let payload = json!({
        "brand": {"field_schema": "keyword"},
        "price": {"field_schema": "integer"},
        "rating": {"field_schema": "float"},
        "live": {"field_schema": "boolean"},
        "title": {"field_schema": "text"},
        "listed": {"field_schema": "datetime"},
        "store": {"field_schema": "geo"},
        "tags": {"field_schema": "keyword"},
    });
    let stock = json!([{"column_name": "out_of_stock", "filter_value": "false",
        "default_value": "false"}]);
    ok(
        skye,
        http,
        "model/register-variant",
        json!({"entity": "catalog", "model": model, "variant": "emb", "filter": stock,
            "vector_db_config": {"payload": payload}}),
    )
    .await;
    ok(
        skye,
        http,
        "model/register-variant",
        json!({"entity": "catalog", "model": model, "variant": "qd", "filter": stock,
            "vector_db_type": "QDRANT",
            "vector_db_config": {"read_host": host, "write_host": host, "port": port,
                "http2config": {"deadline": 2000, "write_deadline": 5000},
                "payload": payload}}),
    )
    .await;
}

/// 40 items with every kind of payload value.
fn catalog_items(generation: usize) -> Vec<Item> {
    (0..40)
        .map(|i| {
            let brand = ["acme", "zeta", "orbit"][i % 3];
            let price = (i * 37 % 500).to_string();
            let rating = format!("{:.1}", (i % 10) as f64 / 2.0);
            let live = (i % 4 != 0).to_string();
            let title = format!("{} cotton shirt size {}", ["Red", "Blue"][i % 2], i % 5);
            let listed = (NOW - (i as i64) * 86_400).to_string();
            let store = format!("{},{}", 12.90 + i as f64 * 0.01, 77.60);
            let tags = format!(r#"["t{}", "all"]"#, i % 4);
            let mut it = item(
                &format!("c{i}"),
                i + generation * 7,
                &[
                    ("brand", brand),
                    ("price", &price),
                    ("rating", &rating),
                    ("live", &live),
                    ("title", &title),
                    ("listed", &listed),
                    ("store", &store),
                    ("tags", &tags),
                ],
            );
            if generation > 0 {
                it.0 = format!("g{generation}-{i}");
            }
            it
        })
        .collect()
}

const ATTRIBUTES: &[&str] = &["brand", "price", "tags", "live"];

/// Every operator of the API, on every kind of field.
fn filter_cases() -> Vec<(&'static str, Vec<Filter>)> {
    let f = |field: &str, op: i32, values: &[&str]| vec![filter(field, op, values)];
    let ten_days_ago = (NOW - 86_400 * 10).to_string();
    vec![
        ("IN keyword", f("brand", 0, &["acme", "orbit"])),
        ("NIN keyword", f("brand", 1, &["acme"])),
        ("IN integer", f("price", 0, &["37", "74", "111"])),
        ("IN bool", f("live", 0, &["false"])),
        ("IN list element", f("tags", 0, &["t2"])),
        ("EX", f("brand", 2, &[])),
        ("SEARCH text", f("title", 3, &["red", "SHIRT"])),
        ("LTE", f("price", 4, &["200"])),
        ("GTE float", f("rating", 5, &["3.5"])),
        ("BTWE", f("price", 6, &["100", "300"])),
        ("BTW", f("rating", 7, &["1.0", "4.0"])),
        ("LT datetime", f("listed", 8, &[&ten_days_ago])),
        (
            "GT datetime RFC 3339",
            f("listed", 9, &["2025-12-20T00:00:00Z"]),
        ),
        ("WTHN", f("store", 11, &["12.95", "77.60", "3000"])),
        (
            "two conditions",
            vec![filter("brand", 0, &["zeta"]), filter("price", 5, &["100"])],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qdrant_variant_serves_what_its_embedded_twin_serves() {
    let Some(url) = live_qdrant("qdrant e2e") else {
        return;
    };
    let (host, port) = host_port(&url);
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    let model = unique_model();
    register_twins(&skye, &http, &model, (&host, &port)).await;
    let health = job(&skye, &http, &model, &["emb", "qd"], &catalog_items(0)).await;
    assert_eq!(health["consumers"]["embedding"]["rejected"], 0, "{health}");

    // The collection carries the original's name and one payload index per schema field.
    if let Ok(rest) = std::env::var("SKYE_TEST_QDRANT_REST") {
        let r = http.get(&format!("{rest}/collections/qd_{model}_1")).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        let schema = &r.body["result"]["payload_schema"];
        for field in [
            "brand", "price", "rating", "live", "title", "listed", "store", "tags",
        ] {
            assert!(schema.get(field).is_some(), "no index on {field}: {schema}");
        }
        assert_eq!(schema["title"]["data_type"], "text", "{schema}");
    }

    let client = client(&skye).await;
    let mut wrong = Vec::new();
    for (case, filters) in filter_cases() {
        let emb = hits(&client, &model, "emb", filters.clone(), ATTRIBUTES).await;
        let qd = hits(&client, &model, "qd", filters, ATTRIBUTES).await;
        if emb != qd {
            wrong.push(format!("{case}:\n  embedded {emb:?}\n  qdrant   {qd:?}"));
        }
        if emb.is_empty() {
            wrong.push(format!("{case}: selects nothing (a weak case)"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));

    // By stored item: the item itself is left out, the neighbours are the twin's.
    let by_id = |variant: &'static str| {
        let (client, model) = (client.clone(), model.clone());
        async move {
            let r = client
                .similar_candidates(SkyeRequest {
                    entity: "catalog".into(),
                    model_name: model,
                    variant: variant.into(),
                    limit: 5,
                    candidate_ids: vec!["c3".into()],
                    ..Default::default()
                })
                .await
                .unwrap();
            r.responses[0]
                .candidates
                .iter()
                .map(|c| c.id.clone())
                .collect::<Vec<_>>()
        }
    };
    // (Items i and i + 13 share a vector: ties may come in either order.)
    let (mut emb, mut qd) = (by_id("emb").await, by_id("qd").await);
    emb.sort();
    qd.sort();
    assert_eq!(qd, emb);
    assert_eq!(qd.len(), 5);
    assert!(!qd.contains(&"c3".to_string()));

    // Out of stock and back, on both engines; the item returns with its job payload.
    let both_without = |id: &'static str| {
        move |h: &[(String, BTreeMap<String, String>)]| !h.iter().any(|(i, _)| i == id)
    };
    let flagged = format!("{model}/qd");
    flag_and_wait(
        &skye,
        &http,
        &client,
        ("c5", "out_of_stock", "true"),
        &flagged,
        both_without("c5"),
    )
    .await;
    flag_and_wait(
        &skye,
        &http,
        &client,
        ("c5", "out_of_stock", "false"),
        &flagged,
        |h| {
            h.iter()
                .any(|(i, a)| i == "c5" && a.get("brand").map(String::as_str) == Some("orbit"))
        },
    )
    .await;

    // Snapshots of the Qdrant collection.
    let target = json!({"entity": "catalog", "model": model, "variant": "qd"});
    let created = ok(&skye, &http, "qdrant/create-snapshot", target.clone()).await;
    let name = created["snapshot"]["name"].as_str().unwrap().to_string();
    assert_eq!(created["collection"]["vector_db_type"], "QDRANT");
    let listed = ok(&skye, &http, "qdrant/list-snapshots", target.clone()).await;
    assert!(
        listed["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name.as_str())
    );
    let mut delete = target.clone();
    delete["snapshot"] = json!(name);
    ok(&skye, &http, "qdrant/delete-snapshot", delete).await;
    let r = admin(&skye, &http, "qdrant/recover-snapshot", {
        let mut t = target.clone();
        t["snapshot"] = json!("any");
        t
    })
    .await;
    assert_eq!(r.status, 400, "recovery is Qdrant's REST call: {}", r.raw);
    assert!(r.raw.contains("snapshots/recover"), "{}", r.raw);

    // A second RESET while queries run: none fails, and the new generation is served after.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (client, model) = (client.clone(), model.clone());
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let r = client
                    .similar_candidates(SkyeRequest {
                        entity: "catalog".into(),
                        model_name: model.clone(),
                        variant: "qd".into(),
                        limit: 5,
                        embeddings: vec![skye_proto::Embedding {
                            embedding: vector(1).iter().map(|x| f64::from(*x)).collect(),
                        }],
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(r) if r.responses[0].candidates.len() == 5 => &served,
                    _ => &failed,
                }
                .fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    job(&skye, &http, &model, &["qd"], &catalog_items(1)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed queries during the switch"
    );
    assert!(served.load(Ordering::SeqCst) > 10);
    let after = ids(&hits(&client, &model, "qd", Vec::new(), &[]).await);
    assert!(after.iter().all(|id| id.starts_with("g1-")), "{after:?}");
    let state = http
        .get(&skye.url(
            "admin",
            &format!("/api/v1/models/catalog/{model}/variants/qd"),
        ))
        .await;
    assert_eq!(state.body["vector_db_read_version"], 2, "{}", state.raw);
}

/// A Qdrant of this test's own, on other ports, that it can kill and restart on its data.
struct OwnQdrant {
    data: Option<tempfile::TempDir>,
    pid: String,
}

const OWN_HTTP: &str = "16433";
const OWN_GRPC: &str = "16434";

impl OwnQdrant {
    fn start(start: &str, data: tempfile::TempDir) -> Self {
        let out = Command::new(start)
            .arg(data.path())
            .args([OWN_HTTP, OWN_GRPC])
            .output()
            .expect("run qdrant's start.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        OwnQdrant {
            data: Some(data),
            pid,
        }
    }

    /// SIGKILL, as a crash; returns its data directory for a restart.
    fn kill(mut self) -> tempfile::TempDir {
        let _ = Command::new("kill").args(["-9", &self.pid]).status();
        std::thread::sleep(Duration::from_millis(200));
        self.data.take().expect("data directory")
    }
}

impl Drop for OwnQdrant {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.pid]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qdrant_restart_in_the_middle_of_a_job_loses_nothing() {
    if live_qdrant("qdrant restart drill").is_none() {
        return;
    }
    let Some(start) = crate::scaleout::service("SKYE_TEST_QDRANT_START", "qdrant restart drill")
    else {
        return;
    };
    let qdrant = OwnQdrant::start(&start, tempfile::tempdir().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    let model = unique_model();
    register_twins(&skye, &http, &model, ("127.0.0.1", OWN_GRPC)).await;
    let items = catalog_items(0);
    let ticket = start_job(&skye, &http, &model, &["emb", "qd"]).await;
    let events = job_events(&ticket, &model, &["emb", "qd"], &items);
    let (first, second) = events.split_at(20);
    post_events(&skye, &http, first.to_vec()).await;
    let data = qdrant.kill();
    // Accepted while Qdrant is down: the consumer retries the batch until it is back.
    let mut rest: Vec<Value> = second.to_vec();
    rest.push(eof(&ticket, &model));
    post_events(&skye, &http, rest).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let qdrant = OwnQdrant::start(&start, data);
    wait_completed(&skye, &http, &model, "qd").await;
    wait_completed(&skye, &http, &model, "emb").await;
    let client = client(&skye).await;
    let all = ids(&hits(&client, &model, "qd", Vec::new(), &[]).await);
    assert_eq!(all.len(), 40, "every item of the job: {all:?}");

    // Down while serving: a retryable code, never INTERNAL; the embedded twin keeps serving.
    drop(qdrant.kill());
    let request = |variant: &str| SkyeRequest {
        entity: "catalog".into(),
        model_name: model.clone(),
        variant: variant.into(),
        limit: 3,
        embeddings: vec![skye_proto::Embedding {
            embedding: vector(1).iter().map(|x| f64::from(*x)).collect(),
        }],
        ..Default::default()
    };
    for _ in 0..3 {
        let e = client.similar_candidates(request("qd")).await.unwrap_err();
        assert!(
            matches!(e.code(), Some(Code::Unavailable | Code::DeadlineExceeded)),
            "a Qdrant that is down answers a retryable code: {e}"
        );
        let ok = client.similar_candidates(request("emb")).await.unwrap();
        assert_eq!(ok.responses[0].candidates.len(), 3);
    }
}

/// A collection the original Skye created (named `<variant>_<model>_<version>`, numeric point
/// ids, the payload as its consumers write it) is served as it is, and the next RESET job
/// replaces it the usual way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_the_original_created_is_served_as_it_is() {
    let Some(url) = live_qdrant("qdrant migration") else {
        return;
    };
    let Some(rest) = crate::scaleout::service("SKYE_TEST_QDRANT_REST", "qdrant migration") else {
        return;
    };
    let (host, port) = host_port(&url);
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    let model = unique_model();
    register_entity(&skye, &http).await;
    ok(
        &skye,
        &http,
        "model/register-model",
        json!({"entity": "catalog", "model": model, "embedding_store_enabled": true,
            "number_of_partitions": 1, "model_type": "RESET",
            "model_config": {"distance_function": "COSINE", "vector_dimension": 4}}),
    )
    .await;
    ok(
        &skye,
        &http,
        "model/register-variant",
        json!({"entity": "catalog", "model": model, "variant": "legacy",
            "vector_db_type": "QDRANT",
            "vector_db_config": {"read_host": host, "write_host": host, "port": port,
                "payload": {"brand": {"field_schema": "keyword"},
                    "price": {"field_schema": "integer"},
                    "tags": {"field_schema": "keyword"}}}}),
    )
    .await;
    // What the original wrote: its collection name, numeric ids, typed payload values.
    let collection = format!("{rest}/collections/legacy_{model}_1");
    let r = http
        .send(
            hyper::Method::PUT,
            &collection,
            &json!({"vectors": {"size": 4, "distance": "Cosine"}}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let points: Vec<Value> = (0..12)
        .map(|i| {
            let brand = ["acme", "zeta"][i % 2];
            json!({"id": 100 + i, "vector": vector(i),
                "payload": {"brand": brand, "price": i * 10,
                    "tags": ["all", format!("t{}", i % 3)]}})
        })
        .collect();
    let r = http
        .send(
            hyper::Method::PUT,
            &format!("{collection}/points?wait=true"),
            &json!({"points": points}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);

    let client = client(&skye).await;
    let all = hits(
        &client,
        &model,
        "legacy",
        Vec::new(),
        &["brand", "price", "tags"],
    )
    .await;
    assert_eq!(all.len(), 12, "{all:?}");
    let first = all
        .iter()
        .find(|(id, _)| id == "101")
        .expect("numeric ids as they are");
    assert_eq!(first.1["brand"], "zeta");
    assert_eq!(first.1["price"], "10");
    assert_eq!(first.1["tags"], r#"["all","t1"]"#);
    let acme_cheap = ids(&hits(
        &client,
        &model,
        "legacy",
        vec![filter("brand", 0, &["acme"]), filter("price", 4, &["40"])],
        &[],
    )
    .await);
    assert_eq!(acme_cheap, ["100", "102", "104"]);

    // Skye's first job writes version 2 and drops the original's collection after the switch.
    job(&skye, &http, &model, &["legacy"], &catalog_items(0)[..6]).await;
    let now = ids(&hits(&client, &model, "legacy", Vec::new(), &[]).await);
    assert_eq!(now, ["c0", "c1", "c2", "c3", "c4", "c5"]);
    let gone = http.get(&collection).await;
    assert_eq!(gone.status, 404, "superseded: {}", gone.raw);
}

/// A DELTA model on Qdrant: a delta job adds and deletes in the served collection; then the
/// EXPERIMENT variant is promoted (to the same host here) and re-ingested at its read version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_jobs_and_promotion_on_qdrant() {
    let Some(url) = live_qdrant("qdrant delta and promotion") else {
        return;
    };
    let (host, port) = host_port(&url);
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    let model = unique_model();
    register_entity(&skye, &http).await;
    ok(
        &skye,
        &http,
        "model/register-model",
        json!({"entity": "catalog", "model": model, "embedding_store_enabled": true,
            "number_of_partitions": 1, "model_type": "DELTA",
            "model_config": {"distance_function": "COSINE", "vector_dimension": 4}}),
    )
    .await;
    ok(
        &skye,
        &http,
        "model/register-variant",
        json!({"entity": "catalog", "model": model, "variant": "exp", "type": "EXPERIMENT",
            "vector_db_type": "QDRANT",
            "vector_db_config": {"read_host": host, "write_host": host, "port": port,
                "payload": {"brand": {"field_schema": "keyword"}}}}),
    )
    .await;
    let items = catalog_items(0);
    job(&skye, &http, &model, &["exp"], &items[..20]).await;
    let client = client(&skye).await;
    assert_eq!(
        ids(&hits(&client, &model, "exp", Vec::new(), &[]).await).len(),
        20
    );

    // The delta job: ten new items, two deleted, in the served collection (version 1).
    let ticket = start_job(&skye, &http, &model, &["exp"]).await;
    assert_eq!(
        ticket["variants"],
        json!({"exp": 1}),
        "DELTA keeps the version"
    );
    let mut events = job_events(&ticket, &model, &["exp"], &items[20..30]);
    for gone in ["c0", "c1"] {
        let mut e = events[0].clone();
        e["candidate_id"] = json!(gone);
        e["index_space"]["operation"] = json!("DELETE");
        events.push(e);
    }
    events.push(eof(&ticket, &model));
    post_events(&skye, &http, events).await;
    wait_completed(&skye, &http, &model, "exp").await;
    let now = ids(&hits(&client, &model, "exp", Vec::new(), &[]).await);
    assert_eq!(now.len(), 28, "{now:?}");
    assert!(!now.contains(&"c0".to_string()) && now.contains(&"c29".to_string()));

    // Promotion: writes go to the given host and the items are re-ingested there.
    let ticket = ok(
        &skye,
        &http,
        "qdrant/promote-variant",
        json!({"entity": "catalog", "model": model, "variant": "exp", "host": host}),
    )
    .await;
    assert_eq!(ticket["variants"], json!({"exp": 1}), "{ticket}");
    let mut events = job_events(&ticket, &model, &["exp"], &items[2..30]);
    events.push(eof(&ticket, &model));
    post_events(&skye, &http, events).await;
    wait_completed(&skye, &http, &model, "exp").await;
    let after = ids(&hits(&client, &model, "exp", Vec::new(), &[]).await);
    assert_eq!(after, now, "the promoted variant serves the same items");
}
