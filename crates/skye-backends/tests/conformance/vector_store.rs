//! The [`VectorStore`] contract (see `skye_core::vector_store`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skye_backends::embedded::EmbeddedVectorStore;
use skye_core::domain::{DistanceFunction, FieldSchema, VectorDbType};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::vector_store::{
    CollectionRef, CollectionSpec, Condition, PayloadValue, SearchFilter, SearchQuery, VariantKey,
    VectorPoint, VectorRead, VectorStore,
};

/// Where a run of the suite puts its collections: version 1 of variant `<case>` of model
/// `model` (unique per run: remote engines outlive a test).
#[derive(Debug, Clone)]
pub struct Target {
    pub model: String,
    pub db: VectorDbType,
}

impl Target {
    fn key(&self, case: &str) -> VariantKey {
        VariantKey::new("conf", &self.model, case, self.db)
    }

    pub(crate) fn at(&self, case: &str) -> CollectionRef {
        self.key(case).at(1)
    }
}

pub(crate) fn spec(
    c: &CollectionRef,
    distance: DistanceFunction,
    threshold: usize,
) -> CollectionSpec {
    CollectionSpec {
        collection: c.clone(),
        dimension: 3,
        distance,
        m: 16,
        ef_construct: 64,
        indexing_threshold: threshold,
        payload_schema: BTreeMap::new(),
        on_disk: None,
    }
}

pub(crate) fn point(id: &str, vector: [f32; 3], payload: &[(&str, PayloadValue)]) -> VectorPoint {
    VectorPoint {
        id: id.into(),
        vector: vector.to_vec(),
        payload: payload
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

pub(crate) fn query(vector: [f32; 3], limit: usize) -> SearchQuery {
    SearchQuery {
        vector: vector.to_vec(),
        limit,
        ..Default::default()
    }
}

fn ids(hits: &[skye_core::vector_store::ScoredPoint]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

/// Every case, on collections of `target`. `recovers`: the store can restore a snapshot itself
/// (Qdrant does it over REST only).
pub async fn run_suite(store: Arc<dyn VectorStore>, target: &Target, recovers: bool) {
    lifecycle(&*store, target).await;
    metrics_order_and_score(&*store, target).await;
    filters_exclusion_offset_and_payload(&*store, target).await;
    deletes_payload_updates_and_bad_input(&*store, target).await;
    indexing_threshold(&*store, target).await;
    snapshots(&*store, target, recovers).await;
    versions_and_epochs(&*store, target).await;
}

/// Every id in `collection`, sorted.
async fn all_ids(store: &dyn VectorStore, collection: &CollectionRef) -> Vec<String> {
    let mut q = query([1.0, 1.0, 1.0], 10);
    q.exact = true;
    let hits = store.search(collection, vec![q]).await.unwrap().remove(0);
    let mut ids: Vec<String> = hits.into_iter().map(|h| h.id).collect();
    ids.sort();
    ids
}

async fn snapshots(store: &dyn VectorStore, p: &Target, recovers: bool) {
    let c = p.at("snap");
    store
        .create_collection(spec(&c, DistanceFunction::Dot, 0))
        .await
        .unwrap();
    let brand = |b: &str| [("brand", PayloadValue::Keyword(b.into()))];
    store
        .upsert(
            &c,
            vec![
                point("1", [1.0, 0.0, 0.0], &brand("a")),
                point("2", [0.0, 1.0, 0.0], &brand("b")),
            ],
        )
        .await
        .unwrap();
    let snap = store.create_snapshot(&c).await.unwrap();
    assert!(snap.size_bytes > 0 && !snap.name.is_empty(), "{snap:?}");
    let listed = store.list_snapshots(&c).await.unwrap();
    assert_eq!(
        listed.iter().filter(|s| s.name == snap.name).count(),
        1,
        "{listed:?}"
    );
    // Changes after the snapshot…
    store.delete_points(&c, vec!["1".into()]).await.unwrap();
    store
        .upsert(&c, vec![point("3", [0.0, 0.0, 1.0], &brand("c"))])
        .await
        .unwrap();
    assert_eq!(all_ids(store, &c).await, ["2", "3"]);
    if recovers {
        // …are undone by recovering it, payloads and all.
        store.recover_snapshot(&c, &snap.name).await.unwrap();
        assert_eq!(all_ids(store, &c).await, ["1", "2"]);
        let mut q = query([1.0, 0.0, 0.0], 1);
        q.filter = Some(SearchFilter {
            must: vec![Condition::Match {
                field: "brand".into(),
                any: vec![PayloadValue::Keyword("a".into())],
            }],
            must_not: vec![],
        });
        let hits = store.search(&c, vec![q]).await.unwrap().remove(0);
        assert_eq!(ids(&hits), ["1"]);
        // Writes go on after a recovery.
        store
            .upsert(&c, vec![point("4", [1.0, 1.0, 0.0], &[])])
            .await
            .unwrap();
        assert_eq!(all_ids(store, &c).await, ["1", "2", "4"]);
    } else {
        let e = store.recover_snapshot(&c, &snap.name).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    }
    for bad in ["no-such-snapshot", "../x", ".", ""] {
        let e = store.delete_snapshot(&c, bad).await.unwrap_err();
        assert!(
            matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidArgument),
            "{bad:?}: {e}"
        );
    }
    store.delete_snapshot(&c, &snap.name).await.unwrap();
    assert!(
        !store
            .list_snapshots(&c)
            .await
            .unwrap()
            .iter()
            .any(|s| s.name == snap.name)
    );
    let e = store.delete_snapshot(&c, &snap.name).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
    assert_eq!(
        store
            .create_snapshot(&p.at("no-such"))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
}

async fn lifecycle(store: &dyn VectorStore, p: &Target) {
    let c = p.at("life-1");
    store
        .create_collection(spec(&c, DistanceFunction::Cosine, 0))
        .await
        .unwrap();
    let dup = store
        .create_collection(spec(&c, DistanceFunction::Cosine, 0))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), ErrorCode::AlreadyExists);
    assert_eq!(store.versions(&c.variant).await.unwrap(), [1]);
    store.delete_collection(&c).await.unwrap();
    store.delete_collection(&c).await.unwrap();
    let missing = store
        .search(&c, vec![query([1.0, 0.0, 0.0], 1)])
        .await
        .unwrap_err();
    assert_eq!(missing.code(), ErrorCode::NotFound);
    assert_eq!(
        store.upsert(&c, vec![]).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        store.collection_info(&c).await.unwrap_err().code(),
        ErrorCode::NotFound
    );
}

async fn metrics_order_and_score(store: &dyn VectorStore, p: &Target) {
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
        let c = p.at(&format!("metric-{distance}").to_lowercase());
        store
            .create_collection(spec(&c, distance, 0))
            .await
            .unwrap();
        store.upsert(&c, pts.clone()).await.unwrap();
        let hits = store
            .search(
                &c,
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
        // The variant's search parameters: a score threshold drops worse hits (a lower bound on
        // similarities, an upper bound on distances); a beam width, an exact search and
        // indexed_only on a collection this small change nothing.
        let threshold = match distance {
            DistanceFunction::Euclidean => 0.2,
            _ => 0.95,
        };
        let mut q = query([1.0, 0.0, 0.0], 3);
        q.score_threshold = Some(threshold);
        let kept = store.search(&c, vec![q]).await.unwrap().remove(0);
        let expected_kept: Vec<&str> = expected
            .iter()
            .filter(|(_, s)| match distance {
                DistanceFunction::Euclidean => *s <= threshold,
                _ => *s >= threshold,
            })
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids(&kept), expected_kept, "{distance} above {threshold}");
        for (ef, exact, indexed_only) in [(Some(1), false, false), (Some(500), true, true)] {
            let mut q = query([1.0, 0.0, 0.0], 3);
            (q.ef, q.exact, q.indexed_only) = (ef, exact, indexed_only);
            let hits = store.search(&c, vec![q]).await.unwrap().remove(0);
            assert_eq!(ids(&hits), ["a", "c", "b"], "{distance} ef {ef:?}");
        }
    }
}

async fn filters_exclusion_offset_and_payload(store: &dyn VectorStore, p: &Target) {
    let c = p.at("filters");
    // The variant's payload schema (remote engines index each field by it).
    let mut with_schema = spec(&c, DistanceFunction::Euclidean, 0);
    with_schema.payload_schema = [
        ("n", FieldSchema::Integer),
        ("price", FieldSchema::Float),
        ("even", FieldSchema::Boolean),
        ("brand", FieldSchema::Keyword),
        ("title", FieldSchema::Text),
        ("tags", FieldSchema::Keyword),
        ("loc", FieldSchema::Geo),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    store.create_collection(with_schema).await.unwrap();
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
    store.upsert(&c, pts).await.unwrap();
    let run = |filter: SearchFilter| {
        let q = SearchQuery {
            vector: vec![0.0, 0.0, 0.0],
            limit: 50,
            filter: Some(filter),
            ..Default::default()
        };
        let c = c.clone();
        async move { store.search(&c, vec![q]).await.unwrap().remove(0) }
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
    // Whole words, any case: "1" is not a word of "… shirt 12".
    assert_eq!(
        ids(&run(must(Condition::Text {
            field: "title".into(),
            query: "COTTON shirt 1".into()
        }))
        .await),
        ["p1"]
    );
    assert_eq!(
        run(must(Condition::Text {
            field: "title".into(),
            query: "red SHIRT".into()
        }))
        .await
        .len(),
        20
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
    let hits = store.search(&c, vec![q]).await.unwrap().remove(0);
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

async fn deletes_payload_updates_and_bad_input(store: &dyn VectorStore, p: &Target) {
    let c = p.at("writes");
    store
        .create_collection(spec(&c, DistanceFunction::Dot, 0))
        .await
        .unwrap();
    store
        .upsert(
            &c,
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
        .delete_points(&c, vec!["y".into(), "ghost".into()])
        .await
        .unwrap();
    let update = BTreeMap::from([("s".to_string(), PayloadValue::Keyword("new".into()))]);
    store
        .set_payload(
            &c,
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
    let hits = store.search(&c, vec![q]).await.unwrap().remove(0);
    assert_eq!(ids(&hits), ["x"]);
    assert_eq!(hits[0].payload["s"], "new");
    assert_eq!(store.collection_info(&c).await.unwrap().points_count, 1);
    let wrong_dim = store
        .upsert(
            &c,
            vec![VectorPoint {
                id: "z".into(),
                vector: vec![1.0],
                payload: BTreeMap::new(),
            }],
        )
        .await;
    assert_eq!(wrong_dim.unwrap_err().code(), ErrorCode::InvalidArgument);
    let nan = store.search(&c, vec![query([f32::NAN, 0.0, 0.0], 1)]).await;
    assert_eq!(nan.unwrap_err().code(), ErrorCode::InvalidArgument);
}

async fn indexing_threshold(store: &dyn VectorStore, p: &Target) {
    let c = p.at("indexing");
    store
        .create_collection(spec(&c, DistanceFunction::Cosine, 0))
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
    store.upsert(&c, pts).await.unwrap();
    let info = store.collection_info(&c).await.unwrap();
    assert_eq!(
        (
            info.points_count,
            info.indexed_vectors_count,
            info.indexing_threshold
        ),
        (3000, 0, 0),
        "indexing off during bulk load"
    );
    store.set_indexing_threshold(&c, 100).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = store.collection_info(&c).await.unwrap();
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
        .search(&c, vec![query([3.5, 3.0, 3.0], 5)])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(hits.len(), 5);
}

/// `versions` lists a variant's collections (and only its own); the content epoch, where a
/// store has one, changes with every write.
async fn versions_and_epochs(store: &dyn VectorStore, p: &Target) {
    let key = p.key("versions");
    for v in [3, 1, 2] {
        store
            .create_collection(spec(&key.at(v), DistanceFunction::Dot, 0))
            .await
            .unwrap();
    }
    store.delete_collection(&key.at(2)).await.unwrap();
    assert_eq!(store.versions(&key).await.unwrap(), [1, 3]);
    assert_eq!(
        store.versions(&p.key("versions-none")).await.unwrap(),
        Vec::<i64>::new()
    );
    let c = key.at(1);
    if let Some(before) = store.content_epoch(&c) {
        store
            .upsert(&c, vec![point("e", [1.0, 0.0, 0.0], &[])])
            .await
            .unwrap();
        let after = store.content_epoch(&c).unwrap();
        assert_ne!(before, after, "an upsert changes the epoch");
        store.delete_points(&c, vec!["e".into()]).await.unwrap();
        assert_ne!(store.content_epoch(&c).unwrap(), after, "so does a delete");
    }
    for v in [1, 3] {
        store.delete_collection(&key.at(v)).await.unwrap();
    }
}

/// Distinct collections never share storage, even where the original's joined names
/// (`<variant>_<model>_<version>`) are equal: `a_b` of `c` and `a` of `b_c`. Only for stores
/// that do not join names (registration keeps such variants off the others).
async fn joined_names_stay_apart(store: &dyn VectorStore, db: VectorDbType) {
    let one = VariantKey::new("conf", "c", "a_b", db).at(1);
    let two = VariantKey::new("conf", "b_c", "a", db).at(1);
    assert_eq!(one.original_name(), two.original_name());
    for (c, id) in [(&one, "of-c"), (&two, "of-b_c")] {
        store
            .create_collection(spec(c, DistanceFunction::Dot, 0))
            .await
            .unwrap();
        store
            .upsert(c, vec![point(id, [1.0, 0.0, 0.0], &[])])
            .await
            .unwrap();
    }
    assert_eq!(all_ids(store, &one).await, ["of-c"]);
    assert_eq!(all_ids(store, &two).await, ["of-b_c"]);
    store.delete_collection(&two).await.unwrap();
    assert_eq!(
        all_ids(store, &one).await,
        ["of-c"],
        "a drop is one collection's"
    );
}

pub(crate) fn embedded_target() -> Target {
    Target {
        model: "m".into(),
        db: VectorDbType::Embedded,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_vector_store_conforms_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let t = embedded_target();
    {
        let store = Arc::new(EmbeddedVectorStore::open(dir.path()).unwrap());
        run_suite(store.clone(), &t, true).await;
        joined_names_stay_apart(&*store, VectorDbType::Embedded).await;
    }
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    let versions = |case: &'static str| {
        let key = t.key(case);
        let store = &store;
        async move { store.versions(&key).await.unwrap() }
    };
    assert_eq!(versions("filters").await, [1]);
    assert_eq!(
        versions("life").await,
        Vec::<i64>::new(),
        "dropped stays dropped"
    );
    assert_eq!(versions("snap").await, [1]);
    let mut q = query([1.0, 1.0, 1.0], 10);
    q.exact = true;
    let recovered = store.search(&t.at("snap"), vec![q]).await.unwrap();
    assert_eq!(
        recovered[0].len(),
        3,
        "the recovered collection survives a reopen"
    );
    let info = store.collection_info(&t.at("indexing")).await.unwrap();
    assert_eq!(info.points_count, 3000);
    let one = CollectionRef::embedded("conf", "c", "a_b", 1);
    assert_eq!(all_ids(&store, &one).await, ["of-c"]);
}

/// A data directory of an older release keeps collections flat as `<variant>_<model>_<version>`:
/// each one exactly one registered collection claims moves into place with its points; one
/// that two claim stays where it is, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_adopts_collections_of_the_flat_layout() {
    let dir = tempfile::tempdir().unwrap();
    let old = CollectionRef::embedded("old", "old", "old", 7);
    {
        let store = EmbeddedVectorStore::open(dir.path()).unwrap();
        store
            .create_collection(spec(&old, DistanceFunction::Dot, 0))
            .await
            .unwrap();
        store
            .upsert(&old, vec![point("kept", [1.0, 0.0, 0.0], &[])])
            .await
            .unwrap();
    }
    // What an older release left: the same files under flat names.
    let nested = dir.path().join("old/old/old/7");
    for flat in ["all_intent_1", "a_b_c_1"] {
        copy_dir(&nested, &dir.path().join(flat));
    }
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    let all = CollectionRef::embedded("catalog", "intent", "all", 1);
    let (x, y) = (
        CollectionRef::embedded("catalog", "c", "a_b", 1),
        CollectionRef::embedded("catalog", "b_c", "a", 1),
    );
    assert_eq!(
        store
            .search(&all, vec![query([1.0, 0.0, 0.0], 1)])
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound,
        "not adopted before it is claimed"
    );
    let ambiguous = store
        .adopt_legacy(&[all.clone(), x.clone(), y.clone()])
        .unwrap();
    assert_eq!(ambiguous, ["a_b_c_1"]);
    assert_eq!(all_ids(&store, &all).await, ["kept"]);
    assert!(dir.path().join("a_b_c_1").exists(), "left for an operator");
    assert!(!dir.path().join("all_intent_1").exists());
    for c in [&x, &y] {
        assert_eq!(
            store.collection_info(c).await.unwrap_err().code(),
            ErrorCode::NotFound
        );
    }
    drop(store);
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    assert_eq!(all_ids(&store, &all).await, ["kept"], "adopted for good");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Against a live Qdrant: `scripts/services.sh` starts the server of `../shared/qdrant/`
/// (elsewhere: `docker run -p 6334:6334 qdrant/qdrant` and
/// `SKYE_TEST_QDRANT_URL=http://localhost:6334`).
#[cfg(feature = "qdrant")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_vector_store_conforms() {
    use skye_backends::qdrant::QdrantVectorStore;
    let Some(url) = crate::qdrant("qdrant_vector_store_conforms") else {
        return;
    };
    let store = QdrantVectorStore::connect(&url, std::time::Duration::from_secs(10)).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let target = Target {
        model: format!("conf{nanos}"),
        db: VectorDbType::Qdrant,
    };
    run_suite(Arc::new(store), &target, false).await;
}
