//! `SkyeEmbeddingService` (spec serving §2): stored embeddings of candidates, and their dot
//! products with a request vector. Both read the embedding store at the variant's
//! `embedding-store-read-version`; neither touches the vector DB.
//!
//! Documented behaviour:
//! * `getEmbeddingsForCandidates`: a missing id answers `{id, [], []}`; duplicate ids are
//!   answered each time (the original fails them with INTERNAL);
//! * `getCandidateEmbeddingScores`: the score is Σ aᵢ·bᵢ in f32 with the stored index-space
//!   `embedding`, whatever the distance function; a missing id scores 0 (as the original); a request
//!   vector whose length differs from the model's dimension is INVALID_ARGUMENT (the original
//!   scores it 0);
//! * an embedding-store failure is UNAVAILABLE, never a silent "missing" (the original hides it).

use std::sync::Arc;

use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::snapshot::{ConfigSnapshot, LookupError};
use skye_core::storage::{EmbeddingRow, EmbeddingStore, Generation, StorageError};

use crate::registry::Registry;

/// Errors of the embedding RPCs.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("variant {0} is not enabled")]
    Disabled(String),
    #[error("embedding store: {0}")]
    Store(#[from] StorageError),
    #[error("deadline of {0:?} exceeded")]
    DeadlineExceeded(std::time::Duration),
}

impl HasErrorCode for EmbeddingError {
    fn code(&self) -> ErrorCode {
        match self {
            EmbeddingError::Invalid(_) => ErrorCode::InvalidArgument,
            EmbeddingError::Lookup(_) | EmbeddingError::Disabled(_) => ErrorCode::NotFound,
            EmbeddingError::Store(e) => e.code(),
            EmbeddingError::DeadlineExceeded(_) => ErrorCode::Timeout,
        }
    }
}

/// One candidate's stored vectors (empty when unknown).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CandidateVectors {
    pub id: String,
    pub embedding: Vec<f32>,
    pub search_embedding: Vec<f32>,
}

/// The embedding service.
#[derive(Debug, Clone)]
pub struct EmbeddingService {
    registry: Arc<Registry>,
    store: Arc<dyn EmbeddingStore>,
}

fn check_names(entity: &str, model: &str, variant: &str) -> Result<(), EmbeddingError> {
    for (value, name) in [
        (entity, "Entity"),
        (model, "ModelName"),
        (variant, "Variant"),
    ] {
        if value.is_empty() {
            return Err(EmbeddingError::Invalid(format!("{name} is required")));
        }
    }
    Ok(())
}

/// Most ids one request may name.
pub const MAX_IDS: usize = 10_000;

impl EmbeddingService {
    pub fn new(registry: Arc<Registry>, store: Arc<dyn EmbeddingStore>) -> Self {
        EmbeddingService { registry, store }
    }

    async fn rows(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
        ids: &[String],
    ) -> Result<(Arc<ConfigSnapshot>, Vec<Option<EmbeddingRow>>), EmbeddingError> {
        check_names(entity, model, variant)?;
        if ids.is_empty() {
            return Err(EmbeddingError::Invalid("candidateIds are required".into()));
        }
        if ids.len() > MAX_IDS {
            return Err(EmbeddingError::Invalid(format!(
                "{} candidateIds exceed the maximum of {MAX_IDS}",
                ids.len()
            )));
        }
        if let Some(i) = ids.iter().position(String::is_empty) {
            return Err(EmbeddingError::Invalid(format!(
                "candidateIds[{i}] is empty"
            )));
        }
        let snapshot = self.registry.snapshot();
        let v = snapshot.variant(entity, model, variant)?;
        if !v.enabled {
            return Err(EmbeddingError::Disabled(variant.to_string()));
        }
        let version = v.embedding_store_read_version;
        let table = snapshot.store_of(entity)?.embeddings_table.clone();
        let rows = self
            .store
            .get(
                Generation {
                    table: &table,
                    model,
                    version,
                },
                ids,
            )
            .await?;
        Ok((snapshot, rows))
    }

    /// `getEmbeddingsForCandidates`.
    pub async fn embeddings(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
        ids: &[String],
    ) -> Result<Vec<CandidateVectors>, EmbeddingError> {
        let (_, rows) = self.rows(entity, model, variant, ids).await?;
        Ok(ids
            .iter()
            .zip(rows)
            .map(|(id, row)| match row {
                Some(r) => CandidateVectors {
                    id: id.clone(),
                    embedding: r.embedding,
                    search_embedding: r.search_embedding,
                },
                None => CandidateVectors {
                    id: id.clone(),
                    ..CandidateVectors::default()
                },
            })
            .collect())
    }

    /// `getCandidateEmbeddingScores`.
    pub async fn dot_products(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
        ids: &[String],
        query: &[f64],
    ) -> Result<Vec<(String, f32)>, EmbeddingError> {
        check_names(entity, model, variant)?;
        if query.is_empty() {
            return Err(EmbeddingError::Invalid("embedding is required".into()));
        }
        if !query
            .iter()
            .all(|x| x.is_finite() && x.abs() <= f64::from(f32::MAX))
        {
            return Err(EmbeddingError::Invalid(
                "embedding contains NaN, infinity or a value out of float range".into(),
            ));
        }
        let snapshot = self.registry.snapshot();
        let dim = snapshot.model(entity, model)?.model_config.vector_dimension as usize;
        if query.len() != dim {
            return Err(EmbeddingError::Invalid(format!(
                "embedding has {} dimensions, model {model} has {dim}",
                query.len()
            )));
        }
        let q: Vec<f32> = query.iter().map(|x| *x as f32).collect();
        let (_, rows) = self.rows(entity, model, variant, ids).await?;
        Ok(ids
            .iter()
            .zip(rows)
            .map(|(id, row)| {
                let score = row
                    .filter(|r| r.embedding.len() == q.len())
                    .map(|r| r.embedding.iter().zip(&q).map(|(a, b)| a * b).sum())
                    .unwrap_or(0.0);
                (id.clone(), score)
            })
            .collect())
    }
}
