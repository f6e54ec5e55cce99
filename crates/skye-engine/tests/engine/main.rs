//! The engine's services against the embedded backends.

mod caching;
mod fuzz;
mod overload;
mod registry;
mod routing;
mod support;
