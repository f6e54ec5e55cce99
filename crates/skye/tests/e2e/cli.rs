//! The newcomer paths: `skye standalone --demo` and `skye ingest`.

use std::process::Command;
use std::time::Duration;

use skye_client::{ClientConfig, SkyeClient};
use skye_proto::{Embedding, SkyeRequest};

use crate::lifecycle::{register, wait_completed};
use crate::support::{Http, Skye};

#[test]
fn the_demo_prints_a_first_search_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "standalone",
        "--demo",
        "--admin-port",
        "0",
        "--serving-port",
        "0",
        "--consumers-port",
        "0",
    ];
    let components = ["admin", "serving", "consumers"];
    let wait_for = |skye: &Skye, needle: &str| {
        for _ in 0..600 {
            let out = skye.output.lock().unwrap().join("\n");
            if out.contains(needle) {
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no '{needle}' in the output: {:?}",
            skye.output.lock().unwrap()
        );
    };
    let skye = Skye::start(dir.path(), &args, &[], &components);
    let out = wait_for(&skye, "grpcurl");
    assert!(out.contains("products similar to p40 (shoes)"), "{out}");
    let hits: Vec<&str> = out.lines().filter(|l| l.contains(" score ")).collect();
    assert_eq!(hits.len(), 10, "two searches of 5: {out}");
    assert!(
        hits.iter().all(|l| l.contains("shoes")),
        "neighbours share the category: {out}"
    );
    assert!(out.contains("is now out_of_stock=true"), "{out}");
    skye.kill();
    let again = Skye::start(dir.path(), &args, &[], &components);
    let out = wait_for(&again, "grpcurl");
    assert!(out.contains("already loaded"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skye_ingest_loads_jsonl_npy_and_parquet_files_and_waits_for_completion() {
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[("AUTH_TOKENS", "tok")]);
    let http = Http::new().with_header("skye-auth-token", "tok");
    register(&skye, &http).await;
    let files = tempfile::tempdir().unwrap();
    let jsonl = files.path().join("rows.jsonl");
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!(
            "{{\"id\": \"j{i}\", \"embedding\": [{}, 1.0, 0.5, {}], \"payload\": {{\"brand\": \"b{}\"}}}}\n",
            i as f32 / 10.0,
            (i % 7) as f32,
            i % 3
        ));
    }
    std::fs::write(&jsonl, text).unwrap();
    let run = |file: &std::path::Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_skye"))
            .args([
                "ingest",
                "--entity",
                "catalog",
                "--model",
                "intent",
                "--variant",
                "all",
            ])
            .args(["--admin-url", &skye.url("admin", "")])
            .args(["--consumers-url", &skye.url("consumers", "")])
            .args(["--batch", "16", "--token", "tok", "--timeout", "60"])
            .args(extra)
            .arg(file)
            .env_remove("SKYE_AUTH_TOKEN")
            .output()
            .unwrap()
    };
    let out = run(&jsonl, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("50 rows sent") && stdout.contains("COMPLETED"),
        "{stdout}"
    );
    let v = wait_completed(&skye, &http, "all").await;
    assert_eq!(v["vector_db_read_version"], 1);
    let client = SkyeClient::connect({
        let mut c =
            ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5));
        c.auth_token = Some("tok".into());
        c
    })
    .await
    .unwrap();
    let search = |limit: i32| SkyeRequest {
        entity: "catalog".into(),
        model_name: "intent".into(),
        variant: "all".into(),
        limit,
        embeddings: vec![Embedding {
            embedding: vec![1.0, 1.0, 0.5, 1.0],
        }],
        attribute: vec!["brand".into()],
        ..Default::default()
    };
    let r = client.similar_candidates(search(100)).await.unwrap();
    assert_eq!(r.responses[0].candidates.len(), 50);
    assert!(
        r.responses[0]
            .candidates
            .iter()
            .all(|c| c.id.starts_with('j'))
    );

    // A float32 .npy matrix with an ids file: a new RESET job replaces the catalog (sent as
    // JSON arrays this time; the other files go as binary events).
    let npy = files.path().join("vectors.npy");
    let rows = 30usize;
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, 4), }}");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let padded = format!("{header:<width$}\n", width = 128 - 10 - 1);
    bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
    bytes.extend_from_slice(padded.as_bytes());
    for i in 0..rows {
        for d in 0..4 {
            bytes.extend_from_slice(&((i * 4 + d) as f32 + 1.0).to_le_bytes());
        }
    }
    std::fs::write(&npy, bytes).unwrap();
    let ids = files.path().join("ids.txt");
    std::fs::write(
        &ids,
        (0..rows).map(|i| format!("n{i}\n")).collect::<String>(),
    )
    .unwrap();
    let out = run(&npy, &["--ids", ids.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = client.similar_candidates(search(100)).await.unwrap();
    assert_eq!(r.responses[0].candidates.len(), rows);
    assert!(
        r.responses[0]
            .candidates
            .iter()
            .all(|c| c.id.starts_with('n'))
    );

    // Parquet (pyarrow-style: string ids, list<float> embeddings, a payload column).
    {
        use arrow_array::builder::{Float32Builder, ListBuilder};
        use arrow_array::{ArrayRef, RecordBatch, StringArray};
        use std::sync::Arc;
        let n = 12;
        let mut emb = ListBuilder::new(Float32Builder::new());
        for i in 0..n {
            emb.values().append_slice(&[1.0, i as f32, 0.5, 1.0]);
            emb.append(true);
        }
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(StringArray::from(
                    (0..n).map(|i| format!("q{i}")).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            ("embedding", Arc::new(emb.finish()) as ArrayRef),
            (
                "brand",
                Arc::new(StringArray::from(vec!["acme"; n])) as ArrayRef,
            ),
        ])
        .unwrap();
        let path = files.path().join("rows.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let out = run(&path, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = client.similar_candidates(search(100)).await.unwrap();
        assert_eq!(r.responses[0].candidates.len(), n);
        assert!(
            r.responses[0]
                .candidates
                .iter()
                .all(|c| c.id.starts_with('q')
                    && c.meta.as_ref().unwrap().attributes_map["brand"] == "acme")
        );
    }

    // Clear errors: a wrong token, a bad file.
    let bad = Command::new(env!("CARGO_BIN_EXE_skye"))
        .args(["ingest", "--entity", "catalog", "--model", "intent"])
        .args(["--admin-url", &skye.url("admin", ""), "--token", "wrong"])
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
