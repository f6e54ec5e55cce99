//! End-to-end tests: the real `skye` binary as a child process, driven over real HTTP.

mod admin;
mod catalog;
mod cli;
mod console;
mod crash;
mod drills;
mod integrity;
mod lifecycle;
mod malformed;
mod observability;
mod openapi;
mod params;
mod qdrant;
mod rest;
mod scaleout;
mod serving;
mod snapshots;
mod support;
#[cfg(feature = "otlp")]
mod traces;
