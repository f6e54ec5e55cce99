//! REST/JSON search on the serving port, beside gRPC: `POST /api/v1/search/{similar,
//! embeddings,scores}` take and answer the proto messages in their proto3 JSON form
//! (`modelName`, `candidateIds`, an operator by name) and go through the very services gRPC
//! calls, so validation, caches, deadlines, metrics and auth are the same. Auth reads the
//! `skye-caller-id` and `skye-auth-token` headers; a deadline can be given as `grpc-timeout`.
//! A failure answers `{"error", "code"}` with the HTTP status of its code.

use std::future::Future;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;
use skye_core::ErrorCode;
use skye_proto::skye_embedding_service_server::SkyeEmbeddingService;
use skye_proto::skye_similar_candidate_service_server::SkyeSimilarCandidateService;
use tonic::metadata::MetadataMap;
use tonic::{Extensions, Request, Status};

use crate::{AuthInterceptor, Embeddings, SimilarCandidates};

#[derive(Debug, Clone)]
struct Rest {
    similar: SimilarCandidates,
    embeddings: Embeddings,
    auth: AuthInterceptor,
}

/// The three search routes over `similar` and `embeddings`, checked by `auth`.
///
/// Browsers may call them from another origin (the admin port's console): every answer allows
/// any origin, and a preflight `OPTIONS` names the headers a call may carry. Credentials are
/// headers, never cookies, so no origin gains anything a token does not give.
pub fn router(similar: SimilarCandidates, embeddings: Embeddings, auth: AuthInterceptor) -> Router {
    Router::new()
        .route(
            "/api/v1/search/similar",
            post(similar_candidates).options(preflight),
        )
        .route(
            "/api/v1/search/embeddings",
            post(embeddings_for_candidates).options(preflight),
        )
        .route(
            "/api/v1/search/scores",
            post(candidate_scores).options(preflight),
        )
        .layer(axum::middleware::map_response(any_origin))
        .with_state(Rest {
            similar,
            embeddings,
            auth,
        })
}

async fn any_origin(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

async fn preflight() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "content-type, skye-caller-id, skye-auth-token, grpc-timeout",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
}

async fn similar_candidates(State(r): State<Rest>, headers: HeaderMap, body: Bytes) -> Response {
    call(&r.auth, headers, &body, |req| {
        r.similar.get_similar_candidates(req)
    })
    .await
}

async fn embeddings_for_candidates(
    State(r): State<Rest>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    call(&r.auth, headers, &body, |req| {
        r.embeddings.get_embeddings_for_candidates(req)
    })
    .await
}

async fn candidate_scores(State(r): State<Rest>, headers: HeaderMap, body: Bytes) -> Response {
    call(&r.auth, headers, &body, |req| {
        r.embeddings.get_candidate_embedding_scores(req)
    })
    .await
}

/// Decodes the body, checks auth on the headers, calls the gRPC method and encodes its answer.
async fn call<Req, Resp, F, Fut>(
    auth: &AuthInterceptor,
    headers: HeaderMap,
    body: &[u8],
    method: F,
) -> Response
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    let message: Req = match serde_json::from_slice(body) {
        Ok(m) => m,
        Err(e) => {
            return error(
                ErrorCode::InvalidArgument,
                &format!("invalid JSON body: {e}"),
            );
        }
    };
    let metadata = MetadataMap::from_headers(headers);
    let checked = Request::from_parts(metadata.clone(), Extensions::default(), ());
    if let Err(status) = auth.check(checked) {
        return failure(&status);
    }
    let request = Request::from_parts(metadata, Extensions::default(), message);
    match method(request).await {
        Ok(answer) => axum::Json(answer.into_inner()).into_response(),
        Err(status) => failure(&status),
    }
}

fn failure(status: &Status) -> Response {
    let code = ErrorCode::from_grpc(status.code() as i32).unwrap_or(ErrorCode::Internal);
    error(code, status.message())
}

fn error(code: ErrorCode, message: &str) -> Response {
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({"error": message, "code": code.as_str()});
    (status, axum::Json(body)).into_response()
}
