//! `skye bench`: throughput and latency measurements recorded in BENCHMARKS.md.
//!
//! * `skye bench ingest`: the embedded ingestion path in-process, phase by phase: events appended
//!   to the durable log, then consumed (decode, embedding store, collection write with indexing
//!   deferred, offset commit), then the index build.
//! * `skye bench grpc`: a closed-loop load generator against a running Skye: `concurrency`
//!   workers each send one request after the other for `duration`; prints QPS and latency
//!   percentiles. `--in-process` runs the same loop against the engine on a data directory
//!   (no server), for the gRPC-vs-in-process comparison.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use skye_backends::embedded::{
    EmbeddedConfigStore, EmbeddedEventLog, EmbeddedStorage, EmbeddedVectorStore,
};
use skye_core::domain::VariantState;
use skye_core::event_log::{EventLog, Produce, topics};
use skye_core::registration::{RegisterEntity, RegisterModel, RegisterStore, RegisterVariant};
use skye_core::vector_store::VectorRead;
use skye_engine::ingest::embedding::EmbeddingIngestor;
use skye_engine::ingest::runner::{self, ConsumerConfig, ConsumerStats, EmbeddingHandler};
use skye_engine::lifecycle::{Lifecycle, ProcessRequest, Reconciler, Selection};
use skye_engine::registry::Registry;
use skye_engine::search::filters::{FilterOp, FilterSpec};
use skye_engine::search::similar::{Limits, SimilarRequest, SimilarService};
use tokio::sync::watch;

use crate::cli::{BenchGrpcArgs, BenchIngestArgs};
use crate::rng::Rng;

pub(crate) fn say(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The `p` quantile (0..=1, nearest rank) of sorted latencies in µs, in ms; 0 when empty.
pub(crate) fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[i]) / 1000.0
}

/// `skye bench ingest`.
pub async fn ingest(
    args: &BenchIngestArgs,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let dir = tempfile_dir(data_dir)?;
    let config = Arc::new(EmbeddedConfigStore::open(&dir.join("config.redb"))?);
    let registry = Arc::new(Registry::open(config, "bench").await?);
    let vectors = Arc::new(EmbeddedVectorStore::open(&dir.join("collections"))?);
    let storage = Arc::new(EmbeddedStorage::open(&dir.join("storage.redb"))?);
    let log = Arc::new(EmbeddedEventLog::open(&dir.join("events.redb"))?);
    let lifecycle = Arc::new(Lifecycle::new(
        registry.clone(),
        vectors.clone(),
        storage.clone(),
        log.clone(),
    ));
    let r = &registry;
    let store = r
        .register_store(RegisterStore::from_json(json!({"conf_id": 1,
            "embeddings_table": "e", "aggregator_table": "a"}))?)
        .await?;
    r.register_entity(RegisterEntity::from_json(
        json!({"entity": "bench", "store_id": store}),
    )?)
    .await?;
    r.register_model(RegisterModel::from_json(
        json!({"entity": "bench", "model": "m",
        "embedding_store_enabled": true, "number_of_partitions": 1, "model_type": "RESET",
        "model_config": {"distance_function": "COSINE", "vector_dimension": args.dim}}),
    )?)
    .await?;
    let schema = if args.payload {
        json!({"cat": {"field_schema": "keyword"}, "shop": {"field_schema": "keyword"},
            "price": {"field_schema": "integer", "default_value": "0"}})
    } else {
        json!({})
    };
    r.register_variant(RegisterVariant::from_json(
        json!({"entity": "bench", "model": "m", "variant": "v",
            "in_memory_caching_enabled": true, "in_memory_cache_ttl_seconds": 300,
            "vector_db_config": {"payload": schema}}),
    )?)
    .await?;
    let ticket = lifecycle
        .process(&ProcessRequest {
            entity: "bench".into(),
            model: "m".into(),
            selection: Selection::All(None),
            force_reset: false,
        })
        .await?
        .context("no ticket")?;
    say(&format!(
        "skye bench ingest: {} vectors of {} dimensions, batches of {}, data in {}",
        args.vectors,
        args.dim,
        args.batch,
        dir.display()
    ));

    // Events as a producer would write them (JSON, spec AC §4.2).
    let started = Instant::now();
    let mut rng = Rng(42);
    let mut records = Vec::with_capacity(args.vectors + 1);
    for i in 0..args.vectors {
        let v: Vec<f32> = (0..args.dim).map(|_| rng.unit()).collect();
        let mut event = json!({"entity": "bench", "model_name": "m", "candidate_id": i.to_string(),
            "embedding_store_version": ticket.embedding_store_version, "partition": "0",
            "index_space": {"embedding": v, "variants_version_map": ticket.variants,
                "variants_index_map": {"v": true}, "operation": "ADD"}});
        if args.payload {
            // Independent fields: the last two digits, the next four, a multiplicative hash.
            event["index_space"]["payload"] = json!({"cat": format!("c{}", i % 100),
                "shop": format!("s{}", (i / 100) % 10_000),
                "price": ((i as u64 * 7_919) % 10_000).to_string()});
        }
        records.push(Produce::new(
            topics::EMBEDDING,
            "p0",
            serde_json::to_vec(&event)?,
        ));
    }
    let eof = json!({"entity": "bench", "model_name": "m", "candidate_id": "EOF",
        "embedding_store_version": ticket.embedding_store_version, "partition": "0",
        "index_space": {"variants_version_map": ticket.variants}});
    records.push(Produce::new(
        topics::EMBEDDING,
        "p0",
        serde_json::to_vec(&eof)?,
    ));
    let bytes: usize = records.iter().map(|r| r.value.len()).sum();
    say(&format!(
        "  encode JSON events      {:>8.2} s  ({:.0} MB)",
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    ));

    // JSON decoding alone, the consumer's CPU floor for this format.
    let started = Instant::now();
    for r in &records {
        let e: skye_engine::ingest::events::EmbeddingEvent = serde_json::from_slice(&r.value)?;
        std::hint::black_box(e);
    }
    report("decode JSON only", records.len(), started.elapsed());
    if !args.json_records {
        // What the ingest API does for the embedded log: decode, store the binary encoding.
        let started = Instant::now();
        for r in &mut records {
            let e = skye_engine::ingest::wire::decode_embedding(&r.value)
                .map_err(anyhow::Error::msg)?;
            r.value =
                skye_engine::ingest::wire::encode_embedding(&e).map_err(anyhow::Error::msg)?;
        }
        let bytes: usize = records.iter().map(|r| r.value.len()).sum();
        report(
            &format!("decode JSON, encode binary ({:.0} MB)", bytes as f64 / 1e6),
            records.len(),
            started.elapsed(),
        );
    }

    // The consumer group reads the topic from the start: registered before the first append,
    // retention keeps every event for it however far the consumer is behind.
    drop(log.subscribe("bench", &[topics::EMBEDDING]).await?);
    let started = Instant::now();
    let total = records.len();
    let mut batch = Vec::with_capacity(args.batch);
    for r in records {
        batch.push(r);
        if batch.len() == args.batch {
            log.produce(std::mem::take(&mut batch)).await?;
        }
    }
    log.produce(batch).await?;
    report("append to the event log", total, started.elapsed());

    let started = Instant::now();
    let stats = Arc::new(ConsumerStats::default());
    let (stop_tx, stop) = watch::channel(false);
    let consumer = tokio::spawn(runner::run(
        log.clone(),
        ConsumerConfig {
            name: "embedding",
            group: "bench".into(),
            topics: vec![topics::EMBEDDING.into()],
            failure_topic: topics::EMBEDDING_FAILURE.into(),
            batch_size: args.batch,
            poll_wait: Duration::from_millis(100),
        },
        Arc::new(EmbeddingHandler(EmbeddingIngestor::new(
            vectors.clone(),
            storage.clone(),
            storage.clone(),
            lifecycle.clone(),
        ))),
        stats.clone(),
        stop.clone(),
    ));
    while stats.view().records < total as u64 {
        if let Some(loss) = stats.view().last_loss {
            bail!("the consumer lost events: {loss}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report(
        "consume (decode, embedding store, collection, commit; index deferred)",
        args.vectors,
        started.elapsed(),
    );
    if stats.view().rejected > 0 {
        bail!("{} events were rejected", stats.view().rejected);
    }

    if args.skip_index {
        let _ = stop_tx.send(true);
        let _ = consumer.await;
        return Ok(());
    }
    let started = Instant::now();
    let reconciler = Reconciler::new(lifecycle.clone());
    let mut stop_r = stop.clone();
    let driver = tokio::spawn(async move {
        reconciler
            .run(Duration::from_millis(20), async move {
                let _ = stop_r.wait_for(|s| *s).await;
            })
            .await;
    });
    loop {
        let v = registry.snapshot().variant("bench", "m", "v")?.clone();
        if v.variant_state == VariantState::Completed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report("index build → COMPLETED", args.vectors, started.elapsed());
    let _ = stop_tx.send(true);
    let _ = consumer.await;
    let _ = driver.await;
    let collection = registry
        .snapshot()
        .variant("bench", "m", "v")?
        .collection(1);
    let info = vectors.collection_info(&collection).await?;
    say(&format!(
        "  collection {collection}: {} points, {} indexed",
        info.points_count, info.indexed_vectors_count
    ));
    Ok(())
}

fn report(what: &str, n: usize, took: Duration) {
    say(&format!(
        "  {what:<24}{:>8.2} s  {:>10.0} vectors/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64().max(1e-9)
    ));
}

fn tempfile_dir(given: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("skye-bench-{}", std::process::id())),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty; give an empty --data-dir", dir.display());
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One request of the load.
#[derive(Debug, Clone)]
enum Query {
    Vector(Vec<f32>),
    Id(String),
}

/// `skye bench grpc`.
pub async fn grpc(args: &BenchGrpcArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let filters = Arc::new(parse_filters(&args.filters)?);
    let mut rng = Rng(7);
    // A pool of distinct queries; `--distinct 1` makes every request a cache hit.
    let pool: Vec<Query> = (0..args.distinct.max(1))
        .map(|_| match args.ids {
            Some(n) => Query::Id((rng.next() % n.max(1)).to_string()),
            None => Query::Vector((0..args.dim).map(|_| rng.unit()).collect()),
        })
        .collect();
    let pool = Arc::new(pool);
    let target: Target = if args.in_process {
        let registry = Arc::new(
            Registry::open(
                Arc::new(EmbeddedConfigStore::open(&data_dir.join("config.redb"))?),
                &args.app_name,
            )
            .await?,
        );
        let vectors = Arc::new(EmbeddedVectorStore::open(&data_dir.join("collections"))?);
        let storage = Arc::new(EmbeddedStorage::open(&data_dir.join("storage.redb"))?);
        Target::Engine(
            SimilarService::new(
                registry,
                vectors,
                Limits {
                    max_limit: 1000,
                    cache_bytes: 64 << 20,
                    max_concurrent: args.concurrency.max(1) * 2,
                },
            )
            .with_embeddings(storage),
        )
    } else {
        let mut config = skye_client::ClientConfig::new(args.url.clone(), "skye-bench")
            .timeout(Duration::from_secs(5))
            .retries(0, Duration::ZERO)
            .tonic_channel(args.tonic_channel);
        config.auth_token = args.token.clone();
        Target::Grpc(Box::new(skye_client::SkyeClient::connect(config).await?))
    };
    let target = Arc::new(target);
    say(&format!(
        "skye bench grpc: {} {} workers for {} s (+1 s warm-up), {} distinct {} queries, limit {}",
        if args.in_process {
            "in-process"
        } else {
            "gRPC"
        },
        args.concurrency,
        args.duration,
        if args.distinct == 0 {
            "unbounded".to_string()
        } else {
            pool.len().to_string()
        },
        if args.ids.is_some() { "id" } else { "vector" },
        args.limit
    ));
    if !filters.is_empty() {
        say(&format!("  filters: {}", args.filters.join(" AND ")));
    }
    let run = |seconds: f64| {
        let mut workers = Vec::new();
        for w in 0..args.concurrency.max(1) {
            let (pool, target, args) = (pool.clone(), target.clone(), args.clone());
            let filters = filters.clone();
            workers.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let end = Instant::now() + Duration::from_secs_f64(seconds);
                let mut i = w;
                let mut fresh = Rng(0x9E37_79B9 ^ ((w as u64 + 1) * 0x1000_0001));
                while Instant::now() < end {
                    // `--distinct 0`: a new query every time (never a cache hit).
                    let q = if args.distinct == 0 {
                        match args.ids {
                            Some(n) => Query::Id((fresh.next() % n.max(1)).to_string()),
                            None => Query::Vector((0..args.dim).map(|_| fresh.unit()).collect()),
                        }
                    } else {
                        pool[i % pool.len()].clone()
                    };
                    i += args.concurrency.max(1);
                    let t = Instant::now();
                    if target.ask(&args, &filters, q).await.is_err() {
                        errors += 1;
                    }
                    lat.push(t.elapsed().as_micros() as u32);
                }
                (lat, errors)
            }));
        }
        workers
    };
    for w in run(1.0) {
        let _ = w.await;
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in run(args.duration as f64) {
        let (lat, e) = w.await?;
        all.extend(lat);
        errors += e;
    }
    let took = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| percentile_ms(&all, p);
    say(&format!(
        "  {} requests, {errors} errors, {:.0} QPS; latency ms p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}",
        all.len(),
        all.len() as f64 / took,
        pct(0.50),
        pct(0.95),
        pct(0.99),
        pct(0.999)
    ));
    if errors > 0 {
        bail!("{errors} requests failed (see the server log)");
    }
    Ok(())
}

/// `FIELD:OP:V1|V2…` filters of the command line.
fn parse_filters(given: &[String]) -> anyhow::Result<Vec<FilterSpec>> {
    given
        .iter()
        .map(|text| {
            let mut parts = text.splitn(3, ':');
            let (Some(field), Some(op), values) = (parts.next(), parts.next(), parts.next()) else {
                bail!("--filter {text}: expected FIELD:OP:VALUES");
            };
            let op = FilterOp::from_name(op)
                .with_context(|| format!("--filter {text}: unknown operator '{op}'"))?;
            Ok(FilterSpec {
                field: field.to_string(),
                op,
                values: values
                    .filter(|v| !v.is_empty())
                    .map(|v| v.split('|').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[derive(Debug)]
enum Target {
    Grpc(Box<skye_client::SkyeClient>),
    Engine(SimilarService),
}

impl Target {
    async fn ask(
        &self,
        args: &BenchGrpcArgs,
        filters: &[FilterSpec],
        q: Query,
    ) -> anyhow::Result<()> {
        match self {
            Target::Grpc(c) => {
                let mut req = skye_proto::SkyeRequest {
                    entity: args.entity.clone(),
                    model_name: args.model.clone(),
                    variant: args.variant.clone(),
                    limit: args.limit as i32,
                    global_filters: (!filters.is_empty()).then(|| skye_proto::Filters {
                        filter: filters
                            .iter()
                            .map(|f| skye_proto::Filter {
                                field: f.field.clone(),
                                op: f.op.to_proto(),
                                values: f.values.clone(),
                            })
                            .collect(),
                    }),
                    ..Default::default()
                };
                match q {
                    Query::Vector(v) => {
                        req.embeddings = vec![skye_proto::Embedding {
                            embedding: v.into_iter().map(f64::from).collect(),
                        }]
                    }
                    Query::Id(id) => req.candidate_ids = vec![id],
                }
                c.similar_candidates(req).await?;
            }
            Target::Engine(s) => {
                let mut req = SimilarRequest {
                    entity: args.entity.clone(),
                    model: args.model.clone(),
                    variant: args.variant.clone(),
                    limit: args.limit as i64,
                    global_filters: filters.to_vec(),
                    ..Default::default()
                };
                match q {
                    Query::Vector(v) => {
                        req.embeddings = vec![v.into_iter().map(f64::from).collect()]
                    }
                    Query::Id(id) => req.candidate_ids = vec![id],
                }
                s.similar(req, 0).await?;
            }
        }
        Ok(())
    }
}
