//! `/metrics` on every port after known traffic: consumer counters by reason, batch latency,
//! lag, the failure topic's size, variant states, job EOFs and the engine's collection figures.

use serde_json::json;

use crate::catalog::{item, job, ok, register_entity, register_model};
use crate::support::{Http, Skye};

/// The value of the sample `name{labels}` (labels exactly as rendered), if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_exports_consumer_lifecycle_and_engine_metrics() {
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
            "vector_db_config": {"payload": {"price": {"field_schema": "integer"}}}}),
    )
    .await;
    let mut items: Vec<_> = (0..9)
        .map(|i| item(&format!("p{i}"), i, &[("price", "100")]))
        .collect();
    items.push(item("bad", 9, &[("price", "many")]));
    job(&skye, &http, "intent", &["all"], &items).await;

    let mut pages = Vec::new();
    for component in ["admin", "serving", "consumers"] {
        let r = http.get(&skye.url(component, "/metrics")).await;
        assert_eq!(r.status, 200, "{component}: {}", r.raw);
        pages.push((component, r.raw));
    }
    for (component, page) in &pages {
        let value = |series: &str| {
            sample(page, series).unwrap_or_else(|| panic!("{component}: no {series} in\n{page}"))
        };
        // Ten data events and one EOF, all committed; the bad price went to the failure topic.
        assert_eq!(
            value(r#"skye_consumer_records_total{consumer="embedding"}"#),
            11.0
        );
        assert_eq!(
            value(
                r#"skye_consumer_rejected_by_reason_total{consumer="embedding",reason="payload"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                r#"skye_consumer_rejected_by_reason_total{consumer="embedding",reason="decode"}"#
            ),
            0.0
        );
        assert_eq!(
            value(r#"skye_consumer_retries_total{consumer="embedding"}"#),
            0.0
        );
        assert!(value(r#"skye_consumer_batch_seconds_count{consumer="embedding"}"#) >= 1.0);
        assert_eq!(
            value(
                r#"skye_consumer_lag_records{consumer="embedding",topic="skye.embedding",partition="0"}"#
            ),
            0.0,
            "everything consumed"
        );
        assert_eq!(
            value(r#"skye_consumer_failure_topic_records{topic="skye.embedding-failure"}"#),
            1.0
        );
        let state = |s: &str| {
            value(&format!(
                r#"skye_lifecycle_variant_state{{entity="catalog",model="intent",variant="all",state="{s}"}}"#
            ))
        };
        assert_eq!((state("COMPLETED"), state("INDEXING_STARTED")), (1.0, 0.0));
        assert_eq!(
            value(
                r#"skye_lifecycle_variant_read_version{entity="catalog",model="intent",variant="all"}"#
            ),
            1.0
        );
        assert_eq!(
            (
                value(r#"skye_lifecycle_job_partitions{entity="catalog",model="intent"}"#),
                value(r#"skye_lifecycle_job_eofs{entity="catalog",model="intent"}"#),
            ),
            (1.0, 1.0)
        );
        assert_eq!(
            value(r#"skye_collection_points{collection="catalog/intent/all@1"}"#),
            9.0
        );
        // Names follow skye_<area>_<name>; no label carries an id of a point.
        for line in page
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(line.starts_with("skye_"), "{component}: {line}");
            assert!(
                !line.contains("\"p1\"") && !line.contains("\"bad\""),
                "{line}"
            );
        }
    }

    // The failure topic, paged, with the reason and where the record came from.
    let failures = |q: &str| {
        let url = skye.url(
            "admin",
            &format!("/api/v1/failures/skye.embedding-failure{q}"),
        );
        let http = &http;
        async move { http.get(&url).await }
    };
    let page = failures("").await;
    assert_eq!(page.status, 200, "{}", page.raw);
    let records = page.body["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{}", page.raw);
    let bad = &records[0];
    assert_eq!(bad["value"]["candidate_id"], "bad", "{}", page.raw);
    assert!(
        bad["error"].as_str().unwrap().contains("price"),
        "{}",
        page.raw
    );
    assert!(
        bad["source"]
            .as_str()
            .unwrap()
            .starts_with("skye.embedding/0@"),
        "{}",
        page.raw
    );
    assert_eq!(
        (page.body["next"].as_u64(), page.body["end"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(failures("?from=1").await.body["records"], json!([]));
    for (q, status) in [("?limit=0", 400), ("?from=x", 400), ("?partition=3", 400)] {
        let r = failures(q).await;
        assert_eq!(r.status, status, "{q}: {}", r.raw);
        assert!(r.body["error"].is_string(), "{q}: {}", r.raw);
    }
    let not_failure = http
        .get(&skye.url("admin", "/api/v1/failures/skye.embedding"))
        .await;
    assert_eq!(not_failure.status, 400, "{}", not_failure.raw);

    // A re-drive sends the record back to skye.embedding; still bad, it is rejected again.
    let redrive = |body: serde_json::Value| {
        let url = skye.url("admin", "/api/v1/failures/skye.embedding-failure/redrive");
        let http = &http;
        async move { http.post(&url, &body).await }
    };
    let missing = redrive(json!({"records": [{"partition": 0, "offset": 7}]})).await;
    assert_eq!(missing.status, 404, "{}", missing.raw);
    assert_eq!(redrive(json!({"records": []})).await.status, 400);
    assert_eq!(redrive(json!({"nope": 1})).await.status, 400);
    let sent = redrive(json!({"records": [{"partition": 0, "offset": 0}]})).await;
    assert_eq!(sent.status, 200, "{}", sent.raw);
    assert_eq!(
        sent.body["redriven"][0]["to_topic"], "skye.embedding",
        "{}",
        sent.raw
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = http.get(&skye.url("consumers", "/metrics")).await.raw;
        let again = sample(
            &page,
            r#"skye_consumer_rejected_by_reason_total{consumer="embedding",reason="payload"}"#,
        );
        let written = sample(
            &page,
            r#"skye_consumer_failure_topic_records{topic="skye.embedding-failure"}"#,
        );
        if again == Some(2.0) && written == Some(2.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not rejected again: {again:?} {written:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = failures("?from=1").await;
    let second = &page.body["records"][0];
    assert_eq!(second["value"]["candidate_id"], "bad", "{}", page.raw);
    assert!(
        second["error"].as_str().unwrap().contains("price"),
        "{}",
        page.raw
    );
}
