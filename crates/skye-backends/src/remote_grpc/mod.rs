//! NGT and Eigenix: external vector DBs that Skye only searches (spec serving §3.4, §3.5).
//! Their indexes are built outside Skye, so every write answers a clear error.
//!
//! Compared with the original:
//! * the queries of a request go to NGT concurrently (the original sends them one after the
//!   other) and to Eigenix in one `BatchSearch`, with the variant's `http2config.deadline`
//!   (default 5 s when 0, where the original panics);
//! * `offset` and the ids a `candidateIds` query must not return are applied by Skye over a
//!   larger `k`;
//! * filters and attributes: the services have neither payloads nor filters. The original
//!   silently ignores them (returning unfiltered results). Skye's serving engine evaluates them
//!   itself over a wider search (`skye_engine::search::payloadless`), so these stores only ever
//!   see unfiltered queries; a filtered query that reaches them directly is refused with
//!   INVALID_ARGUMENT rather than answered unfiltered;
//! * Eigenix gets one `limit` for the batch (the original takes the first query's); each query's
//!   own limit is applied to its result set.
//!
//! Scores are the services' distances, passed through (lower is better), as the original.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skye_core::domain::{Variant, VectorDbType};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, CollectionSpec, PayloadValue, ScoredPoint, SearchQuery,
    SnapshotInfo, VariantKey, VectorPoint, VectorRead, VectorStore, VectorStoreError,
};
use skye_proto::eigenix::eigenix_service_client::EigenixServiceClient;
use skye_proto::ngt::embedding_service_client::EmbeddingServiceClient;
use tonic::transport::{Channel, Endpoint};

/// Search deadline when a variant's `http2config.deadline` is 0.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

fn unavailable(service: &str, e: impl std::fmt::Display) -> VectorStoreError {
    VectorStoreError::Unavailable(format!("{service}: {e}").into())
}

fn status(service: &str, s: tonic::Status) -> VectorStoreError {
    match s.code() {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => {
            VectorStoreError::InvalidArgument(format!("{service}: {}", s.message()))
        }
        tonic::Code::NotFound => {
            VectorStoreError::CollectionNotFound(format!("{service}: {}", s.message()))
        }
        tonic::Code::DeadlineExceeded => {
            VectorStoreError::Timeout(format!("{service}: {}", s.message()).into())
        }
        _ => unavailable(service, format!("{:?}: {}", s.code(), s.message())),
    }
}

/// A lazily connecting channel to `url` with the variant's deadline.
fn channel(service: &str, url: &str, deadline: Duration) -> Result<Channel, VectorStoreError> {
    Ok(Endpoint::from_shared(url.to_string())
        .map_err(|e| VectorStoreError::InvalidArgument(format!("{service}: bad URL {url}: {e}")))?
        .timeout(deadline)
        .connect_timeout(deadline)
        .connect_lazy())
}

/// Refuses what these services cannot do for a query.
fn check_query(service: &str, q: &SearchQuery) -> Result<(), VectorStoreError> {
    if q.filter.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(VectorStoreError::InvalidArgument(format!(
            "{service} holds no payloads and cannot filter; Skye's serving engine filters its \
             answers (send filtered queries through it)"
        )));
    }
    Ok(())
}

/// Best `limit` hits after `offset`, without the excluded ids.
fn page(hits: impl IntoIterator<Item = ScoredPoint>, q: &SearchQuery) -> Vec<ScoredPoint> {
    hits.into_iter()
        .filter(|h| !q.exclude.contains(&h.id))
        .skip(q.offset)
        .take(q.limit)
        .collect()
}

fn hit(id: String, distance: f32) -> ScoredPoint {
    ScoredPoint {
        id,
        score: distance,
        payload: BTreeMap::new(),
    }
}

fn read_only(service: &str) -> VectorStoreError {
    VectorStoreError::InvalidArgument(format!(
        "{service} indexes are built and written outside Skye; Skye only searches them"
    ))
}

/// Writes and collection management, refused for both services.
macro_rules! read_only_store {
    ($t:ty, $name:expr) => {
        #[async_trait]
        impl VectorStore for $t {
            async fn create_collection(&self, _: CollectionSpec) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
            async fn delete_collection(&self, _: &CollectionRef) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
            async fn upsert(
                &self,
                _: &CollectionRef,
                _: Vec<VectorPoint>,
            ) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
            async fn delete_points(
                &self,
                _: &CollectionRef,
                _: Vec<String>,
            ) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
            async fn set_payload(
                &self,
                _: &CollectionRef,
                _: Vec<(String, BTreeMap<String, PayloadValue>)>,
            ) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
            async fn set_indexing_threshold(
                &self,
                _: &CollectionRef,
                _: usize,
            ) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
            async fn create_snapshot(
                &self,
                _: &CollectionRef,
            ) -> Result<SnapshotInfo, VectorStoreError> {
                Err(read_only($name))
            }
            async fn list_snapshots(
                &self,
                _: &CollectionRef,
            ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
                Err(read_only($name))
            }
            async fn delete_snapshot(
                &self,
                _: &CollectionRef,
                _: &str,
            ) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
            async fn recover_snapshot(
                &self,
                _: &CollectionRef,
                _: &str,
            ) -> Result<(), VectorStoreError> {
                Err(read_only($name))
            }
        }
    };
}

/// An NGT service (one per host and port).
#[derive(Debug, Clone)]
pub struct NgtStore {
    client: EmbeddingServiceClient<Channel>,
    epsilon: f64,
    radius: f64,
    deadline: Duration,
}

impl NgtStore {
    /// A lazily connecting client; `params` are the variant's `vector_db_config.params`
    /// (`epsilon`, default 0.1; `radius`, default 10000).
    pub fn new(
        url: &str,
        params: &BTreeMap<String, String>,
        deadline: Duration,
    ) -> Result<Self, VectorStoreError> {
        let number = |key: &str, default: f64| -> Result<f64, VectorStoreError> {
            match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    VectorStoreError::InvalidArgument(format!(
                        "NGT: params.{key} '{v}' is not a number"
                    ))
                }),
            }
        };
        let channel = channel("NGT", url, deadline)?;
        Ok(NgtStore {
            client: EmbeddingServiceClient::new(channel),
            epsilon: number("epsilon", 0.1)?,
            radius: number("radius", 10_000.0)?,
            deadline,
        })
    }
}

#[async_trait]
impl VectorRead for NgtStore {
    async fn search(
        &self,
        _collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        for q in &queries {
            check_query("NGT", q)?;
        }
        let calls = queries.into_iter().map(|q| {
            let mut client = self.client.clone();
            let request = skye_proto::ngt::SearchRequest {
                embedding: q.vector.iter().map(|x| f64::from(*x)).collect(),
                k: i32::try_from(q.limit + q.offset + q.exclude.len()).unwrap_or(i32::MAX),
                epsilon: self.epsilon,
                radius: self.radius,
            };
            let deadline = self.deadline;
            async move {
                let mut request = tonic::Request::new(request);
                request.set_timeout(deadline);
                let response = client
                    .search(request)
                    .await
                    .map_err(|s| status("NGT", s))?
                    .into_inner();
                Ok(page(
                    response
                        .results
                        .into_iter()
                        .map(|r| hit(r.id.to_string(), r.distance as f32)),
                    &q,
                ))
            }
        });
        futures_util::future::try_join_all(calls).await
    }

    async fn collection_info(&self, _: &CollectionRef) -> Result<CollectionInfo, VectorStoreError> {
        Ok(CollectionInfo::default())
    }

    /// Its index is not a Skye collection.
    async fn versions(&self, _: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        Ok(Vec::new())
    }
}

read_only_store!(NgtStore, "NGT");

/// An Eigenix service (one per host and port).
#[derive(Debug, Clone)]
pub struct EigenixStore {
    client: EigenixServiceClient<Channel>,
    use_ivf: bool,
    cent_count: i32,
    database_type: i32,
    deadline: Duration,
}

impl EigenixStore {
    /// `params` are the variant's `vector_db_config.params`: `use_ivf` (default true),
    /// `cent_count` (default 10), `database_type` (`HNSW_LIB` or `QDRANT`, default `QDRANT`).
    pub fn new(
        url: &str,
        params: &BTreeMap<String, String>,
        deadline: Duration,
    ) -> Result<Self, VectorStoreError> {
        let get = |key: &str| params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let bad = |key: &str, v: &str, what: &str| {
            VectorStoreError::InvalidArgument(format!("Eigenix: params.{key} '{v}' is not {what}"))
        };
        let use_ivf = match get("use_ivf") {
            None => true,
            Some(v) => v.parse().map_err(|_| bad("use_ivf", v, "true or false"))?,
        };
        let cent_count = match get("cent_count") {
            None => 10,
            Some(v) => v.parse().map_err(|_| bad("cent_count", v, "an integer"))?,
        };
        let database_type = match get("database_type") {
            None => skye_proto::eigenix::DatabaseType::Qdrant,
            Some(v) => skye_proto::eigenix::DatabaseType::from_str_name(&v.to_ascii_uppercase())
                .ok_or_else(|| bad("database_type", v, "HNSW_LIB or QDRANT"))?,
        };
        let channel = channel("Eigenix", url, deadline)?;
        Ok(EigenixStore {
            client: EigenixServiceClient::new(channel),
            use_ivf,
            cent_count,
            database_type: database_type as i32,
            deadline,
        })
    }
}

#[async_trait]
impl VectorRead for EigenixStore {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        for q in &queries {
            check_query("Eigenix", q)?;
        }
        let limit = queries
            .iter()
            .map(|q| q.limit + q.offset + q.exclude.len())
            .max()
            .unwrap_or(0);
        let mut request = tonic::Request::new(skye_proto::eigenix::BatchSearchRequest {
            // Eigenix names its indexes `<model>_<variant>_<version>`.
            index_name: format!(
                "{}_{}_{}",
                collection.variant.model(),
                collection.variant.variant(),
                collection.version
            ),
            vectors: queries
                .iter()
                .map(|q| skye_proto::eigenix::Vector {
                    values: q.vector.clone(),
                })
                .collect(),
            limit: i32::try_from(limit).unwrap_or(i32::MAX),
            search_params: Some(skye_proto::eigenix::SearchParams {
                use_ivf: self.use_ivf,
                cent_count: self.cent_count,
                search_indexed_only: true,
            }),
            database_type: self.database_type,
        });
        request.set_timeout(self.deadline);
        let response = self
            .client
            .clone()
            .batch_search(request)
            .await
            .map_err(|s| status("Eigenix", s))?
            .into_inner();
        if response.result_sets.len() != queries.len() {
            return Err(unavailable(
                "Eigenix",
                format!(
                    "answered {} result sets for {} queries",
                    response.result_sets.len(),
                    queries.len()
                ),
            ));
        }
        Ok(response
            .result_sets
            .into_iter()
            .zip(&queries)
            .map(|(set, q)| {
                page(
                    set.results
                        .into_iter()
                        .map(|r| hit(r.id.to_string(), r.distance)),
                    q,
                )
            })
            .collect())
    }

    async fn collection_info(&self, _: &CollectionRef) -> Result<CollectionInfo, VectorStoreError> {
        Ok(CollectionInfo::default())
    }

    async fn versions(&self, _: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        Ok(Vec::new())
    }
}

read_only_store!(EigenixStore, "Eigenix");

/// Clients for NGT and EIGENIX variants, one per (service, host, port, settings).
#[derive(Debug, Default)]
pub struct GrpcStores {
    clients: Mutex<HashMap<String, Arc<dyn VectorStore>>>,
}

impl GrpcStores {
    pub fn for_variant(&self, variant: &Variant) -> Result<Arc<dyn VectorStore>, VectorStoreError> {
        let c = &variant.vector_db_config;
        let host = &c.read_host;
        if host.is_empty() {
            return Err(VectorStoreError::InvalidArgument(format!(
                "variant '{}' ({}) has no vector_db_config.read_host",
                variant.name, variant.vector_db_type
            )));
        }
        let scheme = if c.http2config.is_plain_text {
            "http"
        } else {
            "https"
        };
        let url = if host.contains("://") {
            format!("{host}:{}", c.port)
        } else {
            format!("{scheme}://{host}:{}", c.port)
        };
        let deadline = match c.http2config.deadline {
            0 => DEFAULT_DEADLINE,
            ms => Duration::from_millis(ms),
        };
        let key = format!(
            "{}|{url}|{}|{:?}",
            variant.vector_db_type,
            deadline.as_millis(),
            c.params
        );
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = clients.get(&key) {
            return Ok(store.clone());
        }
        let store: Arc<dyn VectorStore> = match variant.vector_db_type {
            VectorDbType::Ngt => Arc::new(NgtStore::new(&url, &c.params, deadline)?),
            VectorDbType::Eigenix => Arc::new(EigenixStore::new(&url, &c.params, deadline)?),
            other => {
                return Err(VectorStoreError::InvalidArgument(format!(
                    "{other} is not served by the NGT/Eigenix clients"
                )));
            }
        };
        clients.insert(key, store.clone());
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: usize, offset: usize, exclude: &[&str]) -> SearchQuery {
        SearchQuery {
            vector: vec![1.0],
            limit,
            offset,
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn paging_and_exclusion_are_applied_after_the_service() {
        let hits = (0..6).map(|i| hit(i.to_string(), i as f32));
        let got: Vec<String> = page(hits, &q(2, 1, &["1"]))
            .into_iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(got, ["2", "3"]);
    }

    #[test]
    fn filters_are_refused_not_ignored() {
        let mut query = q(1, 0, &[]);
        query.filter = Some(skye_core::vector_store::SearchFilter {
            must: vec![skye_core::vector_store::Condition::Exists { field: "x".into() }],
            must_not: vec![],
        });
        assert!(matches!(
            check_query("NGT", &query),
            Err(VectorStoreError::InvalidArgument(_))
        ));
        assert!(check_query("NGT", &q(1, 0, &[])).is_ok());
    }

    /// (Clients connect lazily, which needs a runtime.)
    #[tokio::test]
    async fn params_are_checked() {
        let params = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let d = Duration::from_secs(1);
        assert!(NgtStore::new("http://h:1", &params("epsilon", "x"), d).is_err());
        assert!(NgtStore::new("http://h:1", &params("epsilon", "0.2"), d).is_ok());
        assert!(EigenixStore::new("http://h:1", &params("database_type", "faiss"), d).is_err());
        let e = EigenixStore::new("http://h:1", &params("database_type", "hnsw_lib"), d).unwrap();
        assert_eq!(e.database_type, 0);
    }
}
