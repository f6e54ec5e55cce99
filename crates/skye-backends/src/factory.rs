//! Chooses backend implementations from [`Settings`].

use std::path::PathBuf;
use std::sync::Arc;

use skye_core::cache::DistributedCache;
use skye_core::config_store::{ConfigStore, ConfigStoreError};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::event_log::{EventLog, EventLogError};
use skye_core::settings::{ConfigStoreKind, Settings};

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
}

impl HasErrorCode for FactoryError {
    fn code(&self) -> ErrorCode {
        match self {
            FactoryError::NotBuilt { .. } => ErrorCode::FailedPrecondition,
            FactoryError::ConfigStore(e) => e.code(),
            FactoryError::Invalid(_) => ErrorCode::InvalidArgument,
            FactoryError::EventLog(e) => e.code(),
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
            let store = EmbeddedConfigStore::open(&config_store_path(settings))?;
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

/// The event bus: Kafka when `backends.kafka.broker` is set, else the embedded log.
pub fn open_event_log(settings: &Settings) -> Result<Arc<dyn EventLog>, FactoryError> {
    let k = &settings.backends.kafka;
    if k.broker.trim().is_empty() {
        let log = crate::embedded::EmbeddedEventLog::open(&settings.data_dir.join(EVENT_LOG_FILE))?;
        return Ok(Arc::new(log));
    }
    #[cfg(feature = "kafka")]
    {
        let mut config = crate::kafka::KafkaConfig::new(k.broker.clone());
        config.session_timeout_ms = k.session_timeout_ms;
        config.max_poll_interval_ms = k.max_poll_interval_ms;
        Ok(Arc::new(crate::kafka::KafkaEventLog::new(config)?))
    }
    #[cfg(not(feature = "kafka"))]
    Err(FactoryError::NotBuilt {
        backend: "Kafka event bus",
        feature: "kafka",
    })
}

/// The remote vector DBs this build has clients for (QDRANT variants with feature `qdrant`).
pub fn remote_vector_stores() -> Option<Arc<dyn skye_core::vector_store::RemoteVectorStores>> {
    #[cfg(feature = "qdrant")]
    {
        Some(Arc::new(crate::qdrant::QdrantStores::default()))
    }
    #[cfg(not(feature = "qdrant"))]
    None
}
