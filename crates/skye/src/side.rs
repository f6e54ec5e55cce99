//! `skye bench qdrant`: Skye's embedded engine, Skye serving from Qdrant, and Qdrant queried
//! directly over gRPC, on the same data in one run.
//!
//! One `skye standalone` child and one Qdrant server (started from `--qdrant-start`, or the one
//! at `--qdrant-url`). The catalog (a float32 `.npy` matrix, or clustered unit vectors) carries
//! the payload of `skye bench scale` and goes through `skye ingest` twice: into model `emb` (an
//! EMBEDDED variant) and into model `qd` (a QDRANT variant on that server), each timed to
//! COMPLETED. Qdrant's own ingest is timed by uploading the same points into a collection of
//! its own (batches of 1,000, two in flight, payload indexes first) until its optimizers are
//! idle. Then, for every query kind and target: recall@10 against an exact scan and
//! closed-loop QPS / p50 / p99 at each concurrency. Qdrant direct queries the collection Skye
//! built for `qd`, so the gap between the two is Skye's own cost. Last, an `hnsw_ef` sweep of
//! Qdrant direct puts the embedded engine's recall on Qdrant's curve.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use qdrant_client::qdrant::{
    CollectionStatus, Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    Distance, FieldType, Filter, HnswConfigDiffBuilder, PointStruct, Range, SearchParamsBuilder,
    SearchPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder, point_id::PointIdOptions,
};
use qdrant_client::{Payload, Qdrant};
use serde_json::json;
use skye_engine::search::filters::FilterOp;

use crate::bench_cmd::{percentile_ms, say};
use crate::child::{free_port, proc_mib, run_dir, start_server};
use crate::cli::BenchQdrantArgs;
use crate::http_client::HttpClient;
use crate::rng::Rng;
use crate::scale::{
    Attrs, Catalog, K, Kind, closed_loop, connect, ground_truth, kinds, model_request,
    register_entity, register_model, send_catalog, wait_model_completed, write_jsonl,
};

/// Qdrant's own collection for the direct ingest (deleted after it is timed).
const DIRECT: &str = "skye_bench_direct";

/// A Qdrant server of this run; killed when dropped.
struct OwnQdrant {
    pid: String,
}

impl Drop for OwnQdrant {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid]).status();
    }
}

/// Where the searches go.
#[derive(Clone)]
enum Target {
    /// Variant `v` of a model, through Skye's gRPC API.
    Skye(Arc<skye_client::SkyeClient>, &'static str),
    /// A Qdrant collection, with this `hnsw_ef` (`None`: the collection's default).
    Qdrant(Arc<Qdrant>, String, Option<u64>),
}

impl Target {
    /// The ids of the top-[`K`] answer.
    async fn ask(&self, vector: &[f32], kind: &Kind) -> anyhow::Result<Vec<usize>> {
        match self {
            Target::Skye(client, model) => {
                let r = client
                    .similar_candidates(model_request(model, vector, kind.filter.as_ref()))
                    .await?;
                Ok(r.responses
                    .first()
                    .map(|c| c.candidates.iter().filter_map(|c| c.id.parse().ok()))
                    .into_iter()
                    .flatten()
                    .collect())
            }
            Target::Qdrant(client, collection, ef) => {
                let mut search = SearchPointsBuilder::new(collection, vector.to_vec(), K as u64);
                if let Some(ef) = ef {
                    search = search.params(SearchParamsBuilder::default().hnsw_ef(*ef));
                }
                if let Some(f) = &kind.filter {
                    search = search.filter(qdrant_filter(f)?);
                }
                let r = client.search_points(search).await?;
                Ok(r.result
                    .iter()
                    .filter_map(|p| match p.id.as_ref()?.point_id_options {
                        Some(PointIdOptions::Num(n)) => Some(n as usize),
                        _ => None,
                    })
                    .collect())
            }
        }
    }
}

/// The Qdrant filter a user would write for one of the bench's filters.
fn qdrant_filter(f: &skye_proto::Filter) -> anyhow::Result<Filter> {
    let value = f.values.first().cloned().unwrap_or_default();
    Ok(Filter::must([match FilterOp::from_proto(f.op) {
        Some(FilterOp::In) => Condition::matches(f.field.clone(), f.values.clone()),
        Some(FilterOp::Lt) => Condition::range(
            f.field.clone(),
            Range {
                lt: Some(value.parse().context("a numeric LT bound")?),
                ..Range::default()
            },
        ),
        other => bail!("no Qdrant translation in the bench for {other:?}"),
    }]))
}

/// One row of the results.
struct Measured {
    kind: &'static str,
    target: String,
    recall: f64,
    /// (concurrency, QPS, p50 ms, p99 ms)
    load: Vec<(usize, f64, f64, f64)>,
}

/// `skye bench qdrant`.
pub async fn side_by_side(args: &BenchQdrantArgs, parent: Option<&Path>) -> anyhow::Result<()> {
    let dir = run_dir(parent, "skye-side")?;
    let outcome = run(args, &dir).await;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome.with_context(|| format!("server log: {}", dir.join("server.log").display()))
}

async fn run(args: &BenchQdrantArgs, dir: &Path) -> anyhow::Result<()> {
    let (vectors, queries, dim) = dataset(args)?;
    let n = vectors.len() / dim;
    say(&format!(
        "skye bench qdrant: {n} points × {dim} dims, {} queries per kind, concurrency {:?}, {} s each; data under {}",
        queries.len(),
        args.concurrency,
        args.duration,
        dir.display()
    ));
    let (url, _own) = qdrant(args, dir)?;
    let (host, port) = host_port(&url)?;
    let file = dir.join("catalog.jsonl");
    write_jsonl(&vectors, dim, &file)?;
    let server = start_server(dir, None, Duration::from_secs(60)).await?;
    let http = HttpClient::new(None);
    register_entity(&http, &server.admin).await?;
    register_model(&http, &server.admin, "emb", args.partitions, dim, json!({})).await?;
    register_model(
        &http,
        &server.admin,
        "qd",
        args.partitions,
        dim,
        json!({"vector_db_type": "QDRANT", "vector_db_config": {
            "read_host": host, "write_host": host, "port": port,
            "http2config": {"deadline": 5000, "write_deadline": 30000}}}),
    )
    .await?;

    let mut ingest = Vec::new();
    for (model, label) in [("emb", "Skye embedded"), ("qd", "Skye → Qdrant")] {
        say(&format!("\n== ingest into {label} (model {model})"));
        let started = Instant::now();
        let summary = send_catalog(&http, &server, model, &file, args.batch, false).await?;
        let sent = started.elapsed().as_secs_f64();
        say(&format!("  sent in {sent:.1} s: {summary}"));
        wait_model_completed(
            &http,
            &server.admin,
            model,
            Duration::from_secs(args.timeout),
        )
        .await?;
        let searchable = started.elapsed().as_secs_f64();
        say(&format!("  COMPLETED after {searchable:.1} s"));
        ingest.push((label.to_string(), n as f64 / sent, searchable));
    }
    let _ = std::fs::remove_file(&file);

    let client = Arc::new(
        Qdrant::from_url(&url)
            .timeout(Duration::from_secs(30))
            .skip_compatibility_check()
            .build()?,
    );
    let collection = skye_collection(&client).await?;
    if !args.no_direct_ingest {
        say(&format!(
            "\n== Qdrant direct ingest (the collection Skye built is {collection})"
        ));
        let (rate, searchable) = direct_ingest(&client, &collection, &vectors, dim).await?;
        ingest.push(("Qdrant direct".into(), rate, searchable));
    }
    if let Some(pid) = &_own {
        say(&format!(
            "  Qdrant RSS {:.0} MiB (its collection and Skye's); Skye RSS {:.0} MiB",
            proc_mib(pid.pid.parse()?, "VmRSS").unwrap_or(0.0),
            proc_mib(server.pid(), "VmRSS").unwrap_or(0.0)
        ));
    }

    let kinds = kinds();
    let started = Instant::now();
    let truth = ground_truth(&vectors, dim, &queries, &kinds);
    say(&format!(
        "\n== exact top-{K} of {} queries × {} kinds in {:.1} s",
        queries.len(),
        kinds.len(),
        started.elapsed().as_secs_f64()
    ));
    let skye = connect(&server).await?;
    let targets = [
        ("Skye embedded", Target::Skye(skye.clone(), "emb")),
        ("Skye → Qdrant", Target::Skye(skye.clone(), "qd")),
        (
            "Qdrant direct",
            Target::Qdrant(client.clone(), collection.clone(), None),
        ),
    ];
    let queries = Arc::new(queries);
    let kinds = Arc::new(kinds);
    let mut rows = Vec::new();
    for k in 0..kinds.len() {
        for (label, target) in &targets {
            let recall = recall(target, &queries, &kinds[k], &truth[k]).await?;
            let mut load = Vec::new();
            for &c in &args.concurrency {
                let (qps, p50, p99) =
                    measure(target, &queries, &kinds, k, c, args.duration).await?;
                load.push((c, qps, p50, p99));
            }
            say(&format!(
                "  {:<16} {label:<14} recall {recall:.3}  {}",
                kinds[k].name,
                load.iter()
                    .map(|(c, q, p50, p99)| format!("c{c}: {q:.0} QPS p50 {p50:.2} p99 {p99:.2}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
            rows.push(Measured {
                kind: kinds[k].name,
                target: label.to_string(),
                recall,
                load,
            });
        }
    }

    say("\n== hnsw_ef sweep, Qdrant direct, unfiltered");
    let sweep_c = *args.concurrency.iter().max().unwrap_or(&1);
    let mut sweep = Vec::new();
    for &ef in &args.ef_sweep {
        let target = Target::Qdrant(client.clone(), collection.clone(), Some(ef));
        let recall = recall(&target, &queries, &kinds[0], &truth[0]).await?;
        let (qps, p50, p99) = measure(&target, &queries, &kinds, 0, sweep_c, args.duration).await?;
        say(&format!(
            "  ef {ef:>4}: recall {recall:.3}, c{sweep_c}: {qps:.0} QPS p50 {p50:.2} p99 {p99:.2}"
        ));
        sweep.push((recall, qps));
    }
    server.stop()?;
    report(&ingest, &rows, &sweep, sweep_c);
    Ok(())
}

/// The catalog rows (unit length) and the held-out queries, row-major, and the dimension.
fn dataset(args: &BenchQdrantArgs) -> anyhow::Result<(Vec<f32>, Vec<Vec<f32>>, usize)> {
    let Some(path) = &args.vectors else {
        let catalog = Catalog::new(args.dim);
        let mut rng = Rng(0xCA7A_1065);
        let vectors = (0..args.points)
            .flat_map(|_| catalog.point(&mut rng))
            .collect();
        let mut rng = Rng(0x0E1_2345);
        let queries = (0..args.queries).map(|_| catalog.point(&mut rng)).collect();
        return Ok((vectors, queries, args.dim));
    };
    let (mut all, rows, dim) = skye_index::npy::read_f32(&path.display().to_string())
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--vectors {}", path.display()))?;
    // Cosine: unit rows score by their dot product, as the exact scan does; zero rows dropped.
    let mut kept = 0;
    for r in 0..rows {
        let row = &all[r * dim..(r + 1) * dim];
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            let unit: Vec<f32> = row.iter().map(|x| x / norm).collect();
            all[kept * dim..(kept + 1) * dim].copy_from_slice(&unit);
            kept += 1;
        }
    }
    all.truncate(kept * dim);
    if args.points > 0 && args.points + args.queries < kept {
        all.truncate((args.points + args.queries) * dim);
    }
    let held = args.queries.min(kept / 2);
    let queries = all[all.len() - held * dim..]
        .chunks_exact(dim)
        .map(<[f32]>::to_vec)
        .collect();
    all.truncate(all.len() - held * dim);
    Ok((all, queries, dim))
}

/// The Qdrant gRPC URL, and the server this run started (stopped when dropped).
fn qdrant(args: &BenchQdrantArgs, dir: &Path) -> anyhow::Result<(String, Option<OwnQdrant>)> {
    if let Some(url) = &args.qdrant_url {
        return Ok((url.clone(), None));
    }
    let start: PathBuf = args.qdrant_start.clone();
    let (http, grpc) = (free_port()?, free_port()?);
    let out = Command::new(&start)
        .arg(dir.join("qdrant"))
        .args([http.to_string(), grpc.to_string()])
        .output()
        .with_context(|| format!("cannot run {} (--qdrant-start)", start.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            start.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let own = OwnQdrant {
        pid: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    };
    say(&format!(
        "  Qdrant (pid {}) on 127.0.0.1:{grpc} (gRPC), :{http} (REST)",
        own.pid
    ));
    Ok((format!("http://127.0.0.1:{grpc}"), Some(own)))
}

fn host_port(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .with_context(|| format!("{url}: expected http://HOST:GRPC_PORT"))?;
    Ok((host.to_string(), port.to_string()))
}

/// The newest collection Skye created for variant `v` of model `qd`.
async fn skye_collection(client: &Qdrant) -> anyhow::Result<String> {
    let mut names: Vec<(i64, String)> = client
        .list_collections()
        .await?
        .collections
        .into_iter()
        .filter_map(|c| Some((c.name.strip_prefix("v_qd_")?.parse().ok()?, c.name)))
        .collect();
    names.sort();
    names
        .pop()
        .map(|(_, name)| name)
        .context("Qdrant holds no v_qd_<n> collection after the job")
}

/// Uploads the catalog into a collection of Qdrant's own with the HNSW settings of Skye's,
/// as a Qdrant user would; returns points/s of the upload and seconds until the optimizers are
/// idle (searchable at full speed). The collection is deleted afterwards.
async fn direct_ingest(
    client: &Arc<Qdrant>,
    like: &str,
    vectors: &[f32],
    dim: usize,
) -> anyhow::Result<(f64, f64)> {
    let hnsw = client
        .collection_info(like)
        .await?
        .result
        .and_then(|i| i.config)
        .and_then(|c| c.hnsw_config)
        .unwrap_or_default();
    let (m, efc) = (hnsw.m.unwrap_or(16), hnsw.ef_construct.unwrap_or(100));
    if client.collection_exists(DIRECT).await? {
        client.delete_collection(DIRECT).await?;
    }
    client
        .create_collection(
            CreateCollectionBuilder::new(DIRECT)
                .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine))
                .hnsw_config(HnswConfigDiffBuilder::default().m(m).ef_construct(efc)),
        )
        .await?;
    for (field, kind) in [
        ("cat", FieldType::Keyword),
        ("tier", FieldType::Keyword),
        ("half", FieldType::Keyword),
        ("price", FieldType::Integer),
    ] {
        client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(DIRECT, field, kind).wait(true),
            )
            .await?;
    }
    let n = vectors.len() / dim;
    let started = Instant::now();
    let batches: Vec<(usize, usize)> = (0..n)
        .step_by(1000)
        .map(|s| (s, (s + 1000).min(n)))
        .collect();
    let vectors = Arc::new(vectors.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (client, vectors, next, batches) = (
                client.clone(),
                vectors.clone(),
                next.clone(),
                batches.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(from, to)) = batches.get(b) else {
                        return anyhow::Ok(());
                    };
                    let points: Vec<PointStruct> = (from..to)
                        .map(|i| {
                            let v = vectors[i * dim..(i + 1) * dim].to_vec();
                            PointStruct::new(i as u64, v, payload(i))
                        })
                        .collect();
                    client
                        .upsert_points(UpsertPointsBuilder::new(DIRECT, points).wait(true))
                        .await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let uploaded = started.elapsed().as_secs_f64();
    say(&format!(
        "  uploaded in {uploaded:.1} s ({:.0} points/s, m {m}, ef_construct {efc})",
        n as f64 / uploaded
    ));
    loop {
        let info = client.collection_info(DIRECT).await?.result;
        let green = info
            .as_ref()
            .is_some_and(|i| i.status == CollectionStatus::Green as i32);
        if green {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("Qdrant's optimizers still busy after an hour");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let searchable = started.elapsed().as_secs_f64();
    let info = client.collection_info(DIRECT).await?.result;
    say(&format!(
        "  optimizers idle after {searchable:.1} s ({} of {n} vectors in HNSW segments)",
        info.and_then(|i| i.indexed_vectors_count).unwrap_or(0)
    ));
    client.delete_collection(DIRECT).await?;
    Ok((n as f64 / uploaded, searchable))
}

fn payload(i: usize) -> Payload {
    let a = Attrs::of(i);
    let mut p = Payload::with_capacity(4);
    p.insert("cat", format!("c{}", a.cat));
    p.insert("tier", format!("t{}", a.tier));
    p.insert("half", format!("h{}", a.half));
    p.insert("price", i64::from(a.price));
    p
}

/// recall@K of `target` on every query of `kind`.
async fn recall(
    target: &Target,
    queries: &[Vec<f32>],
    kind: &Kind,
    truth: &[Vec<usize>],
) -> anyhow::Result<f64> {
    let (mut hits, mut wanted) = (0, 0);
    for (q, exact) in queries.iter().zip(truth) {
        let got: HashSet<usize> = target.ask(q, kind).await?.into_iter().collect();
        wanted += exact.len();
        hits += exact.iter().filter(|i| got.contains(i)).count();
    }
    Ok(hits as f64 / wanted.max(1) as f64)
}

/// QPS, p50 and p99 (ms) of `concurrency` closed-loop clients.
async fn measure(
    target: &Target,
    queries: &Arc<Vec<Vec<f32>>>,
    kinds: &Arc<Vec<Kind>>,
    kind: usize,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    let (target, queries, kinds) = (target.clone(), queries.clone(), kinds.clone());
    let (qps, mut lat) = closed_loop(concurrency, seconds, move |i| {
        let (target, queries, kinds) = (target.clone(), queries.clone(), kinds.clone());
        async move {
            target
                .ask(&queries[i % queries.len()], &kinds[kind])
                .await?;
            Ok(())
        }
    })
    .await?;
    lat.sort_unstable();
    Ok((qps, percentile_ms(&lat, 0.5), percentile_ms(&lat, 0.99)))
}

/// The summary tables (Markdown), and Skye's overhead over Qdrant.
fn report(ingest: &[(String, f64, f64)], rows: &[Measured], sweep: &[(f64, f64)], sweep_c: usize) {
    say("\n| target | ingest points/s | time to searchable s |\n|---|---:|---:|");
    for (label, rate, searchable) in ingest {
        say(&format!("| {label} | {rate:.0} | {searchable:.1} |"));
    }
    let Some(first) = rows.first() else { return };
    let mut head = "\n| query | target | recall@10 |".to_string();
    let mut rule = "|---|---|---:|".to_string();
    for (c, ..) in &first.load {
        head.push_str(&format!(" QPS c{c} | p50 c{c} | p99 c{c} |"));
        rule.push_str("---:|---:|---:|");
    }
    say(&format!("{head}\n{rule}"));
    for r in rows {
        let cells: String = r
            .load
            .iter()
            .map(|(_, q, p50, p99)| format!(" {q:.0} | {p50:.2} | {p99:.2} |"))
            .collect();
        say(&format!(
            "| {} | {} | {:.3} |{cells}",
            r.kind, r.target, r.recall
        ));
    }
    say("\nSkye's overhead on Qdrant (Skye → Qdrant minus Qdrant direct, share of Qdrant's p50):");
    for pair in rows.chunks(3) {
        let [_, via, direct] = pair else { continue };
        let cells: Vec<String> = via
            .load
            .iter()
            .zip(&direct.load)
            .map(|((c, _, p50, _), (_, _, q50, _))| {
                format!(
                    "c{c} {:+.3} ms ({:+.0} %)",
                    p50 - q50,
                    100.0 * (p50 - q50) / q50
                )
            })
            .collect();
        say(&format!("  {:<16} {}", via.kind, cells.join(", ")));
    }
    if let (Some(embedded), Some(at)) = (
        rows.first().map(|r| r.recall),
        rows.first()
            .and_then(|r| r.load.iter().find(|l| l.0 == sweep_c)),
    ) {
        match qps_at(sweep, embedded) {
            Some(q) => say(&format!(
                "Unfiltered at the embedded engine's recall {embedded:.3}, c{sweep_c}: \
                 embedded {:.0} QPS, Qdrant direct {q:.0} QPS (interpolated on its hnsw_ef sweep): {:.2}×",
                at.1,
                at.1 / q
            )),
            None => say(&format!(
                "Qdrant direct's hnsw_ef sweep never reached the embedded engine's recall {embedded:.3}"
            )),
        }
    }
}

/// QPS at `recall`, linearly between the two sweep points around it.
fn qps_at(sweep: &[(f64, f64)], recall: f64) -> Option<f64> {
    let mut points = sweep.to_vec();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let above = points.iter().position(|p| p.0 >= recall)?;
    if above == 0 {
        return Some(points[0].1);
    }
    let (lo, hi) = (points[above - 1], points[above]);
    let t = if hi.0 > lo.0 {
        (recall - lo.0) / (hi.0 - lo.0)
    } else {
        1.0
    };
    Some(lo.1 + t * (hi.1 - lo.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qps_at_interpolates_between_the_sweep_points_around_the_recall() {
        let sweep = [(0.90, 3000.0), (0.99, 1000.0), (0.95, 2000.0)];
        assert_eq!(qps_at(&sweep, 0.95), Some(2000.0));
        let mid = qps_at(&sweep, 0.97).unwrap();
        assert!((mid - 1500.0).abs() < 1.0, "{mid}");
        assert_eq!(qps_at(&sweep, 0.80), Some(3000.0));
        assert_eq!(qps_at(&sweep, 0.999), None);
    }

    #[test]
    fn the_bench_filters_translate_to_qdrant_conditions() {
        for kind in kinds().iter().filter_map(|k| k.filter.as_ref()) {
            let f = qdrant_filter(kind).unwrap();
            assert_eq!(f.must.len(), 1, "{kind:?}");
        }
        let unknown = skye_proto::Filter {
            field: "cat".into(),
            op: FilterOp::from_name("EX").unwrap().to_proto(),
            values: vec![],
        };
        assert!(qdrant_filter(&unknown).is_err());
    }

    #[test]
    fn grpc_urls_split_into_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:16334/").unwrap(),
            ("127.0.0.1".to_string(), "16334".to_string())
        );
        assert!(host_port("nohost").is_err());
    }
}
