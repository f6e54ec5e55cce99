//! Starting jobs (`process-*`, `promote-variant`), the EOF barrier and unsticking a variant.

use std::collections::BTreeMap;

use serde::Serialize;
use skye_core::config_store::{Compare, Txn};
use skye_core::domain::{ModelType, Variant, VariantState, VectorDbType};
use skye_core::tree::{model_keys, variant_keys};
use skye_core::vector_store::VectorStoreError;

use super::{JobTicket, Lifecycle, LifecycleError, collection_spec};
use crate::registry::{Current, RegistryError, unchanged, with_retries};

/// Which variants a job covers.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// `process-model`: every enabled variant (optionally of one vector-DB type); every variant,
    /// enabled or not, must be COMPLETED.
    All(Option<VectorDbType>),
    /// `process-multi-variant`: the listed variants; disabled ones are skipped.
    Listed(Vec<String>),
}

/// A job request.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRequest {
    pub entity: String,
    pub model: String,
    pub selection: Selection,
    /// Build a new collection at read+1 even for a DELTA model.
    pub force_reset: bool,
}

/// An end-of-partition report (an EOF event, or a `trigger-indexing` call).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EofReport {
    pub entity: String,
    pub model: String,
    pub partition: String,
    pub variants_version_map: BTreeMap<String, i64>,
    pub embedding_store_version: i64,
}

/// What an EOF did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EofOutcome {
    /// Partitions still missing their EOF.
    pub waiting_for: Vec<u32>,
    /// Variants whose ingestion this EOF completed.
    pub started: Vec<String>,
    /// Variants of the report not moved on, with the reason (stale EOF, unknown variant...).
    pub skipped: BTreeMap<String, String>,
}

impl Lifecycle {
    /// Starts a job: resets the EOF barrier, bumps the embedding-store generation (RESET),
    /// creates collections and marks the variants `DATA_INGESTION_STARTED`, atomically.
    /// `Ok(None)` when no variant was selected (the original answers `null`).
    pub async fn process(&self, req: &ProcessRequest) -> Result<Option<JobTicket>, LifecycleError> {
        let what = format!("model '{}'", req.model);
        with_retries(&what, || self.try_process(req)).await
    }

    async fn try_process(
        &self,
        req: &ProcessRequest,
    ) -> Result<Option<Option<JobTicket>>, LifecycleError> {
        let Current {
            snapshot,
            revisions,
        } = self.registry.authoritative().await?;
        let m = snapshot.model(&req.entity, &req.model)?;
        if req.force_reset && m.model_type == ModelType::Reset {
            return Err(LifecycleError::Invalid(format!(
                "model '{}' is a RESET model: every job already rebuilds it; Force reset is not \
                 supported for reset model type",
                m.name
            )));
        }
        let not_completed = |v: &Variant| {
            LifecycleError::NotReady(format!(
                "variant {} is not completed for {} , {} (state {}); wait for the running job, or \
                 reset a stuck variant with POST /api/v1/qdrant/reset-variant-state",
                v.name, req.entity, req.model, v.variant_state
            ))
        };
        let chosen: Vec<&Variant> = match &req.selection {
            Selection::All(vdb_type) => {
                if let Some(v) = m
                    .variants
                    .values()
                    .find(|v| v.variant_state != VariantState::Completed)
                {
                    return Err(not_completed(v));
                }
                m.variants
                    .values()
                    .filter(|v| v.enabled && vdb_type.is_none_or(|t| v.vector_db_type == t))
                    .collect()
            }
            Selection::Listed(names) => {
                if names.is_empty() {
                    return Err(LifecycleError::Invalid("variants must not be empty".into()));
                }
                let mut out = Vec::new();
                for name in names {
                    let v = m.variants.get(name).ok_or_else(|| {
                        LifecycleError::Registry(RegistryError::Missing(format!(
                            "variant {name} is not present for {} , {}",
                            req.entity, req.model
                        )))
                    })?;
                    if !v.enabled {
                        continue;
                    }
                    if v.variant_state != VariantState::Completed {
                        return Err(not_completed(v));
                    }
                    if !out.iter().any(|o: &&Variant| o.name == v.name) {
                        out.push(v);
                    }
                }
                out
            }
        };
        if chosen.is_empty() {
            return Ok(Some(None));
        }
        let root = self.registry.root();
        let bump = m.model_type == ModelType::Reset;
        let es_version = if bump {
            m.embedding_store_version + 1
        } else {
            m.embedding_store_version
        };
        let es_key = root.model_key(&m.entity, &m.name, model_keys::EMBEDDING_STORE_VERSION);
        let mut txn = Txn::new().when(unchanged(&revisions, es_key.clone()));
        if bump {
            txn = txn.put(es_key, es_version.to_string());
        }
        for p in 0..m.number_of_partitions.max(1) {
            txn = txn.put(root.partition_state(&m.entity, &m.name, p), "0");
        }
        let mut ticket = BTreeMap::new();
        for v in chosen {
            let read = v.vector_db_read_version;
            let onboarded = v.onboarded || self.serves(v, read).await?;
            let (write, new_collection) = match (m.model_type, req.force_reset, onboarded) {
                (_, _, false) => (read, true),
                (ModelType::Reset, _, true) | (ModelType::Delta, true, true) => (read + 1, true),
                (ModelType::Delta, false, true) => (read, false),
            };
            let prepared = if new_collection {
                self.fresh_collection(m, v, write).await
            } else {
                // Bulk load into the live collection: pause indexing until the job ends.
                self.vectors
                    .set_indexing_threshold(&v.collection(write), 0)
                    .await
                    .map_err(LifecycleError::from)
            };
            if let Err(e) = prepared {
                tracing::warn!(variant = %v.name, model = %m.name, error = %e,
                    "variant skipped: its collection could not be prepared");
                continue;
            }
            let key = |field: &str| root.variant_key(&m.entity, &m.name, &v.name, field);
            txn = txn
                .when(unchanged(&revisions, key(variant_keys::VARIANT_STATE)))
                .put(
                    key(variant_keys::EMBEDDING_STORE_WRITE_VERSION),
                    es_version.to_string(),
                )
                .put(
                    key(variant_keys::VECTOR_DB_WRITE_VERSION),
                    write.to_string(),
                )
                .put(key(variant_keys::ONBOARDED), "true")
                .put(
                    key(variant_keys::VARIANT_STATE),
                    VariantState::DataIngestionStarted.as_str(),
                );
            ticket.insert(v.name.clone(), write);
        }
        if ticket.is_empty() {
            return Ok(Some(None));
        }
        if !self.registry.commit(txn).await? {
            return Ok(None);
        }
        tracing::info!(entity = %m.entity, model = %m.name, variants = ?ticket,
            embedding_store_version = es_version, "job started");
        Ok(Some(Some(JobTicket {
            variants: ticket,
            kafka_id: m.kafka_id,
            training_data_path: m.training_data_path.clone(),
            embedding_store_version: es_version,
            model: m.name.clone(),
            number_of_partitions: m.number_of_partitions.max(1),
            topic_name: m.topic_name.clone(),
            model_type: m.model_type,
        })))
    }

    /// Whether a collection already exists at `v`'s read version: a variant registered over a
    /// collection that another Skye (the original, a restored tree) created is served from it
    /// and its first job must write beside it, not over it.
    async fn serves(&self, v: &Variant, read: i64) -> Result<bool, LifecycleError> {
        match self.vectors.collection_info(&v.collection(read)).await {
            Ok(_) => Ok(true),
            Err(VectorStoreError::CollectionNotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// An empty collection at `version`: one left by an aborted job is dropped first, so a job
    /// never starts on stale points. Never called for the version being served.
    async fn fresh_collection(
        &self,
        m: &skye_core::domain::Model,
        v: &Variant,
        version: i64,
    ) -> Result<(), LifecycleError> {
        let spec = collection_spec(m, v, version, 0)?;
        self.vectors.delete_collection(&spec.collection).await?;
        match self.vectors.create_collection(spec).await {
            Ok(()) | Err(VectorStoreError::CollectionExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `promote-variant`: points an EXPERIMENT variant's writes at `host` and starts a job
    /// that re-ingests at the current read version there.
    pub async fn promote(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
        host: &str,
    ) -> Result<Option<JobTicket>, LifecycleError> {
        if host.trim().is_empty() {
            return Err(LifecycleError::Invalid("host must not be empty".into()));
        }
        let Current {
            snapshot,
            revisions,
        } = self.registry.authoritative().await?;
        let m = snapshot.model(entity, model)?;
        let v = snapshot.variant(entity, model, variant)?;
        if !v.enabled {
            return Err(LifecycleError::NotReady(format!(
                "variant {variant} is not enabled for {entity} , {model}"
            )));
        }
        if v.variant_state != VariantState::Completed {
            return Err(LifecycleError::NotReady(format!(
                "variant {variant} is not completed for {entity} , {model} (state {})",
                v.variant_state
            )));
        }
        if v.variant_type != skye_core::domain::VariantType::Experiment {
            return Err(LifecycleError::NotReady(format!(
                "variant {variant} is not in experiment state for {entity} , {model}"
            )));
        }
        let root = self.registry.root();
        let key = |field: &str| root.variant_key(entity, model, variant, field);
        let mut config = v.vector_db_config.clone();
        config.write_host = host.to_string();
        let config_json = serde_json::to_string(&config)
            .map_err(|e| LifecycleError::Invalid(format!("cannot encode vector_db_config: {e}")))?;
        let mut txn = Txn::new()
            .when(unchanged(&revisions, key(variant_keys::VARIANT_STATE)))
            .put(key(variant_keys::VECTOR_DB_CONFIG), config_json)
            .put(
                key(variant_keys::EMBEDDING_STORE_WRITE_VERSION),
                m.embedding_store_version.to_string(),
            )
            .put(
                key(variant_keys::VECTOR_DB_WRITE_VERSION),
                v.vector_db_read_version.to_string(),
            )
            .put(
                key(variant_keys::VARIANT_STATE),
                VariantState::DataIngestionStarted.as_str(),
            );
        for p in 0..m.number_of_partitions.max(1) {
            txn = txn.put(root.partition_state(entity, model, p), "0");
        }
        // The embedded engine has one host: the job re-ingests into the served collection.
        let name = v.collection(v.vector_db_read_version);
        if let Err(VectorStoreError::CollectionNotFound(_)) =
            self.vectors.collection_info(&name).await
        {
            self.fresh_collection(m, v, v.vector_db_read_version)
                .await?;
        }
        if !self.registry.commit(txn).await? {
            return Err(RegistryError::Contended(format!("variant '{variant}'")).into());
        }
        Ok(Some(JobTicket {
            variants: BTreeMap::from([(variant.to_string(), v.vector_db_read_version)]),
            kafka_id: m.kafka_id,
            training_data_path: m.training_data_path.clone(),
            embedding_store_version: m.embedding_store_version,
            model: m.name.clone(),
            number_of_partitions: m.number_of_partitions.max(1),
            topic_name: m.topic_name.clone(),
            model_type: m.model_type,
        }))
    }

    /// Records one partition's EOF; the EOF that completes the set moves every variant of the
    /// report that is still ingesting at the reported version to `DATA_INGESTION_COMPLETED`.
    /// Repeating an EOF is harmless.
    pub async fn eof(&self, report: &EofReport) -> Result<EofOutcome, LifecycleError> {
        let what = format!("partition states of model '{}'", report.model);
        with_retries(&what, || self.try_eof(report)).await
    }

    async fn try_eof(&self, report: &EofReport) -> Result<Option<EofOutcome>, LifecycleError> {
        let Current {
            snapshot,
            revisions,
        } = self.registry.authoritative().await?;
        let m = snapshot
            .model(&report.entity, &report.model)
            .map_err(LifecycleError::from)?;
        let partitions = m.number_of_partitions.max(1);
        let partition: u32 = report.partition.trim().parse().map_err(|_| {
            LifecycleError::Invalid(format!(
                "partition '{}' is not a partition number (0..{})",
                report.partition,
                partitions - 1
            ))
        })?;
        if partition >= partitions {
            return Err(LifecycleError::Invalid(format!(
                "partition {partition} is out of range: model '{}' has {partitions} partition(s)",
                m.name
            )));
        }
        let root = self.registry.root();
        let mut txn = Txn::new();
        for p in 0..partitions {
            txn = txn.when(unchanged(
                &revisions,
                root.partition_state(&m.entity, &m.name, p),
            ));
        }
        txn = txn.put(root.partition_state(&m.entity, &m.name, partition), "1");
        let waiting_for: Vec<u32> = (0..partitions)
            .filter(|p| *p != partition && !m.partition_states.get(p).copied().unwrap_or(false))
            .collect();
        let mut started = Vec::new();
        let mut skipped = BTreeMap::new();
        if waiting_for.is_empty() {
            for (name, version) in &report.variants_version_map {
                let Some(v) = m.variants.get(name) else {
                    skipped.insert(name.clone(), "unknown variant".to_string());
                    continue;
                };
                if v.variant_state != VariantState::DataIngestionStarted {
                    skipped.insert(name.clone(), format!("state is {}", v.variant_state));
                    continue;
                }
                if v.vector_db_write_version != *version {
                    skipped.insert(
                        name.clone(),
                        format!(
                            "EOF for version {version} but the job writes version {}",
                            v.vector_db_write_version
                        ),
                    );
                    continue;
                }
                let state_key =
                    root.variant_key(&m.entity, &m.name, name, variant_keys::VARIANT_STATE);
                txn = txn
                    .when(Compare::Value(
                        state_key.clone(),
                        VariantState::DataIngestionStarted.as_str().to_string(),
                    ))
                    .put(state_key, VariantState::DataIngestionCompleted.as_str());
                started.push(name.clone());
            }
        }
        if !self.registry.commit(txn).await? {
            return Ok(None);
        }
        for name in &started {
            if let Some(v) = m.variants.get(name) {
                self.announce(v, VariantState::DataIngestionCompleted).await;
            }
        }
        tracing::info!(model = %m.name, partition, ?waiting_for, ?started, ?skipped, "EOF recorded");
        Ok(Some(EofOutcome {
            waiting_for,
            started,
            skipped,
        }))
    }

    /// Abandons a variant's running job: state back to COMPLETED, write versions back to the
    /// read versions, and the unfinished collection dropped (never the served one).
    pub async fn reset_variant_state(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
    ) -> Result<Variant, LifecycleError> {
        let snapshot = self.registry.snapshot();
        let v = snapshot.variant(entity, model, variant)?.clone();
        let root = self.registry.root();
        let key = |field: &str| root.variant_key(entity, model, variant, field);
        let txn = Txn::new()
            .when(Compare::Value(
                key(variant_keys::VARIANT_STATE),
                v.variant_state.as_str().to_string(),
            ))
            .put(
                key(variant_keys::VECTOR_DB_WRITE_VERSION),
                v.vector_db_read_version.to_string(),
            )
            .put(
                key(variant_keys::EMBEDDING_STORE_WRITE_VERSION),
                v.embedding_store_read_version.to_string(),
            )
            .put(
                key(variant_keys::VARIANT_STATE),
                VariantState::Completed.as_str(),
            );
        if !self.registry.commit(txn).await? {
            return Err(RegistryError::Contended(format!("variant '{variant}'")).into());
        }
        if v.vector_db_write_version != v.vector_db_read_version {
            self.vectors
                .delete_collection(&v.collection(v.vector_db_write_version))
                .await?;
        }
        tracing::warn!(entity, model, variant, from = %v.variant_state, "variant state reset by admin");
        Ok(self
            .registry
            .snapshot()
            .variant(entity, model, variant)?
            .clone())
    }
}
