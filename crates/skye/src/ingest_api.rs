//! `POST /api/v1/ingest/{topic}` on the consumers port: events appended to a topic, for
//! clients without Kafka. The body is a JSON array of events, or, for embedding topics, Skye's
//! binary events (`Content-Type: application/x-skye-events`, what `skye ingest` sends: no float
//! is formatted or parsed on the way). The whole body is validated first (a bad event refuses
//! the request with its index) and appended in one durable write, so a 200 means every event is
//! stored and will be consumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use serde_json::value::RawValue;
use skye_admin::LimitedBody;
use skye_core::event_log::{EventLog, EventLogError, Produce};
use skye_engine::ingest::events::{EmbeddingEvent, RealtimeEvent};
use skye_engine::ingest::wire;

/// Largest accepted ingest body.
pub const MAX_INGEST_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct IngestState {
    pub log: Arc<dyn EventLog>,
    pub embedding_topics: Vec<String>,
    pub realtime_topics: Vec<String>,
    /// Requests refused because the event bus was full (shown on `/health`).
    pub refused: Arc<AtomicU64>,
    /// Store embedding events in Skye's binary encoding (`skye_engine::ingest::wire`): set
    /// when the log is the embedded one, whose only reader is Skye; Kafka topics keep the JSON
    /// other consumers read.
    pub binary_records: bool,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub async fn ingest(
    State(s): State<IngestState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
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
    let kind = if !embedding {
        EventKind::Realtime
    } else if s.binary_records {
        EventKind::EmbeddingBinary
    } else {
        EventKind::Embedding
    };
    let binary_body = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(wire::BINARY_CONTENT_TYPE));
    let records = match (binary_body, kind) {
        (true, EventKind::Realtime) => Err(Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{} bodies carry embedding events; send real-time events as a JSON array",
                wire::BINARY_CONTENT_TYPE
            ),
        )),
        (true, _) => binary_records(&body, &topic, kind),
        (false, _) => json_records(&body, &topic, kind),
    };
    let records = match records {
        Ok(records) => records,
        Err(Refused(status, message)) => return error(status, message),
    };
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

/// Why a body is refused before anything is stored: the status and the message.
#[derive(Debug)]
struct Refused(StatusCode, String);

impl Refused {
    fn bad(message: impl Into<String>) -> Self {
        Refused(StatusCode::BAD_REQUEST, message.into())
    }
}

/// What a topic's events are, and how the log stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Embedding,
    EmbeddingBinary,
    Realtime,
}

/// The records of a JSON array body. Each element is validated by decoding exactly the bytes
/// the client sent (no parse tree, no copy of it) and stored as those bytes (384 floats
/// formatted again cost more than the parse), or, for the embedded log, as the decoded event
/// in Skye's binary encoding, which the consumer reads without parsing a float.
fn json_records(body: &[u8], topic: &str, kind: EventKind) -> Result<Vec<Produce>, Refused> {
    let items: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(items) => items,
        Err(e) if e.is_data() => {
            return Err(Refused::bad("the body must be a JSON array of events"));
        }
        Err(e) => {
            return Err(Refused::bad(format!("invalid JSON body: {e}")));
        }
    };
    if items.is_empty() {
        return Err(Refused::bad("the array of events is empty"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let (key, value) = keyed(item.get(), kind).map_err(|e| {
                let what = if kind == EventKind::Realtime {
                    "a real-time"
                } else {
                    "an embedding"
                };
                Refused::bad(format!("event {i} is not {what} event: {e}"))
            })?;
            Ok(Produce::new(topic, key, value))
        })
        .collect()
}

/// The records of a body of binary embedding events ([`wire::BINARY_CONTENT_TYPE`]): each one
/// decoded to validate it, then stored as sent (embedded log) or as its JSON (Kafka).
fn binary_records(body: &[u8], topic: &str, kind: EventKind) -> Result<Vec<Produce>, Refused> {
    let records = wire::frames(body)
        .enumerate()
        .map(|(i, frame)| {
            let refuse =
                |e: String| Refused::bad(format!("event {i} is not a binary embedding event: {e}"));
            let frame = frame.map_err(refuse)?;
            let event = wire::decode_binary(frame).map_err(refuse)?;
            let value = match kind {
                EventKind::EmbeddingBinary => frame.to_vec(),
                _ => serde_json::to_vec(&event).map_err(|e| refuse(e.to_string()))?,
            };
            Ok(Produce::new(topic, embedding_key(event), value))
        })
        .collect::<Result<Vec<_>, Refused>>()?;
    if records.is_empty() {
        return Err(Refused::bad("the body holds no events"));
    }
    Ok(records)
}

/// The log key and stored value of one event (its text `json`).
fn keyed(json: &str, kind: EventKind) -> Result<(String, Vec<u8>), String> {
    let text = |e: serde_json::Error| e.to_string();
    if kind == EventKind::Realtime {
        let entity = serde_json::from_str::<RealtimeEvent>(json)
            .map_err(text)?
            .entity;
        return Ok((entity, json.as_bytes().to_vec()));
    }
    let e: EmbeddingEvent = serde_json::from_str(json).map_err(text)?;
    let value = match kind {
        EventKind::EmbeddingBinary => wire::encode_embedding(&e)?,
        _ => json.as_bytes().to_vec(),
    };
    Ok((embedding_key(e), value))
}

/// One logical job partition maps to one log partition, so an EOF always follows the data of
/// its partition (real-time events are keyed by entity).
fn embedding_key(e: EmbeddingEvent) -> String {
    if e.partition.is_empty() {
        e.candidate_id
    } else {
        format!("partition-{}", e.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::{EventKind, binary_records, keyed, wire};
    use axum::http::StatusCode;

    fn key(json: &str, kind: EventKind) -> Result<String, String> {
        keyed(json, kind).map(|(key, _)| key)
    }

    #[test]
    fn events_are_keyed_by_partition_candidate_or_entity_and_checked_in_full() {
        let event = |candidate: &str, partition: &str| {
            format!(
                r#"{{"entity":"e","model_name":"m","candidate_id":{candidate},"environment":"p",
                "embedding_store_version":1,"partition":{partition},
                "index_space":{{"embedding":[0.5, 1e-3],"operation":"ADD"}}}}"#
            )
        };
        let embedding = EventKind::Embedding;
        assert_eq!(key(&event("7", "\"3\""), embedding).unwrap(), "partition-3");
        assert_eq!(key(&event("\"a\"", "\"\""), embedding).unwrap(), "a");
        // The floats are decoded too: a bad one refuses the event.
        let bad = event("\"a\"", "1").replace("1e-3", "\"x\"");
        assert!(key(&bad, embedding).is_err());
        assert!(key(&bad, EventKind::EmbeddingBinary).is_err());
        assert!(key(r#"{"candidate_id": {"x": 1}}"#, embedding).is_err());
        let realtime = r#"{"timestamp":1,"type":"out_of_stock","entity":"catalog","data":[]}"#;
        assert_eq!(key(realtime, EventKind::Realtime).unwrap(), "catalog");
        assert!(key(r#""out_of_stock""#, EventKind::Realtime).is_err());
    }

    #[test]
    fn the_embedded_log_gets_the_binary_encoding_of_the_same_event() {
        let json = r#"{"entity":"e","model_name":"m","candidate_id":"a","partition":"2",
            "index_space":{"embedding":[0.5,0.25],"operation":"ADD","payload":{"n":3}}}"#;
        let (_, sent) = keyed(json, EventKind::Embedding).unwrap();
        assert_eq!(sent, json.as_bytes(), "kept as sent");
        let (key, stored) = keyed(json, EventKind::EmbeddingBinary).unwrap();
        assert_eq!(key, "partition-2");
        assert!(stored.starts_with(wire::MAGIC));
        assert_eq!(
            wire::decode_embedding(&stored).unwrap(),
            wire::decode_embedding(json.as_bytes()).unwrap()
        );
    }

    #[test]
    fn binary_bodies_are_validated_and_stored_in_the_log_s_format() {
        let json = r#"{"entity":"e","model_name":"m","candidate_id":"a","partition":"1",
            "index_space":{"embedding":[0.5,0.25],"operation":"ADD"}}"#;
        let event = wire::decode_embedding(json.as_bytes()).unwrap();
        let mut body = Vec::new();
        wire::push_frame(&mut body, &event).unwrap();
        wire::push_frame(&mut body, &event).unwrap();
        let embedded = binary_records(&body, "t", EventKind::EmbeddingBinary).unwrap();
        assert_eq!(embedded.len(), 2);
        assert_eq!(embedded[0].key, "partition-1");
        assert_eq!(
            embedded[0].value,
            wire::encode_embedding(&event).unwrap(),
            "stored as sent"
        );
        let kafka = binary_records(&body, "t", EventKind::Embedding).unwrap();
        assert_eq!(kafka[1].value[0], b'{', "JSON for other consumers");
        assert_eq!(wire::decode_embedding(&kafka[1].value).unwrap(), event);

        let refused =
            |body: &[u8]| binary_records(body, "t", EventKind::EmbeddingBinary).unwrap_err();
        let cut = refused(&body[..body.len() - 3]);
        assert_eq!(cut.0, StatusCode::BAD_REQUEST);
        assert!(
            cut.1.starts_with("event 1 ") && cut.1.contains("ends inside"),
            "{}",
            cut.1
        );
        assert!(refused(&[]).1.contains("no events"));
        let mut not_binary = 2u32.to_le_bytes().to_vec();
        not_binary.extend_from_slice(b"{}");
        let json_frame = refused(&not_binary);
        assert_eq!(json_frame.0, StatusCode::BAD_REQUEST);
        assert!(json_frame.1.contains("marker"), "{}", json_frame.1);
    }
}
