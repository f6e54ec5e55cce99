//! Malformed requests against the real binary: every one gets the exact status and message
//! below, over gRPC (raw tonic clients, so no SDK-side check hides a server gap) and HTTP.
//! After the table the process still answers a good request (nothing panicked or hung).

use std::time::Duration;

use serde_json::{Value, json};
use skye_proto::skye_embedding_service_client::SkyeEmbeddingServiceClient;
use skye_proto::skye_similar_candidate_service_client::SkyeSimilarCandidateServiceClient;
use skye_proto::{
    Embedding, EmbeddingDotProductRequest, Filter, Filters, SkyeBulkEmbeddingRequest, SkyeRequest,
};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::lifecycle::{job_events, register, wait_completed};
use hyper::Method;

use crate::support::{Http, Skye};

const TOKEN: &str = "tok";

/// (case, method, component, path, with the token, body, status, exact `error`).
type HttpCase = (
    &'static str,
    Method,
    &'static str,
    &'static str,
    bool,
    String,
    u16,
    &'static str,
);

fn similar(embedding: Vec<f64>, limit: i32) -> SkyeRequest {
    SkyeRequest {
        entity: "catalog".into(),
        model_name: "intent".into(),
        variant: "all".into(),
        limit,
        embeddings: vec![Embedding { embedding }],
        ..Default::default()
    }
}

/// A request with the given caller id and token metadata.
fn with_metadata<T>(message: T, caller: Option<&str>, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(c) = caller {
        req.metadata_mut()
            .insert("skye-caller-id", MetadataValue::try_from(c).unwrap());
    }
    if let Some(t) = token {
        req.metadata_mut()
            .insert("skye-auth-token", MetadataValue::try_from(t).unwrap());
    }
    req.set_timeout(Duration::from_secs(10));
    req
}

/// What is wrong with an answer that should have been `code` with exactly `message`.
fn mismatch<T: std::fmt::Debug>(
    case: &str,
    got: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    message: &str,
) -> Option<String> {
    match got {
        Err(s) if s.code() == code && s.message() == message => None,
        Err(s) => Some(format!(
            "{case}: got {:?} {:?}, want {code:?} {message:?}",
            s.code(),
            s.message()
        )),
        Ok(r) => Some(format!("{case}: answered {:?}", r.into_inner())),
    }
}

fn authed<T>(message: T) -> tonic::Request<T> {
    with_metadata(message, Some("e2e"), Some(TOKEN))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_exact_statuses_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[("AUTH_TOKENS", TOKEN)]);
    let http = Http::new().with_header("skye-auth-token", TOKEN);
    register(&skye, &http).await;
    let ticket = http
        .post(
            &skye.url("admin", "/api/v1/qdrant/process-multi-variant"),
            &json!({"entity": "catalog", "model": "intent", "variants": ["all"]}),
        )
        .await;
    assert_eq!(ticket.status, 200, "{}", ticket.raw);
    let events = job_events(&ticket.body, &[1, 2, 3, 4], 0, &[]);
    let r = http
        .post(
            &skye.url("consumers", "/api/v1/ingest/skye.embedding"),
            &Value::Array(events),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    wait_completed(&skye, &http, "all").await;

    let channel = Channel::from_shared(skye.url("serving", ""))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut search = SkyeSimilarCandidateServiceClient::new(channel.clone());
    let mut embeddings = SkyeEmbeddingServiceClient::new(channel);
    let good = similar(vec![1.0, 0.0, 0.0, 0.0], 2);

    // (case, request, code, exact message)
    let huge = vec![0.5; 700_000]; // 5.6 MB on the wire, above the 4 MiB limit.
    let cases: Vec<(&str, tonic::Request<SkyeRequest>, Code, &str)> = vec![
        (
            "wrong dimension",
            authed(similar(vec![1.0, 0.0], 2)),
            Code::InvalidArgument,
            "embeddings[0] has 2 dimensions, model intent has 4",
        ),
        (
            "NaN",
            authed(similar(vec![f64::NAN, 0.0, 0.0, 0.0], 2)),
            Code::InvalidArgument,
            "embeddings[0] contains NaN, infinity or a value out of float range",
        ),
        (
            "infinity",
            authed(similar(vec![f64::INFINITY, 0.0, 0.0, 0.0], 2)),
            Code::InvalidArgument,
            "embeddings[0] contains NaN, infinity or a value out of float range",
        ),
        (
            "beyond f32",
            authed(similar(vec![1e300, 0.0, 0.0, 0.0], 2)),
            Code::InvalidArgument,
            "embeddings[0] contains NaN, infinity or a value out of float range",
        ),
        (
            "no query",
            authed(SkyeRequest {
                embeddings: vec![],
                ..good.clone()
            }),
            Code::InvalidArgument,
            "candidateIds or embeddings is required",
        ),
        (
            "limit 0",
            authed(similar(vec![1.0, 0.0, 0.0, 0.0], 0)),
            Code::InvalidArgument,
            "limit is required",
        ),
        (
            "negative limit",
            authed(similar(vec![1.0, 0.0, 0.0, 0.0], -5)),
            Code::InvalidArgument,
            "limit is required",
        ),
        (
            "huge limit",
            authed(similar(vec![1.0, 0.0, 0.0, 0.0], i32::MAX)),
            Code::InvalidArgument,
            "limit 2147483647 exceeds the maximum of 1000",
        ),
        (
            "negative offset",
            authed(SkyeRequest {
                offset: -1,
                ..good.clone()
            }),
            Code::InvalidArgument,
            "offset must be between 0 and 10000 - limit, got -1",
        ),
        (
            "unknown entity",
            authed(SkyeRequest {
                entity: "nope".into(),
                ..good.clone()
            }),
            Code::NotFound,
            "entity 'nope' not found",
        ),
        (
            "unknown model",
            authed(SkyeRequest {
                model_name: "nope".into(),
                ..good.clone()
            }),
            Code::NotFound,
            "model 'nope' not found in entity 'catalog'",
        ),
        (
            "unknown variant",
            authed(SkyeRequest {
                variant: "nope".into(),
                ..good.clone()
            }),
            Code::NotFound,
            "variant 'nope' not found in model 'intent' of entity 'catalog'",
        ),
        (
            "unknown operator",
            authed(SkyeRequest {
                global_filters: Some(Filters {
                    filter: vec![Filter {
                        field: "brand".into(),
                        op: 99,
                        values: vec!["b1".into()],
                    }],
                }),
                ..good.clone()
            }),
            Code::InvalidArgument,
            "filter on 'brand': unknown operator 99",
        ),
        (
            "filter on an unknown field",
            authed(SkyeRequest {
                global_filters: Some(Filters {
                    filter: vec![Filter {
                        field: "color".into(),
                        op: 0,
                        values: vec!["red".into()],
                    }],
                }),
                ..good.clone()
            }),
            Code::InvalidArgument,
            "filter on 'color' (IN): field not found in the variant's payload schema",
        ),
        (
            "oversize message",
            authed(similar(huge, 2)),
            Code::OutOfRange,
            "Error, decoded message length too large: found 5600034 bytes, the limit is: 4194304 bytes",
        ),
        (
            "missing caller id",
            with_metadata(good.clone(), None, Some(TOKEN)),
            Code::InvalidArgument,
            "skye-caller-id header is missing",
        ),
        (
            "missing token",
            with_metadata(good.clone(), Some("e2e"), None),
            Code::InvalidArgument,
            "skye-auth-token header is missing",
        ),
        (
            "wrong token",
            with_metadata(good.clone(), Some("e2e"), Some("nope")),
            Code::Unauthenticated,
            "Invalid auth token",
        ),
    ];
    let mut wrong = Vec::new();
    for (case, req, code, message) in cases {
        let got = search.get_similar_candidates(req).await;
        wrong.extend(mismatch(case, got, code, message));
    }

    let bulk = |ids: Vec<&str>| SkyeBulkEmbeddingRequest {
        entity: "catalog".into(),
        candidate_ids: ids.into_iter().map(str::to_string).collect(),
        model_name: "intent".into(),
        variant: "all".into(),
    };
    for (case, req, code, message) in [
        (
            "bulk: no ids",
            authed(bulk(vec![])),
            Code::InvalidArgument,
            "candidateIds are required",
        ),
        (
            "bulk: unknown model",
            authed(SkyeBulkEmbeddingRequest {
                model_name: "nope".into(),
                ..bulk(vec!["c1"])
            }),
            Code::NotFound,
            "model 'nope' not found in entity 'catalog'",
        ),
        (
            "bulk: missing token",
            with_metadata(bulk(vec!["c1"]), Some("e2e"), None),
            Code::InvalidArgument,
            "skye-auth-token header is missing",
        ),
    ] {
        wrong.extend(mismatch(
            case,
            embeddings.get_embeddings_for_candidates(req).await,
            code,
            message,
        ));
    }
    let dot = |embedding: Vec<f64>| EmbeddingDotProductRequest {
        entity: "catalog".into(),
        candidate_ids: vec!["c1".into()],
        embedding,
        model_name: "intent".into(),
        variant: "all".into(),
    };
    for (case, req, code, message) in [
        (
            "scores: wrong dimension",
            authed(dot(vec![1.0])),
            Code::InvalidArgument,
            "embedding has 1 dimensions, model intent has 4",
        ),
        (
            "scores: NaN",
            authed(dot(vec![f64::NAN, 0.0, 0.0, 0.0])),
            Code::InvalidArgument,
            "embedding contains NaN, infinity or a value out of float range",
        ),
        (
            "scores: no ids",
            authed(EmbeddingDotProductRequest {
                candidate_ids: vec![],
                ..dot(vec![1.0, 0.0, 0.0, 0.0])
            }),
            Code::InvalidArgument,
            "candidateIds are required",
        ),
    ] {
        wrong.extend(mismatch(
            case,
            embeddings.get_candidate_embedding_scores(req).await,
            code,
            message,
        ));
    }

    // HTTP: (case, method, component, path, with the token, body, status, exact `error`)
    let admin = "/api/v1/model/register-model";
    let oversize = format!(r#"{{"entity": "{}"}}"#, "x".repeat(2 << 20));
    let http_cases: Vec<HttpCase> = vec![
        (
            "missing token",
            Method::POST,
            "admin",
            admin,
            false,
            "{}".into(),
            401,
            "skye-auth-token header is missing",
        ),
        (
            "not JSON",
            Method::POST,
            "admin",
            admin,
            true,
            "{oops".into(),
            400,
            "invalid JSON body: key must be a string at line 1 column 2",
        ),
        (
            "empty body",
            Method::POST,
            "admin",
            admin,
            true,
            String::new(),
            400,
            "request body is empty; a JSON object is expected",
        ),
        (
            "oversize body",
            Method::POST,
            "admin",
            admin,
            true,
            oversize,
            413,
            "request body is larger than the limit of 1048576 bytes",
        ),
        (
            "zero dimension",
            Method::POST,
            "admin",
            admin,
            true,
            json!({"entity": "catalog", "model": "m2",
                "model_config": {"distance_function": "DOT", "vector_dimension": 0}})
            .to_string(),
            400,
            "model_config.vector_dimension: must be between 1 and 65536, got 0",
        ),
        (
            "unknown distance",
            Method::POST,
            "admin",
            admin,
            true,
            json!({"entity": "catalog", "model": "m2",
                "model_config": {"distance_function": "HAMMING", "vector_dimension": 4}})
            .to_string(),
            400,
            "model_config.distance_function: unknown distance_function 'HAMMING', expected one of: DOT, COSINE, EUCLIDEAN, MANHATTAN",
        ),
        (
            "unknown entity",
            Method::POST,
            "admin",
            admin,
            true,
            json!({"entity": "nope", "model": "m2",
                "model_config": {"distance_function": "DOT", "vector_dimension": 4}})
            .to_string(),
            404,
            "entity 'nope' not found",
        ),
        (
            "unknown route",
            Method::GET,
            "admin",
            "/api/v1/nope",
            true,
            String::new(),
            404,
            "no route for GET /api/v1/nope",
        ),
        (
            "wrong method",
            Method::GET,
            "admin",
            admin,
            true,
            String::new(),
            405,
            "method GET is not allowed on /api/v1/model/register-model",
        ),
        (
            "ingest: unknown topic",
            Method::POST,
            "consumers",
            "/api/v1/ingest/nope",
            true,
            "[{}]".into(),
            404,
            "topic 'nope' is not consumed here; embedding topics: [\"skye.embedding\", \"skye.embedding-sequence\"], real-time topics: [\"skye.realtime\"]",
        ),
        (
            "ingest: not an array",
            Method::POST,
            "consumers",
            "/api/v1/ingest/skye.embedding",
            true,
            "{}".into(),
            400,
            "the body must be a JSON array of events",
        ),
    ];
    for (case, method, component, path, with_token, body, status, message) in http_cases {
        let client = if with_token {
            http.clone()
        } else {
            Http::new()
        };
        let r = client.send(method, &skye.url(component, path), &body).await;
        if r.status != status || r.body["error"].as_str() != Some(message) {
            wrong.push(format!(
                "{case}: got {} {}, want {status} {message:?}",
                r.status,
                r.raw.chars().take(300).collect::<String>()
            ));
        }
    }

    // Not an error: an empty query vector gets an empty answer (as an unknown candidate id does).
    let empty = search
        .get_similar_candidates(authed(similar(vec![], 2)))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.responses[0].candidates.is_empty());

    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    // Still healthy and answering.
    let ok = search
        .get_similar_candidates(authed(good))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.responses[0].candidates.len(), 2);
}
