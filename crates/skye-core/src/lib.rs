//! Skye's core: domain types, the configuration model, the config-tree codec and the traits that
//! backends implement. No I/O happens here.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod cache;
pub mod config_store;
pub mod domain;
pub mod error;
pub mod event_log;
pub mod hash;
pub mod json_compat;
pub mod registration;
pub mod settings;
pub mod snapshot;
pub mod storage;
pub mod time;
pub mod tree;
pub mod vector_store;

pub use error::{ErrorCode, FieldError, HasErrorCode, ValidationErrors};
