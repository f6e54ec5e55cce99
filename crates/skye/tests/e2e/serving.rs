//! The serving port of the real binary: gRPC and HTTP health on one port, wired to the registry.

use serde_json::json;
use skye_proto::skye_similar_candidate_service_client::SkyeSimilarCandidateServiceClient;
use skye_proto::{Embedding, SkyeRequest};
use tonic::Code;

use crate::support::{Http, Skye};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_health_share_the_serving_port_and_answer_with_clear_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[("AUTH_TOKENS", "tok")]);
    let http = Http::new().with_header("skye-auth-token", "tok");
    for (path, body) in [
        ("/api/v1/model/register-store", json!({"conf_id": 1})),
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

    let mut client = SkyeSimilarCandidateServiceClient::connect(skye.url("serving", ""))
        .await
        .unwrap();
    let request = |variant: &str| {
        let mut req = tonic::Request::new(SkyeRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: variant.into(),
            limit: 5,
            embeddings: vec![Embedding {
                embedding: vec![1.0, 0.0],
            }],
            ..Default::default()
        });
        req.metadata_mut()
            .insert("skye-caller-id", "e2e".parse().unwrap());
        req.metadata_mut()
            .insert("skye-auth-token", "tok".parse().unwrap());
        req
    };
    // Registered but never ingested: its read-version collection does not exist yet.
    let e = client
        .get_similar_candidates(request("organic"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("organic_intent_1"), "{}", e.message());
    let e = client
        .get_similar_candidates(request("other"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());
    let mut anonymous = request("organic");
    anonymous.metadata_mut().remove("skye-auth-token");
    let e = client.get_similar_candidates(anonymous).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "skye-auth-token header is missing")
    );
}
