//! Durability: WAL replay, checkpoints, single-file snapshots, corrupt files, and `kill -9`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use skye_index::{
    Collection, CollectionConfig, DurableCollection, IndexError, Metric, Point, SearchRequest,
    Value,
};

fn point(i: usize, dim: usize) -> Point {
    let vector = (0..dim)
        .map(|d| ((i * 31 + d * 7) % 97) as f32 / 97.0 - 0.5)
        .collect();
    Point {
        id: format!("p{i}"),
        vector,
        payload: vec![
            ("n".to_string(), Value::Integer(i as i64)),
            ("tag".to_string(), Value::Keyword(format!("t{}", i % 3))),
        ],
    }
}

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::new(8, Metric::Cosine);
    c.exact_below = 10;
    c
}

fn top(c: &Collection, q: &[f32]) -> Vec<(String, f32)> {
    c.search(&SearchRequest {
        vector: q,
        limit: 10,
        ..Default::default()
    })
    .unwrap()
    .into_iter()
    .map(|h| (h.id, h.score))
    .collect()
}

#[test]
fn writes_survive_reopen_with_and_without_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let q = point(5, 8).vector;
    let (before, info) = {
        let d = DurableCollection::create(dir.path(), config()).unwrap();
        d.upsert((0..300).map(|i| point(i, 8)).collect()).unwrap();
        d.collection().index_pending();
        d.checkpoint().unwrap();
        d.upsert((300..400).map(|i| point(i, 8)).collect()).unwrap();
        assert_eq!(
            d.delete(vec!["p1".into(), "p2".into(), "nope".into()])
                .unwrap(),
            2
        );
        d.set_payload(
            "p3",
            vec![
                ("tag".into(), Some(Value::Keyword("new".into()))),
                ("n".into(), None),
            ],
        )
        .unwrap();
        d.set_indexing_threshold(0).unwrap();
        (top(d.collection(), &q), d.collection().info())
    };
    let (d, recovery) = DurableCollection::open(dir.path()).unwrap();
    assert_eq!(
        recovery.replayed, 4,
        "records after the checkpoint are replayed"
    );
    assert_eq!(recovery.discarded_bytes, 0);
    let c = d.collection();
    assert_eq!(c.info().points, info.points);
    assert_eq!(
        c.info().indexed_points,
        298,
        "the graph came back from the snapshot"
    );
    assert_eq!(c.info().indexing_threshold, 0);
    assert_eq!(top(c, &q), before);
    assert!(!c.contains("p1"));
    let p3 = c.get("p3").unwrap();
    assert_eq!(
        p3.payload,
        vec![("tag".to_string(), Value::Keyword("new".into()))]
    );
    assert!(
        DurableCollection::create(dir.path(), config()).is_err(),
        "create refuses an existing collection"
    );
}

/// A retired collection (deleted or replaced by its store) still answers searches but never
/// touches its directory again, so a new collection can take the path.
#[test]
fn a_retired_collection_leaves_its_directory_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let old = DurableCollection::create(&path, config()).unwrap();
    old.upsert((0..20).map(|i| point(i, 8)).collect()).unwrap();
    old.retire();
    std::fs::remove_dir_all(&path).unwrap();
    let new = DurableCollection::create(&path, config()).unwrap();
    new.upsert(vec![point(100, 8)]).unwrap();

    assert!(old.upsert(vec![point(21, 8)]).is_err());
    assert!(old.delete(vec!["p1".into()]).is_err());
    assert!(old.checkpoint().is_err());
    assert_eq!(old.collection().len(), 20, "reads still work");

    drop(new);
    let (reopened, _) = DurableCollection::open(&path).unwrap();
    assert_eq!(
        reopened.collection().len(),
        1,
        "only the new collection's write is there"
    );
}

#[test]
fn single_file_snapshot_restores_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = DurableCollection::create(&dir.path().join("a"), config()).unwrap();
    d.upsert((0..200).map(|i| point(i, 8)).collect()).unwrap();
    d.collection().index_pending();
    let file = dir.path().join("backup.skye");
    d.snapshot_to(&file).unwrap();
    let r = DurableCollection::restore_from(&file, &dir.path().join("b")).unwrap();
    let q = point(7, 8).vector;
    assert_eq!(top(r.collection(), &q), top(d.collection(), &q));
    let (a, b) = (r.collection().info(), d.collection().info());
    assert_eq!(
        (a.points, a.indexed_points, a.tombstones),
        (b.points, b.indexed_points, b.tombstones)
    );
}

#[test]
fn corrupt_or_truncated_snapshots_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = DurableCollection::create(&dir.path().join("a"), config()).unwrap();
    d.upsert((0..50).map(|i| point(i, 8)).collect()).unwrap();
    d.collection().index_pending();
    let file = dir.path().join("s.skye");
    d.snapshot_to(&file).unwrap();
    let good = std::fs::read(&file).unwrap();
    let target = dir.path().join("restored");
    for (n, cut) in (0..good.len()).step_by(97).enumerate() {
        std::fs::write(&file, &good[..cut]).unwrap();
        let err =
            DurableCollection::restore_from(&file, &target.join(format!("t{n}"))).unwrap_err();
        assert!(
            matches!(err, IndexError::Corrupt { .. }),
            "truncated at {cut}: {err}"
        );
    }
    for (n, at) in (0..good.len()).step_by(61).enumerate() {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&file, &bad).unwrap();
        let err =
            DurableCollection::restore_from(&file, &target.join(format!("f{n}"))).unwrap_err();
        assert!(
            matches!(err, IndexError::Corrupt { .. }),
            "flipped byte {at}: {err}"
        );
    }
}

#[test]
fn invalid_writes_are_refused_before_logging() {
    let dir = tempfile::tempdir().unwrap();
    let d = DurableCollection::create(dir.path(), config()).unwrap();
    let mut bad = point(1, 8);
    bad.vector[3] = f32::NAN;
    assert!(matches!(
        d.upsert(vec![point(0, 8), bad]),
        Err(IndexError::NonFinite(_))
    ));
    assert!(matches!(
        d.upsert(vec![point(0, 4)]),
        Err(IndexError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        d.set_payload("ghost", vec![]),
        Err(IndexError::PointNotFound(_))
    ));
    drop(d);
    let (d, recovery) = DurableCollection::open(dir.path()).unwrap();
    assert_eq!((recovery.replayed, d.collection().len()), (0, 0));
}

const CHILD_DIR: &str = "SKYE_INDEX_KILL_TEST_DIR";

/// Helper run as a child process by `acknowledged_writes_survive_kill_9`: writes batches forever,
/// printing each acknowledged batch number.
#[test]
#[ignore = "helper process of acknowledged_writes_survive_kill_9"]
fn writer_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let d = DurableCollection::create(std::path::Path::new(&dir), config()).unwrap();
    for batch in 0.. {
        let points = (0..50).map(|i| point(batch * 50 + i, 8)).collect();
        d.upsert(points).unwrap();
        println!("ack {batch}");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let coll = dir.path().join("c");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, &coll)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = None;
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("ack ") {
            acked = Some(n.parse::<usize>().unwrap());
            if acked == Some(40) {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    let acked = acked.expect("the child acknowledged writes");
    let (d, _) = DurableCollection::open(&coll).unwrap();
    let c = d.collection();
    for i in 0..(acked + 1) * 50 {
        assert!(c.contains(&format!("p{i}")), "acknowledged point p{i} lost");
    }
    assert_eq!(c.len() % 50, 0, "batches are all-or-nothing");
}

fn vector_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("vectors."))
        .collect();
    names.sort();
    names
}

/// [`top`] as (vector, score) pairs: `point(i)` repeats its vector every 97 ids, and equal
/// scores come back in slot order, which compaction and renumbering change.
fn answers(c: &Collection, q: &[f32]) -> Vec<(usize, f32)> {
    let mut hits: Vec<(usize, f32)> = top(c, q)
        .into_iter()
        .map(|(id, score)| (id[1..].parse::<usize>().unwrap() % 97, score))
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits
}

#[test]
fn mapped_vectors_survive_checkpoints_reopens_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.on_disk = Some(true);
    let q = point(7, 8).vector;
    let (before, info) = {
        let d = DurableCollection::create(dir.path(), cfg.clone()).unwrap();
        d.upsert((0..300).map(|i| point(i, 8)).collect()).unwrap();
        d.collection().index_pending();
        d.checkpoint().unwrap();
        let mem = d.collection().memory();
        assert_eq!(mem.vectors_mapped, 300 * 8 * 4, "every row is mapped");
        assert_eq!(mem.vectors, 0, "no heap copy is left");
        // Written after the checkpoint: on the heap and in the WAL only.
        d.upsert((300..350).map(|i| point(i, 8)).collect()).unwrap();
        (answers(d.collection(), &q), d.collection().info())
    };
    assert_eq!(vector_files(dir.path()), vec!["vectors.1.f32"]);
    let (d, recovery) = DurableCollection::open(dir.path()).unwrap();
    assert_eq!(recovery.replayed, 1);
    assert_eq!(
        answers(d.collection(), &q),
        before,
        "same answers after reopening"
    );
    assert_eq!(d.collection().info().points, info.points);
    assert_eq!(
        d.collection().memory().vectors_mapped,
        300 * 8 * 4,
        "the snapshot's rows come back mapped, the replayed ones on the heap"
    );
    let p = d.collection().get("p320").unwrap();
    assert_eq!(p.vector.len(), 8);

    // A checkpoint with points still to link writes their rows but keeps serving them from the
    // heap (the graph build reads them); once they are linked, the next one maps them.
    d.checkpoint().unwrap();
    assert_eq!(d.collection().memory().vectors_mapped, 300 * 8 * 4);
    assert_eq!(d.collection().memory().vectors, 50 * 8 * 4);
    d.collection().index_pending();
    d.checkpoint().unwrap();
    assert_eq!(d.collection().memory().vectors_mapped, 350 * 8 * 4);
    d.delete((0..100).map(|i| format!("p{i}")).collect())
        .unwrap();
    assert!(d.collection().compact() > 0);
    d.checkpoint().unwrap();
    assert_eq!(
        vector_files(dir.path()),
        vec!["vectors.2.f32"],
        "the compacted rows are a new file and the old one is gone"
    );
    let after = answers(d.collection(), &q);
    drop(d);
    let (d, _) = DurableCollection::open(dir.path()).unwrap();
    assert_eq!(answers(d.collection(), &q), after);
    assert_eq!(d.collection().memory().vectors_mapped, 250 * 8 * 4);

    // Renumbered for locality: a new file too, and the same answers after a reopen.
    assert_eq!(d.collection().reorder(), 0);
    assert_eq!(answers(d.collection(), &q), after);
    d.checkpoint().unwrap();
    assert_eq!(vector_files(dir.path()), vec!["vectors.3.f32"]);
    drop(d);
    let (d, _) = DurableCollection::open(dir.path()).unwrap();
    assert_eq!(answers(d.collection(), &q), after);
    assert_eq!(d.collection().info().points, 250);
    assert_eq!(d.collection().memory().vectors_mapped, 250 * 8 * 4);
}

#[test]
fn heap_vectors_stay_on_the_heap_and_mapped_ones_restore_as_single_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.on_disk = Some(false);
    let d = DurableCollection::create(&dir.path().join("heap"), cfg).unwrap();
    d.upsert((0..50).map(|i| point(i, 8)).collect()).unwrap();
    d.checkpoint().unwrap();
    assert_eq!(d.collection().memory().vectors_mapped, 0);
    assert!(vector_files(&dir.path().join("heap")).is_empty());

    // A single-file snapshot of a mapped collection carries its vectors inline.
    let mut cfg = config();
    cfg.on_disk = Some(true);
    let m = DurableCollection::create(&dir.path().join("mapped"), cfg).unwrap();
    m.upsert((0..50).map(|i| point(i, 8)).collect()).unwrap();
    m.collection().index_pending();
    m.checkpoint().unwrap();
    let q = point(3, 8).vector;
    let file = dir.path().join("one.skye");
    m.snapshot_to(&file).unwrap();
    let restored = DurableCollection::restore_from(&file, &dir.path().join("restored")).unwrap();
    assert_eq!(top(restored.collection(), &q), top(m.collection(), &q));
    assert_eq!(
        restored.collection().memory().vectors_mapped,
        50 * 8 * 4,
        "the restored collection keeps its config: mapped"
    );
}
