//! Trace export over OTLP/gRPC to an in-process receiver (the `otlp` feature): a search and a
//! consumer batch each arrive as one trace, their stages as child spans.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

use crate::catalog::{catalog_variant, client, hits, item, job};
use crate::support::{Http, Skye};

/// Every span received, with the `service.name` of its resource.
#[derive(Debug, Default, Clone)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::codegen::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let kv = span.attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_and_a_batch_reach_the_collector_as_traces() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received = Received::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "skye-under-test"),
            // Export every 200 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    );
    let http = Http::new();
    let payload = json!({"vector_db_config": {"payload": {"price": {"field_schema": "integer"}}}});
    catalog_variant(&skye, &http, payload).await;
    let items: Vec<_> = (0..5)
        .map(|i| item(&format!("p{i}"), i, &[("price", "100")]))
        .collect();
    job(&skye, &http, "intent", &["all"], &items).await;
    let grpc = client(&skye).await;
    assert_eq!(hits(&grpc, "intent", "all", Vec::new(), &[]).await.len(), 5);

    // The stages each trace must hold, under its root span.
    let wanted: [(&str, &[&str]); 2] = [
        (
            "rpc",
            &[
                "filter_plan",
                "cache_memory",
                "vector_search",
                "engine_search",
            ],
        ),
        (
            "batch",
            &[
                "decode",
                "aggregator_fetch",
                "embedding_store_write",
                "collection_write",
                "commit",
            ],
        ),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = received.0.lock().unwrap().clone();
        let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
        let all = wanted
            .iter()
            .flat_map(|(root, stages)| std::iter::once(root).chain(stages.iter()))
            .all(|n| names.contains(n));
        if all {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans received so far: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "skye-under-test")
    );

    // Each stage belongs to the trace of a root span of its kind, reached through its parents.
    let by_id: HashMap<&[u8], &Span> = spans
        .iter()
        .map(|(_, s)| (s.span_id.as_slice(), s))
        .collect();
    let root_of = |s: &Span| {
        let mut at = s;
        while let Some(parent) = by_id.get(at.parent_span_id.as_slice()) {
            at = parent;
        }
        at.name.clone()
    };
    for (root, stages) in wanted {
        for stage in stages {
            let span = spans
                .iter()
                .map(|(_, s)| s)
                .find(|s| s.name == *stage && root_of(s) == root);
            assert!(span.is_some(), "no {stage} span under a {root} span");
        }
    }
    let rpc = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "rpc")
        .unwrap();
    assert_eq!(attribute(rpc, "model").as_deref(), Some("intent"));
    assert_eq!(
        attribute(rpc, "rpc").as_deref(),
        Some("getSimilarCandidates")
    );
    // The engine reports the path its planner took (no filter: the graph).
    let engine = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "engine_search")
        .unwrap();
    assert!(attribute(engine, "path").is_some(), "{engine:?}");
    assert_eq!(attribute(engine, "hits").as_deref(), Some("5"));
    let batch = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "batch" && attribute(s, "consumer").as_deref() == Some("embedding"));
    assert!(batch.is_some(), "no embedding batch span");
}
