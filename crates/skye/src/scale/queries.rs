//! The measured part of `skye bench scale`: gRPC requests, recall against an exact scan of the
//! catalog, and closed-loop QPS / p50 / p99 per query kind.

use super::*;

pub(super) fn request(
    vector: &[f32],
    filter: Option<&skye_proto::Filter>,
) -> skye_proto::SkyeRequest {
    model_request(MODEL, vector, filter)
}

/// A top-[`K`] search of variant `v` of `model`.
pub(crate) fn model_request(
    model: &str,
    vector: &[f32],
    filter: Option<&skye_proto::Filter>,
) -> skye_proto::SkyeRequest {
    skye_proto::SkyeRequest {
        entity: ENTITY.into(),
        model_name: model.into(),
        variant: VARIANT.into(),
        limit: K as i32,
        embeddings: vec![skye_proto::Embedding {
            embedding: vector.iter().map(|&x| f64::from(x)).collect(),
        }],
        global_filters: filter.map(|f| skye_proto::Filters {
            filter: vec![f.clone()],
        }),
        ..Default::default()
    }
}

/// Recall@10 of every query kind against an exact scan, then its closed-loop load.
pub(super) async fn measure_queries(
    args: &BenchScaleArgs,
    catalog: &Catalog,
    vectors: &[f32],
    server: &Server,
) -> anyhow::Result<Vec<(&'static str, f64, f64, f64, f64)>> {
    let mut rng = Rng(0x0E1_2345);
    let queries: Vec<Vec<f32>> = (0..args.queries.max(1))
        .map(|_| catalog.point(&mut rng))
        .collect();
    let kinds = kinds();
    let started = Instant::now();
    let truth = ground_truth(vectors, args.dim, &queries, &kinds);
    say(&format!(
        "  exact top-{K} of {} queries × {} kinds in {:.1} s",
        queries.len(),
        kinds.len(),
        started.elapsed().as_secs_f64()
    ));
    let client = connect(server).await?;
    let queries = Arc::new(queries);
    let mut out = Vec::new();
    for (k, kind) in kinds.iter().enumerate() {
        let mut hits = 0usize;
        let mut wanted = 0usize;
        for (q, query) in queries.iter().enumerate() {
            let response = client
                .similar_candidates(request(query, kind.filter.as_ref()))
                .await
                .with_context(|| format!("{} search", kind.name))?;
            let got: HashSet<String> = response
                .responses
                .first()
                .map(|c| c.candidates.iter().map(|c| c.id.clone()).collect())
                .unwrap_or_default();
            let exact = &truth[k][q];
            wanted += exact.len();
            hits += exact
                .iter()
                .filter(|i| got.contains(&i.to_string()))
                .count();
        }
        let recall = hits as f64 / wanted.max(1) as f64;
        let (qps, mut lat) = load(args, &client, &queries, kind.filter.clone()).await?;
        lat.sort_unstable();
        let (p50, p99) = (percentile_ms(&lat, 0.5), percentile_ms(&lat, 0.99));
        say(&format!(
            "  {:<16} {qps:>8.0} QPS  p50 {p50:.2} ms  p99 {p99:.2} ms  recall@{K} {recall:.3}",
            kind.name
        ));
        out.push((kind.name, qps, p50, p99, recall));
    }
    Ok(out)
}

pub(super) async fn load(
    args: &BenchScaleArgs,
    client: &Arc<skye_client::SkyeClient>,
    queries: &Arc<Vec<Vec<f32>>>,
    filter: Option<skye_proto::Filter>,
) -> anyhow::Result<(f64, Vec<u32>)> {
    let (client, queries) = (client.clone(), queries.clone());
    closed_loop(args.concurrency, args.duration, move |i| {
        let req = request(&queries[i % queries.len()], filter.as_ref());
        let client = client.clone();
        async move {
            client.similar_candidates(req).await?;
            Ok(())
        }
    })
    .await
}

/// `concurrency` workers, each asking `ask(i)` for its next query number `i` (worker `w` asks
/// `w, w + concurrency, …`) for `seconds` (after 1 s of warm-up); returns QPS and the
/// latencies in µs. The first failed request fails the run.
pub(crate) async fn closed_loop<F, Fut>(
    concurrency: usize,
    seconds: u64,
    ask: F,
) -> anyhow::Result<(f64, Vec<u32>)>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let step = concurrency.max(1);
    let run = |seconds: f64| {
        (0..step)
            .map(|w| {
                let ask = ask.clone();
                tokio::spawn(async move {
                    let end = Instant::now() + Duration::from_secs_f64(seconds);
                    let mut lat = Vec::new();
                    let mut i = w;
                    while Instant::now() < end {
                        let request = ask(i);
                        let t = Instant::now();
                        request.await?;
                        i += step;
                        lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                    anyhow::Ok(lat)
                })
            })
            .collect::<Vec<_>>()
    };
    for w in run(1.0) {
        w.await??;
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for w in run(seconds as f64) {
        all.extend(w.await??);
    }
    Ok((all.len() as f64 / started.elapsed().as_secs_f64(), all))
}

/// The exact top-10 ids of every query for every kind (one scan of the catalog per query,
/// shared by the kinds), on all cores.
pub(crate) fn ground_truth(
    vectors: &[f32],
    dim: usize,
    queries: &[Vec<f32>],
    kinds: &[Kind],
) -> Vec<Vec<Vec<usize>>> {
    let n = vectors.len() / dim;
    let attrs: Vec<Attrs> = (0..n).map(Attrs::of).collect();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let per_query: Vec<Vec<Vec<usize>>> = std::thread::scope(|s| {
        let chunk = queries.len().div_ceil(threads);
        let handles: Vec<_> = queries
            .chunks(chunk.max(1))
            .map(|qs| {
                let attrs = &attrs;
                s.spawn(move || {
                    qs.iter()
                        .map(|q| {
                            let mut tops: Vec<Vec<(f32, usize)>> = vec![Vec::new(); kinds.len()];
                            for (i, row) in vectors.chunks_exact(dim).enumerate() {
                                let score: f32 = row.iter().zip(q).map(|(a, b)| a * b).sum();
                                for (k, kind) in kinds.iter().enumerate() {
                                    if (kind.admits)(&attrs[i]) {
                                        offer(&mut tops[k], score, i);
                                    }
                                }
                            }
                            tops.into_iter()
                                .map(|t| t.into_iter().map(|(_, i)| i).collect())
                                .collect()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    // Transpose to [kind][query].
    (0..kinds.len())
        .map(|k| per_query.iter().map(|q| q[k].clone()).collect())
        .collect()
}

/// Keeps the `K` best `(score, id)` in `top`, best first.
pub(super) fn offer(top: &mut Vec<(f32, usize)>, score: f32, id: usize) {
    if top.len() == K && top[K - 1].0 >= score {
        return;
    }
    let at = top.partition_point(|(s, _)| *s >= score);
    top.insert(at, (score, id));
    top.truncate(K);
}
