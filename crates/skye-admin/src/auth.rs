//! Token check for the admin API: when tokens are configured, every `/api` request must carry
//! one of them in `skye-auth-token` (the serving API's header) or `Authorization: Bearer`.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use skye_core::error::ErrorCode;
use std::sync::Arc;

use crate::ApiError;

/// Header carrying the token, as on the gRPC API.
pub const AUTH_HEADER: &str = "skye-auth-token";

/// The accepted tokens. Its `Debug` never shows them.
pub struct AuthTokens(Vec<String>);

impl std::fmt::Debug for AuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthTokens({} configured)", self.0.len())
    }
}

impl AuthTokens {
    pub fn new(tokens: Vec<String>) -> Self {
        AuthTokens(tokens)
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// Constant-time check against every configured token.
    pub fn accepts(&self, presented: &str) -> bool {
        self.0.iter().fold(false, |ok, t| {
            ok | constant_time_eq(t.as_bytes(), presented.as_bytes())
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(AUTH_HEADER) {
        return v.to_str().ok();
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub(crate) async fn require_token(
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
            Some(token) if !tokens.accepts(token) => {
                return ApiError::new(ErrorCode::Unauthenticated, "Invalid auth token")
                    .into_response();
            }
            Some(_) => {}
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly_and_never_print() {
        let t = AuthTokens::new(vec!["alpha".into(), "beta".into()]);
        assert!(t.accepts("beta"));
        assert!(!t.accepts("bet"));
        assert!(!t.accepts("beta "));
        assert!(!format!("{t:?}").contains("alpha"));
        assert!(!AuthTokens::new(vec![]).enabled());
    }
}
