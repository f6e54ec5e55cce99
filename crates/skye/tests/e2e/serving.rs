//! The serving port of the real binary: gRPC and HTTP health on one port, wired to the registry.

use serde_json::json;
use std::time::Duration;

use skye_client::{ClientConfig, SkyeClient};
use skye_proto::{Embedding, SkyeRequest};
use tonic::Code;

use crate::support::{Http, Skye};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_health_share_the_serving_port_and_answer_with_clear_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[("AUTH_TOKENS", "tok")]);
    let http = Http::new().with_header("skye-auth-token", "tok");
    for (path, body) in [
        (
            "/api/v1/model/register-store",
            json!({"conf_id": 1, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"}),
        ),
        (
            "/api/v1/model/register-entity",
            json!({"entity": "catalog", "store_id": "1"}),
        ),
        (
            "/api/v1/model/register-model",
            json!({"entity": "catalog", "model": "intent",
            "model_config": {"distance_function": "COSINE", "vector_dimension": 2}}),
        ),
        (
            "/api/v1/model/register-variant",
            json!({"entity": "catalog", "model": "intent", "variant": "organic"}),
        ),
    ] {
        let r = http.post(&skye.url("admin", path), &body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.raw);
    }
    assert_eq!(
        Http::new().get(&skye.url("serving", "/health")).await.body["message"],
        "pong"
    );

    let sdk = |token: Option<&str>| {
        let mut config =
            ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5));
        config.auth_token = token.map(str::to_string);
        SkyeClient::connect(config)
    };
    let client = sdk(Some("tok")).await.unwrap();
    let request = |variant: &str| SkyeRequest {
        entity: "catalog".into(),
        model_name: "intent".into(),
        variant: variant.into(),
        limit: 5,
        embeddings: vec![Embedding {
            embedding: vec![1.0, 0.0],
        }],
        ..Default::default()
    };
    // Registered but never ingested: its read-version collection does not exist yet.
    let e = client
        .similar_candidates(request("organic"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert!(e.to_string().contains("catalog/intent/organic@1"), "{e}");
    let e = client
        .similar_candidates(request("other"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    let metrics = Http::new().get(&skye.url("serving", "/metrics")).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.raw.contains(r#"skye_serving_request_seconds_count{rpc="getSimilarCandidates",model="intent",variant="organic",code="failed_precondition"} 1"#),
        "{}",
        metrics.raw
    );
    assert!(
        metrics
            .raw
            .contains(r#"model="unknown",variant="unknown",code="not_found"} 1"#),
        "unregistered names never become labels: {}",
        metrics.raw
    );
    let anonymous = sdk(None).await.unwrap();
    let e = anonymous
        .similar_candidates(request("organic"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument));
    assert!(
        e.to_string().contains("skye-auth-token header is missing"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_and_reflection_answer_on_the_serving_port() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let channel = tonic::transport::Endpoint::from_shared(skye.url("serving", ""))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "SkyeSimilarCandidateService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, 1, "SERVING");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected {reply:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"SkyeSimilarCandidateService".to_string()),
        "{names:?}"
    );
}
