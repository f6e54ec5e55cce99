//! Filters and attributes on a variant whose vector DB holds no payloads (NGT, Eigenix): Skye
//! widens the search until the page is full, pages after filtering, falls back to field
//! defaults, and stops when the service has nothing more.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use skye_backends::embedded::{EmbeddedStorage, EmbeddedVectorStore};
use skye_core::domain::DistanceFunction;
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::storage::AggregatorStore;
use skye_core::vector_store::{CollectionSpec, VectorPoint, VectorStore};
use skye_engine::search::filters::{FilterOp, FilterSpec};
use skye_engine::search::payloadless::MAX_CANDIDATES;
use skye_engine::search::similar::{Limits, SimilarRequest, SimilarService};

use crate::support::PayloadBlind;

const POINTS: usize = 3000;

struct Fixture {
    _dir: tempfile::TempDir,
    service: SimilarService,
    bare: SimilarService,
    vectors: Arc<PayloadBlind>,
}

/// NGT variant `n`: point `i` scores `i`, so the best hits are the highest ids. Every 100th
/// point is `out_of_stock = false`, the rest `true`; every third has a brand; none has a
/// colour (its default is "grey").
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::support::registry_with(
        dir.path(),
        &[
            json!({"variant": "n", "vector_db_type": "NGT", "vector_db_config": {
            "read_host": "ngt.invalid", "port": "8080",
            "payload": {
                "out_of_stock": {"field_schema": "BOOLEAN", "default_value": "true"},
                "brand": {"field_schema": "KEYWORD"},
                "colour": {"field_schema": "KEYWORD", "default_value": "grey"},
            }}}),
        ],
    )
    .await;
    let snapshot = registry.snapshot();
    let n = snapshot.variant("e", "m", "n").unwrap();
    let name = n.collection(n.vector_db_read_version);
    let store = Arc::new(EmbeddedVectorStore::open(&dir.path().join("vectors")).unwrap());
    store
        .create_collection(CollectionSpec {
            collection: name.clone(),
            dimension: 2,
            distance: DistanceFunction::Dot,
            m: 8,
            ef_construct: 32,
            indexing_threshold: 0,
            payload_schema: BTreeMap::new(),
            on_disk: None,
        })
        .await
        .unwrap();
    let points = (0..POINTS)
        .map(|i| VectorPoint {
            id: i.to_string(),
            vector: vec![i as f32, 0.0],
            payload: BTreeMap::new(),
        })
        .collect();
    store.upsert(&name, points).await.unwrap();
    let storage = Arc::new(EmbeddedStorage::open(&dir.path().join("storage.redb")).unwrap());
    let rows = (0..POINTS)
        .map(|i| {
            let mut row =
                BTreeMap::from([("out_of_stock".to_string(), (i % 100 != 0).to_string())]);
            if i % 3 == 0 {
                row.insert("brand".into(), format!("b{}", i % 2));
            }
            (i.to_string(), row)
        })
        .collect();
    let table = snapshot.store_of("e").unwrap().aggregator_table.clone();
    storage.merge(&table, rows).await.unwrap();
    let vectors = Arc::new(PayloadBlind::new(store));
    let limits = Limits {
        max_limit: 100,
        cache_bytes: 0,
        max_concurrent: 4,
    };
    Fixture {
        _dir: dir,
        service: SimilarService::new(registry.clone(), vectors.clone(), limits)
            .with_aggregator(storage),
        bare: SimilarService::new(registry, vectors.clone(), limits),
        vectors,
    }
}

fn request(filters: Vec<FilterSpec>, limit: i64, offset: i64) -> SimilarRequest {
    SimilarRequest {
        entity: "e".into(),
        model: "m".into(),
        variant: "n".into(),
        limit,
        offset,
        embeddings: vec![vec![1.0, 0.0]],
        global_filters: filters,
        attributes: vec!["brand".into(), "colour".into()],
        ..Default::default()
    }
}

fn in_stock() -> FilterSpec {
    FilterSpec {
        field: "out_of_stock".into(),
        op: FilterOp::In,
        values: vec!["false".into()],
    }
}

fn ids(answer: &[skye_core::vector_store::ScoredPoint]) -> Vec<usize> {
    answer.iter().map(|h| h.id.parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_filter_widens_the_search_until_the_page_is_full() {
    let f = fixture().await;
    // 1 point in 100 is in stock: 10 of them need the best ~1000 neighbours, which takes rounds
    // of 40, 160, 640 and 2560.
    let answer = f
        .service
        .similar(request(vec![in_stock()], 10, 0), 0)
        .await
        .unwrap();
    let want: Vec<usize> = (0..10).map(|k| 2900 - 100 * k).collect();
    assert_eq!(ids(&answer.answers[0]), want);
    assert_eq!(f.vectors.searches.load(Ordering::Relaxed), 4, "rounds");
    // Attributes come from the aggregator row, or the field's default.
    let first = &answer.answers[0][0];
    assert_eq!(
        first.payload.get("colour").map(String::as_str),
        Some("grey")
    );
    assert_eq!(first.payload.get("brand").map(String::as_str), Some(""));
    let with_brand = answer.answers[0].iter().find(|h| h.id == "2700").unwrap();
    assert_eq!(
        with_brand.payload.get("brand").map(String::as_str),
        Some("b0")
    );

    // Pages are cut after filtering.
    let page = f
        .service
        .similar(request(vec![in_stock()], 3, 4), 0)
        .await
        .unwrap();
    assert_eq!(ids(&page.answers[0]), want[4..7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_stops_when_the_service_has_no_more_or_the_cap_is_reached() {
    let f = fixture().await;
    // No point is both in stock and brand b1 (in stock: multiples of 100, brand b1: odd
    // multiples of 3): every neighbour up to the cap is looked at, then a short (empty) page.
    let b1 = FilterSpec {
        field: "brand".into(),
        op: FilterOp::In,
        values: vec!["b1".into()],
    };
    let answer = f
        .service
        .similar(request(vec![in_stock(), b1], 5, 0), 0)
        .await
        .unwrap();
    assert!(answer.answers[0].is_empty());
    let rounds = f.vectors.searches.load(Ordering::Relaxed);
    assert!(
        (2..=6).contains(&rounds),
        "{rounds} rounds to reach {MAX_CANDIDATES}"
    );
    // A must_not on a field every hit has by default (colour = grey) excludes them all.
    let not_grey = FilterSpec {
        field: "colour".into(),
        op: FilterOp::Nin,
        values: vec!["grey".into()],
    };
    let none = f
        .service
        .similar(request(vec![not_grey], 5, 0), 0)
        .await
        .unwrap();
    assert!(none.answers[0].is_empty());
    // No filter, no attributes: one plain search, as the original.
    let before = f.vectors.searches.load(Ordering::Relaxed);
    let mut plain = request(Vec::new(), 5, 0);
    plain.attributes.clear();
    let answer = f.bare.similar(plain, 0).await.unwrap();
    assert_eq!(ids(&answer.answers[0]), [2999, 2998, 2997, 2996, 2995]);
    assert_eq!(f.vectors.searches.load(Ordering::Relaxed), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_aggregator_store_a_filter_is_refused_not_ignored() {
    let f = fixture().await;
    let err = f
        .bare
        .similar(request(vec![in_stock()], 5, 0), 0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("aggregator store"), "{err}");
}
