//! Side-by-side benchmark driver for the embedded engine (used by `bench/compare.py`).
//!
//! Reads base vectors, queries and ground truth from `.npy` files, builds a collection, then
//! reports build time, RSS, recall@k and QPS per (threads, ef), and the exact-scan throughput
//! against a streaming-read probe, as JSON lines on stdout.
//!
//! ```text
//! skye-index-bench --base B.npy --queries Q.npy --gt GT.npy --metric cosine \
//!     --m 16 --ef-construct 200 --efs 10,20,40,80 --threads 1,2 --k 10
//! (`--reorder 0`: without the locality renumbering that follows a bulk build)
//! skye-index-bench --mode filters --n 1000000 --dim 128     # filtered search (see filters.rs)
//! skye-index-bench --mode churn --n 1000000 --generations 20 # delete + re-add (see churn.rs)
//! ```

mod churn;
mod filters;

use skye_index::npy;
use std::collections::HashMap;
use std::time::Instant;

use rayon::prelude::*;
use skye_index::distance::Kernels;
use skye_index::flat;
use skye_index::hnsw::AdmitAll;
use skye_index::{Collection, CollectionConfig, Metric, Point, SearchRequest};

fn main() {
    if let Err(e) = run() {
        eprintln!("skye-index-bench: {e}");
        std::process::exit(2);
    }
}

pub(crate) struct Args(pub(crate) HashMap<String, String>);

impl Args {
    fn parse() -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let key = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {flag}"))?;
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            map.insert(key.to_string(), value);
        }
        Ok(Args(map))
    }
    fn get(&self, k: &str) -> Result<&str, String> {
        self.0
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("--{k} is required"))
    }
    pub(crate) fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.0.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{k}: '{v}' is not a number")),
        }
    }
    pub(crate) fn list(&self, k: &str, default: &str) -> Result<Vec<usize>, String> {
        self.0
            .get(k)
            .map(String::as_str)
            .unwrap_or(default)
            .split(',')
            .map(|s| s.trim().parse().map_err(|_| format!("--{k}: bad list")))
            .collect()
    }
}

pub(crate) fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[allow(
    clippy::print_stdout,
    reason = "JSON lines on stdout are this tool's output"
)]
fn run() -> Result<(), String> {
    let a = Args::parse()?;
    match a.0.get("mode").map(String::as_str) {
        Some("filters") => return filters::run(&a),
        Some("churn") => return churn::run(&a),
        _ => {}
    }
    let metric = match a.get("metric")? {
        "cosine" => Metric::Cosine,
        "euclidean" | "l2" => Metric::Euclidean,
        "dot" | "ip" => Metric::Dot,
        m => return Err(format!("unknown metric {m}")),
    };
    let k: usize = a.num("k", 10)?;
    let (base32, n, dim) = npy::read_f32(a.get("base")?)?;
    let (queries, nq, qdim) = npy::read_f32(a.get("queries")?)?;
    let (gt, gn, gk) = npy::read_ids(a.get("gt")?)?;
    if qdim != dim || gn != nq || gk < k {
        return Err(format!(
            "shapes disagree: base {n}x{dim}, queries {nq}x{qdim}, gt {gn}x{gk}"
        ));
    }
    let mut config = CollectionConfig::new(dim, metric);
    config.hnsw.m = a.num("m", 16)?;
    config.hnsw.ef_construct = a.num("ef-construct", 200)?;
    config.exact_below = 0;
    config.exact_rows_per_beam = 0;
    config.quantization = a.num("quantization", 1u8)? == 1;
    let build_threads: usize = a.num("build-threads", 2)?;
    // `--index FILE`: reuse a saved index when the file exists (for quick search experiments).
    let saved = a.0.get("index").map(std::path::PathBuf::from);
    let start = Instant::now();
    let (collection, load, build) = match &saved {
        Some(path) if path.exists() => {
            let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
            let (c, _) = Collection::read_snapshot(std::io::BufReader::new(file))
                .map_err(|e| e.to_string())?;
            (c, start.elapsed().as_secs_f64(), 0.0)
        }
        _ => {
            let collection = Collection::new(config);
            // In batches, as a server receives them: the RSS after the build is then the
            // index's, not the index's plus a second copy of the input in freed allocations.
            for (b, batch) in base32.chunks(dim * 10_000).enumerate() {
                let points: Vec<Point> = batch
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(i, v)| Point {
                        id: (b * 10_000 + i).to_string(),
                        vector: v.to_vec(),
                        payload: Vec::new(),
                    })
                    .collect();
                collection.upsert(points).map_err(|e| e.to_string())?;
            }
            let load = start.elapsed().as_secs_f64();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(build_threads)
                .build()
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            pool.install(|| collection.index_pending());
            // As the embedded store does after a bulk build (`--reorder 0` to leave it out).
            let linked = t.elapsed().as_secs_f64();
            if a.num("reorder", 1u8)? == 1 {
                pool.install(|| collection.reorder());
            }
            let build = t.elapsed().as_secs_f64();
            eprintln!(
                "linked in {linked:.1} s, renumbered in {:.1} s",
                build - linked
            );
            if let Some(path) = &saved {
                let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
                collection
                    .write_snapshot(std::io::BufWriter::new(file), 0)
                    .map_err(|e| e.to_string())?;
            }
            (collection, load, build)
        }
    };
    drop(base32);
    let (rss, hwm) = rss_mb();
    println!(
        "{{\"phase\":\"build\",\"engine\":\"skye\",\"n\":{n},\"dim\":{dim},\"load_s\":{load:.3},\"build_s\":{build:.3},\"threads\":{build_threads},\"rss_mb\":{rss:.1},\"peak_rss_mb\":{hwm:.1},\"simd\":\"{:?}\"}}",
        Kernels::detect().level
    );
    let q32: Vec<Vec<f32>> = queries.chunks_exact(dim).map(<[f32]>::to_vec).collect();
    let truth: Vec<Vec<String>> = gt
        .chunks_exact(gk)
        .map(|row| row[..k].iter().map(|i| i.to_string()).collect())
        .collect();
    for threads in a.list("threads", "1,2")? {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| e.to_string())?;
        for ef in a.list("efs", "10,20,40,80,160")? {
            let search = |q: &Vec<f32>| {
                collection
                    .search(&SearchRequest {
                        vector: q,
                        limit: k,
                        ef: Some(ef),
                        ..Default::default()
                    })
                    .map(|hits| hits.into_iter().map(|h| h.id).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            // Warm-up pass, then the best of `repeat` timed passes (the machine is shared).
            pool.install(|| q32.par_iter().take(200).map(search).count());
            let mut secs = f64::INFINITY;
            let mut results: Vec<Vec<String>> = Vec::new();
            for _ in 0..a.num("repeat", 3usize)? {
                let t = Instant::now();
                results = pool.install(|| q32.par_iter().map(search).collect());
                secs = secs.min(t.elapsed().as_secs_f64());
            }
            let hits: usize = results
                .iter()
                .zip(&truth)
                .map(|(r, t)| r.iter().filter(|id| t.contains(id)).count())
                .sum();
            let recall = hits as f64 / (nq * k) as f64;
            println!(
                "{{\"phase\":\"search\",\"engine\":\"skye\",\"threads\":{threads},\"ef\":{ef},\"recall\":{recall:.4},\"qps\":{:.1}}}",
                nq as f64 / secs
            );
        }
    }
    if a.num("exact", 1)? == 1 {
        drop(collection);
        exact_scan(dim, k);
    }
    Ok(())
}

/// Exact-scan throughput against a streaming read of the same array with the same kernel, on a
/// synthetic 1 GiB matrix of the dataset's dimension (larger than any cache), with every thread.
#[allow(
    clippy::print_stdout,
    reason = "JSON lines on stdout are this tool's output"
)]
fn exact_scan(dim: usize, k: usize) {
    let rows = (1usize << 30) / (dim * 4);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::with_capacity(dim * rows);
    let mut row = vec![0.0f32; dim];
    for _ in 0..rows {
        for x in row.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *x = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        data.extend_from_slice(&row);
    }
    let bytes = (data.len() * 4) as f64;
    let kernels = Kernels::detect();
    let ones = vec![1.0f32; dim];
    let rounds = 5;
    let mut sink = 0.0f32;
    let t = Instant::now();
    for _ in 0..rounds {
        sink += data
            .par_chunks(dim * 4096)
            .map(|c| {
                c.chunks_exact(dim)
                    .map(|r| (kernels.dot)(r, &ones))
                    .sum::<f32>()
            })
            .sum::<f32>();
    }
    let read_gbps = bytes * rounds as f64 / t.elapsed().as_secs_f64() / 1e9;
    let vectors = skye_index::vectors::Vectors::from_vec(dim, data);
    let dist = kernels.distance(Metric::Dot);
    let t = Instant::now();
    for _ in 0..rounds {
        let hits = flat::search(&vectors, dist, &row, k, 0..rows, &AdmitAll);
        sink += hits.len() as f32;
    }
    let scan_gbps = bytes * rounds as f64 / t.elapsed().as_secs_f64() / 1e9;
    println!(
        "{{\"phase\":\"exact\",\"engine\":\"skye\",\"rows\":{rows},\"dim\":{dim},\"threads\":{},\"scan_gbps\":{scan_gbps:.2},\"stream_read_gbps\":{read_gbps:.2},\"ratio\":{:.3},\"sink_finite\":{}}}",
        rayon::current_num_threads(),
        scan_gbps / read_gbps,
        sink.is_finite()
    );
}
