//! Wire shapes of the ingestion topics (spec AC §4.2, §4.6, §4.7).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use skye_core::json_compat::string_or_number;

/// The candidate id that marks the end of a job partition.
pub const EOF_ID: &str = "EOF";

/// One embedding event (spec AC §4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct EmbeddingEvent {
    pub entity: String,
    pub model_name: String,
    #[serde(deserialize_with = "string_or_number")]
    pub candidate_id: String,
    pub environment: String,
    pub embedding_store_version: i64,
    #[serde(deserialize_with = "string_or_number")]
    pub partition: String,
    pub index_space: IndexSpace,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_space: Option<SearchSpace>,
}

impl EmbeddingEvent {
    pub fn is_eof(&self) -> bool {
        self.candidate_id == EOF_ID
    }
}

/// `index_space` of an embedding event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct IndexSpace {
    #[serde(deserialize_with = "null_as_default")]
    pub embedding: Vec<f32>,
    #[serde(deserialize_with = "null_as_default")]
    pub variants_version_map: BTreeMap<String, i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub variants_index_map: BTreeMap<String, bool>,
    pub operation: String,
    /// Raw payload values as text (arrays as JSON text); numbers and booleans are accepted and
    /// rendered as text.
    #[serde(deserialize_with = "text_map")]
    pub payload: BTreeMap<String, String>,
}

/// `search_space` of an embedding event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SearchSpace {
    #[serde(deserialize_with = "null_as_default")]
    pub embedding: Vec<f32>,
}

/// What an embedding event does to a variant's collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Add,
    Delete,
    UpsertPayload,
}

impl Operation {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ADD" | "UPSERT" => Ok(Operation::Add),
            "DELETE" => Ok(Operation::Delete),
            "UPSERT_PAYLOAD" => Ok(Operation::UpsertPayload),
            _ => Err(format!(
                "unknown operation '{s}', expected ADD, DELETE or UPSERT_PAYLOAD"
            )),
        }
    }
}

/// A real-time aggregator event (spec AC §4.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RealtimeEvent {
    pub timestamp: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub entity: String,
    #[serde(deserialize_with = "null_as_default")]
    pub data: Vec<RealtimeCandidate>,
}

/// One candidate of a real-time event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RealtimeCandidate {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub data: Vec<Label>,
}

/// One column update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Label {
    pub label: String,
    #[serde(deserialize_with = "string_or_number")]
    pub value: String,
}

/// One delta event (spec AC §4.7): PascalCase keys as the original; the meaningless
/// `TopicPartition` is accepted and not written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeltaEvent {
    pub entity: String,
    pub model: String,
    pub variant: String,
    pub version: i64,
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(deserialize_with = "text_map")]
    pub payload: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub vectors: Vec<f32>,
    pub event_type: DeltaKind,
}

/// What a delta event does to a variant's collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DeltaKind {
    /// The item (re-)enters the collection with its vector and full payload.
    #[default]
    #[serde(rename = "UPSERT")]
    Upsert,
    /// The item leaves the collection.
    #[serde(rename = "DELETE")]
    Delete,
    /// Payload fields of an item in the collection change.
    #[serde(rename = "UPSERT_PAYLOAD")]
    UpsertPayload,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A map whose values may be strings, numbers, booleans or arrays; all rendered as text.
fn text_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw.into_iter().map(|(k, v)| (k, payload_text(v))).collect())
}

/// A payload value as the text events carry: strings as they are, null as empty, anything
/// else (numbers, booleans, arrays, a geo point `{"lat": …, "lon": …}`) as its JSON text; the
/// field's schema decides whether it converts.
pub fn payload_text(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_decodes() {
        let e: EmbeddingEvent = serde_json::from_str(
            r#"{"entity":"catalog","model_name":"intent_model","candidate_id":"48869419",
            "environment":"prod","embedding_store_version":3,"partition":"0",
            "index_space":{"embedding":[0.036,-0.048,0.11],
              "variants_version_map":{"organic":4,"ad":2},
              "variants_index_map":{"organic":true,"ad":false},
              "operation":"ADD","payload":{"sscat_id":"700","tags":"[\"a\",\"b\"]","n":5}},
            "search_space":{"embedding":[0.036,-0.048,0.11]}}"#,
        )
        .unwrap();
        assert_eq!(e.index_space.variants_version_map["organic"], 4);
        assert_eq!(e.index_space.payload["n"], "5");
        assert_eq!(e.index_space.payload["tags"], r#"["a","b"]"#);
        assert!(!e.is_eof());
        let eof: EmbeddingEvent =
            serde_json::from_str(r#"{"candidate_id":"EOF","partition":2,"search_space":null}"#)
                .unwrap();
        assert!(eof.is_eof());
        assert_eq!(eof.partition, "2");
    }

    #[test]
    fn realtime_and_delta_shapes_decode() {
        let r: RealtimeEvent = serde_json::from_str(
            r#"{"timestamp":1719308350,"type":"catalog_status","entity":"catalog",
            "data":[{"id":"125138466","data":[{"label":"is_live_ad","value":"true"},
            {"label":"out_of_stock","value":"false"}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.data[0].data[1].label, "out_of_stock");
        let d: DeltaEvent = serde_json::from_str(
            r#"{"Entity":"catalog","Model":"m","Variant":"organic","Version":4,"Id":"1",
            "Payload":{"is_live_ad":"true"},"Vectors":[0.1,0.2],"EventType":"UPSERT",
            "TopicPartition":{"Topic":null,"Partition":0}}"#,
        )
        .unwrap();
        assert_eq!(d.event_type, DeltaKind::Upsert);
        assert_eq!(d.vectors, [0.1, 0.2]);
        let unknown = serde_json::from_str::<DeltaEvent>(r#"{"EventType":"MERGE"}"#).unwrap_err();
        assert!(unknown.to_string().contains("MERGE"), "{unknown}");
        assert_eq!(
            serde_json::to_value(DeltaKind::UpsertPayload).unwrap(),
            "UPSERT_PAYLOAD"
        );
    }
}
