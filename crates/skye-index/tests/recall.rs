//! HNSW recall against exact search, with fixed seeds and explicit thresholds.

use skye_index::{
    Collection, CollectionConfig, Condition, Filter, Metric, Point, SearchRequest, Value,
};

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn gauss(&mut self) -> f32 {
        // Sum of uniforms: close enough to normal for clustered test data.
        (0..6).map(|_| self.unit()).sum::<f32>() - 3.0
    }
}

const N: usize = 12_000;
const DIM: usize = 24;
const QUERIES: usize = 150;
const K: usize = 10;

fn centers(rng: &mut Rng) -> Vec<Vec<f32>> {
    (0..40)
        .map(|_| (0..DIM).map(|_| rng.gauss() * 3.0).collect())
        .collect()
}

/// Points (and queries) around shared cluster centres.
fn clustered(rng: &mut Rng, centers: &[Vec<f32>], n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let c = &centers[(rng.next() % centers.len() as u64) as usize];
            c.iter().map(|x| x + rng.gauss()).collect()
        })
        .collect()
}

fn build(metric: Metric, rng: &mut Rng) -> (Collection, Vec<Vec<f32>>) {
    let mut config = CollectionConfig::new(DIM, metric);
    config.hnsw.m = 16;
    config.hnsw.ef_construct = 100;
    config.ef = 64;
    // Exercise the graph paths (filtered ones included) rather than the exact-scan shortcut.
    config.exact_rows_per_beam = 0;
    let collection = Collection::new(config);
    let centers = centers(rng);
    let vectors = clustered(rng, &centers, N);
    let points = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            id: format!("item-{i}"),
            vector: v.clone(),
            payload: vec![
                ("bucket10".to_string(), Value::Integer((i % 10) as i64)),
                ("bucket100".to_string(), Value::Integer((i % 100) as i64)),
            ],
        })
        .collect();
    collection.upsert(points).unwrap();
    assert_eq!(collection.index_pending(), N);
    let info = collection.info();
    assert_eq!((info.points, info.indexed_points), (N, N));
    (collection, clustered(rng, &centers, QUERIES))
}

fn recall(collection: &Collection, queries: &[Vec<f32>], filter: Option<&Filter>) -> f64 {
    let mut hit = 0;
    let mut total = 0;
    for q in queries {
        let approx = collection
            .search(&SearchRequest {
                vector: q,
                limit: K,
                filter,
                ..Default::default()
            })
            .unwrap();
        let exact = collection
            .search(&SearchRequest {
                vector: q,
                limit: K,
                filter,
                exact: true,
                ..Default::default()
            })
            .unwrap();
        total += exact.len();
        hit += approx
            .iter()
            .filter(|h| exact.iter().any(|e| e.id == h.id))
            .count();
        assert_eq!(approx.len(), exact.len(), "as many hits as exist");
    }
    hit as f64 / total as f64
}

fn in_filter(field: &str, value: i64) -> Filter {
    Filter {
        must: vec![Condition::Match {
            field: field.into(),
            any: vec![Value::Integer(value)],
        }],
        must_not: vec![],
    }
}

#[test]
fn recall_at_10_holds_unfiltered_and_under_10_and_1_percent_filters() {
    for (metric, seed) in [
        (Metric::Euclidean, 7),
        (Metric::Cosine, 11),
        (Metric::Dot, 13),
    ] {
        let mut rng = Rng(seed);
        let (collection, queries) = build(metric, &mut rng);
        let unfiltered = recall(&collection, &queries, None);
        let ten = recall(&collection, &queries, Some(&in_filter("bucket10", 3)));
        let one = recall(&collection, &queries, Some(&in_filter("bucket100", 7)));
        println!("{metric:?}: recall@10 unfiltered {unfiltered:.4}, 10% {ten:.4}, 1% {one:.4}");
        assert!(
            unfiltered >= 0.95,
            "{metric:?} unfiltered recall {unfiltered}"
        );
        assert!(ten >= 0.95, "{metric:?} 10% filter recall {ten}");
        assert!(one >= 0.95, "{metric:?} 1% filter recall {one}");
    }
}

#[test]
fn filtered_results_all_match_and_tombstones_never_return() {
    let mut rng = Rng(99);
    let (collection, queries) = build(Metric::Euclidean, &mut rng);
    let filter = in_filter("bucket10", 4);
    for q in queries.iter().take(20) {
        let hits = collection
            .search(&SearchRequest {
                vector: q,
                limit: K,
                filter: Some(&filter),
                with_payload: &["bucket10".to_string()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(hits.len(), K);
        assert!(
            hits.iter()
                .all(|h| h.payload == vec![("bucket10".to_string(), Value::Integer(4))])
        );
    }
    let q = &queries[0];
    let before = collection
        .search(&SearchRequest {
            vector: q,
            limit: K,
            ..Default::default()
        })
        .unwrap();
    let gone: Vec<String> = before.iter().take(5).map(|h| h.id.clone()).collect();
    assert_eq!(collection.delete(&gone), 5);
    let after = collection
        .search(&SearchRequest {
            vector: q,
            limit: K,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(after.len(), K);
    assert!(after.iter().all(|h| !gone.contains(&h.id)));
    assert_eq!(collection.info().points, N - 5);
    assert_eq!(collection.info().indexed_points, N - 5);

    // Compaction reclaims the tombstones and rebuilds the graph; exact answers do not change
    // and the rebuilt graph still finds them.
    let exact = |c: &Collection| {
        c.search(&SearchRequest {
            vector: q,
            limit: K,
            exact: true,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect::<Vec<_>>()
    };
    let before_compaction = exact(&collection);
    assert_eq!(collection.compact(), 5);
    let info = collection.info();
    assert_eq!(
        (info.points, info.indexed_points, info.tombstones),
        (N - 5, N - 5, 0)
    );
    assert_eq!(exact(&collection), before_compaction);
    let approx = collection
        .search(&SearchRequest {
            vector: q,
            limit: K,
            ..Default::default()
        })
        .unwrap();
    let found = approx
        .iter()
        .filter(|h| before_compaction.contains(&h.id))
        .count();
    assert!(found >= 8, "rebuilt graph finds {found}/10");
    assert!(approx.iter().all(|h| !gone.contains(&h.id)));
}

/// A search whose caller has gone (its stop flag set) ends with `Cancelled`, on the graph and
/// on the exact scan; one that is let run answers.
#[test]
fn a_stopped_search_ends_cancelled() {
    use std::sync::atomic::AtomicBool;
    let mut rng = Rng(7);
    let (collection, queries) = build(Metric::Euclidean, &mut rng);
    let (running, stopped) = (AtomicBool::new(false), AtomicBool::new(true));
    for exact in [false, true] {
        let req = |stop| SearchRequest {
            vector: &queries[0],
            limit: K,
            exact,
            stop: Some(stop),
            ..Default::default()
        };
        assert_eq!(collection.search(&req(&running)).unwrap().len(), K);
        let e = collection.search(&req(&stopped)).unwrap_err();
        assert!(matches!(e, skye_index::IndexError::Cancelled), "{e}");
    }
}

/// A vector with the cluster it was drawn around.
type Labeled = Vec<(usize, Vec<f32>)>;

/// Points labelled with their cluster, and queries drawn around the same centres, each with the
/// cluster it came from.
fn labeled(rng: &mut Rng) -> (Collection, Labeled, Labeled) {
    let mut config = CollectionConfig::new(DIM, Metric::Euclidean);
    config.hnsw.m = 16;
    config.hnsw.ef_construct = 100;
    config.exact_rows_per_beam = 0;
    let collection = Collection::new(config);
    let centers = centers(rng);
    let mut draw = |n: usize| -> Labeled {
        (0..n)
            .map(|_| {
                let k = (rng.next() % centers.len() as u64) as usize;
                (k, centers[k].iter().map(|x| x + rng.gauss()).collect())
            })
            .collect()
    };
    let points = draw(N);
    let queries = draw(QUERIES);
    collection
        .upsert(
            points
                .iter()
                .enumerate()
                .map(|(i, (k, v))| Point {
                    id: i.to_string(),
                    vector: v.clone(),
                    payload: vec![("cluster".to_string(), Value::Integer(*k as i64))],
                })
                .collect(),
        )
        .unwrap();
    collection.index_pending();
    (collection, points, queries)
}

/// Recall against a brute force computed here, when the filter keeps points away from the
/// query: its own cluster excluded, one far cluster, ten far clusters. The graph walk starts
/// among points the filter rejects; the planner must still find the admitted neighbours.
#[test]
fn recall_holds_when_the_filter_keeps_points_far_from_the_query() {
    let mut rng = Rng(23);
    let (collection, points, queries) = labeled(&mut rng);
    let sq = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
    let cluster = |values: Vec<i64>| Condition::Match {
        field: "cluster".into(),
        any: values.into_iter().map(Value::Integer).collect(),
    };
    type Case = (
        &'static str,
        Box<dyn Fn(usize) -> (Filter, Box<dyn Fn(usize) -> bool>)>,
    );
    let cases: Vec<Case> = vec![
        (
            "not the query's cluster (97 %)",
            Box::new(move |k| {
                let f = Filter {
                    must: vec![],
                    must_not: vec![cluster(vec![k as i64])],
                };
                (f, Box::new(move |c| c != k))
            }),
        ),
        (
            "one far cluster (2.5 %)",
            Box::new(move |k| {
                let far = (k + 20) % 40;
                let f = Filter {
                    must: vec![cluster(vec![far as i64])],
                    must_not: vec![],
                };
                (f, Box::new(move |c| c == far))
            }),
        ),
        (
            "ten far clusters (25 %)",
            Box::new(move |k| {
                let far: Vec<usize> = (1..=10).map(|j| (k + j * 3) % 40).collect();
                let keep = far.clone();
                let f = Filter {
                    must: vec![cluster(far.iter().map(|c| *c as i64).collect())],
                    must_not: vec![],
                };
                (f, Box::new(move |c| keep.contains(&c)))
            }),
        ),
    ];
    for (name, make) in cases {
        let (mut hit, mut total) = (0usize, 0usize);
        let mut paths = Vec::new();
        for (k, q) in &queries {
            let (filter, keeps) = make(*k);
            let mut truth: Vec<(f32, usize)> = points
                .iter()
                .enumerate()
                .filter(|(_, (c, _))| keeps(*c))
                .map(|(i, (_, v))| (sq(q, v), i))
                .collect();
            truth.sort_by(|a, b| a.0.total_cmp(&b.0));
            let truth: Vec<String> = truth.iter().take(K).map(|(_, i)| i.to_string()).collect();
            let (hits, plan) = collection
                .search_explained(&SearchRequest {
                    vector: q,
                    limit: K,
                    filter: Some(&filter),
                    ..Default::default()
                })
                .unwrap();
            paths.push(plan.path.label());
            total += truth.len();
            hit += hits.iter().filter(|h| truth.contains(&h.id)).count();
        }
        let recall = hit as f64 / total as f64;
        paths.sort_unstable();
        paths.dedup();
        println!("{name}: recall@10 {recall:.4} via {paths:?}");
        assert!(recall >= 0.95, "{name}: recall {recall} via {paths:?}");
    }
}

/// Churn: generations of 10 % of the points deleted and re-added (a daily delta job), each
/// followed by a compaction that repairs the graph instead of rebuilding it. After ten
/// generations (every point has a new slot on average once) the repaired graph answers as
/// well as a graph rebuilt from scratch over the same points, for every metric, and every
/// live point is still reachable (found by its own vector).
#[test]
fn repaired_graph_after_churn_matches_a_rebuild() {
    for (metric, seed) in [
        (Metric::Euclidean, 11),
        (Metric::Cosine, 12),
        (Metric::Dot, 13),
    ] {
        let mut rng = Rng(seed);
        let (collection, queries) = build(metric, &mut rng);
        let before = recall(&collection, &queries, None);
        for generation in 0..10 {
            let ids: Vec<String> = (0..N / 10)
                .map(|_| format!("item-{}", rng.next() % N as u64))
                .collect();
            let readd: Vec<Point> = ids.iter().filter_map(|id| collection.get(id)).collect();
            collection.delete(&ids);
            collection.upsert(readd).unwrap();
            collection.index_pending();
            let reclaimed = collection.compact();
            let info = collection.info();
            assert!(reclaimed > 0, "{metric:?} generation {generation}");
            assert_eq!(
                (info.points, info.indexed_points, info.tombstones),
                (N, N, 0),
                "{metric:?} generation {generation}"
            );
        }
        let repaired = recall(&collection, &queries, None);
        let unreachable = (0..N)
            .filter(|i| {
                let p = collection.get(&format!("item-{i}")).unwrap();
                let hits = collection
                    .search(&SearchRequest {
                        vector: &p.vector,
                        limit: 1,
                        ..Default::default()
                    })
                    .unwrap();
                hits.first().is_none_or(|h| h.id != p.id)
            })
            .count();
        collection.rebuild();
        let rebuilt = recall(&collection, &queries, None);
        assert!(
            repaired >= rebuilt - 0.02 && repaired >= before - 0.02,
            "{metric:?}: recall {before:.3} before churn, {repaired:.3} repaired, {rebuilt:.3} rebuilt"
        );
        // Dot products rank a point below longer neighbours, so its own vector need not find it.
        if metric != Metric::Dot {
            assert!(
                unreachable <= N / 200,
                "{metric:?}: {unreachable} of {N} points not found by their own vector"
            );
        }
    }
}

/// Searches go on while a compaction repairs the graph under them: none fails, none returns a
/// deleted point, and they keep finding the exact neighbours.
#[test]
fn searches_during_a_compaction_stay_correct() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut rng = Rng(21);
    let (collection, queries) = build(Metric::Euclidean, &mut rng);
    let gone: Vec<String> = (0..N).step_by(4).map(|i| format!("item-{i}")).collect();
    collection.delete(&gone);
    let exact: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            let req = SearchRequest {
                vector: q,
                limit: K,
                exact: true,
                ..Default::default()
            };
            collection
                .search(&req)
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect()
        })
        .collect();
    let done = AtomicBool::new(false);
    let (searches, found) = std::thread::scope(|s| {
        let searcher = s.spawn(|| {
            let (mut searches, mut found) = (0usize, 0usize);
            while !done.load(Ordering::Acquire) || searches < queries.len() {
                let i = searches % queries.len();
                let req = SearchRequest {
                    vector: &queries[i],
                    limit: K,
                    ..Default::default()
                };
                let hits = collection.search(&req).unwrap();
                assert!(
                    hits.iter().all(|h| !gone.contains(&h.id)),
                    "a deleted point came back"
                );
                found += hits.iter().filter(|h| exact[i].contains(&h.id)).count();
                searches += 1;
            }
            (searches, found)
        });
        assert_eq!(collection.compact(), gone.len());
        done.store(true, Ordering::Release);
        searcher.join().unwrap()
    });
    let recall = found as f64 / (searches * K) as f64;
    assert!(recall >= 0.9, "recall {recall:.3} over {searches} searches");
}

#[test]
fn reordering_for_locality_keeps_every_point_and_answer() {
    check_reordering(Metric::Cosine);
}

/// EUCLIDEAN walks on the codes with each row's `|x̂|²`: the norms move with the codes.
#[test]
fn reordering_for_locality_keeps_every_euclidean_answer() {
    check_reordering(Metric::Euclidean);
}

fn check_reordering(metric: Metric) {
    let mut rng = Rng(17);
    let (collection, queries) = build(metric, &mut rng);
    let answers = |c: &Collection| {
        let filter = in_filter("bucket10", 4);
        queries
            .iter()
            .take(40)
            .flat_map(|q| {
                [None, Some(&filter)].map(|filter| {
                    c.search(&SearchRequest {
                        vector: q,
                        limit: K,
                        filter,
                        ..Default::default()
                    })
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.id, h.score))
                    .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
    };
    // Without tombstones the graph is only renumbered: the same walk, the same answers.
    let before = answers(&collection);
    let item = collection.get("item-123").unwrap();
    assert_eq!(collection.reorder(), 0);
    let info = collection.info();
    assert_eq!(
        (info.points, info.indexed_points, info.tombstones),
        (N, N, 0)
    );
    assert_eq!(answers(&collection), before);
    let again = collection.get("item-123").unwrap();
    assert_eq!((again.vector, again.payload), (item.vector, item.payload));

    // With tombstones it repairs the graph first, as a compaction does, and drops them.
    let gone: Vec<String> = (0..N).step_by(9).map(|i| format!("item-{i}")).collect();
    collection.delete(&gone);
    assert_eq!(collection.reorder(), gone.len());
    let info = collection.info();
    assert_eq!(
        (info.points, info.indexed_points, info.tombstones),
        (N - gone.len(), N - gone.len(), 0)
    );
    for hits in answers(&collection) {
        assert!(hits.iter().all(|(id, _)| !gone.contains(id)));
    }
    let unfiltered = recall(&collection, &queries, None);
    let one = recall(&collection, &queries, Some(&in_filter("bucket100", 7)));
    assert!(unfiltered >= 0.95, "recall after reordering {unfiltered}");
    assert!(one >= 0.95, "1% filter recall after reordering {one}");

    // Points written afterwards are linked into the renumbered graph as usual.
    let extra: Vec<Point> = (0..500)
        .map(|i| Point {
            id: format!("extra-{i}"),
            vector: queries[i % queries.len()]
                .iter()
                .map(|x| x + 0.01)
                .collect(),
            payload: vec![],
        })
        .collect();
    collection.upsert(extra).unwrap();
    assert_eq!(collection.index_pending(), 500);
    let hit = collection
        .search(&SearchRequest {
            vector: &queries[3].iter().map(|x| x + 0.01).collect::<Vec<_>>(),
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert!(hit[0].id.starts_with("extra-"), "{:?}", hit[0]);
}
