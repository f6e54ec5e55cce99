//! A catalog driven through the documented interfaces: registrations, RESET jobs as events with
//! EOFs, searches over gRPC and real-time flags (entity `catalog`, 4-d COSINE models, one
//! partition).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use skye_client::{ClientConfig, SkyeClient};
use skye_proto::{Embedding, Filter, Filters, SkyeRequest};

use crate::support::{Http, Skye};

pub(crate) const DIM: usize = 4;

/// A deterministic unit-ish vector for item `i`.
pub(crate) fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| (((i * 5 + d * 11) % 13) as f32 - 6.0) / 6.0 + 0.01 * d as f32)
        .collect()
}

pub(crate) async fn admin(
    skye: &Skye,
    http: &Http,
    path: &str,
    body: Value,
) -> crate::support::Reply {
    http.post(&skye.url("admin", &format!("/api/v1/{path}")), &body)
        .await
}

pub(crate) async fn ok(skye: &Skye, http: &Http, path: &str, body: Value) -> Value {
    let r = admin(skye, http, path, body).await;
    assert_eq!(r.status, 200, "{path}: {}", r.raw);
    r.body
}

/// Store "1" and entity `catalog`.
pub(crate) async fn register_entity(skye: &Skye, http: &Http) {
    ok(
        skye,
        http,
        "model/register-store",
        json!({"conf_id": 1, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"}),
    )
    .await;
    ok(
        skye,
        http,
        "model/register-entity",
        json!({"entity": "catalog", "store_id": "1"}),
    )
    .await;
}

pub(crate) async fn register_model(skye: &Skye, http: &Http, model: &str) {
    ok(
        skye,
        http,
        "model/register-model",
        json!({"entity": "catalog", "model": model, "embedding_store_enabled": true,
            "number_of_partitions": 1, "model_type": "RESET",
            "model_config": {"distance_function": "COSINE", "vector_dimension": DIM}}),
    )
    .await;
}

/// One item of a job: id, vector, payload texts.
/// Registers the entity, model `intent` and its variant `all` with `fields` (a payload schema,
/// cache switches) added to the registration.
pub(crate) async fn catalog_variant(skye: &Skye, http: &Http, fields: Value) {
    register_entity(skye, http).await;
    register_model(skye, http, "intent").await;
    let mut body = serde_json::json!({"entity": "catalog", "model": "intent", "variant": "all"});
    if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
        b.extend(f.clone());
    }
    ok(skye, http, "model/register-variant", body).await;
}

pub(crate) type Item = (String, Vec<f32>, BTreeMap<String, String>);

pub(crate) fn item(id: &str, i: usize, payload: &[(&str, &str)]) -> Item {
    (
        id.to_string(),
        vector(i),
        payload
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Runs a RESET job of `model` for `variants` with `items` on one partition and waits until
/// every variant is COMPLETED; returns the consumers' health afterwards.
pub(crate) async fn job(
    skye: &Skye,
    http: &Http,
    model: &str,
    variants: &[&str],
    items: &[Item],
) -> Value {
    let ticket = start_job(skye, http, model, variants).await;
    let mut events = job_events(&ticket, model, variants, items);
    events.push(eof(&ticket, model));
    post_events(skye, http, events).await;
    for v in variants {
        wait_completed(skye, http, model, v).await;
    }
    http.get(&skye.url("consumers", "/health")).await.body
}

/// Starts a job of `variants`; returns its ticket.
pub(crate) async fn start_job(skye: &Skye, http: &Http, model: &str, variants: &[&str]) -> Value {
    ok(
        skye,
        http,
        "qdrant/process-multi-variant",
        json!({"entity": "catalog", "model": model, "variants": variants}),
    )
    .await
}

/// The ADD events of `items` for a job's ticket (partition 0, every variant indexing them).
pub(crate) fn job_events(
    ticket: &Value,
    model: &str,
    variants: &[&str],
    items: &[Item],
) -> Vec<Value> {
    let index_map: Value = variants
        .iter()
        .map(|v| (v.to_string(), json!(true)))
        .collect();
    items
        .iter()
        .map(|(id, vector, payload)| {
            json!({"entity": "catalog", "model_name": model, "candidate_id": id,
                "embedding_store_version": ticket["embedding_store_version"], "partition": "0",
                "index_space": {"embedding": vector, "variants_version_map": ticket["variants"],
                    "variants_index_map": index_map, "operation": "ADD", "payload": payload}})
        })
        .collect()
}

/// The EOF of a job's only partition.
pub(crate) fn eof(ticket: &Value, model: &str) -> Value {
    json!({"entity": "catalog", "model_name": model, "candidate_id": "EOF",
        "embedding_store_version": ticket["embedding_store_version"], "partition": "0",
        "index_space": {"variants_version_map": ticket["variants"]}})
}

pub(crate) async fn post_events(skye: &Skye, http: &Http, events: Vec<Value>) {
    let r = http
        .post(
            &skye.url("consumers", "/api/v1/ingest/skye.embedding"),
            &Value::Array(events),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
}

pub(crate) async fn wait_completed(skye: &Skye, http: &Http, model: &str, variant: &str) {
    let url = skye.url(
        "admin",
        &format!("/api/v1/models/catalog/{model}/variants/{variant}"),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let r = http.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.raw);
        if r.body["variant_state"] == "COMPLETED" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{model}/{variant} stuck in {}",
            r.body["variant_state"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn client(skye: &Skye) -> SkyeClient {
    SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap()
}

/// `(id, attributes)` of every hit of `model/variant` for item 0's vector, with `filters`.
pub(crate) async fn hits(
    client: &SkyeClient,
    model: &str,
    variant: &str,
    filters: Vec<Filter>,
    attributes: &[&str],
) -> Vec<(String, BTreeMap<String, String>)> {
    let r = client
        .similar_candidates(SkyeRequest {
            entity: "catalog".into(),
            model_name: model.into(),
            variant: variant.into(),
            limit: 50,
            embeddings: vec![Embedding {
                embedding: vector(0).iter().map(|x| f64::from(*x)).collect(),
            }],
            global_filters: (!filters.is_empty()).then_some(Filters { filter: filters }),
            attribute: attributes.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out: Vec<(String, BTreeMap<String, String>)> = r.responses[0]
        .candidates
        .iter()
        .map(|c| {
            let attrs = c
                .meta
                .as_ref()
                .map(|m| m.attributes_map.clone().into_iter().collect())
                .unwrap_or_default();
            (c.id.clone(), attrs)
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn ids(hits: &[(String, BTreeMap<String, String>)]) -> Vec<String> {
    hits.iter().map(|h| h.0.clone()).collect()
}

pub(crate) fn filter(field: &str, op: i32, values: &[&str]) -> Filter {
    Filter {
        field: field.into(),
        op,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

pub(crate) const IN: i32 = 0;
pub(crate) const LTE: i32 = 4;
pub(crate) const GTE: i32 = 5;

/// Posts real-time flags and waits until `done` holds for the hits of `variant` (of model
/// `intent`, or `model/variant`).
pub(crate) async fn flag_and_wait(
    skye: &Skye,
    http: &Http,
    client: &SkyeClient,
    (id, label, value): (&str, &str, &str),
    variant: &str,
    done: impl Fn(&[(String, BTreeMap<String, String>)]) -> bool,
) -> Duration {
    let started = tokio::time::Instant::now();
    let body = json!([{"timestamp": 1719308350, "type": "catalog_status", "entity": "catalog",
        "data": [{"id": id, "data": [{"label": label, "value": value}]}]}]);
    let r = http
        .post(
            &skye.url("consumers", "/api/v1/ingest/skye.realtime"),
            &body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let (model, variant) = variant.split_once('/').unwrap_or(("intent", variant));
    loop {
        let h = hits(client, model, variant, Vec::new(), &["brand", "price"]).await;
        if done(&h) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{variant} after {label}={value} on {id}: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
