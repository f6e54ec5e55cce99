//! The web console at `/console` on the admin port: three static files compiled into the
//! binary (no build step, nothing fetched) that read the admin API and `/metrics` for the
//! catalog (states, versions, points, recall, job progress, lag) and search through the
//! serving port's REST API. The page sends the caller id and token the user enters, so auth
//! applies as to any client.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/app.css");

/// The serving port of this process, once it is bound (`None` when serving runs elsewhere:
/// the page then uses the address its user enters).
pub type ServingPort = Arc<OnceLock<u16>>;

pub fn router(serving: ServingPort) -> Router {
    let file = |body: &'static str, kind: &'static str| {
        move || async move {
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
                .into_response()
        }
    };
    Router::new()
        .route("/console", get(file(INDEX, "text/html; charset=utf-8")))
        .route(
            "/console/app.js",
            get(file(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route(
            "/console/app.css",
            get(file(STYLE, "text/css; charset=utf-8")),
        )
        .route(
            "/console/config.json",
            get(move || {
                let port = serving.get().copied();
                async move { axum::Json(serde_json::json!({ "serving_port": port })) }
            }),
        )
}
