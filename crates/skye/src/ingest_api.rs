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
use serde_json::json;
use serde_json::value::RawValue;
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
    // Each element is kept as the bytes the client sent (no parse tree, no copy of it, no
    // re-serialisation: 384 floats formatted again cost more than the parse) and validated by
    // decoding exactly those bytes, as the consumer will.
    let items: Vec<&RawValue> = match serde_json::from_slice(&body) {
        Ok(items) => items,
        Err(e) if e.is_data() => {
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
        let key = match event_key(item.get(), embedding) {
            Ok(key) => key,
            Err(e) => {
                let kind = if embedding {
                    "an embedding"
                } else {
                    "a real-time"
                };
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("event {i} is not {kind} event: {e}"),
                );
            }
        };
        records.push(Produce::new(
            topic.clone(),
            key,
            item.get().as_bytes().to_vec(),
        ));
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

/// The log key of one event (its text `json`): one logical job partition maps to one log
/// partition, so an EOF always follows the data of its partition; real-time events are keyed by
/// entity.
fn event_key(json: &str, embedding: bool) -> Result<String, serde_json::Error> {
    if embedding {
        let e: EmbeddingEvent = serde_json::from_str(json)?;
        Ok(if e.partition.is_empty() {
            e.candidate_id
        } else {
            format!("partition-{}", e.partition)
        })
    } else {
        serde_json::from_str::<RealtimeEvent>(json).map(|e| e.entity)
    }
}

#[cfg(test)]
mod tests {
    use super::event_key;

    #[test]
    fn events_are_keyed_by_partition_candidate_or_entity_and_checked_in_full() {
        let event = |candidate: &str, partition: &str| {
            format!(
                r#"{{"entity":"e","model_name":"m","candidate_id":{candidate},"environment":"p",
                "embedding_store_version":1,"partition":{partition},
                "index_space":{{"embedding":[0.5, 1e-3],"operation":"ADD"}}}}"#
            )
        };
        assert_eq!(
            event_key(&event("7", "\"3\""), true).unwrap(),
            "partition-3"
        );
        assert_eq!(event_key(&event("\"a\"", "\"\""), true).unwrap(), "a");
        // The floats are decoded too: a bad one refuses the event.
        let bad = event("\"a\"", "1").replace("1e-3", "\"x\"");
        assert!(event_key(&bad, true).is_err());
        assert!(event_key(r#"{"candidate_id": {"x": 1}}"#, true).is_err());
        let realtime = r#"{"timestamp":1,"type":"out_of_stock","entity":"catalog","data":[]}"#;
        assert_eq!(event_key(realtime, false).unwrap(), "catalog");
        assert!(event_key(r#""out_of_stock""#, false).is_err());
    }
}
