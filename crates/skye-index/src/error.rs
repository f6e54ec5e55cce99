//! Errors of the vector engine.

/// What went wrong in a collection operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    #[error("vector of '{id}' has {got} dimensions, the collection has {expected}")]
    DimensionMismatch {
        id: String,
        expected: usize,
        got: usize,
    },
    #[error("query vector has {got} dimensions, the collection has {expected}")]
    QueryDimension { expected: usize, got: usize },
    #[error("vector of '{0}' contains NaN or infinity")]
    NonFinite(String),
    #[error("query vector contains NaN or infinity")]
    NonFiniteQuery,
    #[error("point id must not be empty")]
    EmptyId,
    #[error("point '{0}' not found")]
    PointNotFound(String),
    #[error("too many distinct payload fields (at most {0})")]
    TooManyFields(usize),
    #[error("payload of '{0}' is too large (at most 4 GiB encoded)")]
    PayloadTooLarge(String),
    #[error("collection is full ({0} points)")]
    Full(usize),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt collection file {path}: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("the search was stopped: its caller has gone")]
    Cancelled,
}

impl IndexError {
    /// Whether the caller's input is at fault (as opposed to the engine or the disk).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            IndexError::Storage(_)
                | IndexError::Corrupt { .. }
                | IndexError::Full(_)
                | IndexError::Cancelled
        )
    }
}
