//! `--mode churn`: what a daily delta job does to a graph over many days.
//!
//! Builds a collection (synthetic clustered vectors, `--centers` and `--spread` setting how
//! hard they are to search, or `--base F.npy` normalised for cosine),
//! then runs generations of `--churn` (a share) of the points deleted and re-added with the
//! same vectors (so the exact answers never change), each followed by linking the re-added
//! points and a compaction that repairs the graph around the deleted slots (`--compact
//! repair`, the engine's default) or rebuilds it from scratch (`rebuild`), or none (`none`:
//! tombstones pile up and keep routing). Per generation: link and compaction seconds,
//! recall@k at the serving beam against a brute force computed here, RSS. At the end the graph
//! is rebuilt once from scratch, for the recall, QPS and time a rebuild gives on the same
//! points (QPS on one thread, beside the churned graph's).
//!
//! ```text
//! skye-index-bench --mode churn --n 1000000 --dim 128 --generations 20 --churn 0.05
//! ```

use std::time::Instant;

use rayon::prelude::*;
use skye_index::{Collection, CollectionConfig, Point, SearchRequest};

use crate::filters::{Rng, dataset};
use crate::{Args, rss_mb};

#[allow(
    clippy::print_stdout,
    reason = "JSON lines on stdout are this tool's output"
)]
pub(crate) fn run(a: &Args) -> Result<(), String> {
    let nq: usize = a.num("queries", 200)?;
    let k: usize = a.num("k", 10)?;
    let (vectors, queries, metric) = dataset(a, nq)?;
    let (n, dim) = (vectors.len(), queries[0].len());
    let generations: usize = a.num("generations", 20)?;
    let churn: f64 = a.num("churn", 0.05)?;
    let strategy = a.0.get("compact").map_or("repair", String::as_str);
    if !matches!(strategy, "repair" | "rebuild" | "none") {
        return Err(format!("--compact {strategy}: repair, rebuild or none"));
    }
    let mut config = CollectionConfig::new(dim, metric);
    config.hnsw.m = a.num("m", config.hnsw.m)?;
    config.hnsw.ef_construct = a.num("ef-construct", config.hnsw.ef_construct)?;
    config.ef = a.num("ef", config.ef)?;
    let collection = Collection::new(config.clone());
    let point = |i: usize| Point {
        id: i.to_string(),
        vector: vectors[i].clone(),
        payload: Vec::new(),
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(100_000) {
        collection
            .upsert(chunk.iter().map(|&i| point(i)).collect())
            .map_err(|e| e.to_string())?;
    }
    let t = Instant::now();
    collection.index_pending();
    let build = t.elapsed().as_secs_f64();
    // Squared L2 ranks as the engine does: Euclidean data, or unit vectors under cosine.
    let sq = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum::<f32>();
    let truth: Vec<Vec<String>> = queries
        .par_iter()
        .map(|q| {
            let mut d: Vec<(f32, usize)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (sq(q, v), i))
                .collect();
            d.select_nth_unstable_by(k, |x, y| x.0.total_cmp(&y.0));
            d.truncate(k);
            d.iter().map(|(_, i)| i.to_string()).collect()
        })
        .collect();
    let recall = || {
        let hit: usize = queries
            .par_iter()
            .zip(&truth)
            .map(|(q, t)| {
                let hits = collection
                    .search(&SearchRequest {
                        vector: q,
                        limit: k,
                        ..Default::default()
                    })
                    .unwrap_or_default();
                hits.iter().filter(|h| t.contains(&h.id)).count()
            })
            .sum();
        hit as f64 / (nq * k) as f64
    };
    // One thread, one query at a time: best of 3 passes of 5 × the queries.
    let qps = || {
        let best = (0..3)
            .map(|_| {
                let t = Instant::now();
                for q in queries.iter().cycle().take(5 * nq) {
                    let req = SearchRequest {
                        vector: q,
                        limit: k,
                        ..Default::default()
                    };
                    drop(collection.search(&req));
                }
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        (5 * nq) as f64 / best
    };
    let (rss, _) = rss_mb();
    println!(
        "{{\"phase\":\"build\",\"n\":{n},\"dim\":{dim},\"m\":{},\"ef_construct\":{},\"ef\":{},\"build_s\":{build:.1},\"recall\":{:.4},\"qps_1t\":{:.0},\"rss_mb\":{rss:.0}}}",
        config.hnsw.m,
        config.hnsw.ef_construct,
        config.ef,
        recall(),
        qps()
    );
    let mut rng = Rng(a.num("seed", 42u64)? ^ 0xc0ffee);
    let per_generation = ((n as f64) * churn) as usize;
    for generation in 1..=generations {
        let mut chosen: Vec<usize> = (0..per_generation)
            .map(|_| (rng.next() % n as u64) as usize)
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        let ids: Vec<String> = chosen.iter().map(usize::to_string).collect();
        collection.delete(&ids);
        collection
            .upsert(chosen.iter().map(|&i| point(i)).collect())
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        collection.index_pending();
        let link = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let reclaimed = match strategy {
            "repair" => collection.compact(),
            "rebuild" => collection.rebuild(),
            _ => 0,
        };
        let compact = t.elapsed().as_secs_f64();
        let info = collection.info();
        let (rss, _) = rss_mb();
        println!(
            "{{\"phase\":\"churn\",\"generation\":{generation},\"churned\":{},\"link_s\":{link:.2},\"compact\":\"{strategy}\",\"compact_s\":{compact:.2},\"reclaimed\":{reclaimed},\"tombstones\":{},\"recall\":{:.4},\"rss_mb\":{rss:.0}}}",
            chosen.len(),
            info.tombstones,
            recall()
        );
    }
    println!(
        "{{\"phase\":\"churned\",\"recall\":{:.4},\"qps_1t\":{:.0}}}",
        recall(),
        qps()
    );
    let t = Instant::now();
    collection.rebuild();
    let rebuild = t.elapsed().as_secs_f64();
    println!(
        "{{\"phase\":\"rebuilt\",\"rebuild_s\":{rebuild:.1},\"recall\":{:.4},\"qps_1t\":{:.0}}}",
        recall(),
        qps()
    );
    Ok(())
}
