//! `--mode filters`: filtered search at catalog scale on synthetic clustered vectors, at the
//! serving defaults (`CollectionConfig::new`).
//!
//! Every point has keyword fields at fixed selectivities (`cat`: 100 values, `shop`: 10,000,
//! `a`/`b`/`c`: 5 values each, independent) and an integer `price` in 0..10,000. Each filter
//! row reports recall@k against a brute force computed here (not by the engine), QPS at each
//! thread count, p50/p99 on one thread, and the planner's paths, as JSON lines.
//!
//! ```text
//! skye-index-bench --mode filters --n 1000000 --dim 128 --queries 200 --threads 1,2
//! ```
//!
//! `--cases unf,50,AND` keeps only the rows whose name starts with one of those; `--base F.npy`
//! takes real vectors (normalised, cosine; the last `--queries` rows are the queries).

use std::time::Instant;

use rayon::prelude::*;
use skye_index::{
    Collection, CollectionConfig, Condition, Filter, Metric, Point, SearchRequest, Value,
};

use crate::{Args, rss_mb};

/// xorshift64*.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn gauss(&mut self) -> f32 {
        (0..6)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32)
            .sum::<f32>()
            - 3.0
    }
}

/// The payload of point `i`, as values the bench's own predicates read back.
struct Fields {
    cat: u32,
    shop: u32,
    abc: [u32; 3],
    price: i64,
}

fn fields(i: usize) -> Fields {
    // splitmix64 of (i, salt): independent fields.
    let h = |salt: u64| {
        let mut x = (i as u64) ^ salt.wrapping_mul(0xd1b5_4a32_d192_ed03);
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    Fields {
        cat: (h(1) % 100) as u32,
        shop: (h(2) % 10_000) as u32,
        abc: [(h(3) % 5) as u32, (h(4) % 5) as u32, (h(5) % 5) as u32],
        price: (h(6) % 10_000) as i64,
    }
}

fn keyword(field: &str, values: impl Iterator<Item = String>) -> Condition {
    Condition::Match {
        field: field.into(),
        any: values.map(Value::Keyword).collect(),
    }
}

type Keep = Box<dyn Fn(&Fields) -> bool + Sync>;

/// (name, filter, the same predicate on the generated fields).
fn cases() -> Vec<(&'static str, Option<Filter>, Keep)> {
    let must = |c: Vec<Condition>| {
        Some(Filter {
            must: c,
            must_not: vec![],
        })
    };
    let cats = |n: u32| keyword("cat", (0..n).map(|c| format!("c{c}")));
    let shops = |n: u32| keyword("shop", (0..n).map(|s| format!("s{s}")));
    let one = |f: &str| keyword(f, std::iter::once("v0".to_string()));
    vec![
        ("unfiltered", None, Box::new(|_: &Fields| true)),
        (
            "50 %",
            must(vec![cats(50)]),
            Box::new(|f: &Fields| f.cat < 50),
        ),
        (
            "10 %",
            must(vec![cats(10)]),
            Box::new(|f: &Fields| f.cat < 10),
        ),
        ("1 %", must(vec![cats(1)]), Box::new(|f: &Fields| f.cat < 1)),
        (
            "0.1 %",
            must(vec![shops(10)]),
            Box::new(|f: &Fields| f.shop < 10),
        ),
        (
            "0.01 %",
            must(vec![shops(1)]),
            Box::new(|f: &Fields| f.shop < 1),
        ),
        (
            "AND of two at 4 %",
            must(vec![one("a"), one("b")]),
            Box::new(|f: &Fields| f.abc[0] == 0 && f.abc[1] == 0),
        ),
        (
            "AND of two at 1 %",
            must(vec![cats(5), one("a")]),
            Box::new(|f: &Fields| f.cat < 5 && f.abc[0] == 0),
        ),
        (
            "AND of three at 0.8 %",
            must(vec![one("a"), one("b"), one("c")]),
            Box::new(|f: &Fields| f.abc == [0, 0, 0]),
        ),
        (
            "range 10 %",
            must(vec![Condition::Range {
                field: "price".into(),
                gt: None,
                gte: Some(0.0),
                lt: Some(1000.0),
                lte: None,
            }]),
            Box::new(|f: &Fields| f.price < 1000),
        ),
    ]
}

/// Points, queries and the metric they are searched by.
pub(crate) type Dataset = (Vec<Vec<f32>>, Vec<Vec<f32>>, Metric);

/// The vectors of `--base F.npy`, or synthetic clusters: `--n` points (1M) of `--dim` (128)
/// around `--centers` (1,000) spread `--spread` (2.0) apart, and `nq` queries drawn alike.
pub(crate) fn dataset(a: &Args, nq: usize) -> Result<Dataset, String> {
    match a.0.get("base") {
        Some(path) => real_vectors(path, a.num("n", 0)?, nq),
        None => Ok(clusters(
            a.num("n", 1_000_000)?,
            a.num("dim", 128)?,
            nq,
            a.num("seed", 42)?,
            a.num("centers", 1000)?,
            a.num("spread", 2.0)?,
        )),
    }
}

/// Gaussian vectors (unit noise) around `centers` centres spread `spread` apart per axis:
/// the smaller the spread, the more the clusters overlap and the harder the search.
fn clusters(n: usize, dim: usize, nq: usize, seed: u64, centers: usize, spread: f32) -> Dataset {
    let mut rng = Rng(seed);
    let centers: Vec<Vec<f32>> = (0..centers.max(1))
        .map(|_| (0..dim).map(|_| rng.gauss() * spread).collect())
        .collect();
    let draw = |rng: &mut Rng| -> Vec<f32> {
        let c = &centers[(rng.next() % centers.len() as u64) as usize];
        c.iter().map(|x| x + rng.gauss()).collect()
    };
    let vectors = (0..n).map(|_| draw(&mut rng)).collect();
    let queries = (0..nq).map(|_| draw(&mut rng)).collect();
    (vectors, queries, Metric::Euclidean)
}

/// Vectors of a `.npy` file (e.g. GloVe), normalised and searched by cosine: the last `nq`
/// rows are the queries (held out), the first `n` (0: all the others) the points.
fn real_vectors(path: &str, n: usize, nq: usize) -> Result<Dataset, String> {
    let (flat, rows, dim) = skye_index::npy::read_f32(path)?;
    if rows <= nq {
        return Err(format!("{path}: {rows} rows, {nq} queries wanted"));
    }
    let mut all: Vec<Vec<f32>> = flat.chunks(dim).map(<[f32]>::to_vec).collect();
    all.iter_mut()
        .for_each(|v| skye_index::distance::normalize(v));
    let queries = all.split_off(rows - nq);
    if n > 0 {
        all.truncate(n);
    }
    // On unit vectors squared L2 ranks as cosine does: the brute force below stays L2.
    Ok((all, queries, Metric::Cosine))
}

#[allow(
    clippy::print_stdout,
    reason = "JSON lines on stdout are this tool's output"
)]
pub(crate) fn run(a: &Args) -> Result<(), String> {
    let nq: usize = a.num("queries", 200)?;
    let k: usize = a.num("k", 10)?;
    let (vectors, queries, metric) = dataset(a, nq)?;
    let (n, dim) = (vectors.len(), queries[0].len());
    let payload = |i: usize| {
        let f = fields(i);
        let kw = |s: String| Value::Keyword(s);
        vec![
            ("cat".to_string(), kw(format!("c{}", f.cat))),
            ("shop".to_string(), kw(format!("s{}", f.shop))),
            ("a".to_string(), kw(format!("v{}", f.abc[0]))),
            ("b".to_string(), kw(format!("v{}", f.abc[1]))),
            ("c".to_string(), kw(format!("v{}", f.abc[2]))),
            ("price".to_string(), Value::Integer(f.price)),
        ]
    };
    let collection = Collection::new(CollectionConfig::new(dim, metric));
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100_000) {
        let points = chunk
            .iter()
            .map(|&i| Point {
                id: i.to_string(),
                vector: vectors[i].clone(),
                payload: payload(i),
            })
            .collect();
        collection.upsert(points).map_err(|e| e.to_string())?;
    }
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    collection.index_pending();
    let build = t.elapsed().as_secs_f64();
    let memory = collection.memory();
    let (rss, hwm) = rss_mb();
    println!(
        "{{\"phase\":\"build\",\"n\":{n},\"dim\":{dim},\"load_s\":{load:.1},\"build_s\":{build:.1},\"memory_mb\":{:.1},\"payload_index_mb\":{:.1},\"rss_mb\":{rss:.1},\"peak_rss_mb\":{hwm:.1}}}",
        memory.total() as f64 / 1e6,
        memory.payload_index as f64 / 1e6,
    );
    let all_fields: Vec<Fields> = (0..n).map(fields).collect();
    let sq = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum::<f32>();
    // `--cases 1,50` runs only the rows whose name starts with one of those.
    let only: Vec<String> =
        a.0.get("cases")
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default();
    let mut rows: Vec<(String, Option<Filter>, Keep, Option<usize>)> = cases()
        .into_iter()
        .map(|(name, filter, keep)| (name.to_string(), filter, keep, None))
        .collect();
    // `--unfiltered-efs 384,768`: the unfiltered search again at those beams (what its recall
    // costs when it must match a filtered row's).
    if a.0.contains_key("unfiltered-efs") {
        for ef in a.list("unfiltered-efs", "")? {
            let all: Keep = Box::new(|_: &Fields| true);
            rows.push((format!("unfiltered ef {ef}"), None, all, Some(ef)));
        }
    }
    for (name, filter, keep, ef) in rows {
        if !only.is_empty() && !only.iter().any(|o| name.starts_with(o.as_str())) {
            continue;
        }
        let matching: Vec<usize> = (0..n).filter(|i| keep(&all_fields[*i])).collect();
        let truth: Vec<Vec<String>> = queries
            .par_iter()
            .map(|q| {
                let mut d: Vec<(f32, usize)> =
                    matching.iter().map(|&i| (sq(q, &vectors[i]), i)).collect();
                d.sort_by(|x, y| x.0.total_cmp(&y.0));
                d.iter().take(k).map(|(_, i)| i.to_string()).collect()
            })
            .collect();
        let search = |q: &Vec<f32>| {
            collection
                .search_explained(&SearchRequest {
                    vector: q,
                    limit: k,
                    filter: filter.as_ref(),
                    ef,
                    ..Default::default()
                })
                .map_err(|e| e.to_string())
        };
        // Latency on one thread, one query at a time (after a warm-up pass).
        queries.iter().take(20).for_each(|q| drop(search(q)));
        let mut micros = Vec::with_capacity(nq);
        let mut found = Vec::with_capacity(nq);
        let mut paths = std::collections::BTreeMap::<&str, usize>::new();
        for q in &queries {
            let t = Instant::now();
            let (hits, plan) = search(q)?;
            micros.push(t.elapsed().as_secs_f64() * 1e6);
            *paths.entry(plan.path.label()).or_default() += 1;
            found.push(hits.into_iter().map(|h| h.id).collect::<Vec<_>>());
        }
        micros.sort_by(f64::total_cmp);
        let pct = |p: f64| micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)];
        let hit: usize = found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|id| t.contains(id)).count())
            .sum();
        let total: usize = truth.iter().map(Vec::len).sum();
        let recall = hit as f64 / total.max(1) as f64;
        let mut qps = Vec::new();
        for threads in a.list("threads", "1,2")? {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            pool.install(|| queries.par_iter().for_each(|q| drop(search(q))));
            qps.push(format!(
                "\"qps_{threads}t\":{:.0}",
                nq as f64 / t.elapsed().as_secs_f64()
            ));
        }
        println!(
            "{{\"phase\":\"filter\",\"case\":\"{name}\",\"matches\":{},\"recall\":{recall:.4},\"p50_ms\":{:.3},\"p99_ms\":{:.3},{},\"paths\":{:?}}}",
            matching.len(),
            pct(0.5) / 1e3,
            pct(0.99) / 1e3,
            qps.join(","),
            paths,
        );
    }
    Ok(())
}
