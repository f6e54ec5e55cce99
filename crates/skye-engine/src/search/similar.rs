//! `getSimilarCandidates`: validate → resolve the variant → plan one search per query →
//! answer from the cache layers or search the variant's read-version collection → shape.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use skye_core::cache::DistributedCache;
use skye_core::domain::{Model, Variant};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::settings::CacheKeyFormat;
use skye_core::snapshot::{ConfigSnapshot, LookupError};
use skye_core::storage::{AggregatorStore, EmbeddingStore, Generation, StorageError};
use skye_core::vector_store::{
    CollectionRef, ScoredPoint, SearchQuery, VectorRead, VectorStoreError,
};

use super::cache::{CacheStats, KeyBuilder, decode_hits, encode_hits, ttl_of};
use super::executor::{Refused, SearchExecutor};
use super::filters::{FilterError, FilterSpec, translate_all};
use super::freshness::{Freshness, SharedEpochs};
use super::original_cache;
use super::payloadless::{self, PayloadSource};
use super::tiers::{Codec, ItemKeys, Ttls, TwoTier};
use crate::registry::Registry;

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
    #[error("the variant's read version: {source}")]
    Store {
        collection: CollectionRef,
        source: VectorStoreError,
    },
    #[error("the search failed inside the engine")]
    Engine,
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
            SearchError::Engine => ErrorCode::Internal,
        }
    }
}

impl From<Refused> for SearchError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Overloaded => SearchError::Overloaded,
            Refused::Failed => SearchError::Engine,
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
    distributed_format: CacheKeyFormat,
    max_limit: u32,
    cache: TwoTier<Vec<ScoredPoint>>,
    freshness: Freshness,
    executor: SearchExecutor,
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

/// What a request resolved to.
struct Target<'s> {
    model: &'s Model,
    variant: &'s Variant,
    collection: CollectionRef,
}

/// One query to answer: its position in the request, the search, and what keys its answer.
struct Planned<'r> {
    index: usize,
    query: SearchQuery,
    /// The stored item it searches by (mode B), or `None` (by vector).
    by_id: Option<&'r str>,
    /// The filters as given (cache keys are built from them).
    specs: &'r [FilterSpec],
}

/// Answers to and from the distributed layer in its configured format.
struct AnswerCodec {
    format: CacheKeyFormat,
    limit: usize,
    partial_hits: bool,
}

impl Codec<Vec<ScoredPoint>> for AnswerCodec {
    fn encode(&self, hits: &Vec<ScoredPoint>) -> Vec<u8> {
        match self.format {
            CacheKeyFormat::Skye => encode_hits(hits),
            CacheKeyFormat::Original => original_cache::encode(hits),
        }
    }

    fn decode(&self, _: usize, bytes: &[u8]) -> Option<Vec<ScoredPoint>> {
        match self.format {
            CacheKeyFormat::Skye => decode_hits(bytes),
            CacheKeyFormat::Original => {
                original_cache::decode(bytes, self.limit, self.partial_hits)
            }
        }
    }
}

impl SimilarService {
    pub fn new(registry: Arc<Registry>, vectors: Arc<dyn VectorRead>, limits: Limits) -> Self {
        SimilarService {
            registry,
            freshness: Freshness::new(vectors.clone(), None),
            vectors,
            embeddings: None,
            aggregator: None,
            distributed_format: CacheKeyFormat::Skye,
            max_limit: limits.max_limit,
            cache: TwoTier::new(limits.cache_bytes),
            executor: SearchExecutor::new(limits.max_concurrent),
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
    /// `distributed-caching-enabled`; remote collections' epochs are read from it too.
    pub fn with_distributed_cache(mut self, cache: Arc<dyn DistributedCache>) -> Self {
        self.freshness =
            Freshness::new(self.vectors.clone(), Some(SharedEpochs::new(cache.clone())));
        self.cache = self.cache.with_remote(cache);
        self
    }

    /// Keys and values of the distributed cache in `format` (default: Skye's own).
    pub fn with_distributed_format(mut self, format: CacheKeyFormat) -> Self {
        self.distributed_format = format;
        self
    }

    /// Hits and misses of the in-process result cache since start.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.memory_stats()
    }

    /// Both cache layers' figures, for the metrics (shares the live counters).
    pub fn cache_figures(&self) -> std::sync::Arc<dyn super::tiers::TierFigures> {
        std::sync::Arc::new(self.cache.clone())
    }

    /// One result list per query, in request order, with how the cache served them.
    pub async fn similar(
        &self,
        req: SimilarRequest,
        now_unix: i64,
    ) -> Result<SimilarAnswer, SearchError> {
        let queries = validate(&req, self.max_limit)?;
        let snapshot = self.registry.snapshot();
        let target = resolve(&snapshot, &req)?;
        let fetch = tracing::debug_span!("embedding_fetch", ids = req.candidate_ids.len());
        let sources = self
            .sources(&req, &snapshot, &target)
            .instrument(fetch)
            .await?;
        let planned = tracing::debug_span!("filter_plan")
            .in_scope(|| plan(&req, &target, sources, now_unix))?;
        let keys = self.keys(&req, &target, &planned).await;
        let codec = AnswerCodec {
            format: self.distributed_format,
            limit: req.limit as usize,
            partial_hits: target.variant.caching.partial_hit_disabled,
        };
        let caching = &target.variant.caching;
        let ttls = Ttls {
            memory: Duration::from_secs(caching.in_memory_cache_ttl_seconds),
            remote: ttl_of(caching.distributed_cache_ttl_seconds),
        };
        let (found, served) = self
            .cache
            .get_or_fetch(keys, &codec, ttls, |missing| {
                let queries = missing.iter().map(|i| planned[*i].query.clone()).collect();
                let span = tracing::debug_span!("vector_search",
                    collection = %target.collection, queries = missing.len());
                self.search(&snapshot, &target, queries).instrument(span)
            })
            .await?;
        let mut answers = vec![Vec::new(); queries];
        for (p, hits) in planned.iter().zip(found) {
            answers[p.index] = hits;
        }
        Ok(SimilarAnswer {
            answers,
            cache_hits: served.hits,
            cache_misses: served.misses,
        })
    }

    /// Each query's vector and the id it must not return (mode B); `None` = an empty answer
    /// (an empty embedding, an unknown id, a stored vector that does not fit).
    async fn sources<'r>(
        &self,
        req: &'r SimilarRequest,
        snapshot: &ConfigSnapshot,
        target: &Target<'_>,
    ) -> Result<Vec<Option<(Vec<f32>, Option<&'r str>)>>, SearchError> {
        let dim = target.model.model_config.vector_dimension as usize;
        if req.candidate_ids.is_empty() {
            return req
                .embeddings
                .iter()
                .enumerate()
                .map(|(i, e)| query_vector(i, e, dim, &req.model))
                .collect();
        }
        let store = self.embeddings.as_ref().ok_or_else(|| {
            SearchError::NotAvailable(
                "candidateIds queries need an embedding store; query by embeddings".into(),
            )
        })?;
        if let Some(i) = req.candidate_ids.iter().position(|id| id.is_empty()) {
            return Err(SearchError::Invalid(format!("candidateIds[{i}] is empty")));
        }
        let generation = Generation {
            table: &snapshot.store_of(&req.entity)?.embeddings_table,
            model: &req.model,
            version: target.variant.embedding_store_read_version,
        };
        let rows = store.get(generation, &req.candidate_ids).await?;
        Ok(rows
            .into_iter()
            .zip(&req.candidate_ids)
            .map(|(row, id)| {
                row.map(|r| r.search_embedding)
                    .filter(|v| v.len() == dim)
                    .map(|v| (v, Some(id.as_str())))
            })
            .collect())
    }

    /// The cache keys of each planned query, in each layer the variant uses.
    async fn keys(
        &self,
        req: &SimilarRequest,
        target: &Target<'_>,
        planned: &[Planned<'_>],
    ) -> Vec<ItemKeys> {
        let caching = &target.variant.caching;
        let remote = caching.distributed_caching_enabled && self.cache.has_remote();
        if !caching.in_memory_caching_enabled && !remote {
            return planned.iter().map(|_| ItemKeys::default()).collect();
        }
        // Every answer cached before a write to the collection stops matching after it.
        let epoch = self.freshness.epoch(&target.collection).await;
        let v = target.variant;
        let prefix = format!("sc:{}:{}:{}", req.entity, req.model, req.variant);
        planned
            .iter()
            .map(|p| {
                let k = KeyBuilder::default()
                    .str(&req.entity)
                    .str(&req.model)
                    .str(&req.variant)
                    .num(v.vector_db_read_version)
                    .num(epoch as i64)
                    .num(req.limit)
                    .num(req.offset);
                let key = match p.by_id {
                    Some(id) => k.str("id").str(id).num(v.embedding_store_read_version),
                    None => k.str("vector").vector(&p.query.vector),
                }
                .filters(p.specs)
                .strs(&req.attributes)
                .build();
                let remote_key = match (remote, self.distributed_format) {
                    (false, _) => None,
                    (true, CacheKeyFormat::Skye) => Some(key.distributed(&prefix)),
                    // The original's key has no offset: only first pages are shared there.
                    (true, CacheKeyFormat::Original) => (req.offset == 0).then(|| {
                        let query = match p.by_id {
                            Some(id) => original_cache::Query::Id(id),
                            None => original_cache::Query::Vector(&p.query.vector),
                        };
                        original_cache::similar_key(
                            &req.entity,
                            &req.model,
                            &req.variant,
                            query,
                            p.specs,
                            &req.attributes,
                        )
                    }),
                };
                ItemKeys {
                    memory: caching.in_memory_caching_enabled.then_some(key),
                    remote: remote_key,
                }
            })
            .collect()
    }

    /// Searches the read-version collection under a permit; an abandoned request stops it.
    async fn search(
        &self,
        snapshot: &ConfigSnapshot,
        target: &Target<'_>,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, SearchError> {
        let vectors = self.vectors.clone();
        let collection = target.collection.clone();
        let payloadless =
            payloadless::applies(target.variant) && queries.iter().any(payloadless::needs_payloads);
        let rows = if payloadless {
            let aggregator = self.aggregator.clone().ok_or_else(|| {
                SearchError::NotAvailable(format!(
                    "filters and attributes on {} variants need the aggregator store",
                    target.variant.vector_db_type
                ))
            })?;
            let table = snapshot
                .store_of(&target.variant.entity)?
                .aggregator_table
                .clone();
            Some((aggregator, table, target.variant.clone()))
        } else {
            None
        };
        self.executor
            .run(move |stop| async move {
                let queries: Vec<SearchQuery> = queries
                    .into_iter()
                    .map(|q| SearchQuery {
                        stop: stop.clone(),
                        ..q
                    })
                    .collect();
                match rows {
                    Some((aggregator, table, variant)) => {
                        let source = PayloadSource {
                            variant: &variant,
                            aggregator: aggregator.as_ref(),
                            table: &table,
                        };
                        payloadless::search(vectors.as_ref(), &collection, source, queries).await
                    }
                    None => vectors
                        .search(&collection, queries)
                        .await
                        .map_err(|source| SearchError::Store { collection, source }),
                }
            })
            .await?
    }
}

/// The request's own checks (before any lookup: the original resolves config first and panics
/// on its way, §9 S1–S2); returns the number of queries.
fn validate(req: &SimilarRequest, max_limit: u32) -> Result<usize, SearchError> {
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
    if req.limit > i64::from(max_limit) {
        return Err(SearchError::Invalid(format!(
            "limit {} exceeds the maximum of {max_limit}",
            req.limit
        )));
    }
    if req.offset < 0 || req.offset + req.limit > 10 * i64::from(max_limit) {
        return Err(SearchError::Invalid(format!(
            "offset must be between 0 and {} - limit, got {}",
            10 * i64::from(max_limit),
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
    Ok(queries)
}

/// The enabled variant the request names, and its read-version collection.
fn resolve<'s>(
    snapshot: &'s ConfigSnapshot,
    req: &SimilarRequest,
) -> Result<Target<'s>, SearchError> {
    let model = snapshot.model(&req.entity, &req.model)?;
    let variant = snapshot.variant(&req.entity, &req.model, &req.variant)?;
    if !variant.enabled {
        return Err(SearchError::Disabled {
            entity: req.entity.clone(),
            model: req.model.clone(),
            variant: req.variant.clone(),
        });
    }
    Ok(Target {
        model,
        variant,
        collection: variant.collection(variant.vector_db_read_version),
    })
}

/// Query `i`'s vector as the engine takes it; `None` for an empty one (an empty answer, as the
/// original).
#[allow(clippy::type_complexity, reason = "the shape `sources` collects")]
fn query_vector<'r>(
    i: usize,
    e: &[f64],
    dim: usize,
    model: &str,
) -> Result<Option<(Vec<f32>, Option<&'r str>)>, SearchError> {
    if e.is_empty() {
        return Ok(None);
    }
    if e.len() != dim {
        return Err(SearchError::Invalid(format!(
            "embeddings[{i}] has {} dimensions, model {model} has {dim}",
            e.len()
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
    Ok(Some((e.iter().map(|x| *x as f32).collect(), None)))
}

/// One search per query with a source, filters translated by the variant's payload schema.
fn plan<'r>(
    req: &'r SimilarRequest,
    target: &Target<'_>,
    sources: Vec<Option<(Vec<f32>, Option<&'r str>)>>,
    now_unix: i64,
) -> Result<Vec<Planned<'r>>, SearchError> {
    let schema = &target.variant.vector_db_config.payload;
    let params = target.variant.vector_db_config.search_params();
    let global = translate_all(&req.global_filters, schema, now_unix)?;
    let mut planned = Vec::with_capacity(sources.len());
    for (index, source) in sources.into_iter().enumerate() {
        let Some((vector, by_id)) = source else {
            continue;
        };
        let (specs, filter) = match req.filters.get(index) {
            Some(specs) => (&specs[..], translate_all(specs, schema, now_unix)?),
            None => (&req.global_filters[..], global.clone()),
        };
        planned.push(Planned {
            index,
            by_id,
            specs,
            query: SearchQuery {
                vector,
                limit: req.limit as usize,
                offset: req.offset as usize,
                filter: (!filter.is_empty()).then_some(filter),
                with_payload: req.attributes.clone(),
                // Mode B: the item itself is excluded inside the engine, so the answer still
                // has `limit` items (the original drops it afterwards and returns limit − 1).
                exclude: by_id.map(|id| vec![id.to_string()]).unwrap_or_default(),
                ef: params.ef,
                exact: params.exact,
                indexed_only: params.indexed_only,
                score_threshold: params.score_threshold,
                ..SearchQuery::default()
            },
        });
    }
    Ok(planned)
}
