//! Process configuration: defaults → optional file → environment → command-line flags.
//!
//! The binary does the layering; this module holds the model, the environment mapping (with the
//! original's variable names, spec AC §6, matched case-insensitively) and validation. Library
//! crates receive a [`Settings`] value and never read the environment themselves.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::names;
use crate::error::ValidationErrors;

mod backends;
mod kafka_ids;

pub use backends::*;
use backends::{StorageFamily, conf_id_key};

/// Shown instead of a secret by [`Settings::masked`].
pub const MASK: &str = "****";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConfigStoreKind {
    /// A durable store under `data_dir` (redb).
    #[default]
    Embedded,
    /// etcd, with the original's key layout.
    Etcd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info` or `skye=debug,info`.
    pub level: String,
    pub format: LogFormat,
    /// OTLP/gRPC collector that receives the traces (e.g. `http://localhost:4317`); empty = no
    /// export. Needs a binary built with the `otlp` feature.
    pub otlp_endpoint: String,
    /// `service.name` of the exported traces.
    pub otlp_service_name: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Pretty,
            otlp_endpoint: String::new(),
            otlp_service_name: "skye".into(),
        }
    }
}

/// Where one component listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub host: String,
    /// 0 = any free port (the bound address is logged).
    pub port: u16,
}

impl Listen {
    fn on(port: u16) -> Self {
        Listen {
            host: "0.0.0.0".into(),
            port,
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen::on(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServingSettings {
    #[serde(flatten)]
    pub listen: Listen,
    /// Byte budget of the in-process result cache.
    pub in_memory_cache_size_in_bytes: u64,
    /// Largest `limit` a search may ask for.
    pub max_limit: u32,
    /// Vector searches running at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_searches: usize,
    /// Deadline of a request whose client sent none (`grpc-timeout`), in ms.
    pub default_deadline_ms: u64,
    /// Consecutive vector-DB failures that open a variant's circuit breaker (0 = no breaker).
    pub breaker_failure_threshold: u32,
    /// How long an open breaker refuses calls before one probe, in ms.
    pub breaker_open_ms: u64,
    /// The online recall monitor re-runs one search in this many exactly (0 = off).
    pub recall_sample_every: u64,
    /// Checks per variant the recall figure is the mean of.
    pub recall_window: usize,
    /// Exact re-runs at once, at most (a chosen search is skipped when they are busy).
    pub recall_max_in_flight: usize,
}

impl Default for ServingSettings {
    fn default() -> Self {
        ServingSettings {
            listen: Listen::on(9090),
            in_memory_cache_size_in_bytes: 256 << 20,
            max_limit: 1000,
            max_concurrent_searches: 64,
            default_deadline_ms: 5_000,
            breaker_failure_threshold: 5,
            breaker_open_ms: 5_000,
            recall_sample_every: 1_000,
            recall_window: 200,
            recall_max_in_flight: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumersSettings {
    #[serde(flatten)]
    pub listen: Listen,
    /// Admin endpoint the consumers report EOFs to when admin runs in another process.
    pub admin_host: String,
    pub admin_port: u16,
    pub admin_timeout_in_ms: u64,
    /// Topics the embedding consumer reads (a model's `topic-name` must be one of them).
    pub embedding_topics: Vec<String>,
    /// Topics the real-time aggregator consumer reads.
    pub realtime_topics: Vec<String>,
    /// Largest batch a consumer handles at once.
    pub batch_size: usize,
    /// Consumer groups; empty = `<app_name>-embedding-consumer`, `<app_name>-realtime-consumer`,
    /// `<app_name>-realtime-delta-consumer`.
    pub embedding_group: String,
    pub realtime_group: String,
    pub delta_group: String,
}

impl Default for ConsumersSettings {
    fn default() -> Self {
        ConsumersSettings {
            listen: Listen::on(8081),
            admin_host: String::new(),
            admin_port: 80,
            admin_timeout_in_ms: 5000,
            embedding_topics: vec![
                crate::event_log::topics::EMBEDDING.to_string(),
                crate::event_log::topics::EMBEDDING_SEQUENCE.to_string(),
            ],
            realtime_topics: vec![crate::event_log::topics::REALTIME.to_string()],
            batch_size: 500,
            embedding_group: String::new(),
            realtime_group: String::new(),
            delta_group: String::new(),
        }
    }
}

/// Everything a Skye process is configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Root of the config tree: `/config/<app_name>`.
    pub app_name: String,
    /// `int`, `staging`, `prod`… (tags metrics; `int` disables embedding-store writes).
    pub app_env: String,
    /// Where embedded backends keep their files.
    pub data_dir: PathBuf,
    /// Accepted `skye-auth-token` values; empty = authentication off.
    pub auth_tokens: Vec<String>,
    pub log: LogSettings,
    pub admin: Listen,
    pub serving: ServingSettings,
    pub consumers: ConsumersSettings,
    pub backends: BackendSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            app_name: "skye".into(),
            app_env: String::new(),
            data_dir: PathBuf::from("./skye-data"),
            auth_tokens: Vec::new(),
            log: LogSettings::default(),
            admin: Listen::on(8080),
            serving: ServingSettings::default(),
            consumers: ConsumersSettings::default(),
            backends: BackendSettings::default(),
        }
    }
}

/// Which component a bare `PORT` variable configures (the original's admin and consumers each
/// read `PORT`; serving reads `APP_PORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortTarget {
    Admin,
    Consumers,
    Serving,
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The family, block number (≥ 1) and suffix of `STORAGE_<family>_<n>_<suffix>`.
fn storage_block(name: &str) -> Option<(StorageFamily, i64, &str)> {
    let (family, rest) = match name.strip_prefix("STORAGE_EMBEDDING_STORE_") {
        Some(rest) => (StorageFamily::Embeddings, rest),
        None => (
            StorageFamily::Aggregator,
            name.strip_prefix("STORAGE_AGGREGATOR_DB_")?,
        ),
    };
    let (n, suffix) = rest.split_once('_')?;
    Some((family, n.parse::<i64>().ok().filter(|n| *n >= 1)?, suffix))
}

/// One `STORAGE_*_<n>_<suffix>` variable; suffixes the driver has no use for are ignored.
fn scylla_env(
    s: &mut ScyllaSettings,
    suffix: &str,
    value: &str,
    field: &str,
    errors: &mut ValidationErrors,
) {
    match suffix {
        "CONTACT_POINTS" => s.contact_points = split_list(value),
        "PORT" => match value.parse() {
            Ok(p) => s.port = p,
            Err(_) => errors.push(field, format!("'{value}' is not a TCP port")),
        },
        "KEYSPACE" => s.keyspace = value.to_string(),
        "USERNAME" => s.username = value.to_string(),
        "PASSWORD" => s.password = value.to_string(),
        "TIMEOUT_IN_MS" => match value.parse() {
            Ok(n) => s.timeout_ms = n,
            Err(_) => errors.push(field, format!("'{value}' is not a number of ms")),
        },
        "PAYLOAD_COLUMN" => match crate::tree::parse_go_bool(value) {
            Some(b) => s.payload_column = b,
            None => errors.push(field, format!("'{value}' is not true or false")),
        },
        _ => {}
    }
}

impl Settings {
    /// Applies environment variables (names as in the original, any case). Unknown variables
    /// are ignored; malformed values are all reported.
    pub fn apply_env<I, K, V>(
        &mut self,
        vars: I,
        port_target: PortTarget,
    ) -> Result<(), ValidationErrors>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut errors = ValidationErrors::new();
        let mut explicit_store = None;
        let mut kafka_ids = kafka_ids::KafkaIds::default();
        for (name, value) in vars {
            let (name, value) = (name.as_ref().to_ascii_uppercase(), value.as_ref().trim());
            let field = format!("environment variable {name}");
            let port = |errors: &mut ValidationErrors| match value.parse::<u16>() {
                Ok(p) => Some(p),
                Err(_) => {
                    errors.push(field.clone(), format!("'{value}' is not a TCP port"));
                    None
                }
            };
            match name.as_str() {
                "APP_NAME" => self.app_name = value.to_string(),
                "APP_ENV" => self.app_env = value.to_string(),
                "APP_LOG_LEVEL" | "LOG_LEVEL" => self.log.level = value.to_string(),
                "OTEL_EXPORTER_OTLP_ENDPOINT" | "SKYE_OTLP_ENDPOINT" => {
                    self.log.otlp_endpoint = value.to_string()
                }
                "OTEL_SERVICE_NAME" => self.log.otlp_service_name = value.to_string(),
                "LOG_FORMAT" => match value.to_ascii_lowercase().as_str() {
                    "json" => self.log.format = LogFormat::Json,
                    "pretty" => self.log.format = LogFormat::Pretty,
                    _ => errors.push(field, format!("'{value}' is neither json nor pretty")),
                },
                "SKYE_DATA_DIR" | "DATA_DIR" => self.data_dir = PathBuf::from(value),
                "AUTH_TOKENS" => self.auth_tokens = split_list(value),
                "PORT" => {
                    if let Some(p) = port(&mut errors) {
                        match port_target {
                            PortTarget::Admin => self.admin.port = p,
                            PortTarget::Consumers => self.consumers.listen.port = p,
                            PortTarget::Serving => self.serving.listen.port = p,
                        }
                    }
                }
                "APP_PORT" => {
                    if let Some(p) = port(&mut errors) {
                        self.serving.listen.port = p;
                    }
                }
                "SKYE_RECALL_SAMPLE_EVERY" => match value.trim().parse() {
                    Ok(n) => self.serving.recall_sample_every = n,
                    Err(_) => errors.push(field, format!("'{value}' is not a count (0 = off)")),
                },
                "IN_MEMORY_CACHE_SIZE_IN_BYTES" => match value.parse() {
                    Ok(n) => self.serving.in_memory_cache_size_in_bytes = n,
                    Err(_) => errors.push(field, format!("'{value}' is not a byte count")),
                },
                "ADMIN_HOST" => self.consumers.admin_host = value.to_string(),
                "ADMIN_PORT" => {
                    if let Some(p) = port(&mut errors) {
                        self.consumers.admin_port = p;
                    }
                }
                "ADMIN_TIMEOUT_IN_MS" => match value.parse() {
                    Ok(n) => self.consumers.admin_timeout_in_ms = n,
                    Err(_) => errors.push(field, format!("'{value}' is not a number of ms")),
                },
                "ETCD_SERVER" => {
                    self.backends.etcd.endpoints = split_list(value);
                    if !self.backends.etcd.endpoints.is_empty() {
                        self.backends.config_store = ConfigStoreKind::Etcd;
                    }
                }
                "ETCD_USERNAME" => self.backends.etcd.username = value.to_string(),
                "ETCD_PASSWORD" => self.backends.etcd.password = value.to_string(),
                "ETCD_WATCHER_ENABLED" => match crate::tree::parse_go_bool(value) {
                    Some(b) => self.backends.etcd.watcher_enabled = b,
                    None => errors.push(field, format!("'{value}' is not a boolean")),
                },
                "SKYE_CONFIG_STORE" | "CONFIG_STORE" => match value.to_ascii_lowercase().as_str() {
                    "embedded" => explicit_store = Some(ConfigStoreKind::Embedded),
                    "etcd" => explicit_store = Some(ConfigStoreKind::Etcd),
                    _ => errors.push(field, format!("'{value}' is neither embedded nor etcd")),
                },
                "SKYE_INTEGRITY_CHECK" => match value.trim().to_ascii_lowercase().as_str() {
                    "full" => self.backends.integrity_check = IntegrityCheck::Full,
                    "background" => self.backends.integrity_check = IntegrityCheck::Background,
                    "off" => self.backends.integrity_check = IntegrityCheck::Off,
                    _ => errors.push(field, format!("'{value}' is not full, background or off")),
                },
                "KAFKA_BROKER" => self.backends.kafka.broker = value.to_string(),
                "KAFKA_SESSION_TIMEOUT_MS" => match value.trim().parse() {
                    Ok(n) => self.backends.kafka.session_timeout_ms = n,
                    Err(_) => errors.push(field, format!("'{value}' is not a number of ms")),
                },
                "KAFKA_MAX_POLL_INTERVAL_MS" => match value.trim().parse() {
                    Ok(n) => self.backends.kafka.max_poll_interval_ms = n,
                    Err(_) => errors.push(field, format!("'{value}' is not a number of ms")),
                },
                _ if let Some((family, n, suffix)) = storage_block(&name) => scylla_env(
                    self.backends.scylla_block(family, n),
                    suffix,
                    value,
                    &field,
                    &mut errors,
                ),
                "REDIS_ADDR" => self.backends.redis.addr = value.to_string(),
                "REDIS_PASSWORD" => self.backends.redis.password = value.to_string(),
                "REDIS_DB" => match value.parse() {
                    Ok(n) => self.backends.redis.db = n,
                    Err(_) => errors.push(field, format!("'{value}' is not a database number")),
                },
                "REDIS_KEY_FORMAT" => match value.trim().to_ascii_lowercase().as_str() {
                    "skye" => self.backends.redis.key_format = CacheKeyFormat::Skye,
                    "original" => self.backends.redis.key_format = CacheKeyFormat::Original,
                    _ => errors.push(field, format!("'{value}' is not 'skye' or 'original'")),
                },
                _ if kafka_ids.offer(&name, value) => {}
                _ => {}
            }
        }
        kafka_ids.apply(self, &mut errors);
        if let Some(kind) = explicit_store {
            self.backends.config_store = kind;
        }
        errors.into_result()
    }

    /// Checks the whole configuration, reporting every problem.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Err(msg) = names::check_name(&self.app_name) {
            errors.push("app_name", msg);
        }
        if self.data_dir.as_os_str().is_empty() {
            errors.push("data_dir", "is required");
        }
        let log = &self.backends.event_log;
        for (field, value) in [
            ("backends.event_log.retained_records", log.retained_records),
            (
                "backends.event_log.max_backlog_records",
                log.max_backlog_records,
            ),
        ] {
            if value == 0 {
                errors.push(field, "must be positive");
            }
        }
        if self.log.level.trim().is_empty() {
            errors.push("log.level", "is required");
        }
        let endpoint = &self.log.otlp_endpoint;
        if !endpoint.is_empty()
            && !endpoint.starts_with("http://")
            && !endpoint.starts_with("https://")
        {
            errors.push(
                "log.otlp_endpoint",
                format!("'{endpoint}' is not an http:// or https:// URL"),
            );
        }
        if self.log.otlp_service_name.trim().is_empty() {
            errors.push("log.otlp_service_name", "is required");
        }
        if self
            .auth_tokens
            .iter()
            .any(|t| t.trim().is_empty() || t.trim() != t)
        {
            errors.push(
                "auth_tokens",
                "tokens must be non-empty and carry no surrounding spaces",
            );
        }
        if self.serving.in_memory_cache_size_in_bytes < (1 << 20) {
            errors.push(
                "serving.in_memory_cache_size_in_bytes",
                "must be at least 1048576 (1 MiB)",
            );
        }
        if self.serving.default_deadline_ms == 0 {
            errors.push("serving.default_deadline_ms", "must be positive");
        }
        if self.consumers.batch_size == 0 || self.consumers.batch_size > 100_000 {
            errors.push("consumers.batch_size", "must be between 1 and 100000");
        }
        if self.consumers.embedding_topics.is_empty() {
            errors.push("consumers.embedding_topics", "must name at least one topic");
        }
        if self.serving.max_limit == 0 {
            errors.push("serving.max_limit", "must be positive");
        }
        if self.serving.recall_window == 0 || self.serving.recall_max_in_flight == 0 {
            errors.push(
                "serving.recall_window",
                "recall_window and recall_max_in_flight must be positive",
            );
        }
        if self.serving.max_concurrent_searches == 0 {
            errors.push("serving.max_concurrent_searches", "must be positive");
        }
        let ports = [
            ("admin.port", self.admin.port),
            ("serving.port", self.serving.listen.port),
            ("consumers.port", self.consumers.listen.port),
        ];
        for (i, (name, port)) in ports.iter().enumerate() {
            for (other, other_port) in &ports[i + 1..] {
                if *port != 0 && port == other_port {
                    errors.push(*name, format!("{port} is also {other}"));
                }
            }
        }
        if self.backends.config_store == ConfigStoreKind::Etcd
            && self.backends.etcd.endpoints.is_empty()
        {
            errors.push(
                "backends.etcd.endpoints",
                "is required when backends.config_store = \"etcd\"",
            );
        }
        let mut blocks = vec![
            (
                "backends.scylla_embeddings".to_string(),
                &self.backends.scylla_embeddings,
            ),
            (
                "backends.scylla_aggregator".to_string(),
                &self.backends.scylla_aggregator,
            ),
        ];
        for (family, map) in [
            (
                "backends.scylla_embeddings_by_conf_id",
                &self.backends.scylla_embeddings_by_conf_id,
            ),
            (
                "backends.scylla_aggregator_by_conf_id",
                &self.backends.scylla_aggregator_by_conf_id,
            ),
        ] {
            for (key, block) in map {
                let name = format!("{family}.{key}");
                if conf_id_key(key).is_none() {
                    errors.push(
                        name.clone(),
                        "keys are store conf_ids of 2 or more (conf_id 1 is the family's main \
                         block)",
                    );
                }
                if !block.enabled() {
                    errors.push(format!("{name}.contact_points"), "must not be empty");
                }
                blocks.push((name, block));
            }
        }
        for (name, scylla) in blocks {
            if scylla.enabled() && scylla.keyspace.trim().is_empty() {
                errors.push(
                    format!("{name}.keyspace"),
                    "is required when contact_points are set",
                );
            }
            if scylla.enabled() && scylla.timeout_ms == 0 {
                errors.push(format!("{name}.timeout_ms"), "must be positive");
            }
        }
        errors.into_result()
    }

    /// A copy with every secret replaced by [`MASK`], fit for printing and logging.
    pub fn masked(&self) -> Settings {
        let mut s = self.clone();
        s.auth_tokens = s.auth_tokens.iter().map(|_| MASK.to_string()).collect();
        for secret in [
            &mut s.backends.etcd.password,
            &mut s.backends.redis.password,
            &mut s.backends.kafka.sasl_password,
            &mut s.backends.scylla_embeddings.password,
            &mut s.backends.scylla_aggregator.password,
        ]
        .into_iter()
        .chain(
            s.backends
                .scylla_embeddings_by_conf_id
                .values_mut()
                .chain(s.backends.scylla_aggregator_by_conf_id.values_mut())
                .map(|b| &mut b.password),
        ) {
            if !secret.is_empty() {
                *secret = MASK.to_string();
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;
