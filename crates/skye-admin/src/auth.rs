//! Token check for the admin API: when tokens are configured, every `/api` request must carry
//! one of them in `skye-auth-token` (the serving API's header) or `Authorization: Bearer`.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skye_core::error::ErrorCode;
use std::sync::Arc;

use crate::ApiError;

pub use skye_core::auth::AuthTokens;
use skye_core::auth::TOKEN_HEADER as AUTH_HEADER;

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(AUTH_HEADER) {
        return v.to_str().ok();
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub async fn require_token(
    State(tokens): State<Arc<AuthTokens>>,
    req: Request,
    next: Next,
) -> Response {
    if tokens.enabled() {
        match presented(req.headers()) {
            None => {
                return ApiError::new(
                    ErrorCode::Unauthenticated,
                    format!("{AUTH_HEADER} header is missing"),
                )
                .into_response();
            }
            Some(token) if !tokens.accepts(token.as_bytes()) => {
                return ApiError::new(ErrorCode::Unauthenticated, "Invalid auth token")
                    .into_response();
            }
            Some(_) => {}
        }
    }
    next.run(req).await
}
