//! `getSimilarCandidates`: resolve the variant, validate, translate filters, search the
//! variant's read-version collection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use skye_core::domain::Variant;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::snapshot::LookupError;
use skye_core::storage::{AggregatorStore, EmbeddingStore, Generation, StorageError};
use skye_core::vector_store::{ScoredPoint, SearchQuery, VectorRead, VectorStoreError};

use super::cache::{self, CacheKey, CacheStats, KeyBuilder, ResultCache, decode_hits, encode_hits};
use super::filters::{FilterError, FilterSpec, translate_all};
use super::original_cache;
use super::payloadless::{self, PayloadSource};
use crate::registry::Registry;
use skye_core::cache::DistributedCache;
use skye_core::settings::CacheKeyFormat;

/// A similar-candidates request, engine-side (transport-neutral).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimilarRequest {
    pub entity: String,
    pub model: String,
    pub variant: String,
    pub limit: i64,
    /// Best hits skipped before `limit` are returned (pagination; 0 = none).
    pub offset: i64,
    /// Query by vectors (mode A)…
    pub embeddings: Vec<Vec<f64>>,
    /// …or by stored items (mode B).
    pub candidate_ids: Vec<String>,
    /// One filter group per query, or none.
    pub filters: Vec<Vec<FilterSpec>>,
    /// One group for every query (exclusive with `filters`).
    pub global_filters: Vec<FilterSpec>,
    /// Payload fields to return.
    pub attributes: Vec<String>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("variant {variant} is not enabled for entity {entity}, model {model}")]
    Disabled {
        entity: String,
        model: String,
        variant: String,
    },
    #[error("{0}")]
    NotAvailable(String),
    #[error("too many searches in flight; retry with backoff")]
    Overloaded,
    #[error("deadline of {0:?} exceeded")]
    DeadlineExceeded(Duration),
    #[error("embedding store: {0}")]
    Embeddings(#[from] StorageError),
    #[error("aggregator store: {0}")]
    Aggregator(StorageError),
    #[error("collection {collection} of the variant's read version: {source}")]
    Store {
        collection: String,
        source: VectorStoreError,
    },
}

impl HasErrorCode for SearchError {
    fn code(&self) -> ErrorCode {
        match self {
            SearchError::Invalid(_) | SearchError::Filter(_) => ErrorCode::InvalidArgument,
            SearchError::Lookup(_) | SearchError::Disabled { .. } => ErrorCode::NotFound,
            SearchError::NotAvailable(_) => ErrorCode::FailedPrecondition,
            SearchError::Overloaded => ErrorCode::ResourceExhausted,
            SearchError::DeadlineExceeded(_) => ErrorCode::Timeout,
            SearchError::Embeddings(e) | SearchError::Aggregator(e) => e.code(),
            SearchError::Store { source, .. } => match source {
                // The variant points at a collection that does not exist (not onboarded yet).
                VectorStoreError::CollectionNotFound(_) => ErrorCode::FailedPrecondition,
                other => other.code(),
            },
        }
    }
}

/// The similar-candidates service.
#[derive(Debug, Clone)]
pub struct SimilarService {
    registry: Arc<Registry>,
    vectors: Arc<dyn VectorRead>,
    embeddings: Option<Arc<dyn EmbeddingStore>>,
    aggregator: Option<Arc<dyn AggregatorStore>>,
    distributed: Option<Arc<dyn DistributedCache>>,
    distributed_format: CacheKeyFormat,
    max_limit: u32,
    cache: Arc<ResultCache>,
    searches: Arc<Semaphore>,
}

/// A query that was not answered from the in-process cache, and its cache keys.
#[derive(Debug)]
struct Searched {
    /// Index in the request.
    index: usize,
    /// In-process key (also the source of Skye-format distributed keys).
    key: Option<CacheKey>,
    /// Distributed-cache key, when the variant uses that layer for this query.
    remote_key: Option<String>,
}

/// The answers of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarAnswer {
    /// One result list per query, in request order.
    pub answers: Vec<Vec<ScoredPoint>>,
    /// Queries answered from the result cache.
    pub cache_hits: usize,
    /// Cacheable queries the cache could not answer.
    pub cache_misses: usize,
}

/// Bounds of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `limit` a request may ask for.
    pub max_limit: u32,
    /// Bytes of the in-process result cache (used by variants that enable it).
    pub cache_bytes: u64,
    /// Vector searches running at once; a request beyond that is refused at once with
    /// RESOURCE_EXHAUSTED instead of queueing (latency stays flat under overload).
    pub max_concurrent: usize,
}

impl SimilarService {
    pub fn new(registry: Arc<Registry>, vectors: Arc<dyn VectorRead>, limits: Limits) -> Self {
        SimilarService {
            registry,
            vectors,
            embeddings: None,
            aggregator: None,
            distributed: None,
            distributed_format: CacheKeyFormat::Skye,
            max_limit: limits.max_limit,
            cache: Arc::new(ResultCache::new(limits.cache_bytes)),
            searches: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
        }
    }

    /// Enables `candidateIds` queries: their vectors come from this store.
    pub fn with_embeddings(mut self, store: Arc<dyn EmbeddingStore>) -> Self {
        self.embeddings = Some(store);
        self
    }

    /// Enables filters and attributes on variants whose vector DB holds no payloads (NGT,
    /// Eigenix): hit payloads are built from this store's rows (see [`payloadless`]).
    pub fn with_aggregator(mut self, store: Arc<dyn AggregatorStore>) -> Self {
        self.aggregator = Some(store);
        self
    }

    /// Adds the distributed cache (Redis) behind the in-process one, for variants that enable
    /// `distributed-caching-enabled`.
    pub fn with_distributed_cache(mut self, cache: Arc<dyn DistributedCache>) -> Self {
        self.distributed = Some(cache);
        self
    }

    /// Keys and values of the distributed cache in `format` (default: Skye's own).
    pub fn with_distributed_format(mut self, format: CacheKeyFormat) -> Self {
        self.distributed_format = format;
        self
    }

    /// A distributed-cache value as an answer for `limit`; `None` = a miss.
    fn decode_remote(
        &self,
        bytes: &[u8],
        limit: usize,
        caching: &skye_core::domain::CachingConfig,
    ) -> Option<Vec<ScoredPoint>> {
        match self.distributed_format {
            CacheKeyFormat::Skye => decode_hits(bytes),
            CacheKeyFormat::Original => {
                original_cache::decode(bytes, limit, caching.partial_hit_disabled)
            }
        }
    }

    /// Hits and misses of the result cache since start.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// One result list per query, in request order, with how the cache served them.
    pub async fn similar(
        &self,
        req: SimilarRequest,
        now_unix: i64,
    ) -> Result<SimilarAnswer, SearchError> {
        // Validation first (the original resolves config first and panics on its way, §9 S1–S2).
        for (value, name) in [
            (&req.entity, "Entity"),
            (&req.model, "modelName"),
            (&req.variant, "variant"),
        ] {
            if value.is_empty() {
                return Err(SearchError::Invalid(format!("{name} is required")));
            }
        }
        if req.limit <= 0 {
            return Err(SearchError::Invalid("limit is required".into()));
        }
        if req.limit > i64::from(self.max_limit) {
            return Err(SearchError::Invalid(format!(
                "limit {} exceeds the maximum of {}",
                req.limit, self.max_limit
            )));
        }
        if req.offset < 0 || req.offset + req.limit > 10 * i64::from(self.max_limit) {
            return Err(SearchError::Invalid(format!(
                "offset must be between 0 and {} - limit, got {}",
                10 * i64::from(self.max_limit),
                req.offset
            )));
        }
        let queries = match (req.embeddings.is_empty(), req.candidate_ids.is_empty()) {
            (true, true) => {
                return Err(SearchError::Invalid(
                    "candidateIds or embeddings is required".into(),
                ));
            }
            (false, false) => {
                return Err(SearchError::Invalid(
                    "both candidateIds and embeddings are present, only one is required".into(),
                ));
            }
            (false, true) => req.embeddings.len(),
            (true, false) => req.candidate_ids.len(),
        };
        if !req.filters.is_empty() && !req.global_filters.is_empty() {
            return Err(SearchError::Invalid(
                "either globalFilter or filters should be used, not both".into(),
            ));
        }
        if !req.filters.is_empty() && req.filters.len() != queries {
            let what = if req.embeddings.is_empty() {
                "candidateId"
            } else {
                "embedding"
            };
            return Err(SearchError::Invalid(format!(
                "filter should be present for each {what}"
            )));
        }
        let snapshot = self.registry.snapshot();
        let model = snapshot.model(&req.entity, &req.model)?;
        let variant: &Variant = snapshot.variant(&req.entity, &req.model, &req.variant)?;
        if !variant.enabled {
            return Err(SearchError::Disabled {
                entity: req.entity,
                model: req.model,
                variant: req.variant,
            });
        }
        let dim = model.model_config.vector_dimension as usize;
        // Each query's vector, and the id it must not return (mode B); `None` = empty answer.
        let sources: Vec<Option<(Vec<f32>, Option<&str>)>> = if req.candidate_ids.is_empty() {
            let mut out = Vec::with_capacity(queries);
            for (i, e) in req.embeddings.iter().enumerate() {
                if e.is_empty() {
                    out.push(None);
                    continue;
                }
                if e.len() != dim {
                    return Err(SearchError::Invalid(format!(
                        "embeddings[{i}] has {} dimensions, model {} has {dim}",
                        e.len(),
                        req.model
                    )));
                }
                if !e
                    .iter()
                    .all(|x| x.is_finite() && x.abs() <= f64::from(f32::MAX))
                {
                    return Err(SearchError::Invalid(format!(
                        "embeddings[{i}] contains NaN, infinity or a value out of float range"
                    )));
                }
                out.push(Some((e.iter().map(|x| *x as f32).collect(), None)));
            }
            out
        } else {
            let store = self.embeddings.as_ref().ok_or_else(|| {
                SearchError::NotAvailable(
                    "candidateIds queries need an embedding store; query by embeddings".into(),
                )
            })?;
            if let Some(i) = req.candidate_ids.iter().position(|id| id.is_empty()) {
                return Err(SearchError::Invalid(format!("candidateIds[{i}] is empty")));
            }
            let table = &snapshot.store_of(&req.entity)?.embeddings_table;
            let rows = store
                .get(
                    Generation {
                        table,
                        model: &req.model,
                        version: variant.embedding_store_read_version,
                    },
                    &req.candidate_ids,
                )
                .await?;
            rows.into_iter()
                .zip(&req.candidate_ids)
                .map(|(row, id)| {
                    // Unknown id, or a stored vector that does not fit: an empty answer.
                    row.map(|r| r.search_embedding)
                        .filter(|v| v.len() == dim)
                        .map(|v| (v, Some(id.as_str())))
                })
                .collect()
        };
        let schema = &variant.vector_db_config.payload;
        let global = translate_all(&req.global_filters, schema, now_unix)?;
        let mut search = Vec::with_capacity(queries);
        // An empty embedding gets an empty answer (as the original); cached answers are reused;
        // the rest are searched together. `searched` remembers each one's index and cache keys.
        let mut searched: Vec<Searched> = Vec::with_capacity(queries);
        let mut answers = vec![Vec::new(); queries];
        let caching = &variant.caching;
        let remote = self
            .distributed
            .clone()
            .filter(|_| caching.distributed_caching_enabled);
        let prefix = format!("sc:{}:{}:{}", req.entity, req.model, req.variant);
        let (mut cache_hits, mut cache_misses) = (0, 0);
        for (i, source) in sources.into_iter().enumerate() {
            let Some((vector, exclude)) = source else {
                continue;
            };
            let specs = req
                .filters
                .get(i)
                .map_or(&req.global_filters[..], Vec::as_slice);
            let filter = match req.filters.get(i) {
                Some(specs) => translate_all(specs, schema, now_unix)?,
                None => global.clone(),
            };
            let key = (caching.in_memory_caching_enabled || remote.is_some()).then(|| {
                let k = KeyBuilder::default()
                    .str(&req.entity)
                    .str(&req.model)
                    .str(&req.variant)
                    .num(variant.vector_db_read_version)
                    .num(req.limit)
                    .num(req.offset);
                match exclude {
                    Some(id) => k
                        .str("id")
                        .str(id)
                        .num(variant.embedding_store_read_version),
                    None => k.str("vector").vector(&vector),
                }
                .filters(specs)
                .strs(&req.attributes)
                .build()
            });
            if let Some(hit) = key
                .as_ref()
                .filter(|_| caching.in_memory_caching_enabled)
                .and_then(|k| self.cache.get(k))
            {
                answers[i] = (*hit).clone();
                cache_hits += 1;
                continue;
            }
            let remote_key = match (&remote, self.distributed_format) {
                (None, _) => None,
                (Some(_), CacheKeyFormat::Skye) => key.as_ref().map(|k| k.distributed(&prefix)),
                // The original's key has no offset: only first pages are shared there.
                (Some(_), CacheKeyFormat::Original) => (req.offset == 0).then(|| {
                    let query = match exclude {
                        Some(id) => original_cache::Query::Id(id),
                        None => original_cache::Query::Vector(&vector),
                    };
                    original_cache::similar_key(
                        &req.entity,
                        &req.model,
                        &req.variant,
                        query,
                        specs,
                        &req.attributes,
                    )
                }),
            };
            searched.push(Searched {
                index: i,
                key,
                remote_key,
            });
            search.push(SearchQuery {
                vector,
                limit: req.limit as usize,
                offset: req.offset as usize,
                filter: (!filter.is_empty()).then_some(filter),
                with_payload: req.attributes.clone(),
                // Mode B: the item itself is excluded inside the engine, so the answer still has
                // `limit` items (the original drops it afterwards and returns limit − 1).
                exclude: exclude.map(|id| vec![id.to_string()]).unwrap_or_default(),
                ..SearchQuery::default()
            });
        }
        // Second layer: one round trip for every in-memory miss. Errors are misses.
        if let Some(remote) = &remote {
            let asked: Vec<usize> = (0..searched.len())
                .filter(|n| searched[*n].remote_key.is_some())
                .collect();
            let keys: Vec<String> = asked
                .iter()
                .filter_map(|n| searched[*n].remote_key.clone())
                .collect();
            if !keys.is_empty() {
                match remote.get_many(&keys).await {
                    Ok(values) => {
                        let mut found = vec![false; searched.len()];
                        for (n, value) in asked.iter().zip(values) {
                            let Some(hits) = value.as_deref().and_then(|bytes| {
                                self.decode_remote(bytes, req.limit as usize, caching)
                            }) else {
                                continue;
                            };
                            let s = &searched[*n];
                            if caching.in_memory_caching_enabled
                                && let Some(key) = &s.key
                            {
                                self.cache.insert(
                                    key.clone(),
                                    hits.clone(),
                                    Duration::from_secs(caching.in_memory_cache_ttl_seconds),
                                );
                            }
                            answers[s.index] = hits;
                            found[*n] = true;
                            cache_hits += 1;
                        }
                        let mut n = 0;
                        searched.retain(|_| {
                            n += 1;
                            !found[n - 1]
                        });
                        let mut n = 0;
                        search.retain(|_| {
                            n += 1;
                            !found[n - 1]
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "distributed cache read failed; treated as a miss");
                    }
                }
            }
        }
        cache_misses += searched.iter().filter(|s| s.key.is_some()).count();
        if search.is_empty() {
            return Ok(SimilarAnswer {
                answers,
                cache_hits,
                cache_misses,
            });
        }
        let _permit = self
            .searches
            .clone()
            .try_acquire_owned()
            .map_err(|_| SearchError::Overloaded)?;
        let collection = variant.collection_name(variant.vector_db_read_version);
        let found =
            if payloadless::applies(variant) && search.iter().any(payloadless::needs_payloads) {
                let aggregator = self.aggregator.as_deref().ok_or_else(|| {
                    SearchError::NotAvailable(format!(
                        "filters and attributes on {} variants need the aggregator store",
                        variant.vector_db_type
                    ))
                })?;
                let source = PayloadSource {
                    variant,
                    aggregator,
                    table: &snapshot.store_of(&req.entity)?.aggregator_table,
                };
                payloadless::search(self.vectors.as_ref(), &collection, source, search).await?
            } else {
                self.vectors
                    .search(&collection, search)
                    .await
                    .map_err(|source| SearchError::Store { collection, source })?
            };
        let ttl = Duration::from_secs(caching.in_memory_cache_ttl_seconds);
        let mut write_back = Vec::new();
        for (s, hits) in searched.into_iter().zip(found) {
            if let Some(remote_key) = s.remote_key {
                let value = match self.distributed_format {
                    CacheKeyFormat::Skye => encode_hits(&hits),
                    CacheKeyFormat::Original => original_cache::encode(&hits),
                };
                write_back.push((remote_key, value));
            }
            if let Some(key) = s.key
                && caching.in_memory_caching_enabled
            {
                self.cache.insert(key, hits.clone(), ttl);
            }
            answers[s.index] = hits;
        }
        if let Some(remote) = remote {
            cache::write_back(
                remote,
                write_back,
                cache::ttl_of(caching.distributed_cache_ttl_seconds),
            );
        }
        Ok(SimilarAnswer {
            answers,
            cache_hits,
            cache_misses,
        })
    }
}
