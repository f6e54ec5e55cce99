//! Criterion benches: distance kernels, graph build and search.
//!
//! `cargo bench -p skye-index` (results in target/criterion). Figures that matter for users are
//! recorded with their command in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use skye_index::distance::{Kernels, SimdLevel};
use skye_index::{
    Collection, CollectionConfig, Condition, Filter, Metric, Point, SearchRequest, Value,
};

fn rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    for dim in [50usize, 128, 384, 768] {
        let v = rows(2, dim, 7);
        g.throughput(Throughput::Bytes((dim * 8) as u64));
        for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
            let Some(k) = Kernels::for_level(level) else {
                continue;
            };
            g.bench_with_input(
                BenchmarkId::new(format!("dot/{level:?}"), dim),
                &v,
                |b, v| b.iter(|| (k.dot)(black_box(&v[0]), black_box(&v[1]))),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("l2sq/{level:?}"), dim),
                &v,
                |b, v| b.iter(|| (k.l2sq)(black_box(&v[0]), black_box(&v[1]))),
            );
        }
    }
    g.finish();
}

fn collection(n: usize, dim: usize) -> Collection {
    let mut config = CollectionConfig::new(dim, Metric::Cosine);
    config.hnsw.m = 16;
    config.hnsw.ef_construct = 100;
    config.exact_below = 0;
    config.exact_rows_per_beam = 0;
    let c = Collection::new(config);
    let points = rows(n, dim, 11)
        .into_iter()
        .enumerate()
        .map(|(i, vector)| Point {
            id: i.to_string(),
            vector,
            payload: vec![("b".into(), Value::Integer((i % 10) as i64))],
        })
        .collect();
    c.upsert(points).expect("valid points");
    c
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("hnsw 10k x 64d m16 efc100", |b| {
        b.iter_with_setup(|| collection(10_000, 64), |c| c.index_pending())
    });
    g.finish();
}

fn search(c: &mut Criterion) {
    let coll = collection(50_000, 64);
    coll.index_pending();
    let queries = rows(64, 64, 99);
    let filter = Filter {
        must: vec![Condition::Match {
            field: "b".into(),
            any: vec![Value::Integer(3)],
        }],
        must_not: vec![],
    };
    let mut g = c.benchmark_group("search 50k x 64d k10");
    let mut i = 0;
    let mut next = || {
        i = (i + 1) % queries.len();
        &queries[i]
    };
    g.bench_function("hnsw ef64", |b| {
        b.iter(|| {
            coll.search(&SearchRequest {
                vector: next(),
                limit: 10,
                ef: Some(64),
                ..Default::default()
            })
        })
    });
    g.bench_function("hnsw ef64 filter 10%", |b| {
        b.iter(|| {
            coll.search(&SearchRequest {
                vector: next(),
                limit: 10,
                ef: Some(64),
                filter: Some(&filter),
                ..Default::default()
            })
        })
    });
    g.bench_function("exact", |b| {
        b.iter(|| {
            coll.search(&SearchRequest {
                vector: next(),
                limit: 10,
                exact: true,
                ..Default::default()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, kernels, build, search);
criterion_main!(benches);
