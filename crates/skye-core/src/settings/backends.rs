//! The `[backends]` section: which engines a process runs on and how it reaches them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigStoreKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdSettings {
    pub endpoints: Vec<String>,
    pub username: String,
    pub password: String,
    pub watcher_enabled: bool,
}

impl Default for EtcdSettings {
    fn default() -> Self {
        EtcdSettings {
            endpoints: Vec::new(),
            username: String::new(),
            password: String::new(),
            watcher_enabled: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// Empty = no distributed cache.
    pub addr: String,
    pub password: String,
    pub db: i64,
    /// How similar-candidates answers are keyed and encoded.
    pub key_format: CacheKeyFormat,
}

/// The distributed cache's key and value format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CacheKeyFormat {
    /// Keys over everything that changes an answer (read version, `limit`, `offset`), compact
    /// values: never a stale or short answer.
    #[default]
    Skye,
    /// The original's `sc:…:V2` keys and protobuf `CandidateResponse` values (spec serving
    /// §4.2), to share a Redis with the original's pods or start on a warm one.
    Original,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Empty = the embedded event log.
    pub broker: String,
    /// `sasl.username`, `sasl.password`, `sasl.mechanism`, `security.protocol` (empty = unset).
    pub sasl_username: String,
    pub sasl_password: String,
    pub sasl_mechanism: String,
    pub security_protocol: String,
    /// Consumer-group session timeout.
    pub session_timeout_ms: u32,
    /// Longest gap between polls before a member is dropped from its group.
    pub max_poll_interval_ms: u32,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            broker: String::new(),
            sasl_username: String::new(),
            sasl_password: String::new(),
            sasl_mechanism: String::new(),
            security_protocol: String::new(),
            session_timeout_ms: 30_000,
            max_poll_interval_ms: 300_000,
        }
    }
}

/// The embedded event log (used when no Kafka broker is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventLogSettings {
    /// Records kept per partition of a topic no consumer group reads (failure topics); the
    /// oldest go first. Topics a group reads keep every record until each group committed it.
    pub retained_records: u64,
    /// Most records a partition may hold that some consumer group has not committed: a produce
    /// past it is refused with a clear error (HTTP 429 on the ingest API), never made room for by
    /// dropping unread events.
    pub max_backlog_records: u64,
}

impl Default for EventLogSettings {
    fn default() -> Self {
        EventLogSettings {
            retained_records: 1_000_000,
            max_backlog_records: 100_000_000,
        }
    }
}

/// A ScyllaDB/Cassandra connection (the original's `STORAGE_*_<n>_*` block, spec AC §6.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaSettings {
    /// Hosts; empty = the embedded store.
    pub contact_points: Vec<String>,
    pub port: u16,
    pub keyspace: String,
    pub username: String,
    pub password: String,
    pub timeout_ms: u64,
    /// The embeddings table has Skye's `skye_payload text` column (added with
    /// `ALTER TABLE <t> ADD skye_payload text`): each row then keeps its job payload, which an
    /// item re-admitted by a real-time flag gets back. Off, re-admitted items take their payload
    /// from the aggregator row and the field defaults (the original's tables have no such
    /// column). `STORAGE_EMBEDDING_STORE_<n>_PAYLOAD_COLUMN`.
    pub payload_column: bool,
}

impl Default for ScyllaSettings {
    fn default() -> Self {
        ScyllaSettings {
            contact_points: Vec::new(),
            port: 9042,
            keyspace: String::new(),
            username: String::new(),
            password: String::new(),
            timeout_ms: 5_000,
            payload_column: false,
        }
    }
}

impl ScyllaSettings {
    pub fn enabled(&self) -> bool {
        !self.contact_points.is_empty()
    }

    /// `host:port` of every contact point (a point that names its port keeps it).
    pub fn nodes(&self) -> Vec<String> {
        self.contact_points
            .iter()
            .map(|h| {
                if h.contains(':') {
                    h.clone()
                } else {
                    format!("{h}:{}", self.port)
                }
            })
            .collect()
    }
}

/// How the embedded files (config, event log, embedding store) are verified when they open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IntegrityCheck {
    /// Every page's checksum is verified before the process serves (1.3–5 s per GB of file,
    /// depending on the page cache), so a file damaged at rest is found and repaired at start.
    Full,
    /// As `Full`, but the embedding/aggregator store (the large file) is verified while the
    /// process already serves: vector searches are answered at once, calls that read or write
    /// embeddings wait until its check is done. The config store and the event log (small once
    /// consumed) are verified before serving.
    #[default]
    Background,
    /// No check after a clean shutdown; after a crash the store still verifies and repairs
    /// itself. Damage at rest after a clean shutdown goes unnoticed until a read fails.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BackendSettings {
    pub config_store: ConfigStoreKind,
    /// Verification of the embedded files at open (`SKYE_INTEGRITY_CHECK`: full, background or
    /// off).
    pub integrity_check: IntegrityCheck,
    pub etcd: EtcdSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub event_log: EventLogSettings,
    /// The embedding store on ScyllaDB (`STORAGE_EMBEDDING_STORE_1_*`): stores registered with
    /// `conf_id` 1, and any `conf_id` without a block of its own.
    pub scylla_embeddings: ScyllaSettings,
    /// The aggregator table on ScyllaDB (`STORAGE_AGGREGATOR_DB_1_*`), chosen the same way.
    pub scylla_aggregator: ScyllaSettings,
    /// Further embedding-store clusters by store `conf_id` ≥ 2 (`STORAGE_EMBEDDING_STORE_<n>_*`;
    /// TOML keys are the numbers as strings: `[backends.scylla_embeddings_by_conf_id.2]`).
    pub scylla_embeddings_by_conf_id: BTreeMap<String, ScyllaSettings>,
    /// Further aggregator clusters by store `conf_id` ≥ 2 (`STORAGE_AGGREGATOR_DB_<n>_*`).
    pub scylla_aggregator_by_conf_id: BTreeMap<String, ScyllaSettings>,
}

impl BackendSettings {
    /// The ScyllaDB blocks of one family by `conf_id` ≥ 2; keys that are not such numbers are
    /// left out (validation reports them).
    fn conf_blocks(map: &BTreeMap<String, ScyllaSettings>) -> BTreeMap<i64, &ScyllaSettings> {
        map.iter()
            .filter_map(|(k, v)| Some((conf_id_key(k)?, v)))
            .collect()
    }

    /// Block `n` of `family` (1 = the family's main block), created when absent.
    pub(super) fn scylla_block(&mut self, family: StorageFamily, n: i64) -> &mut ScyllaSettings {
        let (main, extra) = match family {
            StorageFamily::Embeddings => (
                &mut self.scylla_embeddings,
                &mut self.scylla_embeddings_by_conf_id,
            ),
            StorageFamily::Aggregator => (
                &mut self.scylla_aggregator,
                &mut self.scylla_aggregator_by_conf_id,
            ),
        };
        match n {
            1 => main,
            n => extra.entry(n.to_string()).or_default(),
        }
    }

    /// `scylla_embeddings_by_conf_id` keyed by number.
    pub fn embeddings_blocks(&self) -> BTreeMap<i64, &ScyllaSettings> {
        Self::conf_blocks(&self.scylla_embeddings_by_conf_id)
    }

    /// `scylla_aggregator_by_conf_id` keyed by number.
    pub fn aggregator_blocks(&self) -> BTreeMap<i64, &ScyllaSettings> {
        Self::conf_blocks(&self.scylla_aggregator_by_conf_id)
    }
}

/// The `conf_id` a `*_by_conf_id` key names: a number of 2 or more.
pub(super) fn conf_id_key(key: &str) -> Option<i64> {
    key.trim().parse::<i64>().ok().filter(|n| *n >= 2)
}

/// A family of ScyllaDB connection blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StorageFamily {
    Embeddings,
    Aggregator,
}
