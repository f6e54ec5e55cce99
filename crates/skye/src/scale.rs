//! `skye bench scale`: a catalog of N points through a real `skye standalone` child, end to end.
//!
//! For each size: a JSON lines catalog (clustered unit vectors, four payload fields of fixed
//! selectivity) goes through `skye ingest` (job ticket, events over HTTP spread over the
//! partitions, one EOF per partition, consumers, state machine) to COMPLETED; the server's RSS is
//! sampled all along and broken down from its `/metrics` collection gauges; the server is
//! stopped and started again on the same data and timed until its first answered search; then
//! recall@10 (against an exact scan of the catalog done here) and closed-loop QPS / p50 / p99
//! over gRPC, unfiltered and with each filter. One summary line per size at the end shows how
//! each cost grows.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::bench_cmd::{percentile_ms, say};
use crate::child::{Server, proc_mib, rss_mib, run_dir, start_server};
use crate::cli::BenchScaleArgs;
use crate::http_client::HttpClient;
use crate::ingest_cli::{self, IngestJob};
use crate::rng::Rng;

mod queries;

use queries::*;
#[cfg(feature = "qdrant")]
pub(crate) use queries::{closed_loop, ground_truth, model_request};

pub(crate) const ENTITY: &str = "scale";
const MODEL: &str = "m";
pub(crate) const VARIANT: &str = "v";
pub(crate) const K: usize = 10;

/// The payload of point `i`: independent fields from one hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attrs {
    /// `cat`: 100 values, 1 % each.
    pub(crate) cat: u8,
    /// `tier`: 10 values, 10 % each.
    pub(crate) tier: u8,
    /// `half`: 2 values, 50 % each.
    pub(crate) half: u8,
    /// `price`: integer 0..10,000.
    pub(crate) price: u16,
}

impl Attrs {
    pub(crate) fn of(i: usize) -> Attrs {
        let mut h = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
        Attrs {
            cat: (h % 100) as u8,
            tier: ((h >> 8) % 10) as u8,
            half: ((h >> 16) % 2) as u8,
            price: ((h >> 24) % 10_000) as u16,
        }
    }
}

/// A query kind: a name, the filter sent, and which points it admits.
pub(crate) struct Kind {
    pub(crate) name: &'static str,
    pub(crate) filter: Option<skye_proto::Filter>,
    pub(crate) admits: fn(&Attrs) -> bool,
}

pub(crate) fn kinds() -> Vec<Kind> {
    let f = |field: &str, op: &str, values: &[&str]| {
        Some(skye_proto::Filter {
            field: field.into(),
            op: skye_engine::search::filters::FilterOp::from_name(op)
                .map(|o| o.to_proto())
                .unwrap_or_default(),
            values: values.iter().map(|v| v.to_string()).collect(),
        })
    };
    vec![
        Kind {
            name: "unfiltered",
            filter: None,
            admits: |_| true,
        },
        Kind {
            name: "cat=c7 (1 %)",
            filter: f("cat", "IN", &["c7"]),
            admits: |a| a.cat == 7,
        },
        Kind {
            name: "tier=t3 (10 %)",
            filter: f("tier", "IN", &["t3"]),
            admits: |a| a.tier == 3,
        },
        Kind {
            name: "half=h1 (50 %)",
            filter: f("half", "IN", &["h1"]),
            admits: |a| a.half == 1,
        },
        Kind {
            name: "price<500 (5 %)",
            filter: f("price", "LT", &["500"]),
            admits: |a| a.price < 500,
        },
    ]
}

/// Clustered unit vectors: a point is one of 1,000 random centres plus noise.
pub(crate) struct Catalog {
    dim: usize,
    centres: Vec<Vec<f32>>,
}

impl Catalog {
    pub(crate) fn new(dim: usize) -> Catalog {
        let mut rng = Rng(0x5CA1E);
        let centres = (0..1000)
            .map(|_| (0..dim).map(|_| rng.unit()).collect())
            .collect();
        Catalog { dim, centres }
    }

    pub(crate) fn point(&self, rng: &mut Rng) -> Vec<f32> {
        let c = &self.centres[(rng.next() % self.centres.len() as u64) as usize];
        let mut v: Vec<f32> = c.iter().map(|x| x + 0.6 * rng.unit()).collect();
        let norm = v
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        v.iter_mut().for_each(|x| *x /= norm);
        debug_assert_eq!(v.len(), self.dim);
        v
    }
}

/// What one size measured.
#[derive(Debug, Default, Clone)]
struct Row {
    points: usize,
    send_rate: f64,
    consumed_s: f64,
    completed_s: f64,
    peak_rss: f64,
    steady_rss: f64,
    engine_mib: f64,
    restart_s: f64,
    served_rss: f64,
    disk_mib: f64,
    /// (kind, QPS, p50, p99, recall)
    queries: Vec<(&'static str, f64, f64, f64, f64)>,
}

/// `skye bench scale`.
pub async fn scale(args: &BenchScaleArgs, parent: Option<&Path>) -> anyhow::Result<()> {
    let root = run_dir(parent, "skye-scale")?;
    say(&format!(
        "skye bench scale: sizes {:?}, {} dims, {} partitions, {} queries × {} s × {} workers per kind; data under {}",
        args.points,
        args.dim,
        args.partitions,
        args.queries,
        args.duration,
        args.concurrency,
        root.display()
    ));
    let mut rows = Vec::new();
    for &n in &args.points {
        let dir = root.join(format!("n{n}"));
        std::fs::create_dir_all(&dir)?;
        let outcome = one_size(args, n, &dir).await;
        if !args.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        rows.push(outcome.with_context(|| {
            format!(
                "size {n} (server log: {})",
                dir.join("server.log").display()
            )
        })?);
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&root);
    }
    say(
        "\nsummary (RSS in MiB; engine = the collection's heap figures; restart = stop → first answered search)",
    );
    say(
        "   points  send/s  consumed s  COMPLETED s  peak RSS  steady RSS  engine  restart s  served RSS  disk MiB",
    );
    for r in &rows {
        say(&format!(
            "{:>9} {:>7.0} {:>11.1} {:>12.1} {:>9.0} {:>11.0} {:>7.0} {:>10.2} {:>11.0} {:>9.0}",
            r.points,
            r.send_rate,
            r.consumed_s,
            r.completed_s,
            r.peak_rss,
            r.steady_rss,
            r.engine_mib,
            r.restart_s,
            r.served_rss,
            r.disk_mib
        ));
    }
    say("   points  query                QPS   p50 ms   p99 ms  recall@10");
    for r in &rows {
        for (kind, qps, p50, p99, recall) in &r.queries {
            say(&format!(
                "{:>9}  {kind:<16} {qps:>8.0} {p50:>8.2} {p99:>8.2} {recall:>10.3}",
                r.points
            ));
        }
    }
    Ok(())
}

async fn one_size(args: &BenchScaleArgs, n: usize, dir: &Path) -> anyhow::Result<Row> {
    let mut row = Row {
        points: n,
        ..Row::default()
    };
    let catalog = Catalog::new(args.dim);
    say(&format!(
        "\n== {n} points × {} dims: writing the catalog",
        args.dim
    ));
    let started = Instant::now();
    let file = dir.join("catalog.jsonl");
    let vectors = catalog_points(&catalog, n);
    write_jsonl(&vectors, args.dim, &file)?;
    say(&format!(
        "  {:.1} s, {:.0} MB",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&file)?.len() as f64 / 1e6
    ));

    let config = args.server_config.as_deref();
    let server = start_server(dir, config, Duration::from_secs(60)).await?;
    let http = HttpClient::new(None);
    register(&http, &server.admin, args).await?;

    // Sampled while the job runs: RSS, events consumed, points linked.
    let done = Arc::new(AtomicBool::new(false));
    let consumed_ms = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_job(
        server.pid(),
        server.consumers.clone(),
        server.serving.clone(),
        n,
        done.clone(),
        consumed_ms.clone(),
    ));
    let started = Instant::now();
    let summary = send_catalog(&http, &server, MODEL, &file, args.batch, args.json_ingest).await?;
    let sent = started.elapsed().as_secs_f64();
    row.send_rate = n as f64 / sent.max(1e-9);
    // Every row is in the event log now: the catalog's disk space goes back at once.
    let _ = std::fs::remove_file(&file);
    say(&format!("  sent: {summary}"));
    wait_completed(&http, &server.admin, Duration::from_secs(args.timeout)).await?;
    row.completed_s = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Release);
    let _ = sampler.await;
    row.consumed_s = consumed_ms.load(Ordering::Acquire) as f64 / 1000.0;
    row.peak_rss = proc_mib(server.pid(), "VmHWM")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    row.steady_rss = rss_mib(server.pid())?;
    say(&format!(
        "  steady RSS: anonymous {:.0} MiB, file-backed {:.0} MiB",
        proc_mib(server.pid(), "RssAnon")?,
        proc_mib(server.pid(), "RssFile")?
    ));
    let figures = scrape(&http, &server.serving).await?;
    row.engine_mib = figures.iter().map(|(_, b)| b).sum::<f64>() / (1 << 20) as f64;
    say(&format!(
        "  COMPLETED after {:.1} s (all events consumed after {:.1} s); RSS peak {:.0} MiB, steady {:.0} MiB",
        row.completed_s, row.consumed_s, row.peak_rss, row.steady_rss
    ));
    say(&format!(
        "  engine heap {:.0} MiB: {}",
        row.engine_mib,
        figures
            .iter()
            .map(|(part, b)| format!("{part} {:.0}", b / (1 << 20) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let stopped = server.stop()?;
    row.disk_mib = dir_bytes(&dir.join("data")) as f64 / (1 << 20) as f64;
    say(&format!(
        "  stopped in {:.2} s; data directory {:.0} MiB; restarting",
        stopped.as_secs_f64(),
        row.disk_mib
    ));
    if args.cold_restart {
        drop_page_cache()?;
        say("  page cache dropped: the restart reads every file from disk");
    }
    let started = Instant::now();
    let server = start_server(dir, config, Duration::from_secs(600)).await?;
    let health = started.elapsed().as_secs_f64();
    let client = connect(&server).await?;
    let probe = request(&vectors[..args.dim], None);
    loop {
        match client.similar_candidates(probe.clone()).await {
            Ok(r)
                if r.responses
                    .first()
                    .is_some_and(|c| !c.candidates.is_empty()) =>
            {
                break;
            }
            _ if started.elapsed() > Duration::from_secs(600) => {
                bail!("no search answered within 600 s of the restart")
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    row.restart_s = started.elapsed().as_secs_f64();
    say(&format!(
        "  restart: health after {health:.2} s, first answered search after {:.2} s",
        row.restart_s
    ));
    let (after, failed) = first_searches(&client, &vectors, args.dim, 100).await;
    say(&format!(
        "  the next 100 searches (one at a time): {:.2} s in all, slowest {:.1} ms, {failed} failed",
        after.iter().sum::<f64>(),
        after.iter().copied().fold(0.0, f64::max) * 1e3
    ));

    row.queries = measure_queries(args, &catalog, &vectors, &server).await?;
    row.served_rss = rss_mib(server.pid())?;
    say(&format!(
        "  RSS of the restarted server after the queries {:.0} MiB (peak {:.0}; anonymous {:.0}, \
         file-backed {:.0}: mapped vector pages the searches touched)",
        row.served_rss,
        proc_mib(server.pid(), "VmHWM")?,
        proc_mib(server.pid(), "RssAnon")?,
        proc_mib(server.pid(), "RssFile")?
    ));
    let figures = scrape(&http, &server.serving).await?;
    say(&format!(
        "  engine after the restart: {}",
        figures
            .iter()
            .map(|(part, b)| format!("{part} {:.0}", b / (1 << 20) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    server.stop()?;
    Ok(row)
}

/// Empties the kernel's page cache (after a `sync`), so that a restart starts cold.
fn drop_page_cache() -> anyhow::Result<()> {
    let synced = std::process::Command::new("sync").status();
    if !synced.is_ok_and(|s| s.success()) {
        bail!("`sync` failed before dropping the page cache");
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").map_err(|e| {
        anyhow::anyhow!("--cold-restart: cannot write /proc/sys/vm/drop_caches ({e}); run as root")
    })
}

/// Seconds each of `n` searches took, sent one after another with catalog points as queries,
/// and how many of them failed (a failure's time is not counted: a quick error is no answer).
async fn first_searches(
    client: &skye_client::SkyeClient,
    vectors: &[f32],
    dim: usize,
    n: usize,
) -> (Vec<f64>, usize) {
    let rows = vectors.len() / dim;
    let mut took = Vec::with_capacity(n);
    let mut failed = 0;
    for i in 0..n {
        let at = (i * 7919 % rows) * dim;
        let started = Instant::now();
        match client
            .similar_candidates(request(&vectors[at..at + dim], None))
            .await
        {
            Ok(_) => took.push(started.elapsed().as_secs_f64()),
            Err(_) => failed += 1,
        }
    }
    (took, failed)
}

/// Sends a JSON lines catalog into every variant of `model` through `skye ingest` (job, events
/// as binary or, with `json`, JSON arrays; EOFs) without waiting for COMPLETED; returns its
/// summary line.
pub(crate) async fn send_catalog(
    http: &HttpClient,
    server: &Server,
    model: &str,
    file: &Path,
    batch: usize,
    json: bool,
) -> anyhow::Result<String> {
    let job = IngestJob {
        entity: ENTITY.into(),
        model: model.into(),
        variants: Vec::new(),
        file: file.to_path_buf(),
        ids: None,
        admin: server.admin.clone(),
        consumers: server.consumers.clone(),
        topic: None,
        batch,
        wait: false,
        timeout: Duration::ZERO,
        json,
    };
    ingest_cli::run(job, http.clone()).await
}

/// `n` points of `catalog`, row-major.
fn catalog_points(catalog: &Catalog, n: usize) -> Vec<f32> {
    let mut rng = Rng(0xCA7A_1065);
    let mut all = Vec::with_capacity(n * catalog.dim);
    for _ in 0..n {
        all.extend_from_slice(&catalog.point(&mut rng));
    }
    all
}

/// Writes the rows of `vectors` as JSON lines, point `i` with id `i` and the payload
/// [`Attrs::of`]`(i)`.
pub(crate) fn write_jsonl(vectors: &[f32], dim: usize, file: &Path) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(file)?);
    for (i, v) in vectors.chunks_exact(dim).enumerate() {
        let a = Attrs::of(i);
        let line = json!({"id": i.to_string(), "embedding": v, "payload": {
            "cat": format!("c{}", a.cat), "tier": format!("t{}", a.tier),
            "half": format!("h{}", a.half), "price": a.price}});
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

async fn register(http: &HttpClient, admin: &str, args: &BenchScaleArgs) -> anyhow::Result<()> {
    register_entity(http, admin).await?;
    register_model(http, admin, MODEL, args.partitions, args.dim, json!({})).await
}

/// The store and the entity every benchmark model belongs to.
pub(crate) async fn register_entity(http: &HttpClient, admin: &str) -> anyhow::Result<()> {
    let api = |path: &str| format!("{admin}/api/v1/model/{path}");
    http.post(
        &api("register-store"),
        &json!({"conf_id": 1, "embeddings_table": "scale_embeddings", "aggregator_table": "scale_aggregator"}),
    )
    .await?;
    http.post(
        &api("register-entity"),
        &json!({"entity": ENTITY, "store_id": "1"}),
    )
    .await?;
    Ok(())
}

/// A cosine RESET model with one variant `v` whose payload schema holds the [`Attrs`] fields;
/// `db` adds to the variant's registration (its vector DB type and the DB's address).
pub(crate) async fn register_model(
    http: &HttpClient,
    admin: &str,
    model: &str,
    partitions: u32,
    dim: usize,
    db: Value,
) -> anyhow::Result<()> {
    let api = |path: &str| format!("{admin}/api/v1/model/{path}");
    http.post(
        &api("register-model"),
        &json!({"entity": ENTITY, "model": model, "embedding_store_enabled": true,
            "number_of_partitions": partitions, "model_type": "RESET",
            "model_config": {"distance_function": "COSINE", "vector_dimension": dim}}),
    )
    .await?;
    let mut variant = json!({"entity": ENTITY, "model": model, "variant": VARIANT,
        // Every query of the load is a cache miss.
        "in_memory_caching_enabled": false,
        "vector_db_config": {}});
    if let Value::Object(extra) = db {
        for (k, v) in extra {
            match (k.as_str(), v) {
                ("vector_db_config", Value::Object(c)) => {
                    if let Some(config) = variant["vector_db_config"].as_object_mut() {
                        config.extend(c);
                    }
                }
                (_, v) => variant[k] = v,
            }
        }
    }
    variant["vector_db_config"]["payload"] = json!({
        "cat": {"field_schema": "keyword"}, "tier": {"field_schema": "keyword"},
        "half": {"field_schema": "keyword"},
        "price": {"field_schema": "integer", "default_value": "0"}});
    http.post(&api("register-variant"), &variant).await?;
    Ok(())
}

/// Samples the server every second while the job runs; prints a progress line every 10 s and
/// records when the consumers had read every event.
async fn sample_job(
    pid: u32,
    consumers: String,
    serving: String,
    n: usize,
    done: Arc<AtomicBool>,
    consumed_ms: Arc<AtomicU64>,
) {
    let http = HttpClient::new(None);
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut last = (0u64, Instant::now());
    while !done.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let records = http
            .get(&format!("{consumers}/health"))
            .await
            .ok()
            .and_then(|h| h["consumers"]["embedding"]["records"].as_u64())
            .unwrap_or(0);
        if records >= n as u64 && consumed_ms.load(Ordering::Acquire) == 0 {
            consumed_ms.store(started.elapsed().as_millis() as u64, Ordering::Release);
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            let indexed = gauge(&http, &serving, "skye_collection_indexed_points").await;
            let rate = (records - last.0.min(records)) as f64 / last.1.elapsed().as_secs_f64();
            say(&format!(
                "  [{:>5.0} s] consumed {records}/{n} ({rate:.0}/s), indexed {indexed:.0}, RSS {:.0} MiB",
                started.elapsed().as_secs_f64(),
                rss_mib(pid).unwrap_or(0.0)
            ));
            last = (records, Instant::now());
            last_print = Instant::now();
        }
    }
}

async fn wait_completed(http: &HttpClient, admin: &str, timeout: Duration) -> anyhow::Result<()> {
    wait_model_completed(http, admin, MODEL, timeout).await
}

/// Waits until variant `v` of `model` is COMPLETED.
pub(crate) async fn wait_model_completed(
    http: &HttpClient,
    admin: &str,
    model: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let url = format!("{admin}/api/v1/models/{ENTITY}/{model}/variants/{VARIANT}");
    let deadline = Instant::now() + timeout;
    loop {
        let state = http.get(&url).await?;
        if state["variant_state"] == "COMPLETED" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("still {} after {timeout:?}", state["variant_state"]);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the serving `/metrics`.
async fn metrics_text(http: &HttpClient, serving: &str) -> anyhow::Result<String> {
    match http.get(&format!("{serving}/metrics")).await? {
        Value::String(text) => Ok(text),
        other => bail!("/metrics answered {other}, not text"),
    }
}

/// The sum over collections of a collection gauge.
async fn gauge(http: &HttpClient, serving: &str, name: &str) -> f64 {
    let Ok(text) = metrics_text(http, serving).await else {
        return 0.0;
    };
    samples(&text, name).map(|(_, v)| v).sum()
}

/// `(labels, value)` of each sample of metric `name`.
fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines().filter_map(move |l| {
        let rest = l.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        Some((labels, value.trim().parse().ok()?))
    })
}

/// The engine's heap figures by part, summed over collections.
async fn scrape(http: &HttpClient, serving: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let text = metrics_text(http, serving).await?;
    let mut parts: Vec<(String, f64)> = Vec::new();
    for (labels, v) in samples(&text, "skye_collection_memory_bytes") {
        let part = labels
            .split(',')
            .find_map(|l| l.strip_prefix("part=\""))
            .and_then(|p| p.strip_suffix('"'))
            .unwrap_or("?")
            .to_string();
        match parts.iter_mut().find(|(p, _)| *p == part) {
            Some((_, total)) => *total += v,
            None => parts.push((part, v)),
        }
    }
    if parts.is_empty() {
        bail!("the server's /metrics has no skye_collection_memory_bytes");
    }
    let order = skye_index::MemoryUsage::default()
        .parts()
        .map(|(name, _)| name);
    parts.sort_by_key(|(p, _)| order.iter().position(|o| o == p));
    Ok(parts)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) async fn connect(server: &Server) -> anyhow::Result<Arc<skye_client::SkyeClient>> {
    Ok(Arc::new(
        skye_client::SkyeClient::connect(
            skye_client::ClientConfig::new(server.serving.clone(), "skye-scale")
                .timeout(Duration::from_secs(10))
                .retries(0, Duration::ZERO),
        )
        .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_labelled_and_plain_lines() {
        let text = "# HELP x\nskye_collection_memory_bytes{collection=\"a\",part=\"graph\"} 12\n\
                    skye_collection_memory_bytes{collection=\"a\",part=\"ids\"} 3\nother 1\n\
                    skye_process_resident_memory_bytes 4096\n";
        let parts: Vec<_> = samples(text, "skye_collection_memory_bytes").collect();
        assert_eq!(
            parts,
            vec![
                ("collection=\"a\",part=\"graph\"", 12.0),
                ("collection=\"a\",part=\"ids\"", 3.0)
            ]
        );
        assert_eq!(
            samples(text, "skye_process_resident_memory_bytes")
                .map(|(_, v)| v)
                .collect::<Vec<_>>(),
            vec![4096.0]
        );
    }

    #[test]
    fn offer_keeps_the_best_k_in_order() {
        let mut top = Vec::new();
        for (i, s) in [0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0, 0.95, 0.05]
            .into_iter()
            .enumerate()
        {
            offer(&mut top, s, i);
        }
        let scores: Vec<f32> = top.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            scores,
            vec![0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
        );
    }

    #[test]
    fn attribute_selectivities_are_as_documented() {
        let n = 100_000;
        let all: Vec<Attrs> = (0..n).map(Attrs::of).collect();
        let share = |f: fn(&Attrs) -> bool| all.iter().filter(|a| f(a)).count() as f64 / n as f64;
        for (kind, expected) in kinds().iter().zip([1.0, 0.01, 0.10, 0.50, 0.05]) {
            let got = share(kind.admits);
            assert!(
                (got - expected).abs() < expected * 0.1,
                "{}: {got} of the points, expected {expected}",
                kind.name
            );
        }
    }
}
