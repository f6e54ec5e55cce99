//! The registry: registration of stores, frequencies, entities, models and variants, and the
//! read side everything else uses.
//!
//! Writes are single config-store transactions guarded by compares, so they are atomic (no
//! half-registered variant) and race-free (two admins cannot both create the same name); the
//! original writes keys one by one in random order (spec AC §8 B17). A write returns once the
//! local snapshot reflects it, so a client can read back what it registered immediately.

mod snapshot_cell;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use skye_core::config_store::{Compare, ConfigStore, ConfigStoreError, Txn};
use skye_core::domain::{Model, Variant};
use skye_core::error::{ErrorCode, HasErrorCode, ValidationErrors};
use skye_core::registration::{
    RegisterEntity, RegisterFrequency, RegisterModel, RegisterStore, RegisterVariant,
};
use skye_core::snapshot::{ConfigSnapshot, LookupError};
use skye_core::tree::{self, TreeRoot, model_keys, variant_keys};

pub use snapshot_cell::SnapshotCell;

/// How long a write waits for its own change to reach the local snapshot.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of an optimistic (compare-and-set) write before giving up.
const CAS_ATTEMPTS: usize = 16;

/// Errors of registry operations.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    NotFound(#[from] LookupError),
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("too many concurrent changes to {0}; retry")]
    Contended(String),
    #[error(transparent)]
    Store(#[from] ConfigStoreError),
}

impl HasErrorCode for RegistryError {
    fn code(&self) -> ErrorCode {
        match self {
            RegistryError::Invalid(_) => ErrorCode::InvalidArgument,
            RegistryError::NotFound(_) | RegistryError::Missing(_) => ErrorCode::NotFound,
            RegistryError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            RegistryError::Contended(_) => ErrorCode::Unavailable,
            RegistryError::Store(e) => e.code(),
        }
    }
}

/// The registry service.
#[derive(Debug)]
pub struct Registry {
    store: Arc<dyn ConfigStore>,
    root: TreeRoot,
    cell: SnapshotCell,
}

impl Registry {
    /// Loads the tree of `app_name` from `store` and follows its changes.
    pub async fn open(store: Arc<dyn ConfigStore>, app_name: &str) -> Result<Self, RegistryError> {
        let root = TreeRoot::new(app_name);
        let cell = SnapshotCell::start(store.clone(), root.clone()).await?;
        Ok(Registry { store, root, cell })
    }

    /// Stops following the store; when this returns the registry holds no handle on it.
    pub async fn shutdown(self) {
        self.cell.shutdown().await;
    }

    /// The latest snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<ConfigSnapshot> {
        self.cell.load()
    }

    /// The config store, for services that keep their own state in the tree.
    pub fn store(&self) -> &Arc<dyn ConfigStore> {
        &self.store
    }

    pub fn root(&self) -> &TreeRoot {
        &self.root
    }

    /// The tree as stored right now (not the possibly lagging snapshot): what writes validate
    /// against.
    pub(crate) async fn authoritative(&self) -> Result<Current, RegistryError> {
        let range = self.store.range(&self.root.prefix()).await?;
        let revisions = range
            .kvs
            .iter()
            .map(|kv| (kv.key.clone(), kv.mod_revision))
            .collect();
        let snapshot = tree::decode(
            &self.root,
            range.revision,
            range.kvs.into_iter().map(|kv| (kv.key, kv.value)),
        );
        Ok(Current {
            snapshot,
            revisions,
        })
    }

    /// Applies `txn`; `false` when a compare failed.
    pub(crate) async fn commit(&self, txn: Txn) -> Result<bool, RegistryError> {
        let result = self.store.txn(txn).await?;
        if result.succeeded
            && !self
                .cell
                .wait_for(result.revision, VISIBILITY_TIMEOUT)
                .await
        {
            tracing::warn!(
                revision = result.revision,
                "committed change not yet visible in the snapshot"
            );
        }
        Ok(result.succeeded)
    }

    /// Registers a store and returns the id assigned to it (max existing numeric id + 1).
    pub async fn register_store(&self, req: RegisterStore) -> Result<String, RegistryError> {
        with_retries("storage/stores", || self.try_register_store(&req)).await
    }

    async fn try_register_store(
        &self,
        req: &RegisterStore,
    ) -> Result<Option<String>, RegistryError> {
        let current = self.authoritative().await?.snapshot;
        let next = current
            .stores
            .keys()
            .filter_map(|id| id.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let id = next.to_string();
        let (key, value) = tree::encode_store(&self.root, &id, &req.store);
        let committed = self
            .commit(
                Txn::new()
                    .when(Compare::Absent(key.clone()))
                    .put(key, value),
            )
            .await?;
        Ok(committed.then_some(id))
    }

    /// Adds a job frequency; an exact duplicate is refused.
    pub async fn register_frequency(&self, req: RegisterFrequency) -> Result<(), RegistryError> {
        with_retries("storage/frequencies", || self.try_register_frequency(&req)).await
    }

    async fn try_register_frequency(
        &self,
        req: &RegisterFrequency,
    ) -> Result<Option<()>, RegistryError> {
        let key = self.root.frequencies();
        let range = self.store.range(&key).await?;
        let existing = range.kvs.into_iter().find(|kv| kv.key == key);
        let mut list: Vec<String> = existing
            .as_ref()
            .map(|kv| {
                kv.value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if list.iter().any(|f| f == &req.frequency) {
            return Err(RegistryError::AlreadyExists(format!(
                "frequency '{}' is already registered",
                req.frequency
            )));
        }
        list.push(req.frequency.clone());
        let guard = match &existing {
            Some(kv) => Compare::ModRevision(key.clone(), kv.mod_revision),
            None => Compare::Absent(key.clone()),
        };
        let committed = self
            .commit(Txn::new().when(guard).put(&key, list.join(",")))
            .await?;
        Ok(committed.then_some(()))
    }

    /// Registers an entity on an existing store.
    pub async fn register_entity(&self, req: RegisterEntity) -> Result<(), RegistryError> {
        let what = format!("entity '{}'", req.entity);
        with_retries(&what, || async {
            Ok(self.try_register_entity(&req).await?.then_some(()))
        })
        .await
    }

    async fn try_register_entity(&self, req: &RegisterEntity) -> Result<bool, RegistryError> {
        let Current {
            snapshot: current,
            revisions,
        } = self.authoritative().await?;
        current.store(&req.store_id)?;
        if let Some(existing) = current.find_entity_like(&req.entity) {
            return Err(RegistryError::AlreadyExists(format!(
                "entity '{}' is already registered{}",
                req.entity,
                same_or_alias(&existing.name, &req.entity)
            )));
        }
        let key = self.root.entity_store_id(&req.entity);
        let store_key = self.root.store(&req.store_id);
        let txn = Txn::new()
            .when(Compare::Absent(key.clone()))
            .when(unchanged(&revisions, store_key))
            .put(key, req.store_id.clone());
        self.commit(txn).await
    }

    /// Registers a model under an existing entity. Model names are unique across entities.
    pub async fn register_model(&self, req: RegisterModel) -> Result<(), RegistryError> {
        let what = format!("model '{}'", req.model.name);
        with_retries(&what, || async {
            Ok(self.try_register_model(&req.model).await?.then_some(()))
        })
        .await
    }

    async fn try_register_model(&self, model: &Model) -> Result<bool, RegistryError> {
        let Current {
            snapshot: current,
            revisions,
        } = self.authoritative().await?;
        current.entity(&model.entity)?;
        if !model.job_frequency.is_empty() && !current.frequencies.contains(&model.job_frequency) {
            return Err(RegistryError::Missing(format!(
                "job_frequency '{}' is not registered (register it with register-frequency)",
                model.job_frequency
            )));
        }
        if let Some(existing) = current.find_model_like(&model.name) {
            return Err(RegistryError::AlreadyExists(format!(
                "model '{}' is already registered under entity '{}'{}",
                model.name,
                existing.entity,
                same_or_alias(&existing.name, &model.name)
            )));
        }
        let guard = self
            .root
            .model_key(&model.entity, &model.name, model_keys::MODEL_CONFIG);
        let mut txn = Txn::new().when(Compare::Absent(guard)).when(unchanged(
            &revisions,
            self.root.entity_store_id(&model.entity),
        ));
        txn.ops = put_ops(tree::encode_model(&self.root, model));
        self.commit(txn).await
    }

    /// Registers a variant of an existing model. Its embedding-store versions start at the
    /// model's current generation.
    pub async fn register_variant(&self, req: RegisterVariant) -> Result<(), RegistryError> {
        let what = format!("variant '{}'", req.variant.name);
        with_retries(&what, || async {
            Ok(self
                .try_register_variant(req.variant.clone())
                .await?
                .then_some(()))
        })
        .await
    }

    async fn try_register_variant(&self, mut variant: Variant) -> Result<bool, RegistryError> {
        let Current {
            snapshot: current,
            revisions,
        } = self.authoritative().await?;
        let version_key = self.root.model_key(
            &variant.entity,
            &variant.model,
            model_keys::EMBEDDING_STORE_VERSION,
        );
        let model: &Model = current.model(&variant.entity, &variant.model)?;
        if let Some(existing) = model.variants.values().find(|v| {
            skye_core::domain::names::normalize(&v.name)
                == skye_core::domain::names::normalize(&variant.name)
        }) {
            return Err(RegistryError::AlreadyExists(format!(
                "variant '{}' is already registered for model '{}'{}",
                variant.name,
                variant.model,
                same_or_alias(&existing.name, &variant.name)
            )));
        }
        check_storage_names(&current, &variant)?;
        variant.embedding_store_read_version = model.embedding_store_version;
        variant.embedding_store_write_version = model.embedding_store_version;
        let guard = self.root.variant_key(
            &variant.entity,
            &variant.model,
            &variant.name,
            variant_keys::ENABLED,
        );
        // The versions copied from the model must still be current when the variant lands.
        let mut txn = Txn::new()
            .when(Compare::Absent(guard))
            .when(unchanged(&revisions, version_key));
        txn.ops
            .extend(put_ops(tree::encode_variant(&self.root, &variant)));
        self.commit(txn).await
    }
}

/// Refuses a variant whose collections would be named like another variant's on the same
/// remote engine (Qdrant joins `<variant>_<model>`: `a_b` of `c` and `a` of `b_c` would share
/// `a_b_c_<n>`, and with it their points).
fn check_storage_names(current: &ConfigSnapshot, variant: &Variant) -> Result<(), RegistryError> {
    let key = variant.key();
    let Some(stem) = key.remote_stem() else {
        return Ok(());
    };
    match current.variants().find(|o| {
        o.vector_db_type == variant.vector_db_type && o.key().remote_stem() == Some(stem.clone())
    }) {
        Some(other) => Err(RegistryError::AlreadyExists(format!(
            "variant {key} would store its {} collections as '{stem}_<version>', which variant {} \
             of model '{}' (entity '{}') already uses; choose another variant or model name",
            variant.vector_db_type, other.name, other.model, other.entity
        ))),
        None => Ok(()),
    }
}

/// Runs an optimistic write until one attempt's compares hold (`Some`), giving up with
/// `Contended` after [`CAS_ATTEMPTS`]. Each attempt re-reads what it depends on.
pub(crate) async fn with_retries<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
    E: From<RegistryError>,
{
    for _ in 0..CAS_ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(RegistryError::Contended(what.to_string()).into())
}

pub(crate) fn put_ops(kvs: Vec<(String, String)>) -> Vec<skye_core::config_store::Op> {
    kvs.into_iter()
        .map(|(k, v)| skye_core::config_store::Op::Put(k, v))
        .collect()
}

fn same_or_alias(existing: &str, requested: &str) -> String {
    if existing == requested {
        String::new()
    } else {
        format!(" as '{existing}' (names that differ only in case or '-' collide)")
    }
}

/// The tree read for a write, with each key's mod revision for compare-and-set guards.
pub(crate) struct Current {
    pub(crate) snapshot: ConfigSnapshot,
    pub(crate) revisions: HashMap<String, u64>,
}

/// A compare that holds while `key` is as it was read (or still absent).
pub(crate) fn unchanged(revisions: &HashMap<String, u64>, key: String) -> Compare {
    match revisions.get(&key) {
        Some(rev) => Compare::ModRevision(key, *rev),
        None => Compare::Absent(key),
    }
}
