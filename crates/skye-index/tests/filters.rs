//! Filtered search through the payload indexes: logically equal filters give identical
//! answers, the planner's answers equal a brute force over the matching points on random data,
//! and the indexes follow every write (payload updates, overwrites, deletes, compaction,
//! a snapshot round trip).

use proptest::prelude::*;
use skye_index::{
    Collection, CollectionConfig, Condition, Filter, Metric, Point, SearchPath, SearchRequest,
    Value, default_ef,
};

fn must(c: Vec<Condition>) -> Filter {
    Filter {
        must: c,
        must_not: vec![],
    }
}

fn int_in(field: &str, values: impl IntoIterator<Item = i64>) -> Condition {
    Condition::Match {
        field: field.into(),
        any: values.into_iter().map(Value::Integer).collect(),
    }
}

fn range(field: &str, gte: f64, lte: f64) -> Condition {
    Condition::Range {
        field: field.into(),
        gt: None,
        gte: Some(gte),
        lt: None,
        lte: Some(lte),
    }
}

/// `n` points on a line (point i at x = i), price = i % 50, brand from three, some tags.
fn collection(n: usize, graph: bool) -> Collection {
    let mut config = CollectionConfig::new(2, Metric::Euclidean);
    if graph {
        config.exact_below = 0;
        config.exact_rows_per_beam = 0;
    }
    let c = Collection::new(config);
    let points = (0..n)
        .map(|i| Point {
            id: format!("p{i}"),
            vector: vec![i as f32, (i % 7) as f32],
            payload: vec![
                ("price".into(), Value::Integer((i % 50) as i64)),
                (
                    "brand".into(),
                    Value::Keyword(["acme", "zeta", "orbit"][i % 3].into()),
                ),
                (
                    "tags".into(),
                    Value::List(vec![
                        Value::Keyword(format!("t{}", i % 4)),
                        Value::Keyword("all".into()),
                    ]),
                ),
            ],
        })
        .collect();
    c.upsert(points).unwrap();
    c.index_pending();
    c
}

fn ids(c: &Collection, q: &[f32], filter: &Filter, exact: bool) -> Vec<String> {
    c.search(&SearchRequest {
        vector: q,
        limit: 20,
        filter: Some(filter),
        exact,
        ..Default::default()
    })
    .unwrap()
    .into_iter()
    .map(|h| h.id)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `price <= b` and `price IN 0..=b` and `price >= 0 AND NOT price > b` select the same
    /// points; so do `NOT brand IN [acme]` and `brand IN [zeta, orbit]`.
    #[test]
    fn logically_equal_filters_give_identical_answers(b in 0i64..50, x in 0.0f32..3000.0, graph in any::<bool>()) {
        let c = collection(3000, graph);
        let q = [x, 3.0];
        let le = must(vec![range("price", f64::MIN, b as f64)]);
        let listed = must(vec![int_in("price", 0..=b)]);
        let not_above = Filter {
            must: vec![range("price", 0.0, f64::MAX)],
            must_not: vec![Condition::Range { field: "price".into(), gt: Some(b as f64), gte: None, lt: None, lte: None }],
        };
        let a = ids(&c, &q, &le, false);
        prop_assert_eq!(&a, &ids(&c, &q, &listed, false));
        prop_assert_eq!(&a, &ids(&c, &q, &not_above, false));
        let kw = |v: &[&str]| Condition::Match {
            field: "brand".into(),
            any: v.iter().map(|s| Value::Keyword(s.to_string())).collect(),
        };
        let not_acme = Filter { must: vec![], must_not: vec![kw(&["acme"])] };
        prop_assert_eq!(ids(&c, &q, &not_acme, false), ids(&c, &q, &must(vec![kw(&["zeta", "orbit"])]), false));
    }
}

/// The planner's answers (whichever path) against a brute force over the matching points.
#[test]
fn planned_answers_equal_a_brute_force_on_the_matches() {
    let n = 6000;
    // One build thread: a parallel build links points in a different order each run, and the
    // graph walks this checks are approximate (19 of 20); the answer must not depend on timing.
    let c = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| collection(n, false));
    let filters = [
        must(vec![int_in("price", [3])]),
        must(vec![range("price", 10.0, 40.0)]),
        must(vec![Condition::Match {
            field: "tags".into(),
            any: vec![Value::Keyword("t1".into())],
        }]),
        Filter {
            must: vec![Condition::Exists {
                field: "brand".into(),
            }],
            must_not: vec![int_in("price", 0..25)],
        },
    ];
    for (fi, filter) in filters.iter().enumerate() {
        for x in [10.0f32, 2999.5, 5990.0] {
            let q = [x, 3.0];
            let keeps = |i: usize| match fi {
                0 => i % 50 == 3,
                1 => (10..=40).contains(&(i % 50)),
                2 => i % 4 == 1,
                _ => i % 50 >= 25,
            };
            let mut truth: Vec<(f32, usize)> = (0..n)
                .filter(|i| keeps(*i))
                .map(|i| {
                    let (dx, dy) = (i as f32 - q[0], (i % 7) as f32 - q[1]);
                    (dx * dx + dy * dy, i)
                })
                .collect();
            truth.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let truth: Vec<String> = truth
                .iter()
                .take(20)
                .map(|(_, i)| format!("p{i}"))
                .collect();
            let got = ids(&c, &q, filter, false);
            let overlap = got.iter().filter(|id| truth.contains(id)).count();
            assert!(overlap >= 19, "filter {fi} at {x}: {got:?} vs {truth:?}");
        }
    }
}

/// Payload updates, overwrites, deletes and a compaction reach the indexes; a snapshot
/// rebuilds them.
#[test]
fn the_indexes_follow_every_write() {
    let c = collection(3000, false);
    let q = [100.0f32, 3.0];
    let acme = must(vec![Condition::Match {
        field: "brand".into(),
        any: vec![Value::Keyword("acme".into())],
    }]);
    let plan = |c: &Collection, f: &Filter| {
        c.search_explained(&SearchRequest {
            vector: &q,
            limit: 5,
            filter: Some(f),
            ..Default::default()
        })
        .unwrap()
        .1
    };
    assert_eq!(plan(&c, &acme).matches, Some(1000));
    // p1 becomes acme; p0 (acme) is overwritten as zeta; p3 (acme) is deleted.
    c.set_payload(
        "p1",
        vec![("brand".into(), Some(Value::Keyword("acme".into())))],
    )
    .unwrap();
    c.upsert(vec![Point {
        id: "p0".into(),
        vector: vec![0.0, 0.0],
        payload: vec![("brand".into(), Value::Keyword("zeta".into()))],
    }])
    .unwrap();
    assert_eq!(c.delete(&["p3".to_string()]), 1);
    let after = plan(&c, &acme);
    assert_eq!(after.matches, Some(999));
    assert_eq!(after.path, SearchPath::ExactMatches);
    let found = ids(&c, &[1.0, 1.0], &acme, false);
    assert!(found.contains(&"p1".to_string()) && !found.contains(&"p0".to_string()));
    assert!(!found.contains(&"p3".to_string()));
    // A field removed by a payload update (p6 was acme) no longer matches EX or the keyword.
    c.set_payload("p6", vec![("brand".into(), None)]).unwrap();
    let exists = must(vec![Condition::Exists {
        field: "brand".into(),
    }]);
    assert_eq!(plan(&c, &exists).matches, Some(2998));
    assert_eq!(plan(&c, &acme).matches, Some(998));
    let found = ids(&c, &[1.0, 1.0], &acme, false);
    assert!(!found.contains(&"p6".to_string()));
    c.compact();
    assert_eq!(
        plan(&c, &acme).matches,
        Some(998),
        "rebuilt by the compaction"
    );
    let mut bytes = Vec::new();
    c.write_snapshot(&mut bytes, 0).unwrap();
    let (back, _) = Collection::read_snapshot(bytes.as_slice()).unwrap();
    assert_eq!(
        plan(&back, &acme).matches,
        Some(998),
        "rebuilt from the snapshot"
    );
    assert!(back.memory().payload_index > 0);
    assert_eq!(ids(&back, &[1.0, 1.0], &acme, false), found);
}

/// The default beam grows with the collection and the page wanted; `indexed_only` leaves the
/// unlinked tail out of a large collection; `score_threshold` bounds the reported score.
#[test]
fn search_parameters_take_effect() {
    assert_eq!(default_ef(64, 500, 10), 64);
    assert_eq!(default_ef(64, 100_000, 10), 128);
    assert_eq!(default_ef(64, 1_000_000, 10), 192);
    assert_eq!(default_ef(64, 1_000, 100), 200, "twice the results wanted");
    assert_eq!(
        default_ef(64, 1_000, 5_000),
        5_000,
        "never below the results wanted"
    );

    let mut config = CollectionConfig::new(2, Metric::Euclidean);
    config.exact_below = 100;
    config.indexing_threshold = 0;
    let c = Collection::new(config);
    let at = |range: std::ops::Range<usize>| {
        range
            .map(|i| Point {
                id: format!("p{i}"),
                vector: vec![i as f32, 0.0],
                payload: vec![],
            })
            .collect::<Vec<_>>()
    };
    c.upsert(at(0..300)).unwrap();
    c.index_pending();
    c.upsert(at(300..400)).unwrap();
    let search = |q: f32, indexed_only: bool, score_threshold: Option<f32>| {
        c.search(&SearchRequest {
            vector: &[q, 0.0],
            limit: 5,
            indexed_only,
            score_threshold,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect::<Vec<_>>()
    };
    assert_eq!(search(350.0, false, None)[0], "p350", "the tail is scanned");
    assert_eq!(search(350.0, true, None)[0], "p299", "indexed only");
    // Euclidean scores are distances: at most 1.5 from x = 10 keeps 9, 10 and 11.
    let mut near = search(10.0, false, Some(1.5));
    near.sort();
    assert_eq!(near, ["p10", "p11", "p9"]);
}
