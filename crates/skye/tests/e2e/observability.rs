//! `/metrics` on every port after known traffic: consumer counters by reason, batch latency,
//! lag, the failure topic's size, variant states, job progress, backend calls, the result
//! cache, the engine's collection figures and failure re-drives.

use serde_json::json;

use crate::catalog::{catalog_variant, client, hits, item, job};
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
    catalog_variant(
        &skye,
        &http,
        json!({"vector_db_config": {"payload": {"price": {"field_schema": "integer"}}},
            "in_memory_caching_enabled": true, "in_memory_cache_ttl_seconds": 600}),
    )
    .await;
    let mut items: Vec<_> = (0..9)
        .map(|i| item(&format!("p{i}"), i, &[("price", "100")]))
        .collect();
    items.push(item("bad", 9, &[("price", "many")]));
    job(&skye, &http, "intent", &["all"], &items).await;
    // One search twice: a miss, then a hit of the in-process cache.
    let grpc = client(&skye).await;
    for _ in 0..2 {
        assert_eq!(hits(&grpc, "intent", "all", Vec::new(), &[]).await.len(), 9);
    }

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
        assert_eq!(
            value(r#"skye_collection_compactions_total{collection="catalog/intent/all@1"}"#),
            0.0
        );
        // The job: nine data events applied, nothing left, so nothing more expected.
        let job = |name: &str| value(&format!(r#"{name}{{entity="catalog",model="intent"}}"#));
        assert_eq!(job("skye_lifecycle_job_events_applied"), 9.0);
        assert_eq!(job("skye_lifecycle_job_events_expected"), 9.0);
        assert_eq!(job("skye_lifecycle_job_eta_seconds"), 0.0);
        assert!(job("skye_lifecycle_job_age_seconds") >= 0.0);
        // Every backend the job and the search went through, by role and operation.
        for (backend, op) in [
            ("event_log", "produce"),
            ("event_log", "poll"),
            ("event_log", "commit"),
            ("embeddings", "put"),
            ("aggregator", "get"),
            ("vector", "create_collection"),
            ("vector", "upsert"),
            ("vector", "search"),
        ] {
            let series = format!(
                r#"skye_backend_request_seconds_count{{backend="{backend}",op="{op}",outcome="ok"}}"#
            );
            assert!(value(&series) >= 1.0, "{component}: {series}");
        }
        let cache = |name: &str| value(&format!(r#"{name}{{cache="similar",layer="memory"}}"#));
        assert_eq!(
            (
                cache("skye_cache_hits_total"),
                cache("skye_cache_misses_total")
            ),
            (1.0, 1.0)
        );
        assert_eq!(cache("skye_cache_entries"), 1.0);
        assert!(cache("skye_cache_bytes") > 0.0);
        assert_eq!(cache("skye_cache_evictions_total"), 0.0);
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

    dashboard_reads_only_exported_metrics(&pages[0].1);

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
    let page = http.get(&skye.url("admin", "/metrics")).await.raw;
    assert_eq!(
        sample(
            &page,
            r#"skye_admin_redriven_records_total{topic="skye.embedding-failure"}"#
        ),
        Some(1.0)
    );
    let page = failures("?from=1").await;
    let second = &page.body["records"][0];
    assert_eq!(second["value"]["candidate_id"], "bad", "{}", page.raw);
    assert!(
        second["error"].as_str().unwrap().contains("price"),
        "{}",
        page.raw
    );
}

/// Every metric the Grafana dashboard in `deploy/` queries is one `page` exports (a family by
/// its name, or one of its counter or histogram series), and every panel has a query.
fn dashboard_reads_only_exported_metrics(page: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/skye.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let families: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let exported = |name: &str| {
        families.iter().any(|f| {
            name.strip_prefix(f)
                .is_some_and(|rest| ["", "_total", "_bucket", "_count", "_sum"].contains(&rest))
        })
    };
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(
            !targets.is_empty(),
            "panel without a query: {}",
            panel["title"]
        );
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                assert!(exported(name), "{}: {name} is not exported", panel["title"]);
                queried += 1;
            }
        }
    }
    assert!(queried >= 20, "{queried} metric references");
}

/// The `skye_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("skye_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(&tail[..end]);
        rest = &tail[end..];
    }
    names
}
