//! A collection: vectors, payloads, the HNSW graph over them, and the search planner.
//!
//! Points are appended to contiguous storage and get internal ids in arrival order. Ids
//! `[0, linked)` are in the graph; `[linked, len)` (the pending tail) are searched exactly until
//! [`Collection::index_pending`] links them. Deleting or overwriting a point leaves a tombstone
//! that still routes graph searches but is never returned; [`Collection::compact`] drops the
//! tombstones, repairing the graph around them instead of linking every point again.
//!
//! Planner: a filter is first answered by the payload indexes as a set of candidate points,
//! whose size is the filter's exact match count (or an upper bound when some condition needs a
//! check per point). Small collections, explicit `exact` requests and filters whose matches are
//! few enough to score one by one are answered exactly (over the candidates only); otherwise a
//! graph search over the linked part (the filter admitting points by a bitmap probe during
//! traversal, the beam widened by the filter's selectivity) is merged with an exact scan of the
//! pending tail. [`Collection::search_explained`] tells which path a search took.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;

use crate::distance::{DistanceFn, Kernels, Metric, normalize};
use crate::error::IndexError;
use crate::filter::{CompiledFilter, Filter};
use crate::flat;
use crate::hnsw::{
    Admit, DROPPED, Exact, Hnsw, HnswParams, Quantized, QueryDist, Scored, Space, Stoppable,
};
use crate::ids::Ids;
use crate::payload::{Fields, Payload, Value};
use crate::payload_index::PayloadIndex;
use crate::payload_store::{Encoded, PayloadStore};
use crate::quant::{QuantKernels, QuantState, Quantizer};
use crate::vectors::{Vectors, gather_rows};

mod search;
pub use search::{Plan, SearchPath, default_ef};

/// The longest [`Collection::index_pending`] waits for a mapped vectors file's read-through.
const WARM_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Points linked per step of [`Collection::index_pending`] (writers wait at most one step).
const INDEX_STEP: usize = 8 * 1024;
/// Points whose lists [`Collection::compact`] repairs per step (writers wait at most one step).
const REPAIR_STEP: usize = 32 * 1024;

/// The order a renumbering gives the live points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Their slot order (a compaction).
    Kept,
    /// Graph neighbours near each other ([`Collection::reorder`]).
    Graph,
}
/// Upper bound on internal ids.
pub const MAX_POINTS: usize = u32::MAX as usize - 1;

/// How a collection is built and searched.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionConfig {
    pub dim: usize,
    pub metric: Metric,
    pub hnsw: HnswParams,
    /// Default search beam width.
    pub ef: usize,
    /// Pending points that make indexing due; 0 = indexing disabled (bulk load).
    pub indexing_threshold: usize,
    /// Collections with at most this many live points are always searched exactly.
    pub exact_below: usize,
    /// Search exactly when the collection has at most `beam width × this` live points (a
    /// graph step costs about this many sequentially scanned rows); 0 turns the rule off.
    pub exact_rows_per_beam: usize,
    /// Walk the graph on SQ8 codes and rescore with the float vectors (DOT, COSINE,
    /// EUCLIDEAN; ignored for MANHATTAN).
    pub quantization: bool,
    /// Float vectors in a memory-mapped file of the collection's directory (`Some(true)`), on
    /// the heap (`Some(false)`), or mapped once they reach [`MAPPED_VECTORS_MIN_BYTES`] with
    /// quantization on (`None`). Takes effect at checkpoints of a durable collection.
    pub on_disk: Option<bool>,
}

/// Float vectors at least this large are memory-mapped by default (quantized collections):
/// searches walk the in-RAM codes and read only the rows they rescore.
pub const MAPPED_VECTORS_MIN_BYTES: usize = 64 << 20;

impl CollectionConfig {
    pub fn new(dim: usize, metric: Metric) -> Self {
        CollectionConfig {
            dim,
            metric,
            hnsw: HnswParams::default(),
            ef: 64,
            indexing_threshold: 10_000,
            exact_below: 2_000,
            quantization: true,
            exact_rows_per_beam: 128,
            on_disk: None,
        }
    }

    /// Whether float vectors of `bytes` are kept in a mapped file.
    pub fn maps_vectors(&self, bytes: usize) -> bool {
        cfg!(target_endian = "little")
            && self.on_disk.unwrap_or(
                self.quantization
                    && self.metric != Metric::Manhattan
                    && bytes >= MAPPED_VECTORS_MIN_BYTES,
            )
    }
}

/// A point to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: String,
    pub vector: Vec<f32>,
    pub payload: Vec<(String, Value)>,
}

/// A search.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest<'a> {
    pub vector: &'a [f32],
    /// Results wanted (after `offset`).
    pub limit: usize,
    /// Best results to skip (pagination).
    pub offset: usize,
    pub filter: Option<&'a Filter>,
    /// Beam width override.
    pub ef: Option<usize>,
    /// Force an exact scan.
    pub exact: bool,
    /// Payload fields to return with each hit.
    pub with_payload: &'a [String],
    /// Point ids never returned (e.g. the query item itself).
    pub exclude: &'a [String],
    /// Set when the caller has gone: the search ends early with [`IndexError::Cancelled`].
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// Leave out points not linked into the graph yet (unless the collection is small enough
    /// to be searched exactly anyway): no scan of a backlog the indexer has not reached.
    pub indexed_only: bool,
    /// Hits whose reported score is worse are left out: below it where a higher score is
    /// better (COSINE, DOT), above it where the score is a distance.
    pub score_threshold: Option<f32>,
}

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    /// Similarity (DOT, COSINE: higher is better) or distance (EUCLIDEAN, MANHATTAN).
    pub score: f32,
    pub payload: Vec<(String, Value)>,
}

/// Counts and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionInfo {
    /// Live points.
    pub points: usize,
    /// Live points that are in the graph.
    pub indexed_points: usize,
    /// Slots held by deleted or overwritten points.
    pub tombstones: usize,
    pub indexing_threshold: usize,
}

/// Heap bytes of a collection, part by part (estimates of allocator-level sizes: capacities
/// times element sizes, plus string and map overheads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Float vectors on the heap.
    pub vectors: usize,
    /// Float vectors served from a mapped file: page cache, resident only while the OS keeps
    /// the pages (not part of [`MemoryUsage::total`]).
    pub vectors_mapped: usize,
    /// SQ8 codes of the linked rows.
    pub codes: usize,
    /// HNSW links and levels.
    pub graph: usize,
    /// External ids: the id of each slot and the id → slot map.
    pub ids: usize,
    /// Stored payload values and tombstone flags.
    pub payloads: usize,
    /// Payload indexes (bitmaps and value maps).
    pub payload_index: usize,
}

impl MemoryUsage {
    /// Heap bytes: every part but the mapped vectors.
    pub fn total(&self) -> usize {
        self.parts().iter().map(|(_, b)| b).sum::<usize>() - self.vectors_mapped
    }

    /// `(name, bytes)` of every part, in a fixed order.
    pub fn parts(&self) -> [(&'static str, usize); 7] {
        [
            ("vectors", self.vectors),
            ("vectors_mapped", self.vectors_mapped),
            ("codes", self.codes),
            ("graph", self.graph),
            ("ids", self.ids),
            ("payloads", self.payloads),
            ("payload_index", self.payload_index),
        ]
    }
}

pub(crate) struct Inner {
    pub(crate) vectors: Vectors,
    /// The id of each slot, and the live slot of each id.
    pub(crate) ids: Ids,
    pub(crate) payloads: PayloadStore,
    pub(crate) fields: Fields,
    /// Which live points hold each payload value.
    pub(crate) index: PayloadIndex,
    pub(crate) deleted: Vec<bool>,
    pub(crate) live: usize,
    pub(crate) graph: Hnsw,
    /// Ids `[0, linked)` are linked into the graph.
    pub(crate) linked: AtomicUsize,
    /// Live points among `[0, linked)`.
    pub(crate) linked_live: AtomicUsize,
    /// SQ8 codes of rows `[0, rows)`, fitted when indexing first runs.
    pub(crate) quant: RwLock<Option<QuantState>>,
}

/// A searchable, updatable set of points.
pub struct Collection {
    pub(crate) config: RwLock<CollectionConfig>,
    pub(crate) dist: DistanceFn,
    pub(crate) qkernels: QuantKernels,
    pub(crate) inner: RwLock<Inner>,
    pub(crate) indexing: Mutex<()>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("config", &*self.config.read())
            .field("info", &self.info())
            .finish()
    }
}

impl Collection {
    pub fn new(config: CollectionConfig) -> Self {
        Self::with_kernels(config, Kernels::detect())
    }

    /// A collection using specific kernels (benchmarks compare instruction sets).
    pub fn with_kernels(config: CollectionConfig, kernels: &Kernels) -> Self {
        let dist = kernels.distance(config.metric);
        let inner = Inner::empty(&config);
        Collection {
            config: RwLock::new(config),
            dist,
            qkernels: QuantKernels::detect(),
            inner: RwLock::new(inner),
            indexing: Mutex::new(()),
        }
    }

    pub fn config(&self) -> CollectionConfig {
        self.config.read().clone()
    }

    pub fn dim(&self) -> usize {
        self.config.read().dim
    }

    pub fn metric(&self) -> Metric {
        self.config.read().metric
    }

    /// Changes when indexing becomes due (0 disables it).
    pub fn set_indexing_threshold(&self, threshold: usize) {
        self.config.write().indexing_threshold = threshold;
    }

    /// Live points.
    pub fn len(&self) -> usize {
        self.inner.read().live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &str) -> bool {
        self.inner.read().ids.contains(id)
    }

    pub fn info(&self) -> CollectionInfo {
        let inner = self.inner.read();
        CollectionInfo {
            points: inner.live,
            indexed_points: inner.linked_live.load(Ordering::Acquire),
            tombstones: inner.ids.len() - inner.live,
            indexing_threshold: self.config.read().indexing_threshold,
        }
    }

    /// Heap bytes by part. Walks every point's payload and graph node (milliseconds at 1M
    /// points), so it is kept apart from [`Collection::info`], which upkeep checks and state
    /// polls call after every write.
    pub fn memory(&self) -> MemoryUsage {
        self.inner.read().memory()
    }

    fn check_vector(&self, id: &str, v: &[f32], dim: usize) -> Result<(), IndexError> {
        if id.is_empty() {
            return Err(IndexError::EmptyId);
        }
        if v.len() != dim {
            return Err(IndexError::DimensionMismatch {
                id: id.to_string(),
                expected: dim,
                got: v.len(),
            });
        }
        if !v.iter().all(|x| x.is_finite()) {
            return Err(IndexError::NonFinite(id.to_string()));
        }
        Ok(())
    }

    /// Checks a batch without writing it.
    pub fn validate(&self, points: &[Point]) -> Result<(), IndexError> {
        let dim = self.dim();
        points
            .iter()
            .try_for_each(|p| self.check_vector(&p.id, &p.vector, dim))
    }

    /// Inserts or replaces points. All-or-nothing: one invalid point rejects the batch.
    pub fn upsert(&self, points: Vec<Point>) -> Result<usize, IndexError> {
        self.validate(&points)?;
        let metric = self.metric();
        let mut inner = self.inner.write();
        let new_total = inner.ids.len() + points.len();
        if new_total > MAX_POINTS {
            return Err(IndexError::Full(MAX_POINTS));
        }
        // Intern every field first so a failure leaves nothing half-written.
        let mut interned: Vec<(Payload, Encoded)> = Vec::with_capacity(points.len());
        for p in &points {
            let mut payload = Payload::default();
            for (name, value) in &p.payload {
                let id = inner
                    .fields
                    .intern(name)
                    .ok_or(IndexError::TooManyFields(usize::from(u16::MAX)))?;
                payload.set(id, value.clone());
            }
            let encoded =
                Encoded::new(&payload).ok_or_else(|| IndexError::PayloadTooLarge(p.id.clone()))?;
            interned.push((payload, encoded));
        }
        inner.vectors.reserve(points.len());
        inner.payloads.reserve(points.len());
        inner.graph.grow(new_total);
        let count = points.len();
        for (p, (payload, encoded)) in points.into_iter().zip(interned) {
            let (slot, old) = inner.ids.push(&p.id, true);
            if let Some(old) = old {
                inner.tombstone(old);
            }
            let mut v = p.vector;
            if metric.normalizes() {
                normalize(&mut v);
            }
            inner.vectors.push(&v);
            inner.index.insert(slot, &payload);
            inner.payloads.push(&encoded);
            inner.deleted.push(false);
            inner.live += 1;
        }
        Ok(count)
    }

    /// Removes points; returns how many existed.
    pub fn delete(&self, ids: &[String]) -> usize {
        let mut inner = self.inner.write();
        let mut removed = 0;
        for id in ids {
            if let Some(slot) = inner.ids.remove(id) {
                inner.tombstone(slot);
                removed += 1;
            }
        }
        removed
    }

    /// Sets (or with `None`, removes) payload fields of an existing point.
    pub fn set_payload(
        &self,
        id: &str,
        fields: Vec<(String, Option<Value>)>,
    ) -> Result<(), IndexError> {
        let mut inner = self.inner.write();
        let slot = inner
            .ids
            .slot(id)
            .ok_or_else(|| IndexError::PointNotFound(id.to_string()))?;
        let mut payload = inner.payloads.view(slot as usize).to_payload();
        let mut changes = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let f = inner
                .fields
                .intern(&name)
                .ok_or(IndexError::TooManyFields(usize::from(u16::MAX)))?;
            let old = payload.get(f).cloned();
            match &value {
                Some(v) => payload.set(f, v.clone()),
                None => payload.remove(f),
            }
            changes.push((f, old, value));
        }
        let encoded =
            Encoded::new(&payload).ok_or_else(|| IndexError::PayloadTooLarge(id.to_string()))?;
        for (f, old, new) in &changes {
            inner.index.update(slot, *f, old.as_ref(), new.as_ref());
        }
        inner.payloads.replace(slot as usize, &encoded);
        Ok(())
    }

    /// A stored point (its vector normalised for COSINE).
    pub fn get(&self, id: &str) -> Option<Point> {
        let inner = self.inner.read();
        let slot = inner.ids.slot(id)? as usize;
        let payload = inner
            .payloads
            .view(slot)
            .iter()
            .map(|(f, v)| (inner.fields.name(f).to_string(), v.to_value()))
            .collect();
        Some(Point {
            id: id.to_string(),
            vector: inner.vectors.get(slot).to_vec(),
            payload,
        })
    }

    /// Points appended but not yet linked into the graph.
    pub fn pending(&self) -> usize {
        let inner = self.inner.read();
        inner.ids.len() - inner.linked.load(Ordering::Acquire)
    }

    /// Whether the indexing threshold says the pending tail should be linked now.
    pub fn indexing_due(&self) -> bool {
        let t = self.config.read().indexing_threshold;
        t > 0 && self.pending() >= t
    }

    /// Links every pending point into the graph, in parallel, in steps so that writers are
    /// never held off for long. Returns the points linked. Concurrent calls are serialised.
    pub fn index_pending(&self) -> usize {
        self.index_pending_while(&mut |_, _| true)
    }

    /// [`Collection::index_pending`], telling `keep_going` the points linked so far and the
    /// total after each step, and stopping when it answers `false` (the points not reached stay
    /// pending: searched exactly, linked by a later call).
    pub fn index_pending_while(&self, keep_going: &mut dyn FnMut(usize, usize) -> bool) -> usize {
        let _one_at_a_time = self.indexing.lock();
        // Linking a cold mapped file would fault hundreds of scattered rows per insert, ahead of
        // the searches' own faults: wait (bounded) for its read-through after a restart.
        let warmth = self.inner.read().vectors.warmth();
        warmth.wait(WARM_WAIT);
        let mut total = 0;
        loop {
            let inner = self.inner.read();
            let start = inner.linked.load(Ordering::Acquire);
            let end = inner.ids.len().min(start + INDEX_STEP);
            if start >= end {
                return total;
            }
            let (quantization, metric) = {
                let config = self.config.read();
                (config.quantization, config.metric)
            };
            if quantization {
                // Codes first: a node is reachable as soon as it is linked.
                inner.encode_codes(end, metric);
            }
            let Inner {
                graph,
                vectors,
                deleted,
                quant,
                ..
            } = &*inner;
            let space = Space {
                vectors,
                dist: self.dist,
            };
            let quant = quant.read();
            let live = (start..end)
                .into_par_iter()
                .filter(|&i| !deleted[i])
                .map(|i| {
                    self.link(space, graph, quant.as_ref(), metric, i as u32);
                    1usize
                })
                .sum::<usize>();
            inner.linked_live.fetch_add(live, Ordering::AcqRel);
            inner.linked.store(end, Ordering::Release);
            total += end - start;
            if !keep_going(end, inner.ids.len()) {
                return total;
            }
        }
    }

    /// Links point `id`: its candidate searches walk on SQ8 codes where every row has them, and
    /// the candidates are rescored on the float vectors before the links are chosen.
    fn link(
        &self,
        space: Space<'_>,
        graph: &Hnsw,
        quant: Option<&QuantState>,
        metric: Metric,
        id: u32,
    ) {
        let coded = quant.filter(|s| s.rows > id as usize);
        let query = coded.and_then(|s| s.quantizer.query(space.vectors.get(id as usize), metric));
        match (coded, query) {
            (Some(state), Some(query)) => {
                graph.insert_guided(space, id, &state.walker(&query, &self.qkernels), true);
            }
            _ => graph.insert(space, id),
        }
    }

    /// Drops tombstones and keeps the graph: lists that point at a deleted point are re-linked
    /// in place from its neighbours (in steps under a read lock: searches and writers go on
    /// between them; searches throughout), then the live points are copied into dense storage
    /// with the graph renumbered (writers wait for the copy). Pending points stay pending.
    /// Returns the slots reclaimed.
    pub fn compact(&self) -> usize {
        let _one_at_a_time = self.indexing.lock();
        if self.info().tombstones == 0 {
            return 0;
        }
        self.repair_tombstones();
        let config = self.config();
        self.inner.write().renumber(&config, true, Layout::Kept)
    }

    /// Renumbers the points so that graph neighbours get nearby slots (a breadth-first walk of
    /// the graph from its entry point), dropping tombstones as [`Collection::compact`] does. A
    /// search then finds most of an expanded node's neighbours on the same few pages of the
    /// codes, instead of one page each. Best run once after a bulk build; writers and searches
    /// wait while the points are copied. Returns the slots reclaimed.
    pub fn reorder(&self) -> usize {
        let _one_at_a_time = self.indexing.lock();
        if self.info().tombstones > 0 {
            self.repair_tombstones();
        }
        let config = self.config();
        self.inner.write().renumber(&config, true, Layout::Graph)
    }

    /// Re-links, in place, every list that points at a deleted point (in steps under a read
    /// lock: searches and writers go on between them). The caller holds `self.indexing`.
    fn repair_tombstones(&self) {
        let mut at = 0;
        loop {
            let inner = self.inner.read();
            let end = inner.linked.load(Ordering::Acquire).min(at + REPAIR_STEP);
            if at >= end {
                break;
            }
            let Inner {
                graph,
                vectors,
                deleted,
                ..
            } = &*inner;
            let space = Space {
                vectors,
                dist: self.dist,
            };
            graph.repair(space, deleted, at as u32..end as u32);
            at = end;
        }
    }

    /// Drops tombstones and the graph, and links every live point again from scratch: the
    /// reference a compaction's repaired graph is measured against, and a fresh graph for an
    /// operator who wants one. Until the links are back, searches scan the unlinked points
    /// exactly, so results stay correct throughout. Returns the slots reclaimed.
    pub fn rebuild(&self) -> usize {
        let reclaimed = {
            let _one_at_a_time = self.indexing.lock();
            let config = self.config();
            self.inner.write().renumber(&config, false, Layout::Kept)
        };
        self.index_pending();
        reclaimed
    }

    /// Links pending points if indexing is due. Returns the points linked.
    pub fn maybe_index(&self) -> usize {
        if self.indexing_due() {
            self.index_pending()
        } else {
            0
        }
    }
}

impl Collection {
    /// Re-derives SQ8 codes for every linked row (after loading a snapshot).
    pub(crate) fn refresh_codes(&self) {
        let inner = self.inner.read();
        let linked = inner.linked.load(Ordering::Acquire);
        let (quantization, metric) = {
            let config = self.config.read();
            (config.quantization, config.metric)
        };
        if quantization && linked > 0 {
            inner.encode_codes(linked, metric);
        }
    }
}

impl Inner {
    fn memory(&self) -> MemoryUsage {
        MemoryUsage {
            vectors: self.vectors.heap_bytes(),
            vectors_mapped: self.vectors.mapped_bytes(),
            codes: self.quant.read().as_ref().map_or(0, QuantState::heap_bytes),
            graph: self.graph.heap_bytes(),
            ids: self.ids.heap_bytes(),
            payloads: self.payloads.heap_bytes() + self.deleted.capacity(),
            payload_index: self.index.heap_bytes(),
        }
    }

    fn empty(config: &CollectionConfig) -> Inner {
        Inner {
            vectors: Vectors::new(config.dim),
            ids: Ids::default(),
            payloads: PayloadStore::default(),
            fields: Fields::default(),
            index: PayloadIndex::default(),
            deleted: Vec::new(),
            live: 0,
            graph: Hnsw::new(config.hnsw, config.metric != Metric::Dot),
            linked: AtomicUsize::new(0),
            linked_live: AtomicUsize::new(0),
            quant: RwLock::new(None),
        }
    }

    /// Makes sure rows `[0, upto)` have codes, fitting the quantizer on every row present the
    /// first time (a bulk load is complete by then; later outliers are clamped, and the final
    /// ranking is rescored exactly anyway).
    fn encode_codes(&self, upto: usize, metric: Metric) {
        let mut quant = self.quant.write();
        if quant.is_none() {
            let rows = self.vectors.rows(0, self.vectors.len());
            let Some(quantizer) = Quantizer::fit_rows(rows, self.vectors.dim()) else {
                return;
            };
            let codes = Vec::with_capacity(upto * quantizer.stride());
            *quant = Some(QuantState::new(quantizer, codes, 0, metric));
        }
        if let Some(state) = quant.as_mut()
            && upto > state.rows
        {
            // On every core: the first build, or a reopened format-1 snapshot (no codes stored),
            // encodes every row here.
            let stride = state.quantizer.stride();
            let at = state.codes.len();
            let needed = (upto - state.rows) * stride;
            if state.codes.capacity() - at < needed {
                // At most 1/8 headroom: a reopened collection's codes are exactly sized, and
                // doubling them for the first step after a restart left 300 MiB unused at 1M.
                state.codes.reserve_exact(needed.max(at / 8));
            }
            state.codes.resize(at + needed, 0);
            let (quantizer, vectors, first) = (&state.quantizer, &self.vectors, state.rows);
            state.codes[at..]
                .par_chunks_mut(stride)
                .enumerate()
                .for_each(|(i, code)| quantizer.encode_to(vectors.get(first + i), code));
            state.rows = upto;
            state.extend_norms();
        }
    }

    /// The live slots in the order they get their new ids: linked ones first, then the pending
    /// ones in slot order (a renumbered collection keeps its linked rows a prefix).
    fn layout_order(&self, layout: Layout) -> Vec<u32> {
        let live = |i: &u32| !self.deleted[*i as usize];
        match layout {
            Layout::Kept => (0..self.ids.len() as u32).filter(live).collect(),
            Layout::Graph => {
                let linked = self.linked.load(Ordering::Acquire);
                let mut order = self.graph.locality_order(linked, &self.deleted);
                order.extend((linked as u32..self.ids.len() as u32).filter(live));
                order
            }
        }
    }

    /// Moves the live points into dense ids in the order `layout` gives, keeping the graph
    /// (renumbered) and the SQ8 codes, or with `keep_graph == false` leaving every point to
    /// link again. Returns the slots dropped.
    fn renumber(&mut self, config: &CollectionConfig, keep_graph: bool, layout: Layout) -> usize {
        let before = self.ids.len();
        let reclaimed = before - self.live;
        if reclaimed == 0 && keep_graph && layout == Layout::Kept {
            return 0;
        }
        let order = self.layout_order(layout);
        let mut new_id = vec![DROPPED; before];
        for (new, &old) in order.iter().enumerate() {
            new_id[old as usize] = new as u32;
        }
        let kept_below = |end: usize| new_id[..end].iter().filter(|&&i| i != DROPPED).count();
        // Part by part, each old part dropped once copied: the copy needs room for the largest
        // part, not for a second collection.
        let mut fresh = Inner::empty(config);
        fresh.fields = self.fields.clone();
        for &old in &order {
            fresh.ids.push(self.ids.name(old), true);
        }
        self.ids = Ids::default();
        let vectors = std::mem::replace(&mut self.vectors, Vectors::new(config.dim));
        fresh.vectors = vectors.gathered(&order);
        fresh.payloads.reserve(self.live);
        for (slot, &old) in order.iter().enumerate() {
            let payload = self.payloads.view(old as usize);
            fresh.index.insert(slot as u32, &payload.to_payload());
            fresh.payloads.push_view(payload);
        }
        self.payloads = PayloadStore::default();
        self.index = PayloadIndex::default();
        fresh.payloads.shrink_to_fit();
        fresh.deleted = vec![false; order.len()];
        fresh.live = order.len();
        if keep_graph {
            let linked = kept_below(self.linked.load(Ordering::Acquire));
            let fresh_graph = Hnsw::new(config.hnsw, config.metric != Metric::Dot);
            fresh.graph = std::mem::replace(&mut self.graph, fresh_graph);
            fresh.graph.renumber(&order, &new_id);
            fresh.linked = AtomicUsize::new(linked);
            fresh.linked_live = AtomicUsize::new(linked);
            if let Some(state) = self.quant.get_mut().take() {
                let stride = state.quantizer.stride();
                // The new rows whose old rows all have codes: a prefix, as before.
                let coded = order
                    .iter()
                    .take_while(|&&old| (old as usize) < state.rows)
                    .count();
                let QuantState {
                    quantizer,
                    mut codes,
                    rows,
                    mut sq_norms,
                } = state;
                codes.truncate(rows * stride);
                gather_rows(&mut codes, stride, &order[..coded]);
                if let Some(norms) = sq_norms.as_mut() {
                    norms.truncate(rows);
                    gather_rows(norms, 1, &order[..coded]);
                }
                *fresh.quant.get_mut() = Some(QuantState {
                    rows: codes.len() / stride,
                    codes,
                    quantizer,
                    sq_norms,
                });
            }
        } else {
            fresh.graph.grow(fresh.live);
        }
        *self = fresh;
        reclaimed
    }

    fn tombstone(&mut self, slot: u32) {
        let i = slot as usize;
        if !self.deleted[i] {
            self.index.remove(slot, &self.payloads.view(i).to_payload());
            self.deleted[i] = true;
            self.live -= 1;
            if i < self.linked.load(Ordering::Acquire) {
                self.linked_live.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}
