//! The event bus: partitioned, durable topics read by consumer groups that commit offsets
//! (Kafka's model, spec AC §4.1).
//!
//! The embedded log (standalone mode) and Kafka (scale-out) implement it; the conformance suite
//! runs against each. Contract:
//! * `produce` returns once every record is durable, with the partition and offset assigned;
//!   records of one call land in order, and records with the same key land in the same partition;
//! * a subscription delivers each partition's records in offset order, starting after the
//!   group's committed offset (or at the beginning when the group never committed);
//! * `commit` durably records, per partition, the offset of the *next* record to deliver; after a
//!   restart the group resumes there, so a record is re-delivered unless its batch was committed;
//! * a group that never committed starts at the oldest retained record;
//! * `seek` rewinds (or advances) the subscription's position without committing.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Cause, ErrorCode, HasErrorCode};

/// Well-known topics (spec AC §4.8); the retry and failure topics are separate from their inputs
/// so that a poison event cannot loop (spec AC §8 B9).
pub mod topics {
    pub const EMBEDDING: &str = "skye.embedding";
    pub const EMBEDDING_SEQUENCE: &str = "skye.embedding-sequence";
    pub const REALTIME: &str = "skye.realtime";
    pub const REALTIME_RETRY: &str = "skye.realtime-retry";
    pub const REALTIME_DELTA: &str = "skye.realtime-delta";
    pub const MODEL_STATE: &str = "skye.model-state";
    pub const EMBEDDING_FAILURE: &str = "skye.embedding-failure";
    pub const REALTIME_DELTA_FAILURE: &str = "skye.realtime-delta-failure";
}

/// Header carrying the reason an event was sent to a failure or retry topic.
pub const ERROR_HEADER: &str = "skye-error";

/// Header of a failure record: where the rejected record was (`topic/partition@offset`).
pub const SOURCE_HEADER: &str = "skye-source";

/// Header of a failure record: the topic the rejected record was read from (where a re-drive
/// sends it back).
pub const SOURCE_TOPIC_HEADER: &str = "skye-source-topic";

/// The headers a rejection adds to a record (replaced when it is rejected again, dropped when it
/// is re-driven).
pub const REJECTION_HEADERS: [&str; 3] = [ERROR_HEADER, SOURCE_HEADER, SOURCE_TOPIC_HEADER];

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Produce {
    pub topic: String,
    /// Explicit partition; `None` = by key hash (empty key: partition 0).
    pub partition: Option<u32>,
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Produce {
    pub fn new(topic: impl Into<String>, key: impl Into<String>, value: Vec<u8>) -> Self {
        Produce {
            topic: topic.into(),
            partition: None,
            key: key.into(),
            value,
            headers: Vec::new(),
        }
    }
}

/// A delivered record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Errors of the event bus.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventLogError {
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("event bus unavailable: {0}")]
    Unavailable(#[source] Cause),
    #[error("event bus failure: {0}")]
    Internal(#[source] Cause),
    /// A produce would leave more records unconsumed in a partition than the log may hold; it
    /// is refused whole (nothing is written), never made room for by deleting unread records.
    #[error(
        "refused: partition {topic}/{partition} would hold {backlog} records that consumer group \
         '{slowest}' has not committed, and may hold at most {cap}; nothing was written. Start or \
         speed up the consumers, or raise `backends.event_log.max_backlog_records`"
    )]
    Backlogged {
        topic: String,
        partition: u32,
        backlog: u64,
        cap: u64,
        slowest: String,
    },
    /// A group's committed offset lies below the first record the log still holds: records were
    /// deleted (retention) before the group read them. Reported once; the group then goes on from
    /// the log start.
    #[error(
        "consumer group '{group}' lost records {from}..{to} of {topic}/{partition}: they were \
         deleted before it read them (its committed offset is below the log start)"
    )]
    OffsetOutOfRange {
        group: String,
        topic: String,
        partition: u32,
        from: u64,
        to: u64,
    },
}

impl HasErrorCode for EventLogError {
    fn code(&self) -> ErrorCode {
        match self {
            EventLogError::UnknownTopic(_) => ErrorCode::NotFound,
            EventLogError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            EventLogError::Unavailable(_) => ErrorCode::Unavailable,
            EventLogError::Internal(_) => ErrorCode::Internal,
            EventLogError::Backlogged { .. } => ErrorCode::ResourceExhausted,
            EventLogError::OffsetOutOfRange { .. } => ErrorCode::FailedPrecondition,
        }
    }
}

/// Producing and subscribing.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Creates `topic` with `partitions` partitions unless it exists; returns its partition count.
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<u32, EventLogError>;

    /// Appends `records` durably; returns `(partition, offset)` of each, in order. A topic that
    /// does not exist yet is created with one partition.
    async fn produce(&self, records: Vec<Produce>) -> Result<Vec<(u32, u64)>, EventLogError>;

    /// Joins consumer group `group` reading `topics`.
    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, EventLogError>;

    /// The committed offset of `group` on a partition (`None` when never committed).
    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, EventLogError>;

    /// The offset the next record of a partition will get.
    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, EventLogError>;

    /// The partition count of `topic`; `None` when it does not exist (it is not created).
    async fn partitions(&self, topic: &str) -> Result<Option<u32>, EventLogError>;

    /// Up to `max` records of one partition from offset `from` on, read without a consumer
    /// group (an operator paging through a failure topic leaves no group behind). An unknown
    /// topic or a position at the end reads nothing.
    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>, EventLogError>;
}

/// One member of a consumer group.
#[async_trait]
pub trait Subscription: Send + std::fmt::Debug {
    /// Up to `max` records, waiting at most `wait` for the first one (an empty vector on timeout).
    /// [`EventLogError::OffsetOutOfRange`] reports records lost to retention once; the next poll
    /// goes on from the log start.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>, EventLogError>;

    /// Durably commits, per `(topic, partition)`, the offset of the next record to deliver.
    async fn commit(&mut self, next: &[(String, u32, u64)]) -> Result<(), EventLogError>;

    /// Moves the position of a partition so that `offset` is delivered next.
    async fn seek(&mut self, topic: &str, partition: u32, offset: u64)
    -> Result<(), EventLogError>;
}

/// The commit positions that acknowledge `records`: per partition, the last offset + 1.
pub fn next_offsets<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<(String, u32, u64)> {
    let mut out: Vec<(String, u32, u64)> = Vec::new();
    for r in records {
        match out
            .iter_mut()
            .find(|(t, p, _)| *t == r.topic && *p == r.partition)
        {
            Some(entry) => entry.2 = entry.2.max(r.offset + 1),
            None => out.push((r.topic.clone(), r.partition, r.offset + 1)),
        }
    }
    out
}

/// The first offset of each partition in `records`: where to seek back to retry the batch
/// (spec AC §8 B7: the original seeks to an arbitrary record of the batch).
pub fn first_offsets(records: &[Record]) -> Vec<(String, u32, u64)> {
    let mut out: Vec<(String, u32, u64)> = Vec::new();
    for r in records {
        match out
            .iter_mut()
            .find(|(t, p, _)| *t == r.topic && *p == r.partition)
        {
            Some(entry) => entry.2 = entry.2.min(r.offset),
            None => out.push((r.topic.clone(), r.partition, r.offset)),
        }
    }
    out
}

/// Checks a topic name against Kafka's rules (1–249 characters of `[a-zA-Z0-9._-]`).
pub fn validate_topic(topic: &str) -> Result<(), EventLogError> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(EventLogError::InvalidArgument(format!(
            "invalid topic name '{topic}': use 1-249 characters of [a-zA-Z0-9._-]"
        )))
    }
}

/// Checks a consumer group name (non-empty).
pub fn validate_group(group: &str) -> Result<(), EventLogError> {
    if group.is_empty() {
        return Err(EventLogError::InvalidArgument(
            "consumer group name is empty".into(),
        ));
    }
    Ok(())
}

/// Partition of a keyed record: FNV-1a of the key, so that every implementation agrees.
pub fn partition_for_key(key: &str, partitions: u32) -> u32 {
    if key.is_empty() || partitions <= 1 {
        return 0;
    }
    (crate::hash::fnv1a64(key.as_bytes()) % u64::from(partitions)) as u32
}

/// How long consumers back off after a failed batch before retrying it (the original retries
/// immediately, spec AC §8 B7).
pub const RETRY_BACKOFF: Duration = Duration::from_millis(500);
