//! The [`VectorStore`] contract (see `skye_core::vector_store`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skye_backends::embedded::EmbeddedVectorStore;
use skye_core::domain::DistanceFunction;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionSpec, Condition, PayloadValue, SearchFilter, SearchQuery, VectorPoint, VectorRead,
    VectorStore,
};

fn spec(name: &str, distance: DistanceFunction, threshold: usize) -> CollectionSpec {
    CollectionSpec {
        name: name.into(),
        dimension: 3,
        distance,
        m: 16,
        ef_construct: 64,
        indexing_threshold: threshold,
        payload_schema: BTreeMap::new(),
    }
}

fn point(id: &str, vector: [f32; 3], payload: &[(&str, PayloadValue)]) -> VectorPoint {
    VectorPoint {
        id: id.into(),
        vector: vector.to_vec(),
        payload: payload
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn query(vector: [f32; 3], limit: usize) -> SearchQuery {
    SearchQuery {
        vector: vector.to_vec(),
        limit,
        ..Default::default()
    }
}

fn ids(hits: &[skye_core::vector_store::ScoredPoint]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

/// Every case, on collections whose names start with `prefix`. `recovers`: the store can
/// restore a snapshot itself (Qdrant does it over REST only).
pub async fn run_suite(store: Arc<dyn VectorStore>, prefix: &str, recovers: bool) {
    lifecycle(&*store, prefix).await;
    metrics_order_and_score(&*store, prefix).await;
    filters_exclusion_offset_and_payload(&*store, prefix).await;
    deletes_payload_updates_and_bad_input(&*store, prefix).await;
    indexing_threshold(&*store, prefix).await;
    snapshots(&*store, prefix, recovers).await;
}

/// Every id in `collection`, sorted.
async fn all_ids(store: &dyn VectorStore, collection: &str) -> Vec<String> {
    let mut q = query([1.0, 1.0, 1.0], 10);
    q.exact = true;
    let hits = store.search(collection, vec![q]).await.unwrap().remove(0);
    let mut ids: Vec<String> = hits.into_iter().map(|h| h.id).collect();
    ids.sort();
    ids
}

async fn snapshots(store: &dyn VectorStore, p: &str, recovers: bool) {
    let name = format!("{p}_snap");
    store
        .create_collection(spec(&name, DistanceFunction::Dot, 0))
        .await
        .unwrap();
    let brand = |b: &str| [("brand", PayloadValue::Keyword(b.into()))];
    store
        .upsert(
            &name,
            vec![
                point("1", [1.0, 0.0, 0.0], &brand("a")),
                point("2", [0.0, 1.0, 0.0], &brand("b")),
            ],
        )
        .await
        .unwrap();
    let snap = store.create_snapshot(&name).await.unwrap();
    assert!(snap.size_bytes > 0 && !snap.name.is_empty(), "{snap:?}");
    let listed = store.list_snapshots(&name).await.unwrap();
    assert_eq!(
        listed.iter().filter(|s| s.name == snap.name).count(),
        1,
        "{listed:?}"
    );
    // Changes after the snapshot…
    store.delete_points(&name, vec!["1".into()]).await.unwrap();
    store
        .upsert(&name, vec![point("3", [0.0, 0.0, 1.0], &brand("c"))])
        .await
        .unwrap();
    assert_eq!(all_ids(store, &name).await, ["2", "3"]);
    if recovers {
        // …are undone by recovering it, payloads and all.
        store.recover_snapshot(&name, &snap.name).await.unwrap();
        assert_eq!(all_ids(store, &name).await, ["1", "2"]);
        let mut q = query([1.0, 0.0, 0.0], 1);
        q.filter = Some(SearchFilter {
            must: vec![Condition::Match {
                field: "brand".into(),
                any: vec![PayloadValue::Keyword("a".into())],
            }],
            must_not: vec![],
        });
        let hits = store.search(&name, vec![q]).await.unwrap().remove(0);
        assert_eq!(ids(&hits), ["1"]);
        // Writes go on after a recovery.
        store
            .upsert(&name, vec![point("4", [1.0, 1.0, 0.0], &[])])
            .await
            .unwrap();
        assert_eq!(all_ids(store, &name).await, ["1", "2", "4"]);
    } else {
        let e = store.recover_snapshot(&name, &snap.name).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    }
    for bad in ["no-such-snapshot", "../x", ".", ""] {
        let e = store.delete_snapshot(&name, bad).await.unwrap_err();
        assert!(
            matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidArgument),
            "{bad:?}: {e}"
        );
    }
    store.delete_snapshot(&name, &snap.name).await.unwrap();
    assert!(
        !store
            .list_snapshots(&name)
            .await
            .unwrap()
            .iter()
            .any(|s| s.name == snap.name)
    );
    let e = store.delete_snapshot(&name, &snap.name).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
    assert_eq!(
        store
            .create_snapshot(&format!("{p}_no_such"))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
}

async fn lifecycle(store: &dyn VectorStore, p: &str) {
    let name = format!("{p}_life_1");
    store
        .create_collection(spec(&name, DistanceFunction::Cosine, 0))
        .await
        .unwrap();
    let dup = store
        .create_collection(spec(&name, DistanceFunction::Cosine, 0))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), ErrorCode::AlreadyExists);
    assert!(store.list_collections().await.unwrap().contains(&name));
    store.delete_collection(&name).await.unwrap();
    store.delete_collection(&name).await.unwrap();
    let missing = store
        .search(&name, vec![query([1.0, 0.0, 0.0], 1)])
        .await
        .unwrap_err();
    assert_eq!(missing.code(), ErrorCode::NotFound);
    assert_eq!(
        store.upsert(&name, vec![]).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        store.collection_info(&name).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

async fn metrics_order_and_score(store: &dyn VectorStore, p: &str) {
    let pts = vec![
        point("a", [1.0, 0.0, 0.0], &[]),
        point("b", [0.0, 2.0, 0.0], &[]),
        point("c", [0.9, 0.1, 0.0], &[]),
    ];
    for (distance, expected) in [
        (
            DistanceFunction::Cosine,
            vec![("a", 1.0f32), ("c", 0.993_883_7), ("b", 0.0)],
        ),
        (
            DistanceFunction::Dot,
            vec![("a", 1.0), ("c", 0.9), ("b", 0.0)],
        ),
        (
            DistanceFunction::Euclidean,
            vec![("a", 0.0), ("c", 0.141_421_36), ("b", 2.236_068)],
        ),
    ] {
        let name = format!("{p}_metric_{distance}").to_lowercase();
        store
            .create_collection(spec(&name, distance, 0))
            .await
            .unwrap();
        store.upsert(&name, pts.clone()).await.unwrap();
        let hits = store
            .search(
                &name,
                vec![query([1.0, 0.0, 0.0], 3), query([0.0, 1.0, 0.0], 1)],
            )
            .await
            .unwrap();
        assert_eq!(hits.len(), 2, "one result list per query");
        let got: Vec<(&str, f32)> = hits[0].iter().map(|h| (h.id.as_str(), h.score)).collect();
        for ((id, score), (eid, escore)) in got.iter().zip(&expected) {
            assert_eq!(id, eid, "{distance}: {got:?}");
            assert!(
                (score - escore).abs() < 1e-4,
                "{distance}: {id} scored {score}, expected {escore}"
            );
        }
        assert_eq!(ids(&hits[1]), ["b"]);
    }
}

async fn filters_exclusion_offset_and_payload(store: &dyn VectorStore, p: &str) {
    let name = format!("{p}_filters");
    store
        .create_collection(spec(&name, DistanceFunction::Euclidean, 0))
        .await
        .unwrap();
    let kw = |s: &str| PayloadValue::Keyword(s.into());
    let pts: Vec<VectorPoint> = (0..20)
        .map(|i| {
            point(
                &format!("p{i}"),
                [i as f32, 0.0, 0.0],
                &[
                    ("n", PayloadValue::Integer(i)),
                    ("price", PayloadValue::Float(i as f64 * 1.5)),
                    ("even", PayloadValue::Bool(i % 2 == 0)),
                    ("brand", kw(if i < 10 { "acme" } else { "zed" })),
                    ("title", kw(&format!("Red cotton shirt {i}"))),
                    (
                        "tags",
                        PayloadValue::List(vec![kw("a"), kw(&format!("t{}", i % 3))]),
                    ),
                    ("loc", PayloadValue::Geo(12.97 + i as f64 * 0.01, 77.59)),
                ],
            )
        })
        .collect();
    store.upsert(&name, pts).await.unwrap();
    let run = |filter: SearchFilter| {
        let q = SearchQuery {
            vector: vec![0.0, 0.0, 0.0],
            limit: 50,
            filter: Some(filter),
            ..Default::default()
        };
        let name = name.clone();
        async move { store.search(&name, vec![q]).await.unwrap().remove(0) }
    };
    let must = |c: Condition| SearchFilter {
        must: vec![c],
        must_not: vec![],
    };
    let hits = run(must(Condition::Match {
        field: "brand".into(),
        any: vec![kw("zed")],
    }))
    .await;
    assert_eq!(hits.len(), 10);
    assert_eq!(hits[0].id, "p10");
    let hits = run(SearchFilter {
        must: vec![],
        must_not: vec![Condition::Match {
            field: "even".into(),
            any: vec![PayloadValue::Bool(true)],
        }],
    })
    .await;
    assert_eq!(hits.len(), 10);
    assert_eq!(
        run(must(Condition::Match {
            field: "tags".into(),
            any: vec![kw("t1")]
        }))
        .await
        .len(),
        7
    );
    assert_eq!(
        run(must(Condition::Exists {
            field: "nope".into()
        }))
        .await
        .len(),
        0
    );
    assert_eq!(
        run(must(Condition::Text {
            field: "title".into(),
            query: "COTTON shirt 1".into()
        }))
        .await
        .len(),
        11
    );
    let range = Condition::Range {
        field: "n".into(),
        gt: Some(3.0),
        gte: None,
        lt: None,
        lte: Some(6.0),
    };
    assert_eq!(ids(&run(must(range)).await), ["p4", "p5", "p6"]);
    let price = Condition::Range {
        field: "price".into(),
        gt: None,
        gte: Some(3.0),
        lt: Some(6.0),
        lte: None,
    };
    assert_eq!(ids(&run(must(price)).await), ["p2", "p3"]);
    let geo = Condition::GeoRadius {
        field: "loc".into(),
        lat: 12.97,
        lon: 77.59,
        radius_m: 2_500.0,
    };
    assert_eq!(run(must(geo)).await.len(), 3);

    let q = SearchQuery {
        vector: vec![0.0, 0.0, 0.0],
        limit: 2,
        offset: 1,
        exclude: vec!["p2".into()],
        with_payload: vec![
            "n".into(),
            "even".into(),
            "tags".into(),
            "price".into(),
            "missing".into(),
        ],
        ..Default::default()
    };
    let hits = store.search(&name, vec![q]).await.unwrap().remove(0);
    assert_eq!(
        ids(&hits),
        ["p1", "p3"],
        "offset skips p0, exclude drops p2"
    );
    let payload = &hits[0].payload;
    assert_eq!(payload.get("n").map(String::as_str), Some("1"));
    assert_eq!(payload.get("even").map(String::as_str), Some("false"));
    assert_eq!(
        payload.get("tags").map(String::as_str),
        Some("[\"a\",\"t1\"]")
    );
    assert_eq!(payload.get("price").map(String::as_str), Some("1.5"));
    assert!(!payload.contains_key("missing"));
}

async fn deletes_payload_updates_and_bad_input(store: &dyn VectorStore, p: &str) {
    let name = format!("{p}_writes");
    store
        .create_collection(spec(&name, DistanceFunction::Dot, 0))
        .await
        .unwrap();
    store
        .upsert(
            &name,
            vec![
                point(
                    "x",
                    [1.0, 0.0, 0.0],
                    &[("s", PayloadValue::Keyword("old".into()))],
                ),
                point("y", [0.5, 0.0, 0.0], &[]),
            ],
        )
        .await
        .unwrap();
    store
        .delete_points(&name, vec!["y".into(), "ghost".into()])
        .await
        .unwrap();
    let update = BTreeMap::from([("s".to_string(), PayloadValue::Keyword("new".into()))]);
    store
        .set_payload(
            &name,
            vec![("x".into(), update.clone()), ("ghost".into(), update)],
        )
        .await
        .unwrap();
    let q = SearchQuery {
        vector: vec![1.0, 0.0, 0.0],
        limit: 5,
        with_payload: vec!["s".into()],
        ..Default::default()
    };
    let hits = store.search(&name, vec![q]).await.unwrap().remove(0);
    assert_eq!(ids(&hits), ["x"]);
    assert_eq!(hits[0].payload["s"], "new");
    assert_eq!(store.collection_info(&name).await.unwrap().points_count, 1);
    let wrong_dim = store
        .upsert(
            &name,
            vec![VectorPoint {
                id: "z".into(),
                vector: vec![1.0],
                payload: BTreeMap::new(),
            }],
        )
        .await;
    assert_eq!(wrong_dim.unwrap_err().code(), ErrorCode::InvalidArgument);
    let nan = store
        .search(&name, vec![query([f32::NAN, 0.0, 0.0], 1)])
        .await;
    assert_eq!(nan.unwrap_err().code(), ErrorCode::InvalidArgument);
}

async fn indexing_threshold(store: &dyn VectorStore, p: &str) {
    let name = format!("{p}_indexing");
    store
        .create_collection(spec(&name, DistanceFunction::Cosine, 0))
        .await
        .unwrap();
    let pts: Vec<VectorPoint> = (0..3000)
        .map(|i| {
            point(
                &format!("i{i}"),
                [(i % 17) as f32 + 0.5, (i % 13) as f32, (i % 7) as f32],
                &[],
            )
        })
        .collect();
    store.upsert(&name, pts).await.unwrap();
    let info = store.collection_info(&name).await.unwrap();
    assert_eq!(
        (
            info.points_count,
            info.indexed_vectors_count,
            info.indexing_threshold
        ),
        (3000, 0, 0),
        "indexing off during bulk load"
    );
    store.set_indexing_threshold(&name, 100).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = store.collection_info(&name).await.unwrap();
        if info.indexed_vectors_count == 3000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "indexing did not finish: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hits = store
        .search(&name, vec![query([3.5, 3.0, 3.0], 5)])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(hits.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_vector_store_conforms_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(EmbeddedVectorStore::open(dir.path()).unwrap());
        run_suite(store.clone(), "conf", true).await;
    }
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    let names = skye_core::vector_store::VectorRead::list_collections(&store)
        .await
        .unwrap();
    assert!(
        names.contains(&"conf_filters".to_string()) && !names.contains(&"conf_life_1".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"conf_snap".to_string()) && !names.iter().any(|n| n.starts_with('.')),
        "snapshots and replaced collections are not collections: {names:?}"
    );
    let mut q = query([1.0, 1.0, 1.0], 10);
    q.exact = true;
    let recovered = skye_core::vector_store::VectorRead::search(&store, "conf_snap", vec![q])
        .await
        .unwrap();
    assert_eq!(
        recovered[0].len(),
        3,
        "the recovered collection survives a reopen"
    );
    let info = skye_core::vector_store::VectorRead::collection_info(&store, "conf_indexing")
        .await
        .unwrap();
    assert_eq!(info.points_count, 3000);
}

/// Against a live Qdrant (no server can be installed on the CI machine: run it elsewhere with
/// `docker run -p 6334:6334 qdrant/qdrant` and `SKYE_TEST_QDRANT_URL=http://localhost:6334`).
#[cfg(feature = "qdrant")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_vector_store_conforms() {
    use skye_backends::qdrant::QdrantVectorStore;
    // Not required by SKYE_REQUIRE_SERVICES: CI has no Qdrant (INFRA.md §4).
    let Ok(url) = std::env::var("SKYE_TEST_QDRANT_URL") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED qdrant_vector_store_conforms: SKYE_TEST_QDRANT_URL is not set (no Qdrant \
             server installs here; see the test's doc comment)"
        );
        return;
    };
    let store = QdrantVectorStore::connect(&url, std::time::Duration::from_secs(10)).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    run_suite(Arc::new(store), &format!("conf{nanos}"), false).await;
}

/// Churn (items removed and re-added, as real-time flags do) leaves tombstones; the store
/// compacts them away in the background once they reach a quarter of the live points, and
/// searches stay exact throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_compacts_tombstones_left_by_churn() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    store
        .create_collection(spec("churn", DistanceFunction::Euclidean, 500))
        .await
        .unwrap();
    let p = |i: usize| point(&format!("p{i}"), [i as f32, (i % 7) as f32, 1.0], &[]);
    store
        .upsert("churn", (0..4000).map(p).collect())
        .await
        .unwrap();
    // Remove 2000 items and re-add 500 of them: 2500 tombstones over 2500 live points.
    store
        .delete_points("churn", (0..2000).map(|i| format!("p{i}")).collect())
        .await
        .unwrap();
    store
        .upsert("churn", (0..500).map(p).collect())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = store.engine_info("churn").unwrap();
        if info.tombstones == 0 && info.indexed_points == info.points {
            assert_eq!(info.points, 2500);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never compacted: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = store
        .search("churn", vec![query([0.0, 0.0, 1.0], 3000)])
        .await
        .unwrap();
    let mut ids: Vec<usize> = hits[0].iter().map(|h| h.id[1..].parse().unwrap()).collect();
    ids.sort_unstable();
    let want: Vec<usize> = (0..500).chain(2000..4000).collect();
    assert_eq!(ids, want);
}
