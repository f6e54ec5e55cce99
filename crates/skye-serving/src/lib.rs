//! The gRPC serving API: `SkyeSimilarCandidateService` and `SkyeEmbeddingService` over the engine, plus the metadata/auth
//! interceptor. Handlers only convert, call the engine and map errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod auth;
mod conversions;
mod embedding;
pub mod metrics;
mod similar;

pub use auth::{AuthInterceptor, CALLER_ID_HEADER, TOKEN_HEADER};
pub use embedding::Embeddings;
pub use metrics::Metrics;
pub use similar::SimilarCandidates;

use skye_core::error::HasErrorCode;

/// Maps an engine error to a gRPC status through the one table in `skye-core`.
pub(crate) fn status<E: HasErrorCode + std::fmt::Display>(err: E) -> tonic::Status {
    let code = err.code();
    if code == skye_core::ErrorCode::Internal {
        tracing::error!(error = %err, "internal error");
        return tonic::Status::internal("internal error; see the server log");
    }
    tonic::Status::new(tonic::Code::from_i32(code.grpc_code()), err.to_string())
}
