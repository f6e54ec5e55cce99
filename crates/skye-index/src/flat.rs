//! Exact (brute-force) search: ground truth, small collections, the not-yet-indexed tail, and
//! restrictive filters. Streams the contiguous vector array; splits large scans over the rayon
//! pool.

use std::collections::BinaryHeap;
use std::ops::Range;

use rayon::prelude::*;

use crate::distance::DistanceFn;
use crate::hnsw::{Admit, QueryDist, Scored};
use crate::vectors::Vectors;

/// Rows per parallel task.
const CHUNK_ROWS: usize = 16 * 1024;
/// Rows scanned between two checks of the stop flag.
const STOP_CHECK_ROWS: usize = 4096;
/// Scans shorter than this stay on the calling thread.
pub const PARALLEL_FROM: usize = 64 * 1024;

/// The `k` nearest admitted rows seen so far: a bounded max-heap and the distance a new row
/// must beat once it is full (admission is tested only for rows that would enter).
struct Nearest {
    heap: BinaryHeap<Scored>,
    k: usize,
    bound: f32,
}

impl Nearest {
    fn new(k: usize) -> Self {
        Nearest {
            heap: BinaryHeap::with_capacity(k + 1),
            k,
            bound: f32::INFINITY,
        }
    }

    #[inline]
    fn offer<A: Admit>(&mut self, dist: f32, id: u32, admit: &A) {
        if (self.heap.len() < self.k || dist < self.bound) && admit.admit(id) {
            self.heap.push(Scored { dist, id });
            if self.heap.len() > self.k {
                self.heap.pop();
            }
            if self.heap.len() == self.k {
                self.bound = self.heap.peek().map_or(f32::INFINITY, |s| s.dist);
            }
        }
    }
}

/// Bounded max-heap keeping the `k` smallest.
fn top_k<A: Admit>(
    vectors: &Vectors,
    dist: DistanceFn,
    q: &[f32],
    k: usize,
    rows: Range<usize>,
    admit: &A,
) -> BinaryHeap<Scored> {
    let mut best = Nearest::new(k);
    if k == 0 {
        return best.heap;
    }
    let start = rows.start;
    for i in rows {
        if (i - start).is_multiple_of(STOP_CHECK_ROWS) && admit.stopped() {
            break;
        }
        best.offer(dist.eval(q, vectors.get(i)), i as u32, admit);
    }
    best.heap
}

/// The `k` nearest admitted rows among `ids` (the points a filter selected), nearest first, by
/// `qd` (float rows or SQ8 codes): the work is proportional to the selection, not to the
/// collection. The rows are scattered, so each is fetched a few rows ahead of its turn.
pub fn search_ids<D: QueryDist, A: Admit>(
    qd: &D,
    k: usize,
    ids: &roaring::RoaringBitmap,
    admit: &A,
) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    let mut best = Nearest::new(k);
    let mut ahead = ids.iter().skip(PREFETCH_AHEAD);
    for (n, id) in ids.iter().enumerate() {
        if n.is_multiple_of(STOP_CHECK_ROWS) && admit.stopped() {
            break;
        }
        if let Some(next) = ahead.next() {
            qd.prefetch(next);
        }
        best.offer(qd.dist(id), id, admit);
    }
    best.heap.into_sorted_vec()
}

/// Rows `search_ids` prefetches ahead of the one it scores.
const PREFETCH_AHEAD: usize = 8;

/// The `k` nearest admitted rows of `rows`, nearest first.
pub fn search<A: Admit + Sync>(
    vectors: &Vectors,
    dist: DistanceFn,
    q: &[f32],
    k: usize,
    rows: Range<usize>,
    admit: &A,
) -> Vec<Scored> {
    if rows.len() < PARALLEL_FROM || rayon::current_num_threads() < 2 {
        return top_k(vectors, dist, q, k, rows, admit).into_sorted_vec();
    }
    let chunks: Vec<Range<usize>> = rows
        .clone()
        .step_by(CHUNK_ROWS)
        .map(|s| s..(s + CHUNK_ROWS).min(rows.end))
        .collect();
    let merged = chunks
        .into_par_iter()
        .map(|r| top_k(vectors, dist, q, k, r, admit))
        .reduce(BinaryHeap::new, |mut a, b| {
            for s in b {
                a.push(s);
                if a.len() > k {
                    a.pop();
                }
            }
            a
        });
    merged.into_sorted_vec()
}
