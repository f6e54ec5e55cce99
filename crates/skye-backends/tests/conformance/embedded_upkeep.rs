//! Upkeep only the embedded vector store does in the background: compaction of tombstones,
//! mapping its vectors, and the locality renumbering after a bulk build.

use std::time::Duration;

use skye_backends::embedded::EmbeddedVectorStore;
use skye_core::domain::DistanceFunction;
use skye_core::vector_store::{VectorRead, VectorStore};

use crate::vector_store::{embedded_target, point, query, spec};

/// Churn (items removed and re-added, as real-time flags do) leaves tombstones; the store
/// compacts them away in the background once they reach a quarter of the live points, and
/// searches stay exact throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_compacts_tombstones_left_by_churn() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    let churn = embedded_target().at("churn");
    store
        .create_collection(spec(&churn, DistanceFunction::Euclidean, 500))
        .await
        .unwrap();
    let p = |i: usize| point(&format!("p{i}"), [i as f32, (i % 7) as f32, 1.0], &[]);
    store
        .upsert(&churn, (0..4000).map(p).collect())
        .await
        .unwrap();
    // Remove 2000 items and re-add 500 of them: 2500 tombstones over 2500 live points.
    store
        .delete_points(&churn, (0..2000).map(|i| format!("p{i}")).collect())
        .await
        .unwrap();
    store
        .upsert(&churn, (0..500).map(p).collect())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = store.engine_info(&churn).unwrap();
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
        .search(&churn, vec![query([0.0, 0.0, 1.0], 3000)])
        .await
        .unwrap();
    let mut ids: Vec<usize> = hits[0].iter().map(|h| h.id[1..].parse().unwrap()).collect();
    ids.sort_unstable();
    let want: Vec<usize> = (0..500).chain(2000..4000).collect();
    assert_eq!(ids, want);
}

/// `on_disk: true` maps a collection's float vectors once it is checkpointed (after its index
/// build), and they come back mapped and searchable when the store reopens; `false` keeps them
/// on the heap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_maps_vectors_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mapped = embedded_target().at("mapped");
    let heap = embedded_target().at("heap");
    let p = |i: usize| point(&format!("p{i}"), [i as f32, (i % 7) as f32, 1.0], &[]);
    {
        let store = EmbeddedVectorStore::open(dir.path()).unwrap();
        for (c, on_disk) in [(&mapped, true), (&heap, false)] {
            let mut s = spec(c, DistanceFunction::Euclidean, 500);
            s.on_disk = Some(on_disk);
            store.create_collection(s).await.unwrap();
            store.upsert(c, (0..3000).map(p).collect()).await.unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while store.engine_memory(&mapped).unwrap().vectors_mapped == 0 {
            assert!(std::time::Instant::now() < deadline, "never mapped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while store.engine_info(&heap).unwrap().indexed_points < 3000 {
            assert!(std::time::Instant::now() < deadline, "never indexed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(store.engine_memory(&heap).unwrap().vectors_mapped, 0);
    }
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    let memory = store.engine_memory(&mapped).unwrap();
    assert_eq!(memory.vectors_mapped, 3000 * 3 * 4, "{memory:?}");
    assert_eq!(memory.vectors, 0);
    let hits = store
        .search(&mapped, vec![query([42.0, 0.0, 1.0], 3)])
        .await
        .unwrap();
    assert_eq!(hits[0][0].id, "p42");
}

/// A bulk load's new version reports a renumbering ahead from the moment its build starts
/// until the renumbering is done (it holds the write lock for seconds at a million points, so
/// the lifecycle keeps the old version serving until then), and only once fully linked; a
/// delta on the renumbered collection does not bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_reports_the_renumbering_ahead_of_a_bulk_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedVectorStore::open(dir.path()).unwrap();
    let bulk = embedded_target().at("bulk");
    store
        .create_collection(spec(&bulk, DistanceFunction::Euclidean, 0))
        .await
        .unwrap();
    let p = |i: usize| {
        let v = [(i * 7919 % 1000) as f32, (i % 97) as f32, (i % 13) as f32];
        point(&format!("p{i}"), v, &[])
    };
    const POINTS: usize = 60_000;
    for batch in (0..POINTS).collect::<Vec<_>>().chunks(10_000) {
        store
            .upsert(&bulk, batch.iter().copied().map(p).collect())
            .await
            .unwrap();
    }
    let info = store.collection_info(&bulk).await.unwrap();
    assert!(
        !info.reorganising,
        "nothing ahead while indexing is deferred: {info:?}"
    );
    store.set_indexing_threshold(&bulk, 1).await.unwrap();
    let (mut polls_ahead, deadline) = (0, std::time::Instant::now() + Duration::from_secs(120));
    loop {
        let info = store.collection_info(&bulk).await.unwrap();
        if !info.reorganising {
            assert_eq!(info.indexed_vectors_count, POINTS as u64, "{info:?}");
            break;
        }
        polls_ahead += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "never renumbered: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(polls_ahead > 0, "the build was reported done before it ran");
    // It did run: its mark is written after the checkpoint that follows it.
    let mark = dir.path().join("conf/m/bulk/1/locality");
    while !mark.exists() {
        assert!(std::time::Instant::now() < deadline, "never marked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), POINTS.to_string());
    store
        .upsert(&bulk, (POINTS..POINTS + 100).map(p).collect())
        .await
        .unwrap();
    assert!(!store.collection_info(&bulk).await.unwrap().reorganising);
    let hits = store
        .search(&bulk, vec![query([0.0, 0.0, 0.0], 1)])
        .await
        .unwrap();
    assert_eq!(hits[0][0].id, "p0", "searches still find the nearest point");
}
