//! Chooses backend implementations from [`Settings`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use skye_core::cache::DistributedCache;
use skye_core::config_store::{ConfigStore, ConfigStoreError};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::event_log::{EventLog, EventLogError};
use skye_core::settings::{ConfigStoreKind, IntegrityCheck, Settings};
use skye_core::storage::{AggregatorStore, EmbeddingStore, StorageError};

use crate::embedded::EmbeddedConfigStore;

/// File of the embedded config store, under the data directory.
pub const CONFIG_STORE_FILE: &str = "config.redb";

/// Why a backend could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error(
        "the {backend} backend is not available in this build: rebuild with `--features {feature}`"
    )]
    NotBuilt {
        backend: &'static str,
        feature: &'static str,
    },
    #[error(transparent)]
    ConfigStore(#[from] ConfigStoreError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    EventLog(#[from] EventLogError),
    #[error(transparent)]
    Storage(StorageError),
}

impl HasErrorCode for FactoryError {
    fn code(&self) -> ErrorCode {
        match self {
            FactoryError::NotBuilt { .. } => ErrorCode::FailedPrecondition,
            FactoryError::ConfigStore(e) => e.code(),
            FactoryError::Invalid(_) => ErrorCode::InvalidArgument,
            FactoryError::EventLog(e) => e.code(),
            FactoryError::Storage(e) => e.code(),
        }
    }
}

/// Path of the embedded config store for `settings`.
pub fn config_store_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join(CONFIG_STORE_FILE)
}

/// Opens the config store selected by `settings.backends.config_store`.
pub async fn open_config_store(settings: &Settings) -> Result<Arc<dyn ConfigStore>, FactoryError> {
    match settings.backends.config_store {
        ConfigStoreKind::Embedded => {
            let store = EmbeddedConfigStore::open_checked(
                &config_store_path(settings),
                settings.backends.integrity_check,
            )?;
            Ok(Arc::new(store))
        }
        #[cfg(feature = "etcd")]
        ConfigStoreKind::Etcd => {
            let e = &settings.backends.etcd;
            let store =
                crate::etcd::EtcdConfigStore::connect(&e.endpoints, &e.username, &e.password)
                    .await?;
            Ok(Arc::new(store))
        }
        #[cfg(not(feature = "etcd"))]
        ConfigStoreKind::Etcd => Err(FactoryError::NotBuilt {
            backend: "etcd config store",
            feature: "etcd",
        }),
    }
}

/// The distributed cache: Redis when `backends.redis.addr` is set, else none.
pub fn open_distributed_cache(
    settings: &Settings,
) -> Result<Option<Arc<dyn DistributedCache>>, FactoryError> {
    let r = &settings.backends.redis;
    if r.addr.trim().is_empty() {
        return Ok(None);
    }
    #[cfg(feature = "redis")]
    {
        let cache = crate::redis::RedisCache::new(
            &r.addr,
            &r.password,
            r.db,
            crate::redis::DEFAULT_TIMEOUT,
        )
        .map_err(|e| FactoryError::Invalid(format!("backends.redis.addr: {e}")))?;
        Ok(Some(Arc::new(cache)))
    }
    #[cfg(not(feature = "redis"))]
    Err(FactoryError::NotBuilt {
        backend: "Redis cache",
        feature: "redis",
    })
}

/// File of the embedded event log, under the data directory.
pub const EVENT_LOG_FILE: &str = "events.redb";

/// Whether the event bus is the embedded log (no `backends.kafka.broker`).
pub fn embedded_event_log(settings: &Settings) -> bool {
    settings.backends.kafka.broker.trim().is_empty()
}

/// The event bus: Kafka when `backends.kafka.broker` is set, else the embedded log.
pub fn open_event_log(settings: &Settings) -> Result<Arc<dyn EventLog>, FactoryError> {
    if embedded_event_log(settings) {
        let l = &settings.backends.event_log;
        let limits = crate::embedded::LogLimits {
            retained_records: l.retained_records,
            max_backlog_records: l.max_backlog_records,
        };
        let path = settings.data_dir.join(EVENT_LOG_FILE);
        let log = crate::embedded::EmbeddedEventLog::open_checked(
            &path,
            limits,
            settings.backends.integrity_check,
        )?;
        return Ok(Arc::new(log));
    }
    #[cfg(feature = "kafka")]
    {
        let k = &settings.backends.kafka;
        let mut config = crate::kafka::KafkaConfig::new(k.broker.clone());
        config.session_timeout_ms = k.session_timeout_ms;
        config.max_poll_interval_ms = k.max_poll_interval_ms;
        for (key, value) in [
            ("sasl.username", &k.sasl_username),
            ("sasl.password", &k.sasl_password),
            ("sasl.mechanism", &k.sasl_mechanism),
            ("security.protocol", &k.security_protocol),
        ] {
            if !value.is_empty() {
                config.extra.push((key.to_string(), value.clone()));
            }
        }
        Ok(Arc::new(crate::kafka::KafkaEventLog::new(config)?))
    }
    #[cfg(not(feature = "kafka"))]
    Err(FactoryError::NotBuilt {
        backend: "Kafka event bus",
        feature: "kafka",
    })
}

/// File of the embedded embedding and aggregator store, under the data directory.
pub const STORAGE_FILE: &str = "storage.redb";

/// The embedding and aggregator stores of a process.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Stores registered with `conf_id` 1, or a `conf_id` without a block of its own.
    pub embeddings: Arc<dyn EmbeddingStore>,
    pub aggregator: Arc<dyn AggregatorStore>,
    /// One ScyllaDB session per further `conf_id` block (`STORAGE_*_<n>_*`, n ≥ 2).
    pub embeddings_by_conf_id: BTreeMap<i64, Arc<dyn EmbeddingStore>>,
    pub aggregator_by_conf_id: BTreeMap<i64, Arc<dyn AggregatorStore>>,
}

/// One store behind both storage traits.
type BothStores = (Arc<dyn EmbeddingStore>, Arc<dyn AggregatorStore>);

/// The embedded store as both traits: opened here, or (integrity check in the background) while
/// the process starts serving.
fn open_embedded_storage(settings: &Settings) -> Result<BothStores, FactoryError> {
    let path = settings.data_dir.join(STORAGE_FILE);
    match settings.backends.integrity_check {
        IntegrityCheck::Background => {
            let store = Arc::new(crate::embedded::OpeningStorage::spawn(path));
            Ok((store.clone(), store))
        }
        check => {
            let store = Arc::new(
                crate::embedded::EmbeddedStorage::open_checked(&path, check)
                    .map_err(FactoryError::Storage)?,
            );
            Ok((store.clone(), store))
        }
    }
}

/// The embedding and aggregator stores: ScyllaDB for each family whose contact points are set
/// (`backends.scylla_embeddings`, `backends.scylla_aggregator`), else the embedded file; plus
/// a ScyllaDB session for every further `conf_id` block.
pub async fn open_storage(settings: &Settings) -> Result<Storage, FactoryError> {
    let b = &settings.backends;
    let (e, a) = (&b.scylla_embeddings, &b.scylla_aggregator);
    let embedded = if e.enabled() && a.enabled() {
        None
    } else {
        Some(open_embedded_storage(settings)?)
    };
    let embeddings: Arc<dyn EmbeddingStore> = match (&embedded, e.enabled()) {
        (Some((store, _)), false) => store.clone(),
        _ => scylla(e).await?,
    };
    let aggregator: Arc<dyn AggregatorStore> = match (&embedded, a.enabled()) {
        (Some((_, store)), false) => store.clone(),
        _ => scylla(a).await?,
    };
    let mut storage = Storage {
        embeddings,
        aggregator,
        embeddings_by_conf_id: BTreeMap::new(),
        aggregator_by_conf_id: BTreeMap::new(),
    };
    for (conf_id, block) in b.embeddings_blocks() {
        let store = scylla(block).await?;
        storage.embeddings_by_conf_id.insert(conf_id, store);
    }
    for (conf_id, block) in b.aggregator_blocks() {
        let store = scylla(block).await?;
        storage.aggregator_by_conf_id.insert(conf_id, store);
    }
    Ok(storage)
}

#[cfg(feature = "scylla")]
async fn scylla(
    s: &skye_core::settings::ScyllaSettings,
) -> Result<Arc<crate::scylla::ScyllaStorage>, FactoryError> {
    let mut config = crate::scylla::ScyllaConfig::new(s.nodes(), s.keyspace.clone());
    config.payload_column = s.payload_column;
    config.request_timeout = std::time::Duration::from_millis(s.timeout_ms);
    if !s.username.is_empty() {
        config.username = Some(s.username.clone());
        config.password = Some(s.password.clone());
    }
    Ok(Arc::new(
        crate::scylla::ScyllaStorage::connect(&config)
            .await
            .map_err(FactoryError::Storage)?,
    ))
}

#[cfg(not(feature = "scylla"))]
async fn scylla(
    _: &skye_core::settings::ScyllaSettings,
) -> Result<Arc<crate::embedded::EmbeddedStorage>, FactoryError> {
    Err(FactoryError::NotBuilt {
        backend: "ScyllaDB embedding/aggregator store",
        feature: "scylla",
    })
}

/// The remote vector DBs this build has clients for: QDRANT variants with feature `qdrant`,
/// NGT and EIGENIX variants with feature `ngt-eigenix`.
pub fn remote_vector_stores() -> Option<Arc<dyn skye_core::vector_store::RemoteVectorStores>> {
    if cfg!(any(feature = "qdrant", feature = "ngt-eigenix")) {
        Some(Arc::new(RemoteStores::default()))
    } else {
        None
    }
}

/// Picks the client of a variant's `vector-db-type`.
#[derive(Debug, Default)]
pub struct RemoteStores {
    #[cfg(feature = "qdrant")]
    qdrant: crate::qdrant::QdrantStores,
    #[cfg(feature = "ngt-eigenix")]
    grpc: crate::remote_grpc::GrpcStores,
}

impl skye_core::vector_store::RemoteVectorStores for RemoteStores {
    fn for_variant(
        &self,
        variant: &skye_core::domain::Variant,
        write: bool,
    ) -> Result<
        Arc<dyn skye_core::vector_store::VectorStore>,
        skye_core::vector_store::VectorStoreError,
    > {
        use skye_core::domain::VectorDbType;
        #[cfg(not(feature = "qdrant"))]
        let _ = write;
        match variant.vector_db_type {
            #[cfg(feature = "qdrant")]
            VectorDbType::Qdrant => self.qdrant.for_variant(variant, write),
            #[cfg(not(feature = "qdrant"))]
            VectorDbType::Qdrant => not_built(variant, "qdrant"),
            #[cfg(feature = "ngt-eigenix")]
            VectorDbType::Ngt | VectorDbType::Eigenix => self.grpc.for_variant(variant),
            #[cfg(not(feature = "ngt-eigenix"))]
            VectorDbType::Ngt | VectorDbType::Eigenix => not_built(variant, "ngt-eigenix"),
            VectorDbType::Embedded => {
                Err(skye_core::vector_store::VectorStoreError::InvalidArgument(
                    format!("variant '{}' is EMBEDDED, not remote", variant.name),
                ))
            }
        }
    }
}

#[cfg_attr(all(feature = "qdrant", feature = "ngt-eigenix"), allow(dead_code))]
fn not_built(
    variant: &skye_core::domain::Variant,
    feature: &str,
) -> Result<Arc<dyn skye_core::vector_store::VectorStore>, skye_core::vector_store::VectorStoreError>
{
    Err(skye_core::vector_store::VectorStoreError::Unavailable(
        format!(
            "variant '{}' uses {}, and this build has no client for it (rebuild with `--features \
         {feature}`)",
            variant.name, variant.vector_db_type
        )
        .into(),
    ))
}
