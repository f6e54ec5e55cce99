//! The gRPC serving API: `SkyeSimilarCandidateService` and `SkyeEmbeddingService` over the engine, plus the metadata/auth
//! interceptor and the same three RPCs as REST/JSON ([`rest`]). Handlers only convert, call the engine and map errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod auth;
mod conversions;
mod embedding;
pub mod metrics;
pub mod rest;
mod similar;

pub use auth::{AuthInterceptor, CALLER_ID_HEADER, TOKEN_HEADER};
pub use embedding::Embeddings;
pub use metrics::{CollectionFigures, Metrics};
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

/// The time a request may take: the client's `grpc-timeout` (gRPC over HTTP/2 spec: up to 8
/// digits and a unit H, M, S, m, u or n), else `default`; never more than `default` × 10.
pub(crate) fn deadline(
    meta: &tonic::metadata::MetadataMap,
    default: std::time::Duration,
) -> std::time::Duration {
    use std::time::Duration;
    let parsed = meta
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| {
            let (digits, unit) = t.split_at(t.len().checked_sub(1)?);
            if digits.is_empty() || digits.len() > 8 {
                return None;
            }
            let n: u64 = digits.parse().ok()?;
            Some(match unit {
                "H" => Duration::from_secs(n.saturating_mul(3600)),
                "M" => Duration::from_secs(n.saturating_mul(60)),
                "S" => Duration::from_secs(n),
                "m" => Duration::from_millis(n),
                "u" => Duration::from_micros(n),
                "n" => Duration::from_nanos(n),
                _ => return None,
            })
        });
    parsed.map_or(default, |d| d.min(default.saturating_mul(10)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn grpc_timeouts_parse_and_are_capped() {
        let d = Duration::from_secs(5);
        let meta = |v: &str| {
            let mut m = tonic::metadata::MetadataMap::new();
            m.insert("grpc-timeout", v.parse().unwrap());
            m
        };
        assert_eq!(
            super::deadline(&meta("200m"), d),
            Duration::from_millis(200)
        );
        assert_eq!(super::deadline(&meta("3S"), d), Duration::from_secs(3));
        assert_eq!(
            super::deadline(&meta("1H"), d),
            Duration::from_secs(50),
            "capped"
        );
        assert_eq!(super::deadline(&meta("12x"), d), d, "bad unit: the default");
        assert_eq!(
            super::deadline(&meta("123456789m"), d),
            d,
            "too many digits"
        );
        assert_eq!(super::deadline(&tonic::metadata::MetadataMap::new(), d), d);
    }
}
