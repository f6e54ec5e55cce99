//! The engine's services against the embedded backends.

mod caching;
mod failures;
mod fuzz;
mod isolation;
mod overload;
mod payloadless;
mod registry;
mod routing;
mod support;
