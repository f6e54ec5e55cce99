//! The distributed cache trait (Redis in scale-out mode): the second layer behind the in-process
//! cache. A cache is an optimisation: callers treat every error as a miss and never fail a
//! request because of it.

use std::time::Duration;

use async_trait::async_trait;

/// Why a cache call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("distributed cache: {0}")]
pub struct CacheError(pub String);

/// Byte values under string keys, with a TTL.
#[async_trait]
pub trait DistributedCache: Send + Sync + std::fmt::Debug {
    /// The values of `keys`, in order (`None` = miss).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError>;

    /// Stores every entry for `ttl`.
    async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), CacheError>;
}

impl crate::error::HasErrorCode for CacheError {
    fn code(&self) -> crate::error::ErrorCode {
        crate::error::ErrorCode::Unavailable
    }
}
