//! The semantic error codes shared by every Skye crate, and the one table that maps them to
//! transport statuses.
//!
//! Each library crate has its own error enum; every variant of those enums maps to one
//! [`ErrorCode`]. Transports (axum, tonic) never look at the concrete error: they ask for the code
//! and use [`ErrorCode::http_status`] / [`ErrorCode::grpc_code`].

use std::fmt;

/// What went wrong, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or violates a documented constraint.
    InvalidArgument,
    /// The named entity, model, variant, store or collection does not exist.
    NotFound,
    /// The thing being created exists already.
    AlreadyExists,
    /// The request is well formed but the system is not in a state that allows it
    /// (e.g. a variant that is still ingesting).
    FailedPrecondition,
    /// Missing or wrong credentials.
    Unauthenticated,
    /// Too much load or a bounded resource is full; retry later.
    ResourceExhausted,
    /// A dependency is down or a circuit is open; retry later.
    Unavailable,
    /// A deadline passed before the work finished.
    Timeout,
    /// The caller went away.
    Cancelled,
    /// A bug or an unexpected backend failure. Details are logged, not returned.
    Internal,
}

/// gRPC status codes, as numbered by the gRPC specification. Kept here as plain numbers so that
/// `skye-core` does not depend on tonic.
pub mod grpc {
    pub const OK: i32 = 0;
    pub const CANCELLED: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Unauthenticated,
        ErrorCode::ResourceExhausted,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::Internal,
    ];

    /// The HTTP status used by the admin and consumers HTTP APIs.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists => 409,
            ErrorCode::FailedPrecondition => 409,
            ErrorCode::ResourceExhausted => 429,
            ErrorCode::Cancelled => 499,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// The gRPC status code used by the serving API.
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorCode::InvalidArgument => grpc::INVALID_ARGUMENT,
            ErrorCode::NotFound => grpc::NOT_FOUND,
            ErrorCode::AlreadyExists => grpc::ALREADY_EXISTS,
            ErrorCode::FailedPrecondition => grpc::FAILED_PRECONDITION,
            ErrorCode::Unauthenticated => grpc::UNAUTHENTICATED,
            ErrorCode::ResourceExhausted => grpc::RESOURCE_EXHAUSTED,
            ErrorCode::Unavailable => grpc::UNAVAILABLE,
            ErrorCode::Timeout => grpc::DEADLINE_EXCEEDED,
            ErrorCode::Cancelled => grpc::CANCELLED,
            ErrorCode::Internal => grpc::INTERNAL,
        }
    }

    /// The code of a gRPC status (`None` for OK and the codes Skye never sends; a transport
    /// answering over HTTP treats those as internal).
    pub fn from_grpc(code: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.grpc_code() == code)
    }

    /// Stable lower-case name, used as a metric label and in JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::FailedPrecondition => "failed_precondition",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::ResourceExhausted => "resource_exhausted",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every crate's error enum.
pub trait HasErrorCode {
    /// The semantic code of this error.
    fn code(&self) -> ErrorCode;
}

/// What went wrong in a backend, and the error that caused it (a driver's, an I/O error), kept
/// so that logs and callers can walk the chain with [`std::error::Error::source`]. Backend
/// error enums carry it in their `Unavailable` and `Internal` kinds: the kind decides the
/// status and the retry, the cause explains.
#[derive(Clone)]
pub struct Cause {
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// `message`, caused by `source`.
    pub fn new(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Cause {
            message: message.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// The error itself, described by its own text.
    pub fn of(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause::new(source.to_string(), source)
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause {
            message,
            source: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::from(message.to_string())
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Cause");
        d.field("message", &self.message);
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

/// Two causes are equal when they say the same (their sources are not comparable).
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for Cause {}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// One failed check of a validation pass. Validation reports every failure at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `model_config.vector_dimension`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The result of a validation pass: empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a failure.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Appends another pass's failures, prefixing their field paths.
    pub fn extend_prefixed(&mut self, prefix: &str, other: ValidationErrors) {
        for err in other.0 {
            let field = if err.field.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{}", err.field)
            };
            self.0.push(FieldError {
                field,
                message: err.message,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing failed.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if err.field.is_empty() {
                f.write_str(&err.message)?;
            } else {
                write!(f, "{}: {}", err.field, err.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_a_distinct_grpc_code_and_an_error_http_status() {
        let all = ErrorCode::ALL;
        for c in all {
            assert_eq!(ErrorCode::from_grpc(c.grpc_code()), Some(c));
        }
        assert_eq!(ErrorCode::from_grpc(grpc::OK), None);
        let mut grpc_codes: Vec<i32> = all.iter().map(|c| c.grpc_code()).collect();
        grpc_codes.sort_unstable();
        grpc_codes.dedup();
        assert_eq!(grpc_codes.len(), all.len());
        for code in all {
            assert!(code.http_status() >= 400, "{code} maps to a success status");
            assert_ne!(code.grpc_code(), grpc::OK);
        }
    }

    #[test]
    fn causes_keep_their_source() {
        use std::error::Error;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let cause = Cause::new("cannot reach qdrant:6334", io);
        assert_eq!(cause.to_string(), "cannot reach qdrant:6334");
        assert_eq!(cause.source().unwrap().to_string(), "refused");
        assert_eq!(cause, Cause::from("cannot reach qdrant:6334"));
        assert!(Cause::from("plain").source().is_none());
    }

    #[test]
    fn validation_errors_render_every_failure() {
        let mut errs = ValidationErrors::new();
        errs.push("model", "is required");
        let mut inner = ValidationErrors::new();
        inner.push("vector_dimension", "must be positive");
        errs.extend_prefixed("model_config", inner);
        assert_eq!(
            errs.to_string(),
            "model: is required; model_config.vector_dimension: must be positive"
        );
        assert!(errs.into_result().is_err());
    }
}
