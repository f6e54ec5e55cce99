//! JSON errors: `{"error": "...", "code": "...", "details": [...]}` with the status of the
//! error's [`ErrorCode`]. Internal details are logged, not returned.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Serialize;
use skye_core::error::{ErrorCode, FieldError, HasErrorCode, ValidationErrors};

/// An error answer of the HTTP API.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<FieldError>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [FieldError],
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Maps any crate error; internal errors are logged and answered generically.
    pub fn from_error<E: HasErrorCode + std::fmt::Display>(err: E) -> Self {
        let code = err.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %err, "internal error");
            return ApiError::new(code, "internal error; see the server log");
        }
        ApiError::new(code, err.to_string())
    }

    pub fn invalid(errors: ValidationErrors) -> Self {
        ApiError {
            code: ErrorCode::InvalidArgument,
            message: errors.to_string(),
            details: errors.0,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Body {
            error: &self.message,
            code: self.code.as_str(),
            details: &self.details,
        };
        (status, Json(body)).into_response()
    }
}

pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let body = Body {
        error: &format!("method {method} is not allowed on {}", uri.path()),
        code: "method_not_allowed",
        details: &[],
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

impl ApiError {
    /// A response object that failed to serialise: a bug, so internal.
    pub(crate) fn from_serde(err: serde_json::Error) -> Self {
        tracing::error!(error = %err, "response serialisation failed");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log")
    }
}

/// A request body of at most `LIMIT` bytes. Unlike axum's `Bytes` extractor, whose rejections
/// are plain text, a body that is too large or cannot be read is answered with the API's JSON
/// error (413 with the limit, or 400).
#[derive(Debug)]
pub struct LimitedBody<const LIMIT: usize>(pub Bytes);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for LimitedBody<LIMIT> {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        let too_large = || {
            let body = Body {
                error: &format!("request body is larger than the limit of {LIMIT} bytes"),
                code: "payload_too_large",
                details: &[],
            };
            (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
        };
        let mut body = req.into_body();
        let mut bytes = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("cannot read the request body: {e}"),
                )
                .into_response()
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen <= LIMIT {
                bytes.extend_from_slice(&data);
            } else if seen > LIMIT.saturating_add(DRAIN_BYTES) {
                // Far too large: answer now (the connection closes under the sender).
                return Err(too_large());
            }
        }
        if seen > LIMIT {
            // Read to its end, so the sender sees the 413 rather than a reset connection.
            return Err(too_large());
        }
        Ok(LimitedBody(Bytes::from(bytes)))
    }
}

/// A body at most this much over the limit is read to its end before the 413 is sent.
const DRAIN_BYTES: usize = 8 << 20;
