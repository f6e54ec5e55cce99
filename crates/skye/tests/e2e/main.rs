//! End-to-end tests: the real `skye` binary as a child process, driven over real HTTP.

mod admin;
mod catalog;
mod cli;
mod crash;
mod drills;
mod integrity;
mod lifecycle;
mod malformed;
mod observability;
mod params;
mod qdrant;
mod scaleout;
mod serving;
mod snapshots;
mod support;
#[cfg(feature = "otlp")]
mod traces;
