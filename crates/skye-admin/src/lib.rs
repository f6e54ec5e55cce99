//! The admin HTTP API (axum): registry (spec AC §1.1) and lifecycle (§1.2) endpoints of the
//! original plus read endpoints and `reset-variant-state`. Handlers are thin: decode, call the engine, map the error.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod auth;
mod error;
mod failures;
mod lifecycle;
mod registry;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use skye_engine::lifecycle::Lifecycle;
use skye_engine::registry::Registry;

pub use auth::{AuthTokens, require_token};
pub use error::{ApiError, LimitedBody};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A request body of the admin API.
pub(crate) type AdminBody = LimitedBody<MAX_BODY_BYTES>;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub registry: Arc<Registry>,
    pub lifecycle: Arc<Lifecycle>,
    pub auth: Arc<AuthTokens>,
    /// Records re-driven per failure topic (read by the metrics).
    pub redriven: Arc<skye_engine::ingest::failures::RedriveCounts>,
}

/// The admin router: `/health` (open) and `/api/v1/...` (token-checked when tokens are set).
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route(
            "/api/v1/model/register-store",
            post(registry::register_store),
        )
        .route(
            "/api/v1/model/register-frequency",
            post(registry::register_frequency),
        )
        .route(
            "/api/v1/model/register-entity",
            post(registry::register_entity),
        )
        .route(
            "/api/v1/model/register-model",
            post(registry::register_model),
        )
        .route(
            "/api/v1/model/register-variant",
            post(registry::register_variant),
        )
        .route("/api/v1/entities", get(registry::list_entities))
        .route("/api/v1/frequencies", get(registry::list_frequencies))
        .route("/api/v1/stores", get(registry::list_stores))
        .route("/api/v1/models/{entity}/{model}", get(registry::get_model))
        .route(
            "/api/v1/models/{entity}/{model}/variants/{variant}",
            get(registry::get_variant),
        )
        .route(
            "/api/v1/qdrant/create-collection",
            post(lifecycle::create_collection),
        )
        .route(
            "/api/v1/qdrant/process-models-with-freq",
            post(lifecycle::process_models_with_freq),
        )
        .route(
            "/api/v1/qdrant/process-model",
            post(lifecycle::process_model),
        )
        .route(
            "/api/v1/qdrant/process-multi-variant",
            post(lifecycle::process_multi_variant),
        )
        .route(
            "/api/v1/qdrant/process-multi-variant-force-reset",
            post(lifecycle::process_multi_variant_force_reset),
        )
        .route(
            "/api/v1/qdrant/promote-variant",
            post(lifecycle::promote_variant),
        )
        .route(
            "/api/v1/qdrant/trigger-indexing",
            post(lifecycle::trigger_indexing),
        )
        .route(
            "/api/v1/qdrant/reset-variant-state",
            post(lifecycle::reset_variant_state),
        )
        .route(
            "/api/v1/qdrant/create-snapshot",
            post(lifecycle::create_snapshot),
        )
        .route(
            "/api/v1/qdrant/list-snapshots",
            post(lifecycle::list_snapshots),
        )
        .route(
            "/api/v1/qdrant/delete-snapshot",
            post(lifecycle::delete_snapshot),
        )
        .route(
            "/api/v1/qdrant/recover-snapshot",
            post(lifecycle::recover_snapshot),
        )
        .route("/api/v1/failures/{topic}", get(failures::list))
        .route("/api/v1/failures/{topic}/redrive", post(failures::redrive))
        .route_layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"message": "Application is up!!!"}))
}
