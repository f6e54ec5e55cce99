//! The distributed cache layer: shared between service instances, never a reason to fail.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use skye_core::cache::{CacheError, DistributedCache};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, ScoredPoint, SearchQuery, VariantKey, VectorRead,
    VectorStoreError,
};
use skye_engine::search::similar::{Limits, SimilarRequest, SimilarService};

/// Answers each query with one hit named after its first coordinate; counts searches.
#[derive(Debug, Default)]
struct Counting {
    searches: AtomicUsize,
}

#[async_trait]
impl VectorRead for Counting {
    async fn search(
        &self,
        _: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        self.searches.fetch_add(queries.len(), Ordering::SeqCst);
        Ok(queries
            .iter()
            .map(|q| {
                vec![ScoredPoint {
                    id: format!("hit-{}", q.vector[0]),
                    score: 0.5,
                    payload: [("brand".to_string(), "acme".to_string())].into(),
                }]
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

/// A map standing in for Redis behind the trait, which can be told to fail.
#[derive(Debug, Default)]
struct MapCache {
    map: Mutex<HashMap<String, Vec<u8>>>,
    failing: AtomicBool,
}

#[async_trait]
impl DistributedCache for MapCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(CacheError("connection refused".into()));
        }
        let map = self.map.lock().unwrap();
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }
    async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        _: Duration,
    ) -> Result<(), CacheError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(CacheError("connection refused".into()));
        }
        self.map.lock().unwrap().extend(entries);
        Ok(())
    }
}

/// Variant `v` with distributed caching on (60 s), a counting vector store and a map cache; the
/// service uses `cache_bytes` of in-process cache.
async fn fixture(
    dir: &std::path::Path,
    cache_bytes: u64,
) -> (Arc<Counting>, Arc<MapCache>, SimilarService) {
    let registry = crate::support::registry_with(
        dir,
        &[json!({"variant": "v", "distributed_caching_enabled": true,
            "distributed_cache_ttl_seconds": 60})],
    )
    .await;
    let vectors = Arc::new(Counting::default());
    let cache = Arc::new(MapCache::default());
    let service = SimilarService::new(
        registry,
        vectors.clone(),
        Limits {
            max_limit: 10,
            cache_bytes,
            max_concurrent: 4,
        },
    )
    .with_distributed_cache(cache.clone());
    (vectors, cache, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_is_served_from_the_distributed_cache_and_failures_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    // In-process caching is off for `v`: every call sees only the distributed layer, as a
    // second instance would.
    let (vectors, cache, service) = fixture(dir.path(), 1 << 20).await;
    let request = |x: f64| SimilarRequest {
        entity: "e".into(),
        model: "m".into(),
        variant: "v".into(),
        limit: 1,
        embeddings: vec![vec![x, 0.0], vec![]],
        ..Default::default()
    };
    let first = service.similar(request(1.0), 0).await.unwrap();
    assert_eq!(first.cache_misses, 1);
    assert_eq!(vectors.searches.load(Ordering::SeqCst), 1);
    // The write-back is asynchronous.
    for _ in 0..100 {
        if !cache.map.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let keys: Vec<String> = cache.map.lock().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("sc:e:m:v:"), "{keys:?}");

    let second = service.similar(request(1.0), 0).await.unwrap();
    assert_eq!(
        second.answers, first.answers,
        "same answer, payload included"
    );
    assert_eq!(second.cache_hits, 1);
    assert_eq!(
        vectors.searches.load(Ordering::SeqCst),
        1,
        "no search: a remote hit"
    );

    cache.failing.store(true, Ordering::SeqCst);
    let third = service.similar(request(1.0), 0).await.unwrap();
    assert_eq!(
        third.answers, first.answers,
        "a broken cache only costs a search"
    );
    assert_eq!(vectors.searches.load(Ordering::SeqCst), 2);
}

/// The key of a mode-A query as the spec writes it (serving §4.2), computed here independently of
/// the engine: FNV-1a 64 of the float32 LE bytes, `e` for no filters and no attributes.
fn original_key(vector: &[f32], attributes: &[&str]) -> String {
    let fnv = |bytes: &[u8]| {
        let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        format!("{h:016x}")
    };
    let q: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let ah = match attributes.concat() {
        a if a.is_empty() => "e".to_string(),
        a => fnv(a.as_bytes()),
    };
    format!("sc:e:m:v:{}:e:{ah}:V2", fnv(&q))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_key_format_shares_entries_with_the_original_pods() {
    use prost::Message;
    use skye_core::settings::CacheKeyFormat;
    use skye_proto::{Candidate, CandidateResponse, Meta};

    let dir = tempfile::tempdir().unwrap();
    let (vectors, cache, service) = fixture(dir.path(), 0).await;
    let service = service.with_distributed_format(CacheKeyFormat::Original);
    let request = |x: f64, limit: i64, offset: i64| SimilarRequest {
        entity: "e".into(),
        model: "m".into(),
        variant: "v".into(),
        limit,
        offset,
        embeddings: vec![vec![x, 0.0]],
        ..Default::default()
    };
    // An entry an original pod wrote: 4 candidates for the query (2, 0).
    let go_value = CandidateResponse {
        candidates: (0..4)
            .map(|i| Candidate {
                id: format!("go-{i}"),
                meta: Some(Meta {
                    score: 0.9 - f64::from(i) / 10.0,
                    attributes_map: Default::default(),
                }),
            })
            .collect(),
    };
    cache
        .map
        .lock()
        .unwrap()
        .insert(original_key(&[2.0, 0.0], &[]), go_value.encode_to_vec());
    let answer = service.similar(request(2.0, 3, 0), 0).await.unwrap();
    let ids: Vec<&str> = answer.answers[0].iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["go-0", "go-1", "go-2"], "served and cut to limit");
    assert_eq!(vectors.searches.load(Ordering::SeqCst), 0);
    // limit 5 still takes 4 (limit − 1); limit 6 treats them as a partial answer and searches.
    service.similar(request(2.0, 5, 0), 0).await.unwrap();
    assert_eq!(vectors.searches.load(Ordering::SeqCst), 0);
    service.similar(request(2.0, 6, 0), 0).await.unwrap();
    assert_eq!(vectors.searches.load(Ordering::SeqCst), 1);
    // A second page never uses the cache: the original's keys have no offset.
    service.similar(request(2.0, 3, 3), 0).await.unwrap();
    assert_eq!(vectors.searches.load(Ordering::SeqCst), 2);

    // What Skye writes back, an original pod can read: the key of the spec, a CandidateResponse.
    let answer = service.similar(request(3.0, 1, 0), 0).await.unwrap();
    let key = original_key(&[3.0, 0.0], &[]);
    let mut written = None;
    for _ in 0..100 {
        written = cache.map.lock().unwrap().get(&key).cloned();
        if written.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let written = CandidateResponse::decode(written.expect("written back").as_slice()).unwrap();
    assert_eq!(written.candidates.len(), 1);
    assert_eq!(written.candidates[0].id, answer.answers[0][0].id);
    assert_eq!(
        written.candidates[0].meta.as_ref().unwrap().attributes_map["brand"],
        "acme"
    );
}

/// An embedding store that counts the ids it is asked for.
#[derive(Debug)]
struct CountingStore {
    inner: skye_backends::embedded::EmbeddedStorage,
    asked: Mutex<Vec<String>>,
}

#[async_trait]
impl skye_core::storage::EmbeddingStore for CountingStore {
    async fn put(
        &self,
        generation: skye_core::storage::Generation<'_>,
        rows: Vec<skye_core::storage::EmbeddingRow>,
        ttl: Option<Duration>,
    ) -> Result<(), skye_core::storage::StorageError> {
        self.inner.put(generation, rows, ttl).await
    }
    async fn get(
        &self,
        generation: skye_core::storage::Generation<'_>,
        ids: &[String],
    ) -> Result<Vec<Option<skye_core::storage::EmbeddingRow>>, skye_core::storage::StorageError>
    {
        self.asked.lock().unwrap().extend(ids.iter().cloned());
        skye_core::storage::EmbeddingStore::get(&self.inner, generation, ids).await
    }
    async fn drop_generation(
        &self,
        generation: skye_core::storage::Generation<'_>,
    ) -> Result<(), skye_core::storage::StorageError> {
        self.inner.drop_generation(generation).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_rpcs_cache_per_candidate_in_both_layers_and_both_formats() {
    use prost::Message;
    use skye_core::settings::CacheKeyFormat;
    use skye_core::storage::{EmbeddingRow, EmbeddingStore, Generation};
    use skye_engine::search::embeddings::EmbeddingService;

    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(
        dir.path(),
        &[
            json!({"variant": "v", "embedding_retrieval_in_memory_enabled": true,
            "embedding_retrieval_distributed_enabled": true,
            "dot_product_distributed_enabled": true}),
        ],
    )
    .await;
    let snapshot = registry.snapshot();
    let version = snapshot
        .variant("e", "m", "v")
        .unwrap()
        .embedding_store_read_version;
    let table = snapshot.store_of("e").unwrap().embeddings_table.clone();
    let store = Arc::new(CountingStore {
        inner: skye_backends::embedded::EmbeddedStorage::open(&dir.path().join("s.redb")).unwrap(),
        asked: Mutex::new(Vec::new()),
    });
    let rows = [("a", [1.0, 2.0]), ("b", [3.0, 4.0])]
        .map(|(id, v)| EmbeddingRow {
            id: id.into(),
            embedding: v.to_vec(),
            search_embedding: vec![v[1], v[0]],
            ..Default::default()
        })
        .to_vec();
    let generation = Generation {
        table: &table,
        model: "m",
        version,
    };
    store.put(generation, rows, None).await.unwrap();
    let remote = Arc::new(MapCache::default());
    let service = |format| {
        EmbeddingService::new(registry.clone(), store.clone(), 1 << 20)
            .with_distributed_cache(remote.clone(), format)
    };
    let asked = || std::mem::take(&mut *store.asked.lock().unwrap());
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let wait_for = |key: String| {
        let remote = remote.clone();
        async move {
            for _ in 0..200 {
                if let Some(v) = remote.map.lock().unwrap().get(&key) {
                    return v.clone();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{key} never written back");
        }
    };

    let first = service(CacheKeyFormat::Skye);
    let answer = first
        .embeddings("e", "m", "v", &ids(&["a", "b", "a", "zz"]))
        .await
        .unwrap();
    assert_eq!(answer[2].embedding, [1.0, 2.0]);
    assert_eq!(answer[1].search_embedding, [4.0, 3.0]);
    assert!(answer[3].embedding.is_empty() && answer[3].id == "zz");
    assert_eq!(asked(), ["a", "b", "zz"], "one read per distinct id");
    first
        .embeddings("e", "m", "v", &ids(&["b", "zz"]))
        .await
        .unwrap();
    assert!(
        asked().is_empty(),
        "in-process hits, the missing id included"
    );

    // A second instance: Redis answers (keys carry the read version).
    let value = wait_for(format!("e:e:m:{version}:a:V3")).await;
    assert_eq!(
        skye_proto::CandidateEmbedding::decode(value.as_slice())
            .unwrap()
            .search_embedding,
        [2.0, 1.0]
    );
    wait_for(format!("e:e:m:{version}:zz:V3")).await;
    let second = service(CacheKeyFormat::Skye);
    let again = second
        .embeddings("e", "m", "v", &ids(&["a", "b", "a", "zz"]))
        .await
        .unwrap();
    assert_eq!(again, answer);
    assert!(asked().is_empty(), "all from Redis");

    // Dot products: only non-empty vectors are cached (no in-process layer for this variant).
    let scores = second
        .dot_products("e", "m", "v", &ids(&["a", "zz"]), &[1.0, 1.0])
        .await
        .unwrap();
    assert_eq!(
        scores,
        [("a".to_string(), 3.0)],
        "zz has no vector: no score"
    );
    assert_eq!(asked(), ["a", "zz"]);
    let raw = wait_for(format!("dp:e:m:{version}:a:V3")).await;
    assert_eq!(raw, [1.0f32, 2.0].map(f32::to_le_bytes).concat());
    second
        .dot_products("e", "m", "v", &ids(&["a", "zz"]), &[1.0, 1.0])
        .await
        .unwrap();
    assert_eq!(
        asked(),
        ["zz"],
        "a from Redis; the empty one was not cached"
    );

    // The original's keys: no version in `e:`, the version in `dp:`.
    let original = service(CacheKeyFormat::Original);
    original
        .embeddings("e", "m", "v", &ids(&["b"]))
        .await
        .unwrap();
    wait_for("e:e:m:b:V2".to_string()).await;
    original
        .dot_products("e", "m", "v", &ids(&["b"]), &[1.0, 0.0])
        .await
        .unwrap();
    wait_for(format!("dp:e:m:{version}:b:V2")).await;
}

/// A collection whose writes this process cannot see (a remote engine): its cached answers,
/// in both layers, are keyed by the epoch the consumers publish in the distributed cache, so a
/// real-time change reaches them within the memo period instead of the TTL.
#[tokio::test(start_paused = true)]
async fn answers_on_remote_collections_follow_the_epochs_published_by_writers() {
    use skye_engine::search::freshness::{EPOCH_MEMO, SharedEpochs};

    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(
        dir.path(),
        &[json!({"variant": "v", "in_memory_caching_enabled": true,
            "in_memory_cache_ttl_seconds": 600, "distributed_caching_enabled": true,
            "distributed_cache_ttl_seconds": 600})],
    )
    .await;
    let collection = {
        let snapshot = registry.snapshot();
        let v = snapshot.variant("e", "m", "v").unwrap();
        v.collection(v.vector_db_read_version)
    };
    let vectors = Arc::new(Counting::default());
    let cache = Arc::new(MapCache::default());
    let limits = Limits {
        max_limit: 10,
        cache_bytes: 1 << 20,
        max_concurrent: 4,
    };
    let service = SimilarService::new(registry, vectors.clone(), limits)
        .with_distributed_cache(cache.clone());
    let request = || SimilarRequest {
        entity: "e".into(),
        model: "m".into(),
        variant: "v".into(),
        limit: 1,
        embeddings: vec![vec![1.0, 0.0]],
        ..Default::default()
    };
    let searches = || vectors.searches.load(Ordering::SeqCst);
    service.similar(request(), 0).await.unwrap();
    service.similar(request(), 0).await.unwrap();
    assert_eq!(searches(), 1, "cached");
    // The consumers write the collection (a flag) and publish its new epoch.
    SharedEpochs::new(cache.clone()).publish(&collection).await;
    tokio::time::advance(EPOCH_MEMO + Duration::from_millis(10)).await;
    service.similar(request(), 0).await.unwrap();
    assert_eq!(
        searches(),
        2,
        "the answer cached before the write is not served"
    );
    service.similar(request(), 0).await.unwrap();
    assert_eq!(searches(), 2, "the new answer is cached again");
}
