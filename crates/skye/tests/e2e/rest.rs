//! REST/JSON search on the serving port: the same answers as gRPC, the same validation and
//! status codes (mapped to HTTP), the same auth.

use serde_json::{Value, json};
use skye_proto::{Embedding, Filter, Filters, SkyeRequest};

use crate::catalog::{catalog_variant, client, item, job, vector};
use crate::support::{Http, Skye};

async fn priced_catalog() -> (tempfile::TempDir, Skye, Http) {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    let schema = json!({"vector_db_config": {"payload": {"price": {"field_schema": "integer"}}}});
    catalog_variant(&skye, &http, schema).await;
    let items: Vec<_> = (0..8)
        .map(|i| item(&format!("p{i}"), i, &[("price", &(i * 10).to_string())]))
        .collect();
    job(&skye, &http, "intent", &["all"], &items).await;
    (dir, skye, http)
}

fn ids(answer: &Value) -> Vec<String> {
    answer["responses"][0]["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("no candidates: {answer}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_search_answers_as_grpc_does_with_the_same_errors() {
    let (_dir, skye, http) = priced_catalog().await;
    let url = |rpc: &str| skye.url("serving", &format!("/api/v1/search/{rpc}"));
    let query: Vec<f64> = vector(0).iter().map(|x| f64::from(*x)).collect();

    // A filtered search, the operator by name: the gRPC answer, field for field.
    let body = json!({"entity": "catalog", "modelName": "intent", "variant": "all", "limit": 3,
        "embeddings": [{"embedding": query}],
        "globalFilters": {"filter": [{"field": "price", "op": "GTE", "values": ["30"]}]},
        "attribute": ["price"]});
    let rest = http.post(&url("similar"), &body).await;
    assert_eq!(rest.status, 200, "{}", rest.raw);
    let grpc = client(&skye)
        .await
        .similar_candidates(SkyeRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: "all".into(),
            limit: 3,
            embeddings: vec![Embedding {
                embedding: query.clone(),
            }],
            global_filters: Some(Filters {
                filter: vec![Filter {
                    field: "price".into(),
                    op: skye_proto::Operator::Gte as i32,
                    values: vec!["30".into()],
                }],
            }),
            attribute: vec!["price".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let from_grpc: Vec<String> = grpc.responses[0]
        .candidates
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(ids(&rest.body), from_grpc);
    assert_eq!(from_grpc.len(), 3);
    let first = &rest.body["responses"][0]["candidates"][0];
    let price: i64 = first["meta"]["attributesMap"]["price"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(price >= 30, "{first}");
    assert!(first["meta"]["score"].is_number(), "{first}");

    // The operator as a number reads the same.
    let mut numbered = body.clone();
    numbered["globalFilters"]["filter"][0]["op"] = json!(5);
    assert_eq!(
        ids(&http.post(&url("similar"), &numbered).await.body),
        from_grpc
    );

    // Embeddings and scores, by candidate id.
    let stored = http
        .post(
            &url("embeddings"),
            &json!({"entity": "catalog", "modelName": "intent", "variant": "all",
                "candidateIds": ["p1", "nope"]}),
        )
        .await;
    assert_eq!(stored.status, 200, "{}", stored.raw);
    let rows = stored.body["candidatesEmbedding"].as_array().unwrap();
    assert_eq!(rows[0]["id"], "p1", "{}", stored.raw);
    assert_eq!(rows[0]["embedding"].as_array().unwrap().len(), query.len());
    let scores = http
        .post(
            &url("scores"),
            &json!({"entity": "catalog", "modelName": "intent", "variant": "all",
                "candidateIds": ["p1", "p2"], "embedding": query}),
        )
        .await;
    assert_eq!(scores.status, 200, "{}", scores.raw);
    let scored = scores.body["candidateEmbeddingScores"].as_array().unwrap();
    assert_eq!(scored.len(), 2, "{}", scores.raw);
    assert_eq!(scored[0]["candidateId"], "p1");

    // Bad input: a clear JSON error with the status of its code.
    let cases = [
        ("{not json".to_string(), 400, "invalid_argument"),
        (
            json!({"entity": "catalog", "modelname": "intent"}).to_string(),
            400,
            "invalid_argument",
        ),
        (
            json!({"entity": "catalog", "modelName": "intent", "variant": "all", "limit": 3,
                "embeddings": [{"embedding": query}],
                "globalFilters": {"filter": [{"field": "price", "op": "ABOUT", "values": ["1"]}]}})
            .to_string(),
            400,
            "invalid_argument",
        ),
        (
            json!({"entity": "catalog", "modelName": "nope", "variant": "all", "limit": 3,
                "embeddings": [{"embedding": query}]})
            .to_string(),
            404,
            "not_found",
        ),
        (
            json!({"entity": "catalog", "modelName": "intent", "variant": "all", "limit": 3})
                .to_string(),
            400,
            "invalid_argument",
        ),
    ];
    for (body, status, code) in cases {
        let r = http.send(hyper::Method::POST, &url("similar"), &body).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{body}: {}",
            r.raw
        );
        assert!(
            r.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{}",
            r.raw
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_search_checks_the_same_tokens_as_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[("AUTH_TOKENS", "s3cret")]);
    let url = skye.url("serving", "/api/v1/search/similar");
    let body = json!({"entity": "catalog", "modelName": "intent", "variant": "all", "limit": 1,
        "embeddings": [{"embedding": [1.0, 0.0, 0.0, 0.0]}]});
    let caller = || Http::new().with_header("skye-caller-id", "tests");
    let missing = caller().post(&url, &body).await;
    assert_eq!(missing.status, 400, "{}", missing.raw);
    assert!(missing.raw.contains("skye-auth-token"), "{}", missing.raw);
    let wrong = caller()
        .with_header("skye-auth-token", "guess")
        .post(&url, &body)
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.raw);
    // Past auth: nothing is registered, so the model is not found.
    let right = caller()
        .with_header("skye-auth-token", "s3cret")
        .post(&url, &body)
        .await;
    assert_eq!(right.status, 404, "{}", right.raw);
}
