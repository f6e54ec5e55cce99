//! The HNSW graph (Malkov & Yashunin), built for concurrent inserts and lock-free searches.
//!
//! Layout: layer-0 links of all nodes live in one flat array of atomics, `m0 + 1` slots per node
//! (count, then ids), so a search reads neighbours with plain loads and no pointer chasing.
//! Upper layers (about one node in `m`) keep their lists behind a lock of their own, allocated
//! only for those nodes: a node's level is drawn from its id when the graph grows, so the other
//! nodes cost one empty pointer. A writer updates a node's links holding the node's stripe of
//! [`LOCK_STRIPES`] mutexes, writing ids before the count (release), so a concurrent reader sees
//! either the old or the new list, never an id out of range. Inserts of different nodes run in
//! parallel (rayon), as in hnswlib.
//!
//! Distances here are internal distances (lower is better), see [`crate::distance`].

mod query;
mod repair;
mod visited;

pub use query::{Admit, AdmitAll, Exact, Quantized, QueryDist, STOP_CHECK_EVERY, Space, Stoppable};

pub use repair::DROPPED;

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{
    AtomicU8, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use parking_lot::{Mutex, RwLock};

use crate::vectors::{prefetch, prefetch_lines};
use visited::with_visited;

/// `entry_word` flag: the graph has an entry point.
const ENTRY_SET: u64 = 1 << 63;
/// Level of a node that is not (yet) in the graph.
const UNLINKED: u8 = u8::MAX;
/// Highest level a node can get.
const MAX_LEVEL: usize = 16;
/// Mutexes serialising writers of a node's links (node `i` takes stripe `i % LOCK_STRIPES`):
/// a link update holds one for microseconds and never two at once.
const LOCK_STRIPES: usize = 1024;

/// A node's lists of layers `1..=level`.
type UpperLists = RwLock<Vec<Vec<u32>>>;

/// Graph parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on upper layers (layer 0 has `2·m`).
    pub m: usize,
    /// Beam width while building.
    pub ef_construct: usize,
    /// Seed of the level generator.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construct: 100,
            seed: 0x5eed_5eed,
        }
    }
}

/// `(distance, node)` ordered by distance, then node.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub dist: f32,
    pub id: u32,
}

// Ordered (and equal) by distance only: the heaps in the hot loop compare nothing else.
impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Entry {
    node: u32,
    level: usize,
    set: bool,
}

/// The graph.
pub struct Hnsw {
    params: HnswParams,
    keep_pruned: bool,
    m0: usize,
    level_mult: f64,
    /// `capacity · (m0 + 1)`: per node, count then ids.
    l0: Vec<AtomicU32>,
    /// Per node: lists of layers 1..=level, `None` for a node of layer 0 only.
    upper: Vec<Option<Box<UpperLists>>>,
    /// Writers of node `i`'s links hold `locks[i % LOCK_STRIPES]`.
    locks: Box<[Mutex<()>]>,
    levels: Vec<AtomicU8>,
    entry: Mutex<Entry>,
    /// Lock-free mirror of `entry` for searches: set bit, level, node.
    entry_word: AtomicU64,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("params", &self.params)
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// Room for the lists of a node of `level` (none for layer 0 only).
fn upper_lists(level: usize) -> Option<Box<UpperLists>> {
    (level > 0).then(|| Box::new(RwLock::new(vec![Vec::new(); level])))
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Hnsw {
    /// A graph for a distance that is a metric (`metric_space`) or not (inner product).
    pub fn new(params: HnswParams, metric_space: bool) -> Self {
        let m = params.m.clamp(2, 128);
        let params = HnswParams {
            m,
            ef_construct: params.ef_construct.max(m),
            ..params
        };
        Hnsw {
            params,
            keep_pruned: !metric_space,
            m0: 2 * m,
            level_mult: 1.0 / (m as f64).ln(),
            l0: Vec::new(),
            upper: Vec::new(),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            levels: Vec::new(),
            entry: Mutex::new(Entry {
                node: 0,
                level: 0,
                set: false,
            }),
            entry_word: AtomicU64::new(0),
        }
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Nodes the graph has room for.
    pub fn capacity(&self) -> usize {
        self.levels.len()
    }

    /// Makes room for nodes `0..n` (new nodes start unlinked, with room for the level their id
    /// draws).
    pub fn grow(&mut self, n: usize) {
        let from = self.capacity();
        if n <= from {
            return;
        }
        self.l0.resize_with(n * (self.m0 + 1), || AtomicU32::new(0));
        self.upper.reserve_exact(n - from);
        for id in from..n {
            let lists = upper_lists(self.random_level(id as u32));
            self.upper.push(lists);
        }
        self.levels.resize_with(n, || AtomicU8::new(UNLINKED));
    }

    /// The writers' lock of node `id`.
    fn lock(&self, id: u32) -> parking_lot::MutexGuard<'_, ()> {
        self.locks[id as usize % LOCK_STRIPES].lock()
    }

    /// The level node `id` gets when it is linked: the lists made for it.
    fn planned_level(&self, id: u32) -> usize {
        self.upper[id as usize]
            .as_ref()
            .map_or(0, |u| u.read().len())
    }

    /// Whether `id` is linked into the graph.
    pub fn is_linked(&self, id: u32) -> bool {
        self.levels
            .get(id as usize)
            .is_some_and(|l| l.load(Acquire) != UNLINKED)
    }

    /// Bytes used by the links.
    pub fn heap_bytes(&self) -> usize {
        self.l0.capacity() * 4
            + self.upper.capacity() * std::mem::size_of::<Option<Box<UpperLists>>>()
            + self
                .upper
                .iter()
                .flatten()
                .map(|u| {
                    let lists = u.read();
                    std::mem::size_of::<UpperLists>()
                        + lists.capacity() * 24
                        + lists.iter().map(|l| l.capacity() * 4).sum::<usize>()
                })
                .sum::<usize>()
            + self.locks.len() * std::mem::size_of::<Mutex<()>>()
            + self.levels.capacity()
    }

    fn random_level(&self, id: u32) -> usize {
        let r = splitmix64(self.params.seed ^ u64::from(id).wrapping_mul(0x2545_f491_4f6c_dd1d));
        // Uniform in (0, 1].
        let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        ((-u.ln() * self.level_mult) as usize).min(MAX_LEVEL)
    }

    #[inline]
    fn l0_base(&self, id: u32) -> usize {
        id as usize * (self.m0 + 1)
    }

    /// Copies node `id`'s layer-0 neighbours into `out`.
    #[inline]
    fn neighbours0(&self, id: u32, out: &mut Vec<u32>) {
        out.clear();
        let base = self.l0_base(id);
        let count = (self.l0[base].load(Acquire) as usize).min(self.m0);
        out.extend(
            self.l0[base + 1..base + 1 + count]
                .iter()
                .map(|a| a.load(Relaxed)),
        );
    }

    #[inline]
    fn neighbours(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        if level == 0 {
            self.neighbours0(id, out);
        } else {
            out.clear();
            if let Some(lists) = &self.upper[id as usize]
                && let Some(list) = lists.read().get(level - 1)
            {
                out.extend_from_slice(list);
            }
        }
    }

    /// Writes node `id`'s list at `level`. The caller holds `self.lock(id)`.
    fn write_links(&self, id: u32, level: usize, links: &[u32]) {
        if level == 0 {
            let base = self.l0_base(id);
            let n = links.len().min(self.m0);
            for (slot, &l) in self.l0[base + 1..base + 1 + n].iter().zip(links) {
                slot.store(l, Relaxed);
            }
            self.l0[base].store(n as u32, Release);
        } else if let Some(lists) = &self.upper[id as usize]
            && let Some(list) = lists.write().get_mut(level - 1)
        {
            list.clear();
            list.extend_from_slice(links);
        }
    }

    fn max_links(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.params.m }
    }

    /// Greedy descent on one upper layer.
    fn greedy<D: QueryDist>(&self, qd: &D, mut cur: Scored, level: usize) -> Scored {
        let mut buf = Vec::with_capacity(self.params.m);
        loop {
            let mut changed = false;
            self.neighbours(cur.id, level, &mut buf);
            for &n in &buf {
                let d = qd.dist(n);
                if d < cur.dist {
                    cur = Scored { dist: d, id: n };
                    changed = true;
                }
            }
            if !changed {
                return cur;
            }
        }
    }

    /// Beam search on one layer: the `ef` nearest admitted nodes found from `entry`, nearest
    /// first. Non-admitted nodes are traversed but not returned.
    pub(crate) fn search_layer<A: Admit, D: QueryDist>(
        &self,
        qd: &D,
        entry: &[Scored],
        ef: usize,
        level: usize,
        admit: &A,
    ) -> Vec<Scored> {
        self.search_layer_bounded(qd, entry, ef, ef, level, admit)
    }

    /// Beam search that keeps the `keep` nearest admitted nodes while the beam (`explore`
    /// nearest of *all* visited nodes) decides where to go and when to stop. With
    /// `explore == keep` this is the classic search; a filtered search passes a wider
    /// `explore` so its cost stays bounded however few nodes the filter admits (the classic form
    /// never tightens its bound until `keep` admitted nodes were found, and floods the graph).
    pub(crate) fn search_layer_bounded<A: Admit, D: QueryDist>(
        &self,
        qd: &D,
        entry: &[Scored],
        explore: usize,
        keep: usize,
        level: usize,
        admit: &A,
    ) -> Vec<Scored> {
        let classic = explore == keep;
        with_visited(self.capacity(), |visited| {
            let mut candidates: BinaryHeap<Reverse<Scored>> =
                BinaryHeap::with_capacity(explore * 2);
            let mut results: BinaryHeap<Scored> = BinaryHeap::with_capacity(keep + 1);
            // The beam of a bounded search: distances of the `explore` nearest visited nodes.
            let mut beam: BinaryHeap<Scored> =
                BinaryHeap::with_capacity(if classic { 0 } else { explore + 1 });
            for &e in entry {
                if !visited.check_and_mark(e.id) {
                    candidates.push(Reverse(e));
                    if !classic {
                        beam.push(e);
                    }
                    if admit.admit(e.id) {
                        results.push(e);
                    }
                }
            }
            while results.len() > keep {
                results.pop();
            }
            let bound_of = |heap: &BinaryHeap<Scored>, cap: usize| {
                if heap.len() >= cap {
                    heap.peek().map_or(f32::INFINITY, |s| s.dist)
                } else {
                    f32::INFINITY
                }
            };
            let mut bound = if classic {
                bound_of(&results, keep)
            } else {
                bound_of(&beam, explore)
            };
            let mut buf = Vec::with_capacity(self.m0);
            let mut fresh = Vec::with_capacity(self.m0);
            let mut expanded = 0usize;
            while let Some(Reverse(c)) = candidates.pop() {
                if c.dist > bound {
                    break;
                }
                expanded += 1;
                if expanded.is_multiple_of(STOP_CHECK_EVERY) && admit.stopped() {
                    break;
                }
                self.neighbours(c.id, level, &mut buf);
                self.unvisited(&buf, visited, qd, &mut fresh);
                for &n in &fresh {
                    let d = qd.dist(n);
                    let within = if classic {
                        results.len() < keep || d < bound
                    } else {
                        beam.len() < explore || d < bound
                    };
                    if !within {
                        continue;
                    }
                    candidates.push(Reverse(Scored { dist: d, id: n }));
                    if level == 0 {
                        // A node that may be expanded: fetch its links early.
                        self.prefetch_links0(n);
                    }
                    if !classic {
                        beam.push(Scored { dist: d, id: n });
                        if beam.len() > explore {
                            beam.pop();
                        }
                        bound = bound_of(&beam, explore);
                    }
                    if admit.admit(n) {
                        results.push(Scored { dist: d, id: n });
                        if results.len() > keep {
                            results.pop();
                        }
                        if classic {
                            bound = bound_of(&results, keep);
                        }
                    }
                }
            }
            results.into_sorted_vec()
        })
    }

    /// Marks the nodes of `links` visited and collects the ones not seen before into `fresh`,
    /// prefetching each one's data as it goes: all of an expansion's misses are then in flight
    /// together before the first distance is computed, instead of one ahead.
    #[inline(always)]
    fn unvisited<D: QueryDist>(
        &self,
        links: &[u32],
        visited: &mut visited::Visited,
        qd: &D,
        fresh: &mut Vec<u32>,
    ) {
        fresh.clear();
        for &n in links {
            prefetch(visited.slot_ptr(n));
        }
        for &n in links {
            if !visited.check_and_mark(n) {
                qd.prefetch(n);
                fresh.push(n);
            }
        }
    }

    /// Prefetches node `id`'s layer-0 list (count and ids, every line of it).
    #[inline(always)]
    fn prefetch_links0(&self, id: u32) {
        prefetch_lines(
            self.l0.as_ptr().wrapping_add(self.l0_base(id)).cast::<u8>(),
            (self.m0 + 1) * 4,
        );
    }

    /// hnswlib's neighbour heuristic: keep a candidate only if no kept neighbour is closer to it
    /// than the base node is. `candidates` sorted nearest first.
    fn select(&self, space: Space<'_>, candidates: &[Scored], max: usize) -> Vec<u32> {
        self.select_from(space, Vec::new(), candidates, max)
    }

    /// [`Hnsw::select`] starting from links already chosen (`kept`, never pruned).
    fn select_from(
        &self,
        space: Space<'_>,
        mut kept: Vec<Scored>,
        candidates: &[Scored],
        max: usize,
    ) -> Vec<u32> {
        let Space { vectors, dist } = space;
        if kept.len() + candidates.len() <= max {
            kept.extend_from_slice(candidates);
            kept.sort_unstable();
            return kept.iter().map(|s| s.id).collect();
        }
        let mut pruned: Vec<Scored> = Vec::new();
        for c in candidates {
            if kept.len() >= max {
                break;
            }
            let cv = vectors.get(c.id as usize);
            if kept
                .iter()
                .all(|k| dist.eval(cv, vectors.get(k.id as usize)) >= c.dist)
            {
                kept.push(*c);
            } else if self.keep_pruned {
                pruned.push(*c);
            }
        }
        if self.keep_pruned {
            // Inner product is not a metric: the heuristic alone starves low-norm points of
            // links and makes them unreachable. Fill the free slots with the nearest pruned.
            let room = max.saturating_sub(kept.len());
            kept.extend(pruned.into_iter().take(room));
        }
        kept.iter().map(|s| s.id).collect()
    }

    /// Links node `id` (whose vector is `vectors.get(id)`) into the graph. Safe to call from
    /// many threads for different nodes; `grow` must have made room for `id`.
    pub fn insert(&self, space: Space<'_>, id: u32) {
        let q = space.vectors.get(id as usize);
        self.insert_guided(space, id, &Exact { q, space }, false);
    }

    /// [`Hnsw::insert`] with the candidate searches walking on `guide`'s distances (SQ8 codes:
    /// a quarter of the bytes per visited row); with `rescore`, each layer's candidates are
    /// measured exactly before the neighbour heuristic picks the links, so the links are chosen
    /// as on float vectors.
    pub fn insert_guided<D: QueryDist>(&self, space: Space<'_>, id: u32, guide: &D, rescore: bool) {
        let vectors = space.vectors;
        if self.is_linked(id) {
            return;
        }
        let level = self.planned_level(id);
        let q = vectors.get(id as usize);
        // A node above the current top holds the entry lock for its whole insertion, so that
        // the entry point changes only once it is fully linked.
        let mut guard = self.entry.lock();
        if !guard.set {
            guard.set = true;
            guard.node = id;
            guard.level = level;
            self.publish_entry(id, level);
            self.levels[id as usize].store(level as u8, Release);
            return;
        }
        let (ep_node, top) = (guard.node, guard.level);
        let held = if level > top {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let exact = Exact { q, space };
        let mut cur = Scored {
            dist: guide.dist(ep_node),
            id: ep_node,
        };
        for l in (level + 1..=top).rev() {
            cur = self.greedy(guide, cur, l);
        }
        let mut eps = vec![cur];
        for l in (0..=level.min(top)).rev() {
            let found = self.search_layer(guide, &eps, self.params.ef_construct, l, &AdmitAll);
            let mut found: Vec<Scored> = found.into_iter().filter(|s| s.id != id).collect();
            let walked = rescore.then(|| found.clone());
            if rescore {
                found.iter().for_each(|s| exact.prefetch(s.id));
                found.iter_mut().for_each(|s| s.dist = exact.dist(s.id));
                found.sort_unstable();
            }
            let links = self.select(space, &found, self.params.m);
            {
                let _writer = self.lock(id);
                self.write_links(id, l, &links);
            }
            for &n in &links {
                self.add_link(space, n, id, l);
            }
            // The next layer's walk starts from this one's, on the guide's distances.
            let found = walked.unwrap_or(found);
            if !found.is_empty() {
                eps = found;
            }
        }
        self.levels[id as usize].store(level as u8, Release);
        if let Some(mut guard) = held {
            guard.node = id;
            guard.level = level;
            self.publish_entry(id, level);
        }
    }

    /// Mirrors the entry point into an atomic so searches read it without a lock.
    /// Caller holds `self.entry`.
    fn publish_entry(&self, node: u32, level: usize) {
        self.entry_word.store(
            ENTRY_SET | ((level as u64) << 32) | u64::from(node),
            Release,
        );
    }

    /// Adds `new` to `node`'s list at `level`, pruning with the heuristic when full.
    fn add_link(&self, space: Space<'_>, node: u32, new: u32, level: usize) {
        let Space { vectors, dist } = space;
        let max = self.max_links(level);
        let _writer = self.lock(node);
        let mut current = Vec::with_capacity(max + 1);
        self.neighbours(node, level, &mut current);
        if level > self.planned_level(node) || current.contains(&new) {
            return;
        }
        if current.len() < max {
            current.push(new);
            self.write_links(node, level, &current);
            return;
        }
        let base = vectors.get(node as usize);
        let mut scored: Vec<Scored> = current
            .iter()
            .chain(std::iter::once(&new))
            .map(|&c| Scored {
                dist: dist.eval(base, vectors.get(c as usize)),
                id: c,
            })
            .collect();
        scored.sort_unstable();
        let kept = self.select(space, &scored, max);
        self.write_links(node, level, &kept);
    }

    /// The entry point and top level, if the graph has nodes.
    fn entry_point(&self) -> Option<(u32, usize)> {
        let w = self.entry_word.load(Acquire);
        (w & ENTRY_SET != 0).then_some((w as u32, ((w >> 32) & 0xff) as usize))
    }

    /// The `k` nearest admitted nodes to `q` with beam width `ef` (≥ k), nearest first.
    /// The `keep` nearest admitted nodes found by a beam of width `explore` (≥ `keep`).
    pub fn search_filtered<A: Admit, D: QueryDist>(
        &self,
        qd: &D,
        explore: usize,
        keep: usize,
        admit: &A,
    ) -> Vec<Scored> {
        let Some((ep, top)) = self.entry_point() else {
            return Vec::new();
        };
        let mut cur = Scored {
            dist: qd.dist(ep),
            id: ep,
        };
        for l in (1..=top).rev() {
            cur = self.greedy(qd, cur, l);
        }
        self.search_layer_bounded(qd, &[cur], explore.max(keep), keep, 0, admit)
    }

    /// Layer-0 link slots (count, ids) of node `id`, for snapshots.
    pub(crate) fn l0_slots(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        let base = self.l0_base(id);
        self.l0[base..base + self.m0 + 1]
            .iter()
            .map(|a| a.load(Acquire))
    }

    /// Stored level of node `id` (`u8::MAX` when unlinked).
    pub(crate) fn level_of(&self, id: u32) -> u8 {
        self.levels[id as usize].load(Acquire)
    }

    /// Upper-layer lists of node `id`.
    pub(crate) fn upper_of(&self, id: u32) -> Vec<Vec<u32>> {
        self.upper[id as usize]
            .as_ref()
            .map_or_else(Vec::new, |u| u.read().clone())
    }

    pub(crate) fn entry_of(&self) -> Option<(u32, usize)> {
        self.entry_point()
    }

    /// Slots per node in the layer-0 array.
    pub(crate) fn l0_stride(&self) -> usize {
        self.m0 + 1
    }

    /// Restores node `id` from a snapshot; ids are checked against the capacity. An unlinked
    /// node keeps the room [`Hnsw::grow`] made for its level.
    pub(crate) fn restore_node(
        &mut self,
        id: u32,
        level: u8,
        l0: &[u32],
        upper: Vec<Vec<u32>>,
    ) -> Result<(), String> {
        let cap = self.capacity() as u32;
        if l0.len() != self.m0 + 1 || l0[0] as usize > self.m0 {
            return Err(format!("node {id}: bad layer-0 list"));
        }
        if l0[1..]
            .iter()
            .chain(upper.iter().flatten())
            .any(|&n| n >= cap)
        {
            return Err(format!("node {id}: link out of range"));
        }
        if level != UNLINKED && upper.len() != usize::from(level) {
            return Err(format!(
                "node {id}: {} upper lists for level {level}",
                upper.len()
            ));
        }
        let base = self.l0_base(id);
        for (slot, v) in self.l0[base..base + self.m0 + 1].iter().zip(l0) {
            slot.store(*v, Relaxed);
        }
        if level != UNLINKED {
            self.upper[id as usize] = (level > 0).then(|| Box::new(RwLock::new(upper)));
        }
        self.levels[id as usize].store(level, Release);
        Ok(())
    }

    pub(crate) fn restore_entry(&self, entry: Option<(u32, usize)>) {
        let mut e = self.entry.lock();
        match entry {
            Some((node, level)) => {
                *e = Entry {
                    node,
                    level,
                    set: true,
                };
                self.publish_entry(node, level);
            }
            None => {
                *e = Entry {
                    node: 0,
                    level: 0,
                    set: false,
                };
                self.entry_word.store(0, Release);
            }
        }
    }
}
