//! Qdrant as the vector DB (`--features qdrant`, qdrant-client over gRPC).
//!
//! * A collection is named `<variant>_<model>_<version>` ([`CollectionRef::original_name`], spec
//!   serving §3.3.1), so collections the original created are found; registration refuses a
//!   variant whose names would meet another's there.
//! * Point ids: Qdrant takes unsigned integers or UUIDs. A candidate id that is a canonical
//!   decimal integer is used as the numeric id (the original's mapping, spec AC §5.4); any other
//!   id becomes a deterministic UUID and the id itself is kept in the payload field
//!   [`ID_FIELD`], from which hits are mapped back. Non-numeric ids therefore work here too.
//! * Filters: every engine-neutral [`Condition`] has a Qdrant counterpart (match keyword /
//!   integer / bool, `is_empty` negated for EX, full-text match for SEARCH, range, geo radius);
//!   excluded ids become a `must_not has_id`.
//! * Indexing threshold 0 (bulk load) and the lifecycle's re-enabling map to the optimizer's
//!   `indexing_threshold` (Qdrant counts it in KB; 0 disables the HNSW build there too).
//! * Snapshots: Qdrant's node-local collection snapshots (create, list, delete). Recovery is a
//!   REST-only call in Qdrant, so it is refused here with the call to make.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use qdrant_client::qdrant::{
    self, Condition as QCondition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, DeleteSnapshotRequestBuilder, Distance, FieldType, Filter, GeoPoint,
    GeoRadius, GetPointsBuilder, HnswConfigDiffBuilder, ListValue, OptimizersConfigDiffBuilder,
    PointId, PointStruct, PointsIdsList, Range, SearchBatchPointsBuilder, SearchParamsBuilder,
    SearchPointsBuilder, SetPayloadPointsBuilder, TextIndexParamsBuilder, TokenizerType,
    UpdateCollectionBuilder, UpsertPointsBuilder, Value, VectorParamsBuilder, r#match::MatchValue,
    point_id::PointIdOptions, value::Kind,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use skye_core::domain::{DistanceFunction, FieldSchema};
use skye_core::error::Cause;
use skye_core::hash::{Fnv1a64, fnv1a64};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, CollectionSpec, Condition, PayloadValue, ScoredPoint,
    SearchFilter, SearchQuery, SnapshotInfo, VariantKey, VectorPoint, VectorRead, VectorStore,
    VectorStoreError,
};

mod convert;

use convert::*;
pub use convert::{filter, point_id, to_value, value_text};

/// Payload field holding a non-numeric candidate id.
pub const ID_FIELD: &str = "_skye_id";

/// The Qdrant vector store.
pub struct QdrantVectorStore {
    client: Qdrant,
}

impl std::fmt::Debug for QdrantVectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantVectorStore").finish_non_exhaustive()
    }
}

impl QdrantVectorStore {
    async fn info(&self, name: &str) -> Result<qdrant::CollectionInfo, VectorStoreError> {
        self.client
            .collection_info(name)
            .await
            .map_err(error)?
            .result
            .ok_or_else(|| VectorStoreError::CollectionNotFound(name.to_string()))
    }

    /// `Ok` when collection `name` exists (an empty write still says whether it could land).
    async fn must_exist(&self, name: &str) -> Result<(), VectorStoreError> {
        if self.client.collection_exists(name).await.map_err(error)? {
            Ok(())
        } else {
            Err(VectorStoreError::CollectionNotFound(name.to_string()))
        }
    }

    /// Connects to `url` (e.g. `http://qdrant:6334`); `timeout` bounds every call.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, VectorStoreError> {
        // Skye pins no server version: the client's check (major equal, minor ±1) would warn on
        // stdout about every older server it can talk to.
        let client = Qdrant::from_url(url)
            .timeout(timeout)
            .skip_compatibility_check()
            .build()
            .map_err(error)?;
        Ok(QdrantVectorStore { client })
    }
}

/// A Qdrant answer as the contract's error. What says the server cannot be reached now
/// (unavailable, connection or stream errors, overload) is UNAVAILABLE and a deadline is
/// DEADLINE_EXCEEDED, both retryable; only the server's own failures are INTERNAL.
fn error(e: QdrantError) -> VectorStoreError {
    let text = e.to_string();
    let QdrantError::ResponseError { status } = &e else {
        return VectorStoreError::Unavailable(Cause::new(text, e));
    };
    if status.code() != tonic::Code::DeadlineExceeded && transport_failure(status) {
        return VectorStoreError::Unavailable(Cause::new(text, e));
    }
    match status.code() {
        tonic::Code::NotFound => VectorStoreError::CollectionNotFound(status.message().into()),
        tonic::Code::AlreadyExists => VectorStoreError::CollectionExists(status.message().into()),
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => {
            VectorStoreError::InvalidArgument(text)
        }
        tonic::Code::DeadlineExceeded => VectorStoreError::Timeout(Cause::new(text, e)),
        tonic::Code::Unavailable
        | tonic::Code::ResourceExhausted
        | tonic::Code::Unknown
        | tonic::Code::Cancelled
        | tonic::Code::Aborted => VectorStoreError::Unavailable(Cause::new(text, e)),
        _ => VectorStoreError::Internal(Cause::new(text, e)),
    }
}

/// Whether a status was made by the client for a connection that failed, not sent by the
/// server: qdrant-client reports a refused connection as INTERNAL "Failed to connect to …",
/// tonic a broken stream as INTERNAL "h2 protocol error" with the transport error as source.
fn transport_failure(status: &tonic::Status) -> bool {
    let m = status.message();
    std::error::Error::source(status).is_some()
        || m.starts_with("Failed to connect")
        || m.contains("transport error")
        || m.contains("h2 protocol error")
        || m.contains("connection error")
}

/// The vector size of a collection (0 when Qdrant does not say).
fn dimension(info: &qdrant::CollectionInfo) -> u64 {
    use qdrant::vectors_config::Config;
    let params = info.config.as_ref().and_then(|c| c.params.as_ref());
    match params.and_then(|p| p.vectors_config.as_ref()?.config.as_ref()) {
        Some(Config::Params(v)) => v.size,
        _ => 0,
    }
}

/// Skye's indexing threshold counts pending points; Qdrant's counts kilobytes of vectors in a
/// segment. 0 (indexing off) stays 0; any other count is at least 1 KB.
fn threshold_kb(points: usize, dimension: u64) -> u64 {
    match points {
        0 => 0,
        n => (n as u64 * dimension * 4).div_ceil(1024).max(1),
    }
}

/// Qdrant's threshold in kilobytes back as points.
fn threshold_points(kb: u64, dimension: u64) -> usize {
    match (kb, dimension) {
        (0, _) => 0,
        (kb, 0) => kb as usize,
        (kb, d) => ((kb * 1024) / (d * 4)).max(1) as usize,
    }
}

/// Refuses a vector with NaN or infinity (Qdrant takes them and scores NaN).
fn finite<'a>(
    what: &str,
    mut vectors: impl Iterator<Item = &'a [f32]>,
) -> Result<(), VectorStoreError> {
    if vectors.any(|v| v.iter().any(|x| !x.is_finite())) {
        return Err(VectorStoreError::InvalidArgument(format!(
            "{what} contains NaN or infinity"
        )));
    }
    Ok(())
}

impl QdrantVectorStore {
    /// Reads [`ID_FIELD`] of the UUID points among `batches` that were found without payload
    /// (one call for all of them; none when every id is numeric).
    async fn fill_ids(
        &self,
        collection: &str,
        batches: &mut [Vec<qdrant::ScoredPoint>],
    ) -> Result<(), VectorStoreError> {
        let missing: Vec<PointId> = batches
            .iter()
            .flatten()
            .filter(|h| uuid_of(h.id.as_ref()).is_some() && !h.payload.contains_key(ID_FIELD))
            .filter_map(|h| h.id.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let found = self
            .client
            .get_points(
                GetPointsBuilder::new(collection, missing)
                    .with_payload(qdrant::with_payload_selector::SelectorOptions::Include(
                        qdrant::PayloadIncludeSelector {
                            fields: vec![ID_FIELD.to_string()],
                        },
                    ))
                    .with_vectors(false),
            )
            .await
            .map_err(error)?
            .result;
        let ids: HashMap<String, Value> = found
            .into_iter()
            .filter_map(|p| {
                let id = p.payload.get(ID_FIELD)?.clone();
                Some((uuid_of(p.id.as_ref())?.to_string(), id))
            })
            .collect();
        for hit in batches.iter_mut().flatten() {
            let known = uuid_of(hit.id.as_ref()).and_then(|u| ids.get(u)).cloned();
            if let Some(id) = known {
                hit.payload.insert(ID_FIELD.to_string(), id);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl VectorRead for QdrantVectorStore {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        // Qdrant answers a NaN query with NaN scores; the contract refuses it.
        finite("query vector", queries.iter().map(|q| q.vector.as_slice()))?;
        let wanted: Vec<Vec<String>> = queries.iter().map(|q| q.with_payload.clone()).collect();
        let searches = queries
            .into_iter()
            .map(|q| search_request(collection, q))
            .collect::<Vec<_>>();
        let response = self
            .client
            .search_batch_points(SearchBatchPointsBuilder::new(collection, searches))
            .await
            .map_err(error)?;
        let mut batches: Vec<Vec<qdrant::ScoredPoint>> =
            response.result.into_iter().map(|b| b.result).collect();
        self.fill_ids(collection, &mut batches).await?;
        Ok(batches
            .into_iter()
            .zip(wanted)
            .map(|(hits, wanted)| hits.into_iter().map(|hit| scored(hit, &wanted)).collect())
            .collect())
    }

    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError> {
        let name = collection.original_name();
        let info = self.info(&name).await?;
        let kb = info
            .config
            .as_ref()
            .and_then(|c| c.optimizer_config.as_ref())
            .and_then(|o| o.indexing_threshold)
            .unwrap_or(0);
        let points = info.points_count.unwrap_or(0);
        // Qdrant leaves a segment smaller than the threshold unindexed for good (it is searched
        // exactly): with indexing on and the optimizers idle (green), nothing is left to index.
        let settled = kb > 0 && info.status == qdrant::CollectionStatus::Green as i32;
        let indexed = info.indexed_vectors_count.unwrap_or(0);
        Ok(CollectionInfo {
            points_count: points,
            indexed_vectors_count: if settled {
                points.max(indexed)
            } else {
                indexed
            },
            indexing_threshold: threshold_points(kb, dimension(&info)),
            // Qdrant's optimizers build new segments beside the ones that serve.
            reorganising: false,
        })
    }

    /// Collections named `<variant>_<model>_<n>`: unambiguous, as registration keeps every
    /// QDRANT variant's `<variant>_<model>` stem unique.
    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        let stem = format!("{}_", variant.original_stem());
        let mut versions: Vec<i64> = self
            .client
            .list_collections()
            .await
            .map_err(error)?
            .collections
            .into_iter()
            .filter_map(|c| c.name.strip_prefix(&stem)?.parse().ok())
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }
}

#[async_trait]
impl VectorStore for QdrantVectorStore {
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError> {
        let name = spec.collection.original_name();
        if self.client.collection_exists(&name).await.map_err(error)? {
            return Err(VectorStoreError::CollectionExists(name));
        }
        self.client
            .create_collection(
                CreateCollectionBuilder::new(name.as_str())
                    .vectors_config({
                        let params = VectorParamsBuilder::new(
                            u64::from(spec.dimension),
                            distance(spec.distance),
                        );
                        match spec.on_disk {
                            Some(on_disk) => params.on_disk(on_disk),
                            None => params,
                        }
                    })
                    .hnsw_config(
                        HnswConfigDiffBuilder::default()
                            .m(spec.m as u64)
                            .ef_construct(spec.ef_construct as u64),
                    )
                    .optimizers_config(OptimizersConfigDiffBuilder::default().indexing_threshold(
                        threshold_kb(spec.indexing_threshold, u64::from(spec.dimension)),
                    )),
            )
            .await
            .map_err(error)?;
        for (field, schema) in &spec.payload_schema {
            self.client
                .create_field_index(field_index(&name, field, *schema))
                .await
                .map_err(error)?;
        }
        Ok(())
    }

    async fn delete_collection(&self, collection: &CollectionRef) -> Result<(), VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        if !self
            .client
            .collection_exists(collection)
            .await
            .map_err(error)?
        {
            return Ok(());
        }
        self.client
            .delete_collection(collection)
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn upsert(
        &self,
        collection: &CollectionRef,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        if points.is_empty() {
            return self.must_exist(collection).await;
        }
        finite("point vector", points.iter().map(|p| p.vector.as_slice()))?;
        let points: Vec<PointStruct> = points
            .iter()
            .map(|p| PointStruct::new(point_id(&p.id), p.vector.clone(), payload_of(p)))
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(collection, points).wait(true))
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn delete_points(
        &self,
        collection: &CollectionRef,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        if ids.is_empty() {
            return self.must_exist(collection).await;
        }
        let ids = PointsIdsList {
            ids: ids.iter().map(|id| point_id(id)).collect(),
        };
        self.client
            .delete_points(DeletePointsBuilder::new(collection).points(ids).wait(true))
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn set_payload(
        &self,
        collection: &CollectionRef,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        for (id, fields) in updates {
            let payload: HashMap<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect();
            self.client
                .set_payload(
                    // By filter, not by id list: a missing point matches nothing (the
                    // contract) instead of failing the call with NOT_FOUND.
                    SetPayloadPointsBuilder::new(collection, payload)
                        .points_selector(Filter::must([QCondition::has_id([point_id(&id)])]))
                        .wait(true),
                )
                .await
                .map_err(error)?;
        }
        Ok(())
    }

    async fn set_indexing_threshold(
        &self,
        collection: &CollectionRef,
        threshold: usize,
    ) -> Result<(), VectorStoreError> {
        let name = collection.original_name();
        let kb = threshold_kb(threshold, dimension(&self.info(&name).await?));
        self.client
            .update_collection(
                UpdateCollectionBuilder::new(name.as_str()).optimizers_config(
                    OptimizersConfigDiffBuilder::default().indexing_threshold(kb),
                ),
            )
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn create_snapshot(
        &self,
        collection: &CollectionRef,
    ) -> Result<SnapshotInfo, VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        let r = self
            .client
            .create_snapshot(collection)
            .await
            .map_err(error)?;
        r.snapshot_description
            .map(snapshot_info)
            .ok_or_else(|| VectorStoreError::Internal("Qdrant described no snapshot".into()))
    }

    async fn list_snapshots(
        &self,
        collection: &CollectionRef,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        let r = self
            .client
            .list_snapshots(collection)
            .await
            .map_err(error)?;
        let mut out: Vec<SnapshotInfo> = r
            .snapshot_descriptions
            .into_iter()
            .map(snapshot_info)
            .collect();
        out.sort_by(|a, b| (a.created_unix, &a.name).cmp(&(b.created_unix, &b.name)));
        Ok(out)
    }

    async fn delete_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        let stored = collection.original_name();
        let collection = stored.as_str();
        match self
            .client
            .delete_snapshot(DeleteSnapshotRequestBuilder::new(collection, name))
            .await
            .map_err(error)
        {
            // Qdrant answers NOT_FOUND for a missing snapshot as for a missing collection.
            Err(VectorStoreError::CollectionNotFound(m)) if m.contains("napshot") => {
                Err(VectorStoreError::SnapshotNotFound(name.to_string()))
            }
            other => other.map(|_| ()),
        }
    }

    async fn recover_snapshot(
        &self,
        collection: &CollectionRef,
        _: &str,
    ) -> Result<(), VectorStoreError> {
        let name = collection.original_name();
        let collection = name.as_str();
        Err(VectorStoreError::InvalidArgument(format!(
            "Qdrant recovers snapshots through its REST API only (PUT \
             /collections/{collection}/snapshots/recover with the snapshot's location); its gRPC \
             API, which Skye uses, has no recovery call"
        )))
    }
}

fn snapshot_info(d: qdrant::SnapshotDescription) -> SnapshotInfo {
    SnapshotInfo {
        name: d.name,
        created_unix: d.creation_time.map_or(0, |t| t.seconds),
        size_bytes: u64::try_from(d.size).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_stay_numbers_and_others_get_stable_uuids() {
        assert_eq!(
            point_id("48869419").point_id_options,
            Some(PointIdOptions::Num(48869419))
        );
        // Not canonical decimals: kept apart from the number they resemble.
        for id in ["007", "sku-42", "-1", "18446744073709551616"] {
            let Some(PointIdOptions::Uuid(u)) = point_id(id).point_id_options else {
                panic!("{id} should map to a UUID");
            };
            assert_eq!(u.len(), 36);
            assert_eq!(point_id(id).point_id_options, Some(PointIdOptions::Uuid(u)));
        }
        assert_ne!(point_id("a"), point_id("b"));
    }

    #[test]
    fn a_failed_connection_is_unavailable_and_the_servers_own_failure_internal() {
        use skye_core::error::{ErrorCode, HasErrorCode};
        let status = |code, m: &str| {
            error(QdrantError::ResponseError {
                status: tonic::Status::new(code, m),
            })
            .code()
        };
        let refused = "Failed to connect to http://127.0.0.1:1/: tonic::transport::Error(Transport, \
                       ConnectError(\"tcp connect error\"))";
        assert_eq!(
            status(tonic::Code::Internal, refused),
            ErrorCode::Unavailable
        );
        assert_eq!(
            status(tonic::Code::Internal, "h2 protocol error: stream closed"),
            ErrorCode::Unavailable
        );
        assert_eq!(
            status(tonic::Code::Unavailable, "down"),
            ErrorCode::Unavailable
        );
        assert_eq!(
            status(tonic::Code::DeadlineExceeded, "slow"),
            ErrorCode::Timeout
        );
        assert_eq!(
            status(tonic::Code::Internal, "segment corrupted"),
            ErrorCode::Internal
        );
        assert_eq!(
            status(tonic::Code::NotFound, "no such"),
            ErrorCode::NotFound
        );
    }

    #[test]
    fn indexing_thresholds_convert_between_points_and_kilobytes() {
        assert_eq!(threshold_kb(0, 384), 0, "off stays off");
        assert_eq!(threshold_kb(1, 3), 1, "at least 1 KB");
        assert_eq!(threshold_kb(20_000, 384), 30_000);
        assert_eq!(threshold_points(30_000, 384), 20_000);
        assert_eq!(threshold_points(0, 384), 0);
    }

    #[test]
    fn payload_values_and_their_text() {
        let list = to_value(&PayloadValue::List(vec![
            PayloadValue::Integer(1),
            PayloadValue::Keyword("x".into()),
        ]));
        assert_eq!(value_text(&list), r#"[1,"x"]"#);
        assert_eq!(value_text(&to_value(&PayloadValue::Bool(true))), "true");
        assert_eq!(value_text(&to_value(&PayloadValue::Float(2.5))), "2.5");
        assert_eq!(
            value_text(&to_value(&PayloadValue::Geo(12.5, 77.25))),
            "12.5,77.25"
        );
    }

    #[test]
    fn every_condition_translates() {
        let f = SearchFilter {
            must: vec![
                Condition::Match {
                    field: "brand".into(),
                    any: vec![PayloadValue::Keyword("acme corp".into())],
                },
                Condition::Match {
                    field: "size".into(),
                    any: vec![PayloadValue::Integer(3), PayloadValue::Integer(4)],
                },
                Condition::Exists {
                    field: "tags".into(),
                },
                Condition::Text {
                    field: "title".into(),
                    query: "red shoe".into(),
                },
                Condition::Range {
                    field: "price".into(),
                    gt: None,
                    gte: Some(1.0),
                    lt: Some(9.0),
                    lte: None,
                },
                Condition::GeoRadius {
                    field: "store".into(),
                    lat: 12.0,
                    lon: 77.0,
                    radius_m: 500.0,
                },
            ],
            must_not: vec![Condition::Match {
                field: "live".into(),
                any: vec![PayloadValue::Bool(false)],
            }],
        };
        let q = filter(Some(&f), &["c1".into(), "99".into()]).unwrap();
        assert_eq!(q.must.len(), 6);
        assert_eq!(
            q.must_not.len(),
            2,
            "the bool condition and the excluded ids"
        );
        let text = format!("{q:?}");
        // A keyword with a space stays an exact keyword match (not full-text).
        assert!(
            text.contains("Keywords(RepeatedStrings { strings: [\"acme corp\"] })"),
            "{text}"
        );
        assert!(
            text.contains("Integers(RepeatedIntegers { integers: [3, 4] })"),
            "{text}"
        );
        assert!(text.contains("IsEmpty"), "{text}");
        assert!(text.contains("Text(\"red shoe\")"), "{text}");
        assert!(
            text.contains("gte: Some(1.0)") && text.contains("lt: Some(9.0)"),
            "{text}"
        );
        assert!(text.contains("radius: 500.0"), "{text}");
        assert!(text.contains("Num(99)"), "{text}");
        assert!(filter(None, &[]).is_none());
    }
}

/// One Qdrant client per host, for the variants whose `vector-db-type` is QDRANT.
#[derive(Debug, Default)]
pub struct QdrantStores {
    clients: std::sync::Mutex<HashMap<String, std::sync::Arc<QdrantVectorStore>>>,
}

/// Port of Qdrant's gRPC API when a variant names none.
pub const DEFAULT_PORT: &str = "6334";

impl skye_core::vector_store::RemoteVectorStores for QdrantStores {
    fn for_variant(
        &self,
        variant: &skye_core::domain::Variant,
        write: bool,
    ) -> Result<std::sync::Arc<dyn VectorStore>, VectorStoreError> {
        use skye_core::domain::VectorDbType;
        if variant.vector_db_type != VectorDbType::Qdrant {
            return Err(VectorStoreError::InvalidArgument(format!(
                "variant '{}' uses {}, not QDRANT",
                variant.name, variant.vector_db_type
            )));
        }
        let c = &variant.vector_db_config;
        let host = if write && !c.write_host.is_empty() {
            &c.write_host
        } else {
            &c.read_host
        };
        let port = if c.port.is_empty() {
            DEFAULT_PORT
        } else {
            c.port.as_str()
        };
        let url = if host.starts_with("http://") || host.starts_with("https://") {
            format!("{host}:{port}")
        } else {
            format!("http://{host}:{port}")
        };
        // The variant's deadlines: search for reads, write_deadline for writes (ms).
        let ms = if write {
            c.http2config.write_deadline
        } else {
            c.http2config.deadline
        };
        let timeout = Duration::from_millis(if ms == 0 { 5_000 } else { ms });
        let key = format!("{url}|{}", timeout.as_millis());
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let store = std::sync::Arc::new(QdrantVectorStore::connect(&url, timeout)?);
        clients.insert(key, store.clone());
        Ok(store)
    }
}
