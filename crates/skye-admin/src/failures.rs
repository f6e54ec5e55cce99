//! The failure topics: `GET /api/v1/failures/{topic}` pages through the records a consumer
//! rejected, with the reason; `POST /api/v1/failures/{topic}/redrive` sends chosen ones back to
//! the topic they came from.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use skye_core::error::ErrorCode;
use skye_engine::ingest::failures;

use crate::registry::parse_body;
use crate::{AdminBody, AdminState, ApiError, LimitedBody};

type ApiResult = Result<Json<Value>, ApiError>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    #[serde(default)]
    partition: u32,
    #[serde(default)]
    from: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

pub(crate) async fn list(
    State(s): State<AdminState>,
    Path(topic): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("invalid query (partition, from, limit): {}", e.body_text()),
        )
    })?;
    let events = s.lifecycle.events();
    let page = failures::list(&**events, &topic, q.partition, q.from, q.limit)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!(page)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveBody {
    records: Vec<Pick>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pick {
    partition: u32,
    offset: u64,
}

fn redrive_body(bytes: &Bytes) -> Result<RedriveBody, ApiError> {
    serde_json::from_value(parse_body(bytes)?).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("invalid request: {e} (expected {{\"records\": [{{\"partition\": 0, \"offset\": 12}}]}})"),
        )
    })
}

pub(crate) async fn redrive(
    State(s): State<AdminState>,
    Path(topic): Path<String>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let body = redrive_body(&bytes)?;
    let picks: Vec<(u32, u64)> = body
        .records
        .iter()
        .map(|p| (p.partition, p.offset))
        .collect();
    let events = s.lifecycle.events();
    let done = failures::redrive(&**events, &topic, &picks)
        .await
        .map_err(ApiError::from_error)?;
    s.redriven.record(&topic, done.len());
    tracing::info!(topic = %topic, records = done.len(), "failure records re-driven");
    Ok(Json(json!({ "redriven": done })))
}
