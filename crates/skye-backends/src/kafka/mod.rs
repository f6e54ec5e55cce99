//! Kafka as the event bus (`--features kafka`, rdkafka with its bundled librdkafka).
//!
//! * `produce` enqueues every record in order (one connection in flight per broker, so a
//!   partition keeps the order of a call) and returns once every delivery is acknowledged
//!   (`acks=all`). Keyed records use the same FNV partitioner as the embedded log, so both put a
//!   key in the same partition.
//! * A subscription is one member of a consumer group: auto-commit off, `earliest` for a group
//!   that never committed; `commit` is synchronous (the offset is on the broker when it
//!   returns); `seek` rewinds a partition for a retry.
//! * Kafka deletes records by its own retention (`retention.ms`, `retention.bytes`), read or
//!   not: a group whose committed offset fell below the log start is moved to `earliest` by the
//!   client without a word. The first record of each partition a subscription reads is checked
//!   against the group's committed offset; a gap is reported once as
//!   [`EventLogError::OffsetOutOfRange`] (records lost), then the records are delivered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use skye_core::error::Cause;
use skye_core::event_log::{
    EventLog, EventLogError, Produce, Record, Subscription, partition_for_key, validate_group,
    validate_topic,
};

/// Timeout of metadata, commit and seek calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the brokers.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port,...` (the original's `KAFKA_<id>_BOOTSTRAP_SERVERS`).
    pub brokers: String,
    /// Group membership timeouts; lower them in tests (see INFRA.md: Tansu).
    pub session_timeout_ms: u32,
    pub max_poll_interval_ms: u32,
    /// Further librdkafka properties (security, SASL...).
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            session_timeout_ms: 30_000,
            max_poll_interval_ms: 300_000,
            extra: Vec::new(),
        }
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

/// A client error, kept as the cause.
fn unavailable(e: KafkaError) -> EventLogError {
    EventLogError::Unavailable(Cause::new(format!("kafka: {e}"), e))
}

fn refused(message: impl std::fmt::Display) -> EventLogError {
    EventLogError::Unavailable(format!("kafka: {message}").into())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EventLogError> + Send + 'static,
) -> Result<T, EventLogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EventLogError::Internal(Cause::new("kafka task failed", e)))?
}

/// The Kafka event bus.
pub struct KafkaEventLog {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    partitions: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for KafkaEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventLog")
            .field("brokers", &self.config.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaEventLog {
    pub fn new(config: KafkaConfig) -> Result<Self, EventLogError> {
        let producer: FutureProducer = config
            .client()
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "1")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(unavailable)?;
        let admin: AdminClient<DefaultClientContext> =
            config.client().create().map_err(unavailable)?;
        Ok(KafkaEventLog {
            config,
            producer,
            admin,
            partitions: Mutex::new(HashMap::new()),
        })
    }

    /// Partition count of `topic` (`None` when it does not exist), cached once known.
    async fn partition_count(
        &self,
        topic: &str,
        ask: Metadata,
    ) -> Result<Option<u32>, EventLogError> {
        if let Some(n) = self
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
        {
            return Ok(Some(*n));
        }
        let producer = self.producer.clone();
        let name = topic.to_string();
        let n = blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(
                    (ask == Metadata::OfTopic).then_some(name.as_str()),
                    CALL_TIMEOUT,
                )
                .map_err(unavailable)?;
            Ok(metadata
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())
                .map(|t| t.partitions().len() as u32)
                .filter(|n| *n > 0))
        })
        .await?;
        if let Some(n) = n {
            self.partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(topic.to_string(), n);
        }
        Ok(n)
    }
}

#[async_trait]
impl EventLog for KafkaEventLog {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<u32, EventLogError> {
        validate_topic(topic)?;
        if partitions == 0 {
            return Err(EventLogError::InvalidArgument(format!(
                "topic '{topic}' needs at least one partition"
            )));
        }
        if let Some(n) = self
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
        {
            return Ok(*n);
        }
        // Create first, then read the count: asking for the metadata of a missing topic can make
        // a broker auto-create it with its default partition count.
        let new = NewTopic::new(
            topic,
            i32::try_from(partitions).unwrap_or(i32::MAX),
            TopicReplication::Fixed(1),
        );
        let results = self
            .admin
            .create_topics(
                [&new],
                &AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT)),
            )
            .await
            .map_err(unavailable)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(refused(format!("cannot create topic {name}: {code}")));
                }
            }
        }
        // Metadata can lag a creation by a moment.
        for _ in 0..50 {
            if let Some(n) = self.partition_count(topic, Metadata::OfTopic).await? {
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(refused(format!(
            "topic '{topic}' was created but never showed up"
        )))
    }

    async fn produce(&self, records: Vec<Produce>) -> Result<Vec<(u32, u64)>, EventLogError> {
        // Resolve every partition first, so a bad record fails the call before anything is sent.
        let mut targets = Vec::with_capacity(records.len());
        for r in &records {
            validate_topic(&r.topic)?;
            let count = match self.partition_count(&r.topic, Metadata::OfTopic).await? {
                Some(n) => n,
                None => self.ensure_topic(&r.topic, 1).await?,
            };
            let partition = match r.partition {
                Some(p) if p < count => p,
                Some(p) => {
                    return Err(EventLogError::InvalidArgument(format!(
                        "topic '{}' has {count} partition(s); partition {p} does not exist",
                        r.topic
                    )));
                }
                None => partition_for_key(&r.key, count),
            };
            targets.push(partition);
        }
        let mut pending = Vec::with_capacity(records.len());
        for (r, partition) in records.iter().zip(&targets) {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let mut record = FutureRecord::to(&r.topic)
                .key(r.key.as_bytes())
                .payload(r.value.as_slice())
                .partition(i32::try_from(*partition).unwrap_or(0))
                .headers(headers);
            // Enqueue in order; a full local queue waits for earlier deliveries.
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(unavailable(e)),
                }
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        for delivery in pending {
            match delivery.await {
                Ok(Ok(d)) => out.push((d.partition.max(0) as u32, d.offset.max(0) as u64)),
                Ok(Err((e, _))) => {
                    return Err(EventLogError::Unavailable(Cause::new(
                        format!("kafka: delivery failed: {e}"),
                        e,
                    )));
                }
                Err(_) => return Err(refused("producer closed")),
            }
        }
        Ok(out)
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
        let consumer: StreamConsumer = self
            .config
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set(
                "session.timeout.ms",
                self.config.session_timeout_ms.to_string(),
            )
            .set(
                "max.poll.interval.ms",
                self.config.max_poll_interval_ms.to_string(),
            )
            .create()
            .map_err(unavailable)?;
        consumer.subscribe(topics).map_err(unavailable)?;
        Ok(Box::new(KafkaSubscription {
            consumer: Arc::new(consumer),
            group: group.to_string(),
            checked: Default::default(),
            stash: Vec::new(),
        }))
    }

    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, EventLogError> {
        let consumer: BaseConsumer = self
            .config
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(unavailable)?;
        let topic = topic.to_string();
        blocking(move || committed_offset(&consumer, &topic, partition)).await
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, EventLogError> {
        let count = self
            .partition_count(topic, Metadata::OfTopic)
            .await?
            .ok_or_else(|| EventLogError::UnknownTopic(topic.to_string()))?;
        if partition >= count {
            return Err(EventLogError::InvalidArgument(format!(
                "topic '{topic}' has no partition {partition}"
            )));
        }
        let producer = self.producer.clone();
        let topic = topic.to_string();
        blocking(move || {
            let (_, high) = producer
                .client()
                .fetch_watermarks(&topic, partition as i32, CALL_TIMEOUT)
                .map_err(unavailable)?;
            Ok(high.max(0) as u64)
        })
        .await
    }

    async fn partitions(&self, topic: &str) -> Result<Option<u32>, EventLogError> {
        validate_topic(topic)?;
        // The metadata of every topic: naming a missing one could make the broker create it.
        self.partition_count(topic, Metadata::EveryTopic).await
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>, EventLogError> {
        let Some(count) = self.partitions(topic).await? else {
            return Ok(Vec::new());
        };
        if partition >= count {
            return Err(EventLogError::InvalidArgument(format!(
                "topic '{topic}' has no partition {partition}"
            )));
        }
        if max == 0 {
            return Ok(Vec::new());
        }
        // Assigned, never subscribed and never committed: the group id is not registered. The
        // end is where the broker says the partition ends (a high watermark read just after a
        // produce can still be behind it).
        let consumer: BaseConsumer = self
            .config
            .client()
            .set("group.id", "skye-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .map_err(unavailable)?;
        let topic = topic.to_string();
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(
                &topic,
                i32::try_from(partition).unwrap_or(0),
                Offset::Offset(i64::try_from(from).unwrap_or(i64::MAX)),
            )
            .map_err(unavailable)?;
            consumer.assign(&tpl).map_err(unavailable)?;
            let deadline = std::time::Instant::now() + CALL_TIMEOUT;
            let mut out = Vec::new();
            while out.len() < max && std::time::Instant::now() < deadline {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => out.push(record(&m)),
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    // Asked past the end: nothing to read.
                    Some(Err(KafkaError::MessageConsumption(
                        RDKafkaErrorCode::OffsetOutOfRange,
                    ))) => break,
                    Some(Err(e)) => return Err(unavailable(e)),
                    None => {}
                }
            }
            Ok(out)
        })
        .await
    }
}

/// Which metadata a partition count asks the brokers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metadata {
    /// The topic's own: cheaper, but a broker that auto-creates topics may create it.
    OfTopic,
    /// Every topic's: never creates one.
    EveryTopic,
}

/// `consumer`'s group's committed offset of a partition (`None`: never committed).
fn committed_offset<C: Consumer>(
    consumer: &C,
    topic: &str,
    partition: u32,
) -> Result<Option<u64>, EventLogError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, i32::try_from(partition).unwrap_or(0));
    let got = consumer
        .committed_offsets(tpl, CALL_TIMEOUT)
        .map_err(unavailable)?;
    Ok(got.elements().first().and_then(|e| match e.offset() {
        Offset::Offset(o) if o >= 0 => Some(o as u64),
        _ => None,
    }))
}

/// One member of a consumer group.
struct KafkaSubscription {
    consumer: Arc<StreamConsumer>,
    group: String,
    /// Partitions whose first record was checked against the committed offset.
    checked: std::collections::HashSet<(String, u32)>,
    /// Records held back while a loss is reported; delivered by the next poll.
    stash: Vec<Record>,
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

fn record(m: &rdkafka::message::BorrowedMessage<'_>) -> Record {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|x| {
                    (
                        x.key.to_string(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic: m.topic().to_string(),
        partition: m.partition().max(0) as u32,
        offset: m.offset().max(0) as u64,
        key: m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        value: m.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

impl KafkaSubscription {
    /// The group's committed offset of a partition (`None`: never committed).
    async fn committed(&self, topic: &str, partition: u32) -> Result<Option<u64>, EventLogError> {
        let consumer = self.consumer.clone();
        let topic = topic.to_string();
        blocking(move || committed_offset(&*consumer, &topic, partition)).await
    }

    /// A loss in `out`: the first record read from a partition lies past the group's committed
    /// offset (the client reset a deleted position to `earliest`).
    /// (A failed lookup skips the check: the records in hand must not be dropped.)
    async fn loss_in(&mut self, out: &[Record]) -> Option<EventLogError> {
        for r in out {
            let key = (r.topic.clone(), r.partition);
            if self.checked.contains(&key) {
                continue;
            }
            let committed = match self.committed(&r.topic, r.partition).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(group = %self.group, topic = %r.topic, partition = r.partition,
                        error = %e, "cannot read the committed offset; loss check skipped");
                    None
                }
            };
            self.checked.insert(key);
            if let Some(c) = committed.filter(|c| r.offset > *c) {
                return Some(EventLogError::OffsetOutOfRange {
                    group: self.group.clone(),
                    topic: r.topic.clone(),
                    partition: r.partition,
                    from: c,
                    to: r.offset,
                });
            }
        }
        None
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>, EventLogError> {
        if !self.stash.is_empty() {
            return Ok(std::mem::take(&mut self.stash));
        }
        let mut out = Vec::new();
        match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(out),
            Ok(Err(e)) => return Err(unavailable(e)),
            Ok(Ok(m)) => out.push(record(&m)),
        }
        // Then whatever is already fetched, without waiting long.
        while out.len() < max.max(1) {
            match tokio::time::timeout(Duration::from_millis(5), self.consumer.recv()).await {
                Ok(Ok(m)) => out.push(record(&m)),
                Ok(Err(e)) => return Err(unavailable(e)),
                Err(_) => break,
            }
        }
        if let Some(loss) = self.loss_in(&out).await {
            self.stash = out;
            return Err(loss);
        }
        Ok(out)
    }

    async fn commit(&mut self, next: &[(String, u32, u64)]) -> Result<(), EventLogError> {
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, offset) in next {
            tpl.add_partition_offset(
                topic,
                i32::try_from(*partition).unwrap_or(0),
                Offset::Offset(i64::try_from(*offset).unwrap_or(i64::MAX)),
            )
            .map_err(unavailable)?;
        }
        let consumer = self.consumer.clone();
        blocking(move || consumer.commit(&tpl, CommitMode::Sync).map_err(unavailable)).await
    }

    async fn seek(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), EventLogError> {
        let consumer = self.consumer.clone();
        let topic = topic.to_string();
        blocking(move || {
            consumer
                .seek(
                    &topic,
                    i32::try_from(partition).unwrap_or(0),
                    Offset::Offset(i64::try_from(offset).unwrap_or(i64::MAX)),
                    CALL_TIMEOUT,
                )
                .map_err(unavailable)
        })
        .await
    }
}
