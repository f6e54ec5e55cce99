//! The engine's services against the embedded backends.

mod overload;
mod registry;
