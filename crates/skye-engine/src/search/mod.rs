//! The search side of the engine: request filters and the similar-candidates service.

pub mod filters;
pub mod similar;
