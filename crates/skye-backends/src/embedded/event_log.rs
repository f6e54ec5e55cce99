//! The embedded event log: durable partitioned topics and consumer-group offsets in one redb
//! file, the standalone stand-in for Kafka behind the same [`EventLog`] trait.
//!
//! Every `produce` is one fsynced transaction (records plus the partitions' end offsets), so an
//! acknowledged event survives `kill -9`. Consumers are woken through a watch channel instead of
//! polling the file. Records below the lowest committed offset of every group that consumes a
//! partition are deleted at commit time; a topic nobody consumes (failure topics) is kept whole.
//!
//! One process owns the file; within it, a group has at most one live member (the embedded log
//! does not rebalance partitions between members).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use skye_core::event_log::{
    EventLog, EventLogError, Produce, Record, Subscription, partition_for_key, validate_group,
    validate_topic,
};
use tokio::sync::watch;

use super::bytes::{Reader, Writer};

/// (topic, partition, offset) → encoded record.
const RECORDS: TableDefinition<(&str, u32, u64), &[u8]> = TableDefinition::new("event_records");
/// topic → partition count.
const TOPICS: TableDefinition<&str, u32> = TableDefinition::new("event_topics");
/// (topic, partition) → next offset.
const ENDS: TableDefinition<(&str, u32), u64> = TableDefinition::new("event_ends");
/// (group, topic, partition) → committed next offset.
const OFFSETS: TableDefinition<(&str, &str, u32), u64> = TableDefinition::new("event_offsets");

fn internal(e: impl std::fmt::Display) -> EventLogError {
    EventLogError::Internal(e.to_string())
}

/// The embedded event log.
#[derive(Clone)]
pub struct EmbeddedEventLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Next offset per partition of every topic (the index is the partition).
    ends: Mutex<HashMap<String, Vec<u64>>>,
    /// Groups with a live subscription.
    members: Mutex<HashSet<String>>,
    /// Bumped after every produce; subscribers wait on it.
    produced: watch::Sender<u64>,
    /// Most records kept per partition, consumed or not (Kafka's size retention).
    max_records: u64,
}

/// Records kept per partition by default: bounds topics nobody consumes (failure, retry and
/// model-state topics) while leaving days of backlog for a stopped consumer.
pub const DEFAULT_MAX_RECORDS_PER_PARTITION: u64 = 1_000_000;

impl std::fmt::Debug for EmbeddedEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedEventLog").finish_non_exhaustive()
    }
}

fn encode(r: &Produce) -> Vec<u8> {
    let mut w = Writer::with_capacity(r.value.len() + r.key.len() + 16);
    w.str(&r.key);
    w.u32(r.headers.len() as u32);
    for (k, v) in &r.headers {
        w.str(k);
        w.str(v);
    }
    w.bytes(&r.value);
    w.0
}

fn decode(topic: &str, partition: u32, offset: u64, bytes: &[u8]) -> Result<Record, EventLogError> {
    let corrupt = |_| internal(format!("record {topic}/{partition}@{offset} is corrupt"));
    let mut r = Reader(bytes);
    let key = r.str().map_err(corrupt)?;
    let n = r.u32().map_err(corrupt)?;
    let mut headers = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        headers.push((r.str().map_err(corrupt)?, r.str().map_err(corrupt)?));
    }
    let value = r.bytes().map_err(corrupt)?;
    Ok(Record {
        topic: topic.to_string(),
        partition,
        offset,
        key,
        value,
        headers,
    })
}

impl EmbeddedEventLog {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> Result<Self, EventLogError> {
        super::survive_damage(path, || Self::open_unguarded(path)).map_err(internal)?
    }

    fn open_unguarded(path: &Path) -> Result<Self, EventLogError> {
        let db = super::open_db(path, super::EVENT_LOG_CACHE_BYTES).map_err(|e| match e {
            super::OpenError::InUse(m) => EventLogError::Unavailable(m),
            super::OpenError::Failed(m) => internal(m),
        })?;
        let mut ends: HashMap<String, Vec<u64>> = HashMap::new();
        {
            let write = db.begin_write().map_err(internal)?;
            {
                write.open_table(RECORDS).map_err(internal)?;
                write.open_table(OFFSETS).map_err(internal)?;
                let topics = write.open_table(TOPICS).map_err(internal)?;
                let end_table = write.open_table(ENDS).map_err(internal)?;
                for entry in topics.iter().map_err(internal)? {
                    let (name, count) = entry.map_err(internal)?;
                    let name = name.value().to_string();
                    let mut parts = Vec::with_capacity(count.value() as usize);
                    for p in 0..count.value() {
                        let end = end_table
                            .get((name.as_str(), p))
                            .map_err(internal)?
                            .map(|g| g.value())
                            .unwrap_or(0);
                        parts.push(end);
                    }
                    ends.insert(name, parts);
                }
            }
            write.commit().map_err(internal)?;
        }
        let (produced, _) = watch::channel(0);
        Ok(EmbeddedEventLog {
            inner: Arc::new(Inner {
                db,
                ends: Mutex::new(ends),
                members: Mutex::new(HashSet::new()),
                produced,
                max_records: DEFAULT_MAX_RECORDS_PER_PARTITION,
            }),
        })
    }

    /// Keeps at most `max` records per partition (the oldest go first); for tests and small disks.
    pub fn with_max_records_per_partition(path: &Path, max: u64) -> Result<Self, EventLogError> {
        let mut log = Self::open(path)?;
        if let Some(inner) = Arc::get_mut(&mut log.inner) {
            inner.max_records = max.max(1);
        }
        Ok(log)
    }

    fn ends(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u64>>> {
        self.inner.ends.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ensure_topic_blocking(&self, topic: &str, partitions: u32) -> Result<u32, EventLogError> {
        validate_topic(topic)?;
        if partitions == 0 {
            return Err(EventLogError::InvalidArgument(format!(
                "topic '{topic}' needs at least one partition"
            )));
        }
        let mut ends = self.ends();
        if let Some(parts) = ends.get(topic) {
            return Ok(parts.len() as u32);
        }
        let write = self.inner.db.begin_write().map_err(internal)?;
        write
            .open_table(TOPICS)
            .map_err(internal)?
            .insert(topic, partitions)
            .map_err(internal)?;
        write.commit().map_err(internal)?;
        ends.insert(topic.to_string(), vec![0; partitions as usize]);
        Ok(partitions)
    }

    fn produce_blocking(&self, records: Vec<Produce>) -> Result<Vec<(u32, u64)>, EventLogError> {
        let mut ends = self.ends();
        // Work on a copy so that a failed commit leaves the in-memory ends untouched.
        let mut next: HashMap<String, Vec<u64>> = HashMap::new();
        let mut new_topics = Vec::new();
        let mut assigned = Vec::with_capacity(records.len());
        let write = self.inner.db.begin_write().map_err(internal)?;
        {
            let mut table = write.open_table(RECORDS).map_err(internal)?;
            for r in &records {
                validate_topic(&r.topic)?;
                if !next.contains_key(&r.topic) {
                    let current = match ends.get(&r.topic) {
                        Some(p) => p.clone(),
                        None => {
                            new_topics.push(r.topic.clone());
                            vec![0]
                        }
                    };
                    next.insert(r.topic.clone(), current);
                }
                let parts = next
                    .get_mut(&r.topic)
                    .ok_or_else(|| internal("topic vanished"))?;
                let partition = match r.partition {
                    Some(p) if (p as usize) < parts.len() => p,
                    Some(p) => {
                        return Err(EventLogError::InvalidArgument(format!(
                            "topic '{}' has {} partition(s); partition {p} does not exist",
                            r.topic,
                            parts.len()
                        )));
                    }
                    None => partition_for_key(&r.key, parts.len() as u32),
                };
                let offset = parts[partition as usize];
                parts[partition as usize] += 1;
                table
                    .insert((r.topic.as_str(), partition, offset), encode(r).as_slice())
                    .map_err(internal)?;
                assigned.push((partition, offset));
            }
            let mut end_table = write.open_table(ENDS).map_err(internal)?;
            for (topic, parts) in &next {
                for (p, end) in parts.iter().enumerate() {
                    end_table
                        .insert((topic.as_str(), p as u32), *end)
                        .map_err(internal)?;
                }
            }
            let mut topics = write.open_table(TOPICS).map_err(internal)?;
            for t in &new_topics {
                topics.insert(t.as_str(), 1).map_err(internal)?;
            }
            // Size retention: drop what falls off the end of the window.
            let cap = self.inner.max_records;
            for (topic, parts) in &next {
                for (p, end) in parts.iter().enumerate() {
                    if *end > cap {
                        table
                            .retain_in(
                                (topic.as_str(), p as u32, 0)
                                    ..(topic.as_str(), p as u32, end - cap),
                                |_, _| false,
                            )
                            .map_err(internal)?;
                    }
                }
            }
        }
        write.commit().map_err(internal)?;
        ends.extend(next);
        drop(ends);
        self.inner.produced.send_modify(|n| *n += 1);
        Ok(assigned)
    }

    fn read_blocking(
        &self,
        positions: &[((String, u32), u64)],
        max: usize,
    ) -> Result<Vec<Record>, EventLogError> {
        let read = self.inner.db.begin_read().map_err(internal)?;
        let table = read.open_table(RECORDS).map_err(internal)?;
        let mut out = Vec::new();
        // Share the budget fairly: each partition gets its turn, in order.
        let per_partition = (max / positions.len().max(1)).max(1);
        for ((topic, partition), from) in positions {
            if out.len() >= max {
                break;
            }
            let take = per_partition.min(max - out.len());
            let range = table
                .range((topic.as_str(), *partition, *from)..(topic.as_str(), *partition, u64::MAX))
                .map_err(internal)?;
            for entry in range.take(take) {
                let (key, value) = entry.map_err(internal)?;
                let (_, _, offset) = key.value();
                out.push(decode(topic, *partition, offset, value.value())?);
            }
        }
        Ok(out)
    }

    fn committed_blocking(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, EventLogError> {
        let read = self.inner.db.begin_read().map_err(internal)?;
        let table = read.open_table(OFFSETS).map_err(internal)?;
        Ok(table
            .get((group, topic, partition))
            .map_err(internal)?
            .map(|g| g.value()))
    }

    fn commit_blocking(
        &self,
        group: &str,
        next: &[(String, u32, u64)],
    ) -> Result<(), EventLogError> {
        let write = self.inner.db.begin_write().map_err(internal)?;
        {
            let mut offsets = write.open_table(OFFSETS).map_err(internal)?;
            for (topic, partition, offset) in next {
                offsets
                    .insert((group, topic.as_str(), *partition), *offset)
                    .map_err(internal)?;
            }
            // Retention: drop what every group consuming the partition has committed past.
            let mut floors: HashMap<(String, u32), u64> = HashMap::new();
            for entry in offsets.iter().map_err(internal)? {
                let (key, value) = entry.map_err(internal)?;
                let (_, topic, partition) = key.value();
                if next.iter().any(|(t, p, _)| t == topic && *p == partition) {
                    let floor = floors
                        .entry((topic.to_string(), partition))
                        .or_insert(u64::MAX);
                    *floor = (*floor).min(value.value());
                }
            }
            let mut records = write.open_table(RECORDS).map_err(internal)?;
            for ((topic, partition), floor) in floors {
                records
                    .retain_in(
                        (topic.as_str(), partition, 0)..(topic.as_str(), partition, floor),
                        |_, _| false,
                    )
                    .map_err(internal)?;
            }
        }
        write.commit().map_err(internal)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EventLogError> + Send + 'static,
) -> Result<T, EventLogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal(format!("event log task failed: {e}")))?
}

#[async_trait]
impl EventLog for EmbeddedEventLog {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<u32, EventLogError> {
        let this = self.clone();
        let topic = topic.to_string();
        blocking(move || this.ensure_topic_blocking(&topic, partitions)).await
    }

    async fn produce(&self, records: Vec<Produce>) -> Result<Vec<(u32, u64)>, EventLogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let this = self.clone();
        blocking(move || this.produce_blocking(records)).await
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, EventLogError> {
        validate_group(group)?;
        for t in topics {
            self.ensure_topic(t, 1).await?;
        }
        {
            let mut members = self.inner.members.lock().unwrap_or_else(|p| p.into_inner());
            if !members.insert(group.to_string()) {
                return Err(EventLogError::InvalidArgument(format!(
                    "consumer group '{group}' already has a member in this process (the embedded \
                     log gives each group one consumer)"
                )));
            }
        }
        Ok(Box::new(EmbeddedSubscription {
            log: self.clone(),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            positions: HashMap::new(),
            woken: self.inner.produced.subscribe(),
            turn: 0,
        }))
    }

    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, EventLogError> {
        let this = self.clone();
        let (group, topic) = (group.to_string(), topic.to_string());
        blocking(move || this.committed_blocking(&group, &topic, partition)).await
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, EventLogError> {
        let ends = self.ends();
        let parts = ends
            .get(topic)
            .ok_or_else(|| EventLogError::UnknownTopic(topic.to_string()))?;
        parts.get(partition as usize).copied().ok_or_else(|| {
            EventLogError::InvalidArgument(format!("topic '{topic}' has no partition {partition}"))
        })
    }
}

/// The single member of a consumer group.
struct EmbeddedSubscription {
    log: EmbeddedEventLog,
    group: String,
    topics: Vec<String>,
    /// Next offset to deliver per (topic, partition); filled from the committed offsets.
    positions: HashMap<(String, u32), u64>,
    woken: watch::Receiver<u64>,
    /// Rotates which partition is read first, so a busy one cannot starve the others.
    turn: usize,
}

impl std::fmt::Debug for EmbeddedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSubscription")
            .field("group", &self.group)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Drop for EmbeddedSubscription {
    fn drop(&mut self) {
        let mut members = self
            .log
            .inner
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        members.remove(&self.group);
    }
}

impl EmbeddedSubscription {
    /// Positions of every partition with records waiting, rotated by `turn`.
    async fn pending(&mut self) -> Result<Vec<((String, u32), u64)>, EventLogError> {
        let ends: Vec<(String, u32, u64)> = {
            let ends = self.log.ends();
            self.topics
                .iter()
                .flat_map(|t| {
                    ends.get(t).into_iter().flat_map(move |parts| {
                        parts
                            .iter()
                            .enumerate()
                            .map(move |(p, e)| (t.clone(), p as u32, *e))
                    })
                })
                .collect()
        };
        let mut pending = Vec::new();
        for (topic, partition, end) in ends {
            let key = (topic.clone(), partition);
            let position = match self.positions.get(&key) {
                Some(p) => *p,
                None => {
                    let p = self
                        .log
                        .committed(&self.group, &topic, partition)
                        .await?
                        .unwrap_or(0);
                    self.positions.insert(key.clone(), p);
                    p
                }
            };
            if position < end {
                pending.push((key, position));
            }
        }
        if !pending.is_empty() {
            let k = self.turn % pending.len();
            pending.rotate_left(k);
            self.turn = self.turn.wrapping_add(1);
        }
        Ok(pending)
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>, EventLogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.woken.borrow_and_update();
            let pending = self.pending().await?;
            if !pending.is_empty() {
                let log = self.log.clone();
                let max = max.max(1);
                let records = blocking(move || log.read_blocking(&pending, max)).await?;
                for r in &records {
                    self.positions
                        .insert((r.topic.clone(), r.partition), r.offset + 1);
                }
                if !records.is_empty() {
                    return Ok(records);
                }
            }
            match tokio::time::timeout_at(deadline, self.woken.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => {
                    return Err(EventLogError::Unavailable("event log closed".into()));
                }
                Err(_) => return Ok(Vec::new()),
            }
        }
    }

    async fn commit(&mut self, next: &[(String, u32, u64)]) -> Result<(), EventLogError> {
        if next.is_empty() {
            return Ok(());
        }
        let log = self.log.clone();
        let group = self.group.clone();
        let next = next.to_vec();
        blocking(move || log.commit_blocking(&group, &next)).await
    }

    async fn seek(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), EventLogError> {
        self.positions
            .insert((topic.to_string(), partition), offset);
        Ok(())
    }
}
