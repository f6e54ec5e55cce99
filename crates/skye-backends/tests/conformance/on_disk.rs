//! The embedded stores' files after damage: random flipped bytes, truncation and zeroed pages.
//! Opening and reading a damaged file must return the data that was written or an error; never
//! a panic, a hang, or rows silently missing or changed.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use skye_backends::embedded::{EmbeddedConfigStore, EmbeddedEventLog, EmbeddedStorage};
use skye_core::config_store::{ConfigRead, ConfigStore, Txn};
use skye_core::event_log::{EventLog, Produce};
use skye_core::storage::{AggregatorStore, EmbeddingRow, EmbeddingStore, Generation};

#[derive(Debug, Clone)]
enum Damage {
    Flip(Vec<(usize, u8)>),
    Truncate(usize),
    ZeroPage(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        2 => prop::collection::vec((any::<usize>(), 1u8..=255), 1..16).prop_map(Damage::Flip),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => any::<usize>().prop_map(Damage::ZeroPage),
    ]
}

fn apply(good: &[u8], d: &Damage) -> Vec<u8> {
    let mut b = good.to_vec();
    match d {
        Damage::Flip(flips) => {
            for (at, x) in flips {
                let i = at % b.len();
                b[i] ^= x;
            }
        }
        Damage::Truncate(at) => b.truncate(at % b.len()),
        Damage::ZeroPage(at) => {
            let page = (at % b.len().div_ceil(4096)) * 4096;
            let end = (page + 4096).min(b.len());
            b[page..end].fill(0);
        }
    }
    b
}

/// Runs `probe` on damaged copies of `good`. The probe answers `Err` when the damage was
/// refused with an error, `Ok(Err)` when it read wrong data without one; that and a panic fail.
type Probe = Result<Result<(), String>, String>;

fn survive(good: &[u8], name: &str, probe: impl Fn(&Path) -> Probe) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let (mut refused, mut opened) = (0, 0);
    let counts = std::cell::RefCell::new((&mut refused, &mut opened));
    runner
        .run(&damage(), |d| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            std::fs::write(&path, apply(good, &d)).unwrap();
            match std::panic::catch_unwind(AssertUnwindSafe(|| probe(&path))) {
                Ok(Ok(Ok(()))) => *counts.borrow_mut().1 += 1,
                Ok(Ok(Err(wrong))) => {
                    return Err(TestCaseError::fail(format!(
                        "{name}: read wrong data without an error after {d:?}: {wrong}"
                    )));
                }
                Ok(Err(_)) => *counts.borrow_mut().0 += 1,
                Err(_) => {
                    return Err(TestCaseError::fail(format!("{name}: panicked on {d:?}")));
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!("{name}: {refused} damaged copies refused with an error, {opened} read back");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn damaged_embedding_and_aggregator_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.redb");
    let g = Generation {
        table: "t",
        model: "m",
        version: 1,
    };
    let ids: Vec<String> = (0..300).map(|i| format!("id-{i}")).collect();
    block_on(async {
        let s = EmbeddedStorage::open(&path).unwrap();
        let rows = ids
            .iter()
            .enumerate()
            .map(|(i, id)| EmbeddingRow {
                id: id.clone(),
                embedding: vec![i as f32; 16],
                search_embedding: vec![i as f32 + 0.5; 16],
                to_be_indexed: BTreeMap::from([("v".to_string(), i % 2 == 0)]),
                payload: BTreeMap::from([("brand".to_string(), format!("b{i}"))]),
            })
            .collect();
        s.put(g, rows, None).await.unwrap();
        let agg = ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    BTreeMap::from([("oos".to_string(), "true".to_string())]),
                )
            })
            .collect();
        s.merge("agg", agg).await.unwrap();
    });
    let good = std::fs::read(&path).unwrap();
    survive(&good, "storage.redb", |p| {
        block_on(async {
            let s = EmbeddedStorage::open(p).map_err(|e| e.to_string())?;
            let rows = EmbeddingStore::get(&s, g, &ids)
                .await
                .map_err(|e| e.to_string())?;
            for (i, r) in rows.iter().enumerate() {
                match r {
                    Some(r) if r.embedding == vec![i as f32; 16] => {}
                    other => return Ok(Err(format!("row {i} came back as {other:?}"))),
                }
            }
            AggregatorStore::get(&s, "agg", &ids)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Ok(()))
        })
    });
}

#[test]
fn damaged_event_logs_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    block_on(async {
        let log = EmbeddedEventLog::open(&path).unwrap();
        log.ensure_topic("t", 2).await.unwrap();
        let records = (0..400)
            .map(|i| Produce::new("t", format!("k{i}"), vec![b'x'; 100 + i % 50]))
            .collect();
        log.produce(records).await.unwrap();
    });
    let good = std::fs::read(&path).unwrap();
    survive(&good, "events.redb", |p| {
        block_on(async {
            let log = EmbeddedEventLog::open(p).map_err(|e| e.to_string())?;
            let mut sub = log
                .subscribe("g", &["t"])
                .await
                .map_err(|e| e.to_string())?;
            let mut read = 0;
            for _ in 0..10 {
                let batch = sub
                    .poll(1000, std::time::Duration::from_millis(1))
                    .await
                    .map_err(|e| e.to_string())?;
                if batch.is_empty() {
                    break;
                }
                read += batch.len();
            }
            if read != 400 {
                return Ok(Err(format!("{read} of 400 records came back")));
            }
            Ok(Ok(()))
        })
    });
}

#[test]
fn damaged_config_stores_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.redb");
    block_on(async {
        let store = EmbeddedConfigStore::open(&path).unwrap();
        for i in 0..200 {
            store
                .txn(Txn::new().put(format!("/skye/k{i}"), format!("value-{i}")))
                .await
                .unwrap();
        }
    });
    let good = std::fs::read(&path).unwrap();
    survive(&good, "config.redb", |p| {
        block_on(async {
            let store = EmbeddedConfigStore::open(p).map_err(|e| e.to_string())?;
            let range = store.range("/skye").await.map_err(|e| e.to_string())?;
            if range.kvs.len() != 200 {
                return Ok(Err(format!("{} of 200 keys came back", range.kvs.len())));
            }
            Ok(Ok(()))
        })
    });
}
