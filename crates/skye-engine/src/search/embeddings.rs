//! `SkyeEmbeddingService` (spec serving §2): stored embeddings of candidates, and their dot
//! products with a request vector. Both read the embedding store at the variant's
//! `embedding-store-read-version`; neither touches the vector DB.
//!
//! Documented behaviour:
//! * `getEmbeddingsForCandidates`: a missing id answers `{id, [], []}`; duplicate ids are
//!   answered each time (the original fails them with INTERNAL);
//! * `getCandidateEmbeddingScores`: the score is Σ aᵢ·bᵢ in f32 with the stored index-space
//!   `embedding`, whatever the distance function; an id with no stored vector is left out of the
//!   answer (the original scores it 0, indistinguishable from a real 0; the proto has no "found"
//!   flag, spec serving §9 S20); a request vector whose length differs from the model's
//!   dimension is INVALID_ARGUMENT (the original scores it 0);
//! * an embedding-store failure is UNAVAILABLE, never a silent "missing" (the original hides it).
//!
//! Caching (spec serving §4): per variant, `embedding-retrieval-{in-memory,distributed}-config`
//! and `dot-product-{in-memory,distributed}-config` switch an in-process layer and Redis on, with
//! the similar-candidates TTL fields (0 = [`DEFAULT_TTL`](super::cache::DEFAULT_TTL)). Values
//! are the original's: a protobuf `CandidateEmbedding` (a missing id is cached as empty, a
//! negative entry) and, for dot products,
//! the raw little-endian `embedding` (written only when not empty). Keys carry the
//! embedding-store read version, so a reset never serves the old generation; with
//! `REDIS_KEY_FORMAT=original` Redis keys are the original's `e:<entity>:<model>:<id>:V2` (no
//! version) and `dp:<entity>:<model>:<version>:<id>:V2`. A Redis error is a miss. Within a
//! version, a delta update is seen once the entry's TTL ends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prost::Message;
use skye_core::cache::DistributedCache;
use skye_core::domain::Variant;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::settings::CacheKeyFormat;
use skye_core::snapshot::LookupError;
use skye_core::storage::{EmbeddingStore, Generation, StorageError};
use skye_proto::CandidateEmbedding;

use super::cache::{CacheKey, CacheStats, KeyBuilder, Weigh, ttl_of};
use super::tiers::{Codec, ItemKeys, Ttls, TwoTier};
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

impl Weigh for CandidateVectors {
    fn weigh(&self) -> u64 {
        (96 + self.id.len() + 4 * (self.embedding.len() + self.search_embedding.len())) as u64
    }
}

/// Which RPC a cached vector serves: their switches, keys and values differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `getEmbeddingsForCandidates`: both vectors.
    Embeddings,
    /// `getCandidateEmbeddingScores`: the index-space `embedding` only.
    DotProduct,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Embeddings => "e",
            Kind::DotProduct => "dp",
        }
    }

    /// The variant's (in-process, distributed) switches for this RPC.
    fn switches(self, v: &Variant) -> (bool, bool) {
        let c = &v.caching;
        match self {
            Kind::Embeddings => (
                c.embedding_retrieval_in_memory_enabled,
                c.embedding_retrieval_distributed_enabled,
            ),
            Kind::DotProduct => (
                c.dot_product_in_memory_enabled,
                c.dot_product_distributed_enabled,
            ),
        }
    }
}

/// One request's vectors to and from the distributed layer: `ids[i]` is item `i`'s id.
struct VectorsCodec<'a> {
    kind: Kind,
    ids: &'a [&'a str],
}

impl Codec<CandidateVectors> for VectorsCodec<'_> {
    /// Dot products never cache an empty vector (a negative entry would outlive the item's
    /// arrival); embeddings cache it as a negative entry.
    fn keeps(&self, v: &CandidateVectors) -> bool {
        self.kind == Kind::Embeddings || !v.embedding.is_empty()
    }

    fn encode(&self, v: &CandidateVectors) -> Vec<u8> {
        match self.kind {
            Kind::Embeddings => CandidateEmbedding {
                id: v.id.clone(),
                embedding: v.embedding.iter().map(|x| f64::from(*x)).collect(),
                search_embedding: v.search_embedding.iter().map(|x| f64::from(*x)).collect(),
            }
            .encode_to_vec(),
            Kind::DotProduct => v.embedding.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// A cached value; `None` = undecodable (a miss).
    fn decode(&self, index: usize, bytes: &[u8]) -> Option<CandidateVectors> {
        let id = self.ids.get(index)?;
        match self.kind {
            Kind::Embeddings => {
                let e = CandidateEmbedding::decode(bytes).ok()?;
                Some(CandidateVectors {
                    id: id.to_string(),
                    embedding: e.embedding.iter().map(|x| *x as f32).collect(),
                    search_embedding: e.search_embedding.iter().map(|x| *x as f32).collect(),
                })
            }
            Kind::DotProduct => bytes.len().is_multiple_of(4).then(|| CandidateVectors {
                id: id.to_string(),
                embedding: bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                search_embedding: Vec::new(),
            }),
        }
    }
}

/// Where one request's vectors live.
#[derive(Debug, Clone, Copy)]
struct Source<'a> {
    entity: &'a str,
    model: &'a str,
    variant: &'a Variant,
    table: &'a str,
}

impl Source<'_> {
    fn version(&self) -> i64 {
        self.variant.embedding_store_read_version
    }

    fn memory_key(&self, kind: Kind, id: &str) -> CacheKey {
        KeyBuilder::default()
            .str(kind.prefix())
            .str(self.entity)
            .str(self.model)
            .num(self.version())
            .str(id)
            .build()
    }

    fn remote_key(&self, kind: Kind, format: CacheKeyFormat, id: &str) -> String {
        let (prefix, entity, model, version) =
            (kind.prefix(), self.entity, self.model, self.version());
        match (format, kind) {
            (CacheKeyFormat::Original, Kind::Embeddings) => format!("e:{entity}:{model}:{id}:V2"),
            (CacheKeyFormat::Original, Kind::DotProduct) => {
                format!("dp:{entity}:{model}:{version}:{id}:V2")
            }
            (CacheKeyFormat::Skye, _) => format!("{prefix}:{entity}:{model}:{version}:{id}:V3"),
        }
    }
}

/// The embedding service.
#[derive(Debug, Clone)]
pub struct EmbeddingService {
    registry: Arc<Registry>,
    store: Arc<dyn EmbeddingStore>,
    cache: TwoTier<CandidateVectors>,
    distributed_format: CacheKeyFormat,
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
    /// A service with `cache_bytes` of in-process cache (used by variants that enable it).
    pub fn new(registry: Arc<Registry>, store: Arc<dyn EmbeddingStore>, cache_bytes: u64) -> Self {
        EmbeddingService {
            registry,
            store,
            cache: TwoTier::new(cache_bytes),
            distributed_format: CacheKeyFormat::Skye,
        }
    }

    /// Adds the distributed cache (Redis), keyed in `format`, for variants that enable it.
    pub fn with_distributed_cache(
        mut self,
        cache: Arc<dyn DistributedCache>,
        format: CacheKeyFormat,
    ) -> Self {
        self.cache = self.cache.with_remote(cache);
        self.distributed_format = format;
        self
    }

    /// Hits and misses of the in-process cache since start.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.memory_stats()
    }

    /// Both cache layers' figures, for the metrics (shares the live counters).
    pub fn cache_figures(&self) -> std::sync::Arc<dyn super::tiers::TierFigures> {
        std::sync::Arc::new(self.cache.clone())
    }

    /// Validates a request and answers it: one entry per id, in order.
    async fn lookup(
        &self,
        kind: Kind,
        entity: &str,
        model: &str,
        variant: &str,
        ids: &[String],
    ) -> Result<Vec<CandidateVectors>, EmbeddingError> {
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
        let source = Source {
            entity,
            model,
            variant: v,
            table: &snapshot.store_of(entity)?.embeddings_table,
        };
        let found = self.cached(kind, source, ids).await?;
        Ok(ids
            .iter()
            .map(|id| found.get(id.as_str()).cloned().unwrap_or_default())
            .collect())
    }

    /// The vectors of every distinct id: the in-process cache, then Redis, then the store, with
    /// write-back to the layers that missed.
    async fn cached<'i>(
        &self,
        kind: Kind,
        source: Source<'_>,
        ids: &'i [String],
    ) -> Result<HashMap<&'i str, CandidateVectors>, EmbeddingError> {
        let (memory, distributed) = kind.switches(source.variant);
        let mut seen = HashSet::new();
        let distinct: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| seen.insert(*id))
            .collect();
        let remote = distributed && self.cache.has_remote();
        let keys = distinct
            .iter()
            .map(|id| ItemKeys {
                memory: memory.then(|| source.memory_key(kind, id)),
                remote: remote.then(|| source.remote_key(kind, self.distributed_format, id)),
            })
            .collect();
        let caching = &source.variant.caching;
        let ttls = Ttls {
            memory: ttl_of(caching.in_memory_cache_ttl_seconds),
            remote: ttl_of(caching.distributed_cache_ttl_seconds),
        };
        let codec = VectorsCodec {
            kind,
            ids: &distinct,
        };
        let (found, _) = self
            .cache
            .get_or_fetch(keys, &codec, ttls, |missing| {
                let wanted: Vec<&str> = missing.iter().map(|i| distinct[*i]).collect();
                self.fetch(kind, source, wanted)
            })
            .await?;
        Ok(distinct.into_iter().zip(found).collect())
    }

    /// The store's rows of `ids`, as cached values (an unknown id: empty vectors).
    async fn fetch(
        &self,
        kind: Kind,
        source: Source<'_>,
        ids: Vec<&str>,
    ) -> Result<Vec<CandidateVectors>, EmbeddingError> {
        let owned: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let generation = Generation {
            table: source.table,
            model: source.model,
            version: source.version(),
        };
        let rows = self.store.get(generation, &owned).await?;
        Ok(owned
            .into_iter()
            .zip(rows)
            .map(|(id, row)| match row {
                Some(r) => CandidateVectors {
                    id,
                    embedding: r.embedding,
                    // Dot products use the index-space vector only; the caches keep no more.
                    search_embedding: match kind {
                        Kind::Embeddings => r.search_embedding,
                        Kind::DotProduct => Vec::new(),
                    },
                },
                None => CandidateVectors {
                    id,
                    ..CandidateVectors::default()
                },
            })
            .collect())
    }

    /// `getEmbeddingsForCandidates`.
    pub async fn embeddings(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
        ids: &[String],
    ) -> Result<Vec<CandidateVectors>, EmbeddingError> {
        self.lookup(Kind::Embeddings, entity, model, variant, ids)
            .await
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
        let vectors = self
            .lookup(Kind::DotProduct, entity, model, variant, ids)
            .await?;
        // Unknown ids (and a stored vector of another length, which no score fits) are left out.
        Ok(vectors
            .into_iter()
            .filter(|v| v.embedding.len() == q.len())
            .map(|v| {
                let score = v.embedding.iter().zip(&q).map(|(a, b)| a * b).sum();
                (v.id, score)
            })
            .collect())
    }
}
