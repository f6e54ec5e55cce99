//! Failure topics an operator can use: page through the records a consumer gave up on, each
//! with the reason it was rejected for, and send chosen ones back to the topic they came from
//! once the cause is fixed (a schema field added, a model registered).
//!
//! Reading goes through [`EventLog::read`], which joins no consumer group: listing a failure
//! topic leaves nothing behind that retention would wait for.

use std::collections::BTreeMap;

use serde::Serialize;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::event_log::{
    ERROR_HEADER, EventLog, EventLogError, Produce, REJECTION_HEADERS, Record, SOURCE_HEADER,
    SOURCE_TOPIC_HEADER, topics,
};

/// Each failure topic and the topic its records come from when they do not say.
pub const FAILURE_TOPICS: [(&str, &str); 3] = [
    (topics::EMBEDDING_FAILURE, topics::EMBEDDING),
    (topics::REALTIME_RETRY, topics::REALTIME),
    (topics::REALTIME_DELTA_FAILURE, topics::REALTIME_DELTA),
];

/// Records re-driven from each failure topic since the process started (the metrics' count).
#[derive(Debug, Default)]
pub struct RedriveCounts([std::sync::atomic::AtomicU64; FAILURE_TOPICS.len()]);

impl RedriveCounts {
    pub fn record(&self, failure_topic: &str, records: usize) {
        if let Some(i) = FAILURE_TOPICS.iter().position(|(t, _)| *t == failure_topic) {
            self.0[i].fetch_add(records as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// `(failure topic, records re-driven)` for every failure topic.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        FAILURE_TOPICS
            .iter()
            .zip(&self.0)
            .map(|((t, _), n)| (*t, n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }
}

/// Most records one page or one re-drive may name.
pub const MAX_PAGE: usize = 1_000;

/// Header a re-driven record carries: where it was re-driven from (`topic/partition@offset`).
pub const REDRIVEN_HEADER: &str = "skye-redriven-from";

#[derive(Debug, thiserror::Error)]
pub enum FailureError {
    #[error(
        "'{0}' is not a failure topic (one of skye.embedding-failure, skye.realtime-retry, skye.realtime-delta-failure)"
    )]
    NotAFailureTopic(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("no record at {0}")]
    NotFound(String),
    #[error(transparent)]
    Log(#[from] EventLogError),
}

impl HasErrorCode for FailureError {
    fn code(&self) -> ErrorCode {
        match self {
            FailureError::NotAFailureTopic(_) | FailureError::InvalidArgument(_) => {
                ErrorCode::InvalidArgument
            }
            FailureError::NotFound(_) => ErrorCode::NotFound,
            FailureError::Log(e) => e.code(),
        }
    }
}

/// One page of a failure topic's partition.
#[derive(Debug, Serialize)]
pub struct FailurePage {
    pub topic: String,
    pub partition: u32,
    pub partitions: u32,
    pub records: Vec<FailedRecord>,
    /// The offset to ask for next; equal to `end` when the page reached it.
    pub next: u64,
    /// The partition's end offset when the page was read.
    pub end: u64,
}

/// A rejected record: where it is, why it was rejected, where it came from, and its event.
#[derive(Debug, Serialize)]
pub struct FailedRecord {
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    /// The reason the consumer gave (`skye-error`).
    pub error: Option<String>,
    /// `topic/partition@offset` of the original record.
    pub source: Option<String>,
    /// The event as JSON, or as text when it is not JSON.
    pub value: serde_json::Value,
}

/// The default source topic of `topic`, or an error when it is not a failure topic.
fn source_of(topic: &str) -> Result<&'static str, FailureError> {
    FAILURE_TOPICS
        .iter()
        .find(|(failure, _)| *failure == topic)
        .map(|(_, source)| *source)
        .ok_or_else(|| FailureError::NotAFailureTopic(topic.to_string()))
}

/// Up to `limit` records of a failure topic's partition from offset `from` on.
pub async fn list(
    log: &dyn EventLog,
    topic: &str,
    partition: u32,
    from: u64,
    limit: usize,
) -> Result<FailurePage, FailureError> {
    source_of(topic)?;
    if limit == 0 || limit > MAX_PAGE {
        return Err(FailureError::InvalidArgument(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let partitions = log.partitions(topic).await?.unwrap_or(0);
    if partitions == 0 {
        // Nothing was ever rejected to it.
        return Ok(FailurePage {
            topic: topic.to_string(),
            partition,
            partitions,
            records: Vec::new(),
            next: 0,
            end: 0,
        });
    }
    if partition >= partitions {
        return Err(FailureError::InvalidArgument(format!(
            "{topic} has {partitions} partition(s); there is no partition {partition}"
        )));
    }
    let end = log.end_offset(topic, partition).await?;
    let records = log.read(topic, partition, from, limit).await?;
    let next = records.last().map_or(from.min(end), |r| r.offset + 1);
    Ok(FailurePage {
        topic: topic.to_string(),
        partition,
        partitions,
        records: records.iter().map(failed).collect(),
        next,
        end,
    })
}

fn failed(r: &Record) -> FailedRecord {
    FailedRecord {
        partition: r.partition,
        offset: r.offset,
        key: r.key.clone(),
        error: r.header(ERROR_HEADER).map(str::to_string),
        source: r.header(SOURCE_HEADER).map(str::to_string),
        value: shown(&r.value),
    }
}

/// A failed record's value as JSON: the event it holds (an embedding event in Skye's binary
/// encoding is shown as its JSON), else its bytes as text.
fn shown(value: &[u8]) -> serde_json::Value {
    match super::wire::decode_binary(value) {
        Ok(event) => serde_json::to_value(event).unwrap_or_default(),
        Err(_) => serde_json::from_slice(value)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(value).into())),
    }
}

/// One record sent back: where it was and where it went.
#[derive(Debug, Serialize)]
pub struct Redriven {
    pub partition: u32,
    pub offset: u64,
    pub to_topic: String,
    pub to_partition: u32,
    pub to_offset: u64,
}

/// The records at `picks`, read in runs: one read covers every pick of a partition within
/// [`MAX_PAGE`] offsets of the run's first (a block of failures re-driven together is one read,
/// where a read per record would open a Kafka client for each).
async fn read_picks(
    log: &dyn EventLog,
    topic: &str,
    picks: &[(u32, u64)],
) -> Result<BTreeMap<(u32, u64), Record>, FailureError> {
    let mut wanted: Vec<(u32, u64)> = picks.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut read = BTreeMap::new();
    let mut i = 0;
    while let Some(&(partition, first)) = wanted.get(i) {
        let run = wanted[i..]
            .iter()
            .take_while(|(p, o)| *p == partition && *o - first < MAX_PAGE as u64)
            .count();
        let last = wanted[i + run - 1].1;
        let span = usize::try_from(last - first + 1).unwrap_or(MAX_PAGE);
        for r in log.read(topic, partition, first, span).await? {
            if wanted[i..i + run]
                .binary_search(&(partition, r.offset))
                .is_ok()
            {
                read.insert((partition, r.offset), r);
            }
        }
        i += run;
    }
    Ok(read)
}

/// Produces the records at `picks` (`(partition, offset)`) of failure topic `topic` again to the
/// topic each came from, without the rejection's headers. Every pick is found before anything
/// is produced: one that is missing fails the whole call.
pub async fn redrive(
    log: &dyn EventLog,
    topic: &str,
    picks: &[(u32, u64)],
) -> Result<Vec<Redriven>, FailureError> {
    let default_source = source_of(topic)?;
    if picks.is_empty() || picks.len() > MAX_PAGE {
        return Err(FailureError::InvalidArgument(format!(
            "name between 1 and {MAX_PAGE} records"
        )));
    }
    let read = read_picks(log, topic, picks).await?;
    let mut found = Vec::with_capacity(picks.len());
    for &(partition, offset) in picks {
        let record = read
            .get(&(partition, offset))
            .cloned()
            .ok_or_else(|| FailureError::NotFound(format!("{topic}/{partition}@{offset}")))?;
        found.push(record);
    }
    let produce: Vec<Produce> = found
        .iter()
        .map(|r| {
            let to = r.header(SOURCE_TOPIC_HEADER).unwrap_or(default_source);
            let mut headers: Vec<(String, String)> = r
                .headers
                .iter()
                .filter(|(k, _)| !REJECTION_HEADERS.contains(&k.as_str()))
                .cloned()
                .collect();
            headers.push((
                REDRIVEN_HEADER.to_string(),
                format!("{topic}/{}@{}", r.partition, r.offset),
            ));
            Produce {
                topic: to.to_string(),
                partition: None,
                key: r.key.clone(),
                value: r.value.clone(),
                headers,
            }
        })
        .collect();
    let targets: Vec<String> = produce.iter().map(|p| p.topic.clone()).collect();
    let placed = log.produce(produce).await?;
    Ok(found
        .iter()
        .zip(targets)
        .zip(placed)
        .map(|((r, to_topic), (to_partition, to_offset))| Redriven {
            partition: r.partition,
            offset: r.offset,
            to_topic,
            to_partition,
            to_offset,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_values_are_shown_as_json_whatever_their_encoding() {
        let event = super::super::events::EmbeddingEvent {
            candidate_id: "42".into(),
            ..Default::default()
        };
        let binary = super::super::wire::encode_embedding(&event).unwrap();
        assert_eq!(shown(&binary)["candidate_id"], "42");
        assert_eq!(shown(br#"{"candidate_id":"7"}"#)["candidate_id"], "7");
        assert_eq!(shown(b"not json"), serde_json::json!("not json"));
    }
}
