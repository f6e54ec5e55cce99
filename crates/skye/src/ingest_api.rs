//! `POST /api/v1/ingest/{topic}` on the consumers port: a JSON array of events appended to a
//! topic, for clients without Kafka. The whole array is validated first (a bad element refuses
//! the request with its index) and appended in one durable write, so a 200 means every event is
//! stored and will be consumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use skye_admin::LimitedBody;
use skye_core::event_log::{EventLog, EventLogError, Produce};
use skye_engine::ingest::events::{EmbeddingEvent, RealtimeEvent};

/// Largest accepted ingest body.
pub const MAX_INGEST_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct IngestState {
    pub log: Arc<dyn EventLog>,
    pub embedding_topics: Vec<String>,
    pub realtime_topics: Vec<String>,
    /// Requests refused because the event bus was full (shown on `/health`).
    pub refused: Arc<AtomicU64>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub async fn ingest(
    State(s): State<IngestState>,
    Path(topic): Path<String>,
    LimitedBody(body): LimitedBody<MAX_INGEST_BYTES>,
) -> Response {
    let embedding = s.embedding_topics.contains(&topic);
    let realtime = s.realtime_topics.contains(&topic);
    if !embedding && !realtime {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "topic '{topic}' is not consumed here; embedding topics: {:?}, real-time topics: {:?}",
                s.embedding_topics, s.realtime_topics
            ),
        );
    }
    let items: Vec<Value> = match serde_json::from_slice(&body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON array of events",
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    if items.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the array of events is empty");
    }
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let key = if embedding {
            match serde_json::from_value::<EmbeddingEvent>(item.clone()) {
                // One logical job partition maps to one log partition, so an EOF always
                // follows the data of its partition.
                Ok(e) if !e.partition.is_empty() => format!("partition-{}", e.partition),
                Ok(e) => e.candidate_id,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("event {i} is not an embedding event: {e}"),
                    );
                }
            }
        } else {
            match serde_json::from_value::<RealtimeEvent>(item.clone()) {
                Ok(e) => e.entity,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("event {i} is not a real-time event: {e}"),
                    );
                }
            }
        };
        let value = match serde_json::to_vec(&item) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("event {i}: {e}")),
        };
        records.push(Produce::new(topic.clone(), key, value));
    }
    let n = records.len();
    match s.log.produce(records).await {
        Ok(offsets) => Json(json!({
            "message": "Events accepted",
            "accepted": n,
            "first_offset": offsets.first().map(|o| o.1),
            "last_offset": offsets.last().map(|o| o.1),
        }))
        .into_response(),
        Err(e) => {
            use skye_core::error::HasErrorCode;
            if matches!(e, EventLogError::Backlogged { .. }) {
                s.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic = %topic, error = %e, "ingest refused: the event log is full");
            }
            let status = StatusCode::from_u16(e.code().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, format!("events not stored: {e}"))
        }
    }
}
