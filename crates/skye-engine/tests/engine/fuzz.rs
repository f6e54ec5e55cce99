//! Property tests over what clients and producers send: random filters through the whole search
//! path (parse, translate, evaluate in the embedded engine) against an oracle, and mutated events
//! through the three consumers. Every input gets an answer or a reason, never a panic, and a bad
//! record never takes a good one in the same batch down with it (a `Transient` answer to a bad
//! record would retry it forever: a poisoned partition).
//!
//! The number of cases is `PROPTEST_CASES` (default 256 here); failures print the minimal input.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use skye_backends::embedded::{EmbeddedEventLog, EmbeddedStorage, EmbeddedVectorStore};
use skye_core::domain::{DistanceFunction, FieldSchema};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::event_log::Record;
use skye_core::storage::AggregatorStore;
use skye_core::vector_store::{
    CollectionRef, CollectionSpec, PayloadValue, SearchQuery, VectorPoint, VectorRead, VectorStore,
};
use skye_engine::ingest::embedding::EmbeddingIngestor;
use skye_engine::ingest::realtime::{DeltaHandler, RealtimeHandler};
use skye_engine::ingest::runner::{BatchHandler, EmbeddingHandler};
use skye_engine::lifecycle::Lifecycle;
use skye_engine::search::filters::{FilterOp, FilterSpec};
use skye_engine::search::similar::{Limits, SimilarRequest, SimilarService};

use crate::support::PayloadBlind;

const POINTS: i64 = 40;

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn schema() -> Value {
    json!({"payload": {
        "brand": {"field_schema": "KEYWORD"},
        "price": {"field_schema": "INTEGER"},
        "rating": {"field_schema": "FLOAT"},
        "active": {"field_schema": "BOOLEAN"},
        "ts": {"field_schema": "DATETIME"},
        "loc": {"field_schema": "GEO"},
    }})
}

// ---------------------------------------------------------------------------------------------
// Filters

fn brand(i: i64) -> String {
    format!("b{}", i % 4)
}
fn price(i: i64) -> i64 {
    i * 10
}
fn rating(i: i64) -> f64 {
    i as f64 / 4.0
}

fn filter_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (-15i64..450).prop_map(|n| n.to_string()),
        2 => (-2.0f64..12.0).prop_map(|f| format!("{f}")),
        2 => (0i64..40).prop_map(|i| format!("{}", rating(i))),
        4 => (0u8..6).prop_map(|i| format!("b{i}")),
        1 => Just("true".to_string()),
        1 => Just(" 70 ".to_string()),
        1 => Just("NaN".to_string()),
        1 => Just("-inf".to_string()),
        1 => Just("1e400".to_string()),
        1 => Just(String::new()),
        1 => "[ -~]{0,6}",
        1 => "\\PC{0,4}",
    ]
}

fn filter_spec() -> impl Strategy<Value = FilterSpec> {
    let fields = vec![
        "brand", "brand", "brand", "price", "price", "price", "rating", "rating", "active", "ts",
        "loc", "missing",
    ];
    let ops = prop_oneof![4 => 0i32..2, 4 => 4i32..10, 1 => 0i32..12];
    (
        prop::sample::select(fields),
        ops,
        prop_oneof![
            1 => Just(Vec::new()),
            3 => prop::collection::vec(filter_value(), 1..2),
            2 => prop::collection::vec(filter_value(), 2..4),
        ],
    )
        .prop_map(|(field, op, values)| FilterSpec {
            field: field.to_string(),
            op: FilterOp::from_proto(op).expect("0..12 are the operators"),
            values,
        })
}

fn finite(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// What one filter should select, where the spec's semantics are plain: `Some(Ok(ids))` = those
/// points, `Some(Err(()))` = the request must be refused, `None` = not modelled here (only
/// "answer or INVALID_ARGUMENT" is checked).
fn expected(spec: &FilterSpec) -> Option<Result<Vec<i64>, ()>> {
    use FilterOp::*;
    let all = 0..POINTS;
    let select = |keep: &dyn Fn(i64) -> bool| Some(Ok(all.clone().filter(|&i| keep(i)).collect()));
    let needs = match spec.op {
        Btw | Btwe => 2,
        Wthn => 3,
        Ex => 0,
        _ => 1,
    };
    if spec.field == "missing" || spec.values.len() < needs {
        return Some(Err(()));
    }
    let negate = spec.op == Nin;
    match (spec.field.as_str(), spec.op) {
        (_, Ex) => select(&|_| true),
        ("brand", In | Nin) => select(&|i| spec.values.contains(&brand(i)) != negate),
        ("price", In | Nin) => {
            let wanted: Option<Vec<i64>> =
                spec.values.iter().map(|v| v.trim().parse().ok()).collect();
            match wanted {
                None => Some(Err(())),
                Some(w) => select(&|i| w.contains(&price(i)) != negate),
            }
        }
        ("price" | "rating", Lt | Lte | Gt | Gte | Btw | Btwe) => {
            let value = |i: i64| {
                if spec.field == "price" {
                    price(i) as f64
                } else {
                    rating(i)
                }
            };
            let v0 = finite(&spec.values[0])?;
            match spec.op {
                Lt => select(&|i| value(i) < v0),
                Lte => select(&|i| value(i) <= v0),
                Gt => select(&|i| value(i) > v0),
                Gte => select(&|i| value(i) >= v0),
                _ => {
                    let v1 = finite(&spec.values[1])?;
                    if v0 > v1 {
                        Some(Err(()))
                    } else if spec.op == Btw {
                        select(&|i| value(i) > v0 && value(i) < v1)
                    } else {
                        select(&|i| value(i) >= v0 && value(i) <= v1)
                    }
                }
            }
        }
        ("brand" | "active" | "loc", Lt | Lte | Gt | Gte | Btw | Btwe) => Some(Err(())),
        (_, Wthn) if spec.field != "loc" => Some(Err(())),
        _ => None,
    }
}

/// Variant `v` is served by the embedded engine from point payloads; variant `n` is an NGT
/// variant whose store holds bare vectors, with the same values in the aggregator table. Both
/// must answer every filter the same way, and as the oracle says where it models the filter.
#[test]
fn random_filters_select_what_the_spec_says_or_are_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let service = rt.block_on(async {
        let mut ngt = schema();
        ngt["read_host"] = json!("ngt.invalid");
        ngt["port"] = json!("8080");
        let registry = crate::support::registry_with(
            dir.path(),
            &[
                json!({"variant": "v", "vector_db_config": schema()}),
                json!({"variant": "n", "vector_db_type": "NGT", "vector_db_config": ngt}),
            ],
        )
        .await;
        let vectors = Arc::new(EmbeddedVectorStore::open(&dir.path().join("vectors")).unwrap());
        let storage = Arc::new(EmbeddedStorage::open(&dir.path().join("storage.redb")).unwrap());
        let snapshot = registry.snapshot();
        let variant = snapshot.variant("e", "m", "v").unwrap();
        let name = variant.collection(variant.vector_db_read_version);
        let ngt = snapshot.variant("e", "m", "n").unwrap();
        let ngt_name = ngt.collection(ngt.vector_db_read_version);
        let payload_schema = [
            ("brand", FieldSchema::Keyword),
            ("price", FieldSchema::Integer),
            ("rating", FieldSchema::Float),
            ("active", FieldSchema::Boolean),
            ("ts", FieldSchema::Datetime),
            ("loc", FieldSchema::Geo),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let spec = CollectionSpec {
            collection: name.clone(),
            dimension: 2,
            distance: DistanceFunction::Dot,
            m: 16,
            ef_construct: 64,
            indexing_threshold: 0,
            payload_schema,
            on_disk: None,
        };
        vectors.create_collection(spec.clone()).await.unwrap();
        let points = (0..POINTS)
            .map(|i| VectorPoint {
                id: i.to_string(),
                vector: vec![i as f32 / 10.0, 1.0],
                payload: BTreeMap::from([
                    ("brand".to_string(), PayloadValue::Keyword(brand(i))),
                    ("price".to_string(), PayloadValue::Integer(price(i))),
                    ("rating".to_string(), PayloadValue::Float(rating(i))),
                    ("active".to_string(), PayloadValue::Bool(i % 2 == 0)),
                    ("ts".to_string(), PayloadValue::Integer(1_700_000_000 + i)),
                    (
                        "loc".to_string(),
                        PayloadValue::Geo(12.0 + i as f64 / 100.0, 77.0),
                    ),
                ]),
            })
            .collect();
        vectors.upsert(&name, points).await.unwrap();
        // The NGT variant: bare vectors, the payload values as aggregator text.
        let mut bare = spec.clone();
        bare.collection = ngt_name.clone();
        bare.payload_schema = BTreeMap::new();
        vectors.create_collection(bare).await.unwrap();
        let bare_points = (0..POINTS)
            .map(|i| VectorPoint {
                id: i.to_string(),
                vector: vec![i as f32 / 10.0, 1.0],
                payload: BTreeMap::new(),
            })
            .collect();
        vectors.upsert(&ngt_name, bare_points).await.unwrap();
        let rows = (0..POINTS)
            .map(|i| {
                let row = [
                    ("brand", brand(i)),
                    ("price", price(i).to_string()),
                    ("rating", rating(i).to_string()),
                    ("active", (i % 2 == 0).to_string()),
                    ("ts", (1_700_000_000 + i).to_string()),
                    ("loc", format!("{},77", 12.0 + i as f64 / 100.0)),
                ];
                (
                    i.to_string(),
                    row.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                )
            })
            .collect();
        let table = &snapshot.store_of("e").unwrap().aggregator_table;
        storage.merge(table, rows).await.unwrap();
        SimilarService::new(
            registry,
            Arc::new(PayloadBlind::new(vectors)),
            Limits {
                max_limit: 100,
                cache_bytes: 0,
                max_concurrent: 4,
            },
        )
        .with_aggregator(storage)
    });
    let (checked, refused) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    runner()
        .run(&prop_oneof![3 => prop::collection::vec(filter_spec(), 1..2), 1 => prop::collection::vec(filter_spec(), 2..4)], |specs| {
            let request = |variant: &str| SimilarRequest {
                entity: "e".into(),
                model: "m".into(),
                variant: variant.into(),
                limit: 100,
                embeddings: vec![vec![1.0, 0.0]],
                global_filters: specs.clone(),
                attributes: vec!["brand".into(), "rating".into(), "loc".into()],
                ..Default::default()
            };
            let got = rt.block_on(service.similar(request("v"), 1_700_000_100));
            let by_skye = rt.block_on(service.similar(request("n"), 1_700_000_100));
            match (&got, &by_skye) {
                (Ok(a), Ok(b)) => prop_assert_eq!(
                    &a.answers, &b.answers,
                    "filters {:?}: the NGT variant (filtered by Skye) differs from the embedded one",
                    specs
                ),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => {
                    return Err(TestCaseError::fail(format!(
                        "filters {specs:?}: embedded {a:?}, NGT {b:?}"
                    )));
                }
            }
            // The conjunction of the per-filter oracles, when every filter is modelled.
            let mut want: Option<Result<Vec<i64>, ()>> = Some(Ok((0..POINTS).collect()));
            for spec in &specs {
                want = match (want, expected(spec)) {
                    (Some(Err(())), _) | (_, Some(Err(()))) => Some(Err(())),
                    (Some(Ok(a)), Some(Ok(b))) => {
                        Some(Ok(a.into_iter().filter(|i| b.contains(i)).collect()))
                    }
                    _ => None,
                };
            }
            match (&got, want) {
                (Err(e), want) => {
                    if want == Some(Err(())) {
                        refused.set(refused.get() + 1);
                    }
                    prop_assert_eq!(
                        e.code(),
                        ErrorCode::InvalidArgument,
                        "only a client error may refuse a filter: {}",
                        e
                    )
                }
                (Ok(answer), Some(Ok(ids))) => {
                    checked.set(checked.get() + 1);
                    let mut got: Vec<i64> = answer.answers[0]
                        .iter()
                        .map(|h| h.id.parse().unwrap())
                        .collect();
                    got.sort_unstable();
                    prop_assert_eq!(got, ids, "filters {:?}", specs);
                }
                (Ok(answer), Some(Err(()))) => {
                    return Err(TestCaseError::fail(format!(
                        "filters {specs:?} should be refused, got {} hits",
                        answer.answers[0].len()
                    )));
                }
                (Ok(_), None) => {}
            }
            if let Err(e) = &got {
                prop_assert!(!e.to_string().is_empty());
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "filters: {} answers and {} refusals checked against the oracle",
        checked.get(),
        refused.get()
    );
    assert!(
        checked.get() > 0 && refused.get() > 0,
        "the oracle modelled too few cases"
    );
}

// ---------------------------------------------------------------------------------------------
// Events

/// Arbitrary JSON, leaning to the values the decoders care about.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(1e300)),
        prop::sample::select(vec![
            "", "EOF", "ADD", "DELETE", "UPSERT", "v", "e", "m", "0"
        ])
        .prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, Value),
    Remove(usize),
    Truncate(usize),
    Flip(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), json_value()).prop_map(|(p, v)| Mutation::Set(p, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Mutation::Flip(at, x)),
    ]
}

/// Applies mutations to `base` at the JSON pointers `paths`; returns the record bytes.
fn mutate(base: &Value, paths: &[&str], mutations: &[Mutation]) -> Vec<u8> {
    let mut value = base.clone();
    let mut bytes = None::<Vec<u8>>;
    for m in mutations {
        match m {
            Mutation::Set(p, v) => {
                let path = paths[p % paths.len()];
                if path.is_empty() {
                    value = v.clone();
                } else if let Some(slot) = value.pointer_mut(path) {
                    *slot = v.clone();
                }
            }
            Mutation::Remove(p) => {
                let path = paths[p % paths.len()];
                if let Some((parent, key)) = path.rsplit_once('/')
                    && let Some(Value::Object(map)) = value.pointer_mut(parent)
                {
                    map.remove(key);
                }
            }
            Mutation::Truncate(at) => {
                let b = bytes.get_or_insert_with(|| serde_json::to_vec(&value).unwrap());
                let cut = at % (b.len() + 1);
                b.truncate(cut);
            }
            Mutation::Flip(at, x) => {
                let b = bytes.get_or_insert_with(|| serde_json::to_vec(&value).unwrap());
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] ^= x;
                }
            }
        }
    }
    bytes.unwrap_or_else(|| serde_json::to_vec(&value).unwrap())
}

fn record(topic: &str, offset: usize, value: Vec<u8>) -> Record {
    Record {
        topic: topic.to_string(),
        partition: 0,
        offset: offset as u64,
        key: String::new(),
        value,
        headers: Vec::new(),
    }
}

const EMBEDDING_PATHS: &[&str] = &[
    "",
    "/entity",
    "/model_name",
    "/candidate_id",
    "/embedding_store_version",
    "/partition",
    "/index_space",
    "/index_space/embedding",
    "/index_space/embedding/0",
    "/index_space/variants_version_map",
    "/index_space/variants_version_map/v",
    "/index_space/variants_index_map",
    "/index_space/variants_index_map/v",
    "/index_space/operation",
    "/index_space/payload",
    "/index_space/payload/brand",
    "/index_space/payload/price",
    "/search_space",
    "/search_space/embedding",
];

const REALTIME_PATHS: &[&str] = &[
    "",
    "/timestamp",
    "/type",
    "/entity",
    "/data",
    "/data/0",
    "/data/0/id",
    "/data/0/data",
    "/data/0/data/0/label",
    "/data/0/data/0/value",
];

const DELTA_PATHS: &[&str] = &[
    "",
    "/Entity",
    "/Model",
    "/Variant",
    "/Version",
    "/Id",
    "/Payload",
    "/Payload/brand",
    "/Vectors",
    "/Vectors/0",
    "/EventType",
];

#[test]
fn mutated_events_are_rejected_with_a_reason_and_never_poison_a_batch() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let variant_schema = json!({"payload": {
        "brand": {"field_schema": "KEYWORD"},
        "price": {"field_schema": "INTEGER", "default_value": "0"},
    }});
    let (registry, vectors, storage, log, version) = rt.block_on(async {
        let registry = crate::support::registry_with(
            dir.path(),
            &[json!({"variant": "v", "vector_db_config": variant_schema})],
        )
        .await;
        let vectors = Arc::new(EmbeddedVectorStore::open(&dir.path().join("vectors")).unwrap());
        let version = registry
            .snapshot()
            .variant("e", "m", "v")
            .unwrap()
            .vector_db_write_version;
        vectors
            .create_collection(CollectionSpec {
                collection: CollectionRef::embedded("e", "m", "v", version),
                dimension: 2,
                distance: DistanceFunction::Dot,
                m: 16,
                ef_construct: 64,
                indexing_threshold: 0,
                payload_schema: [
                    ("brand".to_string(), FieldSchema::Keyword),
                    ("price".to_string(), FieldSchema::Integer),
                ]
                .into(),
                on_disk: None,
            })
            .await
            .unwrap();
        let storage = Arc::new(EmbeddedStorage::open(&dir.path().join("storage.redb")).unwrap());
        let log = Arc::new(EmbeddedEventLog::open(&dir.path().join("events.redb")).unwrap());
        (registry, vectors, storage, log, version)
    });
    let lifecycle = Arc::new(Lifecycle::new(
        registry.clone(),
        vectors.clone(),
        storage.clone(),
        log.clone(),
    ));
    let embedding = EmbeddingHandler(EmbeddingIngestor::new(
        vectors.clone(),
        storage.clone(),
        storage.clone(),
        lifecycle,
    ));
    let realtime = RealtimeHandler::new(registry.clone(), storage.clone(), storage.clone(), log);
    let delta = DeltaHandler::new(registry.clone(), vectors.clone());

    let event = |id: &str| {
        json!({"entity": "e", "model_name": "m", "candidate_id": id, "environment": "prod",
            "embedding_store_version": 1, "partition": "0",
            "index_space": {"embedding": [0.5, 0.25], "variants_version_map": {"v": version},
                "variants_index_map": {"v": true}, "operation": "ADD",
                "payload": {"brand": "b1", "price": "5"}},
            "search_space": {"embedding": [0.5, 0.25]}})
    };
    let realtime_event = json!({"timestamp": 1, "type": "catalog_status", "entity": "e",
        "data": [{"id": "c0", "data": [{"label": "brand", "value": "b2"}]}]});
    let delta_event = json!({"Entity": "e", "Model": "m", "Variant": "v", "Version": version,
        "Id": "c0", "Payload": {"brand": "b3"}, "Vectors": [0.1, 0.2], "EventType": "UPSERT"});

    let batch = prop::collection::vec(prop::collection::vec(mutation(), 1..4), 1..6);
    let case = std::cell::Cell::new(0usize);
    runner()
        .run(&batch, |mutated| {
            case.set(case.get() + 1);
            let control = format!("control-{}", case.get());
            let mut records: Vec<Record> = mutated
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    record(
                        "skye.embedding",
                        i,
                        mutate(&event(&format!("c{i}")), EMBEDDING_PATHS, m),
                    )
                })
                .collect();
            records.push(record(
                "skye.embedding",
                records.len(),
                serde_json::to_vec(&event(&control)).unwrap(),
            ));
            let outcome = rt
                .block_on(embedding.handle(&records))
                .map_err(|e| TestCaseError::fail(format!("bad events made a retry: {e:?}")))?;
            let mut rejected: Vec<usize> = outcome.rejected.iter().map(|(i, _)| *i).collect();
            rejected.sort_unstable();
            rejected.dedup();
            prop_assert_eq!(
                rejected.len(),
                outcome.rejected.len(),
                "one reason per record"
            );
            prop_assert!(
                !rejected.contains(&(records.len() - 1)),
                "the valid event was rejected: {:?}",
                outcome.rejected
            );
            for (i, reason) in &outcome.rejected {
                prop_assert!(*i < records.len() && !reason.reason.trim().is_empty());
            }
            let hits = rt
                .block_on(vectors.search(
                    &CollectionRef::embedded("e", "m", "v", version),
                    vec![SearchQuery {
                        vector: vec![0.5, 0.25],
                        limit: 100_000,
                        exact: true,
                        ..Default::default()
                    }],
                ))
                .unwrap();
            prop_assert!(
                hits[0].iter().any(|h| h.id == control),
                "the valid event was not indexed"
            );

            for (handler, base, paths, topic) in [
                (
                    &realtime as &dyn BatchHandler,
                    &realtime_event,
                    REALTIME_PATHS,
                    "skye.realtime",
                ),
                (&delta, &delta_event, DELTA_PATHS, "skye.realtime.delta"),
            ] {
                let records: Vec<Record> = mutated
                    .iter()
                    .enumerate()
                    .map(|(i, m)| record(topic, i, mutate(base, paths, m)))
                    .collect();
                let outcome = rt.block_on(handler.handle(&records)).map_err(|e| {
                    TestCaseError::fail(format!("bad {topic} events made a retry: {e:?}"))
                })?;
                for (i, reason) in &outcome.rejected {
                    prop_assert!(*i < records.len() && !reason.reason.trim().is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}
