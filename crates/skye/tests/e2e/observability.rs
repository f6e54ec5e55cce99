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
}
