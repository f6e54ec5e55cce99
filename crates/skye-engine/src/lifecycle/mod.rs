//! The model lifecycle (spec AC §3): jobs that (re)build a variant's collection, the EOF barrier
//! and the state machine that indexes, switches the read version and cleans up.
//!
//! Every piece of state lives in the config tree (variant-state, versions, partition-states), and
//! every change is one compare-and-set transaction, so:
//! * a `process-*` call is atomic: the embedding-store bump, the partition reset and every chosen
//!   variant's versions and state land together or not at all (spec AC §8 B17);
//! * the EOF barrier is exactly-once: each EOF sets its partition under a guard on *all* partition
//!   keys, and the EOF that completes the set moves the variants on in the same transaction
//!   (spec AC §8 B13's sleep-and-hope is gone);
//! * the state machine is a reconciler: it reads the state from the tree, does the step's action
//!   (each action is idempotent) and moves the state on with a compare on its old value. A crash at
//!   any point resumes at the persisted state; two reconcilers cannot both move a variant.
//!   Waiting for indexing is a timed re-check, never a sleep inside a handler (spec AC §8 B14).

mod process;
mod reconcile;

use std::sync::Arc;

use serde::Serialize;
use skye_core::domain::{Model, ModelType, Variant, VariantState};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::event_log::{EventLog, Produce, topics};
use skye_core::snapshot::LookupError;
use skye_core::storage::{EmbeddingStore, StorageError};
use skye_core::vector_store::{
    CollectionRef, CollectionSpec, SnapshotInfo, VectorStore, VectorStoreError,
};

use crate::registry::{Registry, RegistryError};

pub use process::{EofOutcome, EofReport, ProcessRequest, Selection};
pub use reconcile::Reconciler;

/// Errors of lifecycle operations.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotReady(String),
    #[error(transparent)]
    Vectors(#[from] VectorStoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<LookupError> for LifecycleError {
    fn from(e: LookupError) -> Self {
        LifecycleError::Registry(RegistryError::NotFound(e))
    }
}

impl HasErrorCode for LifecycleError {
    fn code(&self) -> ErrorCode {
        match self {
            LifecycleError::Registry(e) => e.code(),
            LifecycleError::Invalid(_) => ErrorCode::InvalidArgument,
            LifecycleError::NotReady(_) => ErrorCode::FailedPrecondition,
            LifecycleError::Vectors(e) => e.code(),
            LifecycleError::Storage(e) => e.code(),
        }
    }
}

/// What a `process-*` or `promote-variant` call returns (spec AC §1.2): what the job must write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobTicket {
    /// Variant → collection version to ingest into.
    pub variants: std::collections::BTreeMap<String, i64>,
    pub kafka_id: i64,
    pub training_data_path: String,
    pub embedding_store_version: i64,
    pub model: String,
    pub number_of_partitions: u32,
    pub topic_name: String,
    pub model_type: ModelType,
}

/// One state-machine message on the model-state topic (spec AC §1.3). Published for observers;
/// the state itself is driven from the config tree.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ModelStatePayload {
    pub entity: String,
    pub model: String,
    pub variant: String,
    pub version: i64,
    pub embedding_store_version: i64,
    pub variant_state: String,
    pub counter: u32,
}

/// Indexing threshold used when a variant's params name none.
pub const DEFAULT_INDEXING_THRESHOLD: usize = 20_000;

/// One collection of a variant: `version` 0 = the variant's read version.
#[derive(Debug, Clone, Copy)]
pub struct VariantVersion<'a> {
    pub entity: &'a str,
    pub model: &'a str,
    pub variant: &'a str,
    pub version: i64,
}

/// A collection version from a request: 0 or more.
fn check_version(version: i64) -> Result<(), LifecycleError> {
    if version < 0 {
        return Err(LifecycleError::Invalid(format!(
            "version must be >= 0, got {version}"
        )));
    }
    Ok(())
}

/// The lifecycle service: shared by the admin endpoints, the embedding consumer (EOF) and the
/// reconciler.
#[derive(Debug)]
pub struct Lifecycle {
    registry: Arc<Registry>,
    vectors: Arc<dyn VectorStore>,
    embeddings: Arc<dyn EmbeddingStore>,
    events: Arc<dyn EventLog>,
}

impl Lifecycle {
    pub fn new(
        registry: Arc<Registry>,
        vectors: Arc<dyn VectorStore>,
        embeddings: Arc<dyn EmbeddingStore>,
        events: Arc<dyn EventLog>,
    ) -> Self {
        Lifecycle {
            registry,
            vectors,
            embeddings,
            events,
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The event log jobs and their failure topics live on.
    pub fn events(&self) -> &Arc<dyn EventLog> {
        &self.events
    }

    /// Creates version `version` of a variant's collection (the `create-collection` endpoint).
    pub async fn create_collection(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
        version: i64,
    ) -> Result<CollectionRef, LifecycleError> {
        check_version(version)?;
        let snapshot = self.registry.snapshot();
        let m = snapshot.model(entity, model)?;
        let v = snapshot.variant(entity, model, variant)?;
        let spec = collection_spec(m, v, version, 0)?;
        let collection = spec.collection.clone();
        self.vectors.create_collection(spec).await?;
        Ok(collection)
    }

    /// The collection `at` names (version 0 = the variant's read version).
    fn variant_collection(&self, at: VariantVersion<'_>) -> Result<CollectionRef, LifecycleError> {
        check_version(at.version)?;
        let snapshot = self.registry.snapshot();
        let v = snapshot.variant(at.entity, at.model, at.variant)?;
        Ok(v.collection(match at.version {
            0 => v.vector_db_read_version,
            n => n,
        }))
    }

    /// Snapshots the collection `at` names; returns its name and the snapshot.
    pub async fn create_snapshot(
        &self,
        at: VariantVersion<'_>,
    ) -> Result<(CollectionRef, SnapshotInfo), LifecycleError> {
        let collection = self.variant_collection(at)?;
        let info = self.vectors.create_snapshot(&collection).await?;
        tracing::info!(%collection, snapshot = %info.name, bytes = info.size_bytes, "snapshot created");
        Ok((collection, info))
    }

    /// The snapshots of the collection `at` names.
    pub async fn list_snapshots(
        &self,
        at: VariantVersion<'_>,
    ) -> Result<(CollectionRef, Vec<SnapshotInfo>), LifecycleError> {
        let collection = self.variant_collection(at)?;
        let list = self.vectors.list_snapshots(&collection).await?;
        Ok((collection, list))
    }

    /// Deletes snapshot `name` of the collection `at` names.
    pub async fn delete_snapshot(
        &self,
        at: VariantVersion<'_>,
        name: &str,
    ) -> Result<CollectionRef, LifecycleError> {
        let collection = self.variant_collection(at)?;
        self.vectors.delete_snapshot(&collection, name).await?;
        Ok(collection)
    }

    /// Returns the collection `at` names to its snapshot `name`.
    pub async fn recover_snapshot(
        &self,
        at: VariantVersion<'_>,
        name: &str,
    ) -> Result<CollectionRef, LifecycleError> {
        let collection = self.variant_collection(at)?;
        self.vectors.recover_snapshot(&collection, name).await?;
        tracing::warn!(%collection, snapshot = %name, "collection recovered from a snapshot");
        Ok(collection)
    }

    /// Models of `entity` run at `frequency` (`process-models-with-freq`).
    pub fn models_with_frequency(
        &self,
        entity: &str,
        frequency: &str,
    ) -> Result<Vec<String>, LifecycleError> {
        let snapshot = self.registry.snapshot();
        let e = snapshot.entity(entity)?;
        Ok(e.models
            .values()
            .filter(|m| m.job_frequency == frequency)
            .map(|m| m.name.clone())
            .collect())
    }

    /// Publishes a state transition for observers; a failure is logged, never fatal (the state
    /// is already durable in the tree).
    async fn announce(&self, v: &Variant, state: VariantState) {
        let payload = ModelStatePayload {
            entity: v.entity.clone(),
            model: v.model.clone(),
            variant: v.name.clone(),
            version: v.vector_db_write_version,
            embedding_store_version: v.embedding_store_write_version,
            variant_state: state.as_str().to_string(),
            counter: 0,
        };
        let value = match serde_json::to_vec(&payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a model-state message");
                return;
            }
        };
        if let Err(e) = self
            .events
            .produce(vec![Produce::new(topics::MODEL_STATE, "", value)])
            .await
        {
            tracing::warn!(error = %e, "cannot publish a model-state message");
        }
    }
}

/// A numeric parameter of the variant's `vector_db_config.params`.
fn param_usize(v: &Variant, key: &str) -> Option<usize> {
    v.vector_db_config
        .params
        .get(key)
        .and_then(|s| s.trim().parse().ok())
}

/// How a collection of `variant` at `version` is created.
pub fn collection_spec(
    model: &Model,
    variant: &Variant,
    version: i64,
    indexing_threshold: usize,
) -> Result<CollectionSpec, LifecycleError> {
    if model.model_config.vector_dimension == 0 {
        return Err(LifecycleError::Invalid(format!(
            "model '{}' has no vector_dimension",
            model.name
        )));
    }
    Ok(CollectionSpec {
        collection: variant.collection(version),
        dimension: model.model_config.vector_dimension,
        distance: model.model_config.distance_function,
        m: param_usize(variant, "m").unwrap_or(16),
        ef_construct: param_usize(variant, "ef_construct").unwrap_or(128),
        indexing_threshold,
        payload_schema: variant
            .vector_db_config
            .payload
            .iter()
            .map(|(k, f)| (k.clone(), f.field_schema))
            .collect(),
        on_disk: variant
            .vector_db_config
            .params
            .get("on_disk")
            .and_then(|v| skye_core::tree::parse_go_bool(v.trim())),
    })
}
