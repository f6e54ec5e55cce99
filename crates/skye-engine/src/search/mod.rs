//! The search side of the engine: request filters today; the similar-candidates service next.

pub mod filters;
