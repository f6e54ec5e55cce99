//! `skye bench soak`: a long steady load against a real `skye standalone` child process, with
//! the server's resident memory (RSS, from `/proc`) and the latency percentiles sampled at a
//! fixed interval. The load mixes searches by fresh random vectors (every one a cache miss)
//! with a steady stream of real-time flag events through the HTTP ingest API, so the search
//! path, the event log (append, consume, retention), the real-time and delta consumers and the
//! collections all run for the whole period.
//!
//! QPS and latency count answered searches; searches refused with RESOURCE_EXHAUSTED (load
//! shedding, when `--concurrency` exceeds the server's `serving.max_concurrent_searches`, set
//! with `--server-config`) are counted apart.
//!
//! Verdict: every other request must succeed, and RSS must stay flat: the peak of the last quarter of
//! the samples may exceed the peak of the first quarter (after a warm-up sample) by at most
//! `--max-rss-growth-mb` or 10 %, whichever is larger. Exits non-zero otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::bench_cmd::{percentile_ms, say};
use crate::child::{rss_mib, start_server};
use crate::cli::BenchSoakArgs;
use crate::http_client::HttpClient;
use crate::ingest_cli::{self, IngestJob};
use crate::rng::Rng;

/// One sample row.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_mib: f64,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    shed: u64,
    events: u64,
}

/// `skye bench soak`.
pub async fn soak(args: &BenchSoakArgs) -> anyhow::Result<()> {
    let dir: PathBuf = std::env::temp_dir().join(format!("skye-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let outcome = run(args, &dir).await;
    if outcome.is_ok() && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        say(&format!("  data and server log kept in {}", dir.display()));
    }
    outcome
}

async fn run(args: &BenchSoakArgs, dir: &Path) -> anyhow::Result<()> {
    say(&format!(
        "skye bench soak: {} vectors of {} dims, {} search workers + {} real-time events/s for {} s, sampled every {} s",
        args.vectors,
        args.dim,
        args.concurrency,
        args.events_per_second,
        args.duration,
        args.sample
    ));
    let server = start_server(dir, args.server_config.as_deref(), Duration::from_secs(60)).await?;
    let pid = server.pid();
    let http = HttpClient::new(None);
    let api = |path: &str| format!("{}/api/v1/model/{path}", server.admin);
    http.post(&api("register-store"), &json!({"conf_id": 1, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"}))
        .await?;
    http.post(
        &api("register-entity"),
        &json!({"entity": "soak", "store_id": "1"}),
    )
    .await?;
    http.post(
        &api("register-model"),
        &json!({"entity": "soak", "model": "m", "embedding_store_enabled": true,
            "model_config": {"distance_function": "COSINE", "vector_dimension": args.dim}}),
    )
    .await?;
    http.post(
        &api("register-variant"),
        &json!({"entity": "soak", "model": "m", "variant": "instock",
            "filter": [{"column_name": "out_of_stock", "filter_value": "false",
                "default_value": "false"}],
            "vector_db_config": {"payload": {"brand": {"field_schema": "KEYWORD"}}}}),
    )
    .await?;

    // The catalog, through the same path as `skye ingest`.
    let mut rng = Rng(0x50A4);
    let file = dir.join("catalog.jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for i in 0..args.vectors {
            let v: Vec<f32> = (0..args.dim).map(|_| rng.unit()).collect();
            let row = json!({"id": i.to_string(), "embedding": v,
                "payload": {"brand": format!("b{}", i % 7)}});
            writeln!(out, "{row}")?;
        }
        out.flush()?;
    }
    let loaded = Instant::now();
    ingest_cli::run(
        IngestJob {
            entity: "soak".into(),
            model: "m".into(),
            variants: Vec::new(),
            file,
            ids: None,
            admin: server.admin.clone(),
            consumers: server.consumers.clone(),
            topic: None,
            batch: 1000,
            wait: true,
            timeout: Duration::from_secs(1800),
            json: false,
        },
        http.clone(),
    )
    .await
    .context("loading the catalog")?;
    say(&format!(
        "  catalog loaded and indexed in {:.1} s",
        loaded.elapsed().as_secs_f64()
    ));

    let client = Arc::new(
        skye_client::SkyeClient::connect(
            skye_client::ClientConfig::new(server.serving.clone(), "skye-soak")
                .timeout(Duration::from_secs(5))
                .retries(0, Duration::ZERO),
        )
        .await?,
    );
    let end = Instant::now() + Duration::from_secs(args.duration);
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let shed = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let last_error = Arc::new(Mutex::new(None::<String>));
    let mut tasks = Vec::new();
    for w in 0..args.concurrency.max(1) {
        let (client, latencies, errors, shed, last_error) = (
            client.clone(),
            latencies.clone(),
            errors.clone(),
            shed.clone(),
            last_error.clone(),
        );
        let dim = args.dim;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xC0FFEE ^ ((w as u64 + 1) * 0x9E37_79B9));
            while Instant::now() < end {
                let req = skye_proto::SkyeRequest {
                    entity: "soak".into(),
                    model_name: "m".into(),
                    variant: "instock".into(),
                    limit: 10,
                    embeddings: vec![skye_proto::Embedding {
                        embedding: (0..dim).map(|_| f64::from(rng.unit())).collect(),
                    }],
                    ..Default::default()
                };
                let t = Instant::now();
                let outcome = client.similar_candidates(req).await;
                let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                match outcome {
                    Ok(_) => latencies.lock().unwrap_or_else(|p| p.into_inner()).push(us),
                    // Load shedding above `serving.max_concurrent_searches`: expected under
                    // overload, counted apart (and it must be fast).
                    Err(e) if e.code() == Some(tonic::Code::ResourceExhausted) => {
                        shed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        *last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    }
                }
            }
        }));
    }
    // Real-time flags: one event per tick, flipping `out_of_stock` of a random item.
    {
        let (http, events, errors, last_error) = (
            http.clone(),
            events.clone(),
            errors.clone(),
            last_error.clone(),
        );
        let url = format!("{}/api/v1/ingest/skye.realtime", server.consumers);
        let (n, rate) = (args.vectors.max(1) as u64, args.events_per_second);
        tasks.push(tokio::spawn(async move {
            if rate == 0 {
                return;
            }
            let mut rng = Rng(0xF1A6);
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            while Instant::now() < end {
                tick.tick().await;
                let id = rng.next() % n;
                let flag = if rng.next().is_multiple_of(2) {
                    "true"
                } else {
                    "false"
                };
                let event: Value = json!([{"timestamp": 1, "type": "stock", "entity": "soak",
                    "data": [{"id": id.to_string(),
                        "data": [{"label": "out_of_stock", "value": flag}]}]}]);
                match http.post(&url, &event).await {
                    Ok(_) => {
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        *last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    }
                }
            }
        }));
    }

    say("      t     RSS MiB        QPS   p50 ms   p99 ms   errors     shed   rt events");
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut last = Instant::now();
    let (mut errors_before, mut shed_before, mut events_before) = (0, 0, 0);
    while Instant::now() < end {
        let wait = Duration::from_secs(args.sample.max(1))
            .min(end.saturating_duration_since(Instant::now()));
        tokio::time::sleep(wait).await;
        let mut window = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
        window.sort_unstable();
        let took = last.elapsed().as_secs_f64();
        last = Instant::now();
        let (e, sh, ev) = (
            errors.load(Ordering::Relaxed),
            shed.load(Ordering::Relaxed),
            events.load(Ordering::Relaxed),
        );
        let s = Sample {
            at_s: started.elapsed().as_secs_f64(),
            rss_mib: rss_mib(pid)?,
            qps: window.len() as f64 / took.max(1e-9),
            p50_ms: percentile_ms(&window, 0.50),
            p99_ms: percentile_ms(&window, 0.99),
            errors: e - errors_before,
            shed: sh - shed_before,
            events: ev - events_before,
        };
        (errors_before, shed_before, events_before) = (e, sh, ev);
        say(&format!(
            "  {:>5.0}s  {:>10.1} {:>10.0} {:>8.2} {:>8.2} {:>8} {:>8} {:>11}",
            s.at_s, s.rss_mib, s.qps, s.p50_ms, s.p99_ms, s.errors, s.shed, s.events
        ));
        samples.push(s);
    }
    for t in tasks {
        t.await?;
    }

    let total_errors = errors.load(Ordering::Relaxed);
    if total_errors > 0 {
        bail!(
            "{total_errors} requests failed; last: {}",
            last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default()
        );
    }
    // Skip the first sample (warm-up: caches, allocator arenas, graph pages).
    let steady = &samples[1.min(samples.len())..];
    if steady.len() < 4 {
        say("  too few samples for a memory verdict (run longer or sample more often)");
        return Ok(());
    }
    let quarter = steady.len().div_ceil(4);
    let peak = |s: &[Sample]| s.iter().map(|x| x.rss_mib).fold(0.0, f64::max);
    let (first, last_q) = (
        peak(&steady[..quarter]),
        peak(&steady[steady.len() - quarter..]),
    );
    let allowed = (args.max_rss_growth_mb as f64).max(first * 0.10);
    let p99 = |s: &[Sample]| s.iter().map(|x| x.p99_ms).fold(0.0, f64::max);
    // Least-squares slope of RSS over the steady samples, in MiB per hour.
    let n = steady.len() as f64;
    let (mean_t, mean_r) = (
        steady.iter().map(|x| x.at_s).sum::<f64>() / n,
        steady.iter().map(|x| x.rss_mib).sum::<f64>() / n,
    );
    let cov: f64 = steady
        .iter()
        .map(|x| (x.at_s - mean_t) * (x.rss_mib - mean_r))
        .sum();
    let var: f64 = steady.iter().map(|x| (x.at_s - mean_t).powi(2)).sum();
    say(&format!(
        "  RSS trend {:+.1} MiB/hour (least squares over the steady samples)",
        if var > 0.0 { cov / var * 3600.0 } else { 0.0 }
    ));
    say(&format!(
        "  RSS peak first quarter {first:.1} MiB, last quarter {last_q:.1} MiB (growth {:+.1} MiB, allowed {allowed:.1}); p99 first quarter {:.2} ms, last quarter {:.2} ms",
        last_q - first,
        p99(&steady[..quarter]),
        p99(&steady[steady.len() - quarter..]),
    ));
    if last_q - first > allowed {
        bail!(
            "RSS grew by {:.1} MiB over the run (allowed {allowed:.1} MiB)",
            last_q - first
        );
    }
    say("  RSS flat: pass");
    Ok(())
}
