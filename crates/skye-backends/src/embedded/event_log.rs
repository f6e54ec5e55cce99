//! The embedded event log: durable partitioned topics and consumer-group offsets in one redb
//! file, the standalone stand-in for Kafka behind the same [`EventLog`] trait.
//!
//! Every `produce` is one fsynced transaction (records plus the partitions' end offsets), so an
//! acknowledged event survives `kill -9`. Consumers are woken through a watch channel instead of
//! polling the file.
//!
//! Retention never deletes a record some consumer group has not read. Every group that ever
//! subscribed to a topic is recorded with it; a record is deleted once *every* such group has
//! committed past it. Only a topic no group reads (failure topics) is bounded by size, its
//! oldest records going first ([`LogLimits::retained_records`]). A partition whose unread
//! backlog would pass [`LogLimits::max_backlog_records`] refuses the produce with
//! [`EventLogError::Backlogged`] (nothing written) instead of dropping anything; a group whose
//! committed offset is below the log start (records deleted before it read them: possible only
//! when it subscribed after the size bound removed them) is told so once
//! ([`EventLogError::OffsetOutOfRange`]).
//!
//! One process owns the file; within it, a group has at most one live member (the embedded log
//! does not rebalance partitions between members).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use skye_core::error::Cause;
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
/// (topic, group) of every group that subscribed to the topic: retention waits for each.
const GROUPS: TableDefinition<(&str, &str), ()> = TableDefinition::new("event_groups");

/// A redb (or I/O) error, kept as the cause.
fn internal(e: impl std::error::Error + Send + Sync + 'static) -> EventLogError {
    EventLogError::Internal(Cause::of(e))
}

fn failure(message: impl Into<String>) -> EventLogError {
    EventLogError::Internal(Cause::from(message.into()))
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
    /// First offset still held per partition of every topic.
    starts: Mutex<HashMap<String, Vec<u64>>>,
    /// Groups that ever subscribed, per topic.
    groups: Mutex<HashMap<String, BTreeSet<String>>>,
    /// Groups with a live subscription.
    members: Mutex<HashSet<String>>,
    /// Bumped after every produce; subscribers wait on it.
    produced: watch::Sender<u64>,
    limits: LogLimits,
    /// Produces refused because a partition's backlog was full.
    refused: AtomicU64,
}

/// How much the log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Records kept per partition of a topic no group reads (failure, retry and model-state
    /// topics); the oldest go first.
    pub retained_records: u64,
    /// Most records of a partition that some group has not committed; a produce past it is
    /// refused.
    pub max_backlog_records: u64,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            retained_records: DEFAULT_RETAINED_RECORDS,
            max_backlog_records: DEFAULT_MAX_BACKLOG_RECORDS,
        }
    }
}

/// Records kept per partition of a topic nobody consumes, by default.
pub const DEFAULT_RETAINED_RECORDS: u64 = 1_000_000;
/// Unread records a partition may hold by default: a 100M-item reset on one partition with its
/// consumers stopped (disk permitting; a 384-d event is about 4 KB).
pub const DEFAULT_MAX_BACKLOG_RECORDS: u64 = 100_000_000;

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
    let corrupt = |_| failure(format!("record {topic}/{partition}@{offset} is corrupt"));
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
    /// Opens (or creates) the log at `path` with the default limits.
    pub fn open(path: &Path) -> Result<Self, EventLogError> {
        Self::open_with(path, LogLimits::default())
    }

    /// Opens (or creates) the log at `path`.
    pub fn open_with(path: &Path, limits: LogLimits) -> Result<Self, EventLogError> {
        Self::open_checked(path, limits, super::IntegrityCheck::Full)
    }

    /// [`EmbeddedEventLog::open_with`] with the file's verification chosen.
    pub fn open_checked(
        path: &Path,
        limits: LogLimits,
        check: super::IntegrityCheck,
    ) -> Result<Self, EventLogError> {
        super::survive_damage(path, || Self::open_unguarded(path, limits, check))
            .map_err(failure)?
    }

    fn open_unguarded(
        path: &Path,
        limits: LogLimits,
        check: super::IntegrityCheck,
    ) -> Result<Self, EventLogError> {
        let db =
            super::open_db(path, super::EVENT_LOG_CACHE_BYTES, check).map_err(|e| match e {
                super::OpenError::InUse(m) => EventLogError::Unavailable(m.into()),
                super::OpenError::Failed(m) => failure(m),
            })?;
        let mut ends: HashMap<String, Vec<u64>> = HashMap::new();
        let mut starts: HashMap<String, Vec<u64>> = HashMap::new();
        let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
        {
            let write = db.begin_write().map_err(internal)?;
            {
                let records = write.open_table(RECORDS).map_err(internal)?;
                write.open_table(OFFSETS).map_err(internal)?;
                let topics = write.open_table(TOPICS).map_err(internal)?;
                let end_table = write.open_table(ENDS).map_err(internal)?;
                for entry in topics.iter().map_err(internal)? {
                    let (name, count) = entry.map_err(internal)?;
                    let name = name.value().to_string();
                    let (mut e, mut s) = (Vec::new(), Vec::new());
                    for p in 0..count.value() {
                        let end = end_table
                            .get((name.as_str(), p))
                            .map_err(internal)?
                            .map(|g| g.value())
                            .unwrap_or(0);
                        let first = records
                            .range((name.as_str(), p, 0)..(name.as_str(), p, u64::MAX))
                            .map_err(internal)?
                            .next()
                            .transpose()
                            .map_err(internal)?
                            .map(|(k, _)| k.value().2);
                        e.push(end);
                        s.push(first.unwrap_or(end));
                    }
                    ends.insert(name.clone(), e);
                    starts.insert(name, s);
                }
                let mut group_table = write.open_table(GROUPS).map_err(internal)?;
                // A log written before groups were recorded knows them by their commits.
                let committed: Vec<(String, String)> = write
                    .open_table(OFFSETS)
                    .map_err(internal)?
                    .iter()
                    .map_err(internal)?
                    .map(|e| {
                        let (key, _) = e.map_err(internal)?;
                        let (group, topic, _) = key.value();
                        Ok((topic.to_string(), group.to_string()))
                    })
                    .collect::<Result<_, EventLogError>>()?;
                for (topic, group) in &committed {
                    group_table
                        .insert((topic.as_str(), group.as_str()), ())
                        .map_err(internal)?;
                }
                for entry in group_table.iter().map_err(internal)? {
                    let (key, _) = entry.map_err(internal)?;
                    let (topic, group) = key.value();
                    groups
                        .entry(topic.to_string())
                        .or_default()
                        .insert(group.to_string());
                }
            }
            write.commit().map_err(internal)?;
        }
        let (produced, _) = watch::channel(0);
        Ok(EmbeddedEventLog {
            inner: Arc::new(Inner {
                db,
                ends: Mutex::new(ends),
                starts: Mutex::new(starts),
                groups: Mutex::new(groups),
                members: Mutex::new(HashSet::new()),
                produced,
                limits: LogLimits {
                    retained_records: limits.retained_records.max(1),
                    max_backlog_records: limits.max_backlog_records.max(1),
                },
                refused: AtomicU64::new(0),
            }),
        })
    }

    /// Produces refused since open because a partition's backlog was full.
    pub fn refused_produces(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    fn ends(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u64>>> {
        self.inner.ends.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn starts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u64>>> {
        self.inner.starts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The groups that subscribed to `topic`.
    fn groups_of(&self, topic: &str) -> BTreeSet<String> {
        let groups = self.inner.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.get(topic).cloned().unwrap_or_default()
    }

    /// The first offset `topic`/`partition` still holds.
    fn start_of(&self, topic: &str, partition: u32) -> u64 {
        self.starts()
            .get(topic)
            .and_then(|s| s.get(partition as usize).copied())
            .unwrap_or(0)
    }

    fn set_start(&self, topic: &str, partition: u32, start: u64, partitions: usize) {
        let mut starts = self.starts();
        let s = starts.entry(topic.to_string()).or_default();
        if s.len() < partitions {
            s.resize(partitions, 0);
        }
        let slot = &mut s[partition as usize];
        *slot = (*slot).max(start);
    }

    /// Records `group` as a reader of `topics`, durably: retention now waits for it.
    fn register_group_blocking(&self, group: &str, topics: &[String]) -> Result<(), EventLogError> {
        let missing: Vec<&String> = {
            let groups = self.inner.groups.lock().unwrap_or_else(|p| p.into_inner());
            topics
                .iter()
                .filter(|t| !groups.get(*t).is_some_and(|g| g.contains(group)))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let write = self.inner.db.begin_write().map_err(internal)?;
        {
            let mut table = write.open_table(GROUPS).map_err(internal)?;
            for t in &missing {
                table.insert((t.as_str(), group), ()).map_err(internal)?;
            }
        }
        write.commit().map_err(internal)?;
        let mut groups = self.inner.groups.lock().unwrap_or_else(|p| p.into_inner());
        for t in missing {
            groups
                .entry(t.clone())
                .or_default()
                .insert(group.to_string());
        }
        Ok(())
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
        let mut trimmed = Vec::new();
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
                    .ok_or_else(|| failure("topic vanished"))?;
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
            // Retention: a topic some group reads keeps every unread record (and refuses to grow
            // past its backlog cap); only a topic nobody reads is bounded by size.
            let offsets = write.open_table(OFFSETS).map_err(internal)?;
            let mut touched: Vec<(&str, u32)> = assigned
                .iter()
                .zip(&records)
                .map(|((p, _), r)| (r.topic.as_str(), *p))
                .collect();
            touched.sort_unstable();
            touched.dedup();
            for (topic, p) in touched {
                let end = next[topic][p as usize];
                let groups = self.groups_of(topic);
                if groups.is_empty() {
                    let cap = self.inner.limits.retained_records;
                    if end > cap {
                        table
                            .retain_in((topic, p, 0)..(topic, p, end - cap), |_, _| false)
                            .map_err(internal)?;
                        trimmed.push((topic.to_string(), p, end - cap, next[topic].len()));
                    }
                    continue;
                }
                let start = self.start_of(topic, p);
                let mut slowest = (u64::MAX, String::new());
                for g in &groups {
                    let at = offsets
                        .get((g.as_str(), topic, p))
                        .map_err(internal)?
                        .map_or(start, |v| v.value().max(start));
                    if at < slowest.0 {
                        slowest = (at, g.clone());
                    }
                }
                let cap = self.inner.limits.max_backlog_records;
                if end - slowest.0 > cap {
                    self.inner.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(EventLogError::Backlogged {
                        topic: topic.to_string(),
                        partition: p,
                        backlog: end - slowest.0,
                        cap,
                        slowest: slowest.1,
                    });
                }
            }
        }
        write.commit().map_err(internal)?;
        for (topic, p, start, partitions) in trimmed {
            self.set_start(&topic, p, start, partitions);
        }
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
        let mut trimmed = Vec::new();
        let write = self.inner.db.begin_write().map_err(internal)?;
        {
            let mut offsets = write.open_table(OFFSETS).map_err(internal)?;
            for (topic, partition, offset) in next {
                offsets
                    .insert((group, topic.as_str(), *partition), *offset)
                    .map_err(internal)?;
            }
            // Retention: drop what every group that reads the partition has committed past (a
            // group that has not committed yet holds everything).
            let mut records = write.open_table(RECORDS).map_err(internal)?;
            for (topic, partition, _) in next {
                let mut floor = u64::MAX;
                for g in self
                    .groups_of(topic)
                    .iter()
                    .chain(std::iter::once(&group.to_string()))
                {
                    let at = offsets
                        .get((g.as_str(), topic.as_str(), *partition))
                        .map_err(internal)?
                        .map_or(0, |v| v.value());
                    floor = floor.min(at);
                }
                if floor > self.start_of(topic, *partition) {
                    records
                        .retain_in(
                            (topic.as_str(), *partition, 0)..(topic.as_str(), *partition, floor),
                            |_, _| false,
                        )
                        .map_err(internal)?;
                    trimmed.push((topic.clone(), *partition, floor));
                }
            }
        }
        write.commit().map_err(internal)?;
        for (topic, partition, floor) in trimmed {
            let partitions = self.ends().get(&topic).map_or(0, Vec::len);
            self.set_start(&topic, partition, floor, partitions);
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EventLogError> + Send + 'static,
) -> Result<T, EventLogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EventLogError::Internal(Cause::new("event log task failed", e)))?
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
            let this = self.clone();
            let (group, topics) = (
                group.to_string(),
                topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            );
            blocking(move || this.register_group_blocking(&group, &topics)).await?;
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

    async fn partitions(&self, topic: &str) -> Result<Option<u32>, EventLogError> {
        Ok(self.ends().get(topic).map(|parts| parts.len() as u32))
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>, EventLogError> {
        validate_topic(topic)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let this = self.clone();
        let at = ((topic.to_string(), partition), from);
        blocking(move || this.read_blocking(&[at], max)).await
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
            let start = self.log.start_of(&topic, partition);
            let position = match self.positions.get(&key) {
                Some(p) => *p,
                // A group that never committed starts at the oldest record held.
                None => self
                    .log
                    .committed(&self.group, &topic, partition)
                    .await?
                    .unwrap_or(start),
            };
            self.positions.insert(key.clone(), position.max(start));
            if position < start {
                return Err(EventLogError::OffsetOutOfRange {
                    group: self.group.clone(),
                    topic,
                    partition,
                    from: position,
                    to: start,
                });
            }
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
                    return Err(EventLogError::Unavailable(Cause::from("event log closed")));
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

#[cfg(test)]
mod tests;
