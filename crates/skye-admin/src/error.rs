//! JSON errors: `{"error": "...", "code": "...", "details": [...]}` with the status of the
//! error's [`ErrorCode`]. Internal details are logged, not returned.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
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
