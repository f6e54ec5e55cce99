//! Chooses backend implementations from [`Settings`].

use std::path::PathBuf;
use std::sync::Arc;

use skye_core::cache::DistributedCache;
use skye_core::config_store::{ConfigStore, ConfigStoreError};
use skye_core::error::{ErrorCode, HasErrorCode};
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
}

impl HasErrorCode for FactoryError {
    fn code(&self) -> ErrorCode {
        match self {
            FactoryError::NotBuilt { .. } => ErrorCode::FailedPrecondition,
            FactoryError::ConfigStore(e) => e.code(),
            FactoryError::Invalid(_) => ErrorCode::InvalidArgument,
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
