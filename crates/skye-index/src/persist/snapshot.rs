//! A whole collection in one file: config, points, payloads, vectors (or the name of the mapped
//! vectors file that holds them), SQ8 codes and the graph, with a trailing CRC-32. Restoring
//! needs no graph rebuild and, with mapped vectors and stored codes, reads no float vector.
//!
//! Format 2 added `on_disk`, the vectors file and the codes; format 1 files still load.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use super::codec::{CodecError, Decoder, Encoder, MAX_LEN};
use crate::collection::{Collection, CollectionConfig, Inner, MAX_POINTS};
use crate::distance::{Kernels, Metric};
use crate::hnsw::{Hnsw, HnswParams};
use crate::ids::Ids;
use crate::payload::{Fields, Payload};
use crate::payload_store::{Encoded, PayloadStore};
use crate::quant::{QuantState, Quantizer};
use crate::vectors::{Vectors, VectorsFile};

const MAGIC: &[u8; 8] = b"SKYECOL1";
const FORMAT_VERSION: u32 = 2;

/// `CollectionConfig::on_disk` in a snapshot: 0 = default, 1 = heap, 2 = mapped.
fn on_disk_code(on_disk: Option<bool>) -> u8 {
    match on_disk {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

fn on_disk_of(code: u8) -> Result<Option<bool>, CodecError> {
    match code {
        0 => Ok(None),
        1 => Ok(Some(false)),
        2 => Ok(Some(true)),
        other => Err(CodecError::Corrupt(format!("on_disk code {other}"))),
    }
}

impl Collection {
    /// Writes the collection, vectors included (a self-contained file); `seq` is the last WAL
    /// sequence number it reflects.
    pub fn write_snapshot<W: Write>(&self, out: W, seq: u64) -> Result<W, CodecError> {
        let inner = self.inner.read();
        write_inner(&self.config(), &inner, out, seq, None)
    }

    /// Reads a self-contained snapshot written by [`Collection::write_snapshot`]; returns the
    /// collection with its WAL sequence number.
    pub fn read_snapshot<R: Read + Send>(input: R) -> Result<(Collection, u64), CodecError> {
        Self::read_snapshot_in(input, None)
    }

    /// Reads a snapshot whose vectors may be in a mapped file of `dir`.
    pub(crate) fn read_snapshot_in<R: Read + Send>(
        input: R,
        dir: Option<&Path>,
    ) -> Result<(Collection, u64), CodecError> {
        let corrupt = |m: String| CodecError::Corrupt(m);
        let mut d = Decoder::new(input);
        let mut magic = [0u8; 8];
        d.bytes(&mut magic)?;
        if &magic != MAGIC {
            return Err(corrupt("not a Skye collection snapshot".into()));
        }
        let version = d.u32()?;
        if version != 1 && version != FORMAT_VERSION {
            return Err(corrupt(format!("unsupported snapshot version {version}")));
        }
        let seq = d.u64()?;
        let dim = d.len(65_536)?;
        let metric: Metric = d.metric()?;
        let hnsw = HnswParams {
            m: d.len(128)?,
            ef_construct: d.len(1 << 20)?,
            seed: d.u64()?,
        };
        let ef = d.len(1 << 20)?;
        let indexing_threshold = d.len(usize::MAX)?;
        let exact_below = d.len(usize::MAX)?;
        let _former_planner_fraction = d.f64()?;
        let config = CollectionConfig {
            dim,
            metric,
            hnsw,
            ef,
            indexing_threshold,
            exact_below,
            quantization: d.u8()? != 0,
            exact_rows_per_beam: d.len(usize::MAX)?,
            on_disk: match version {
                1 => None,
                _ => on_disk_of(d.u8()?)?,
            },
        };
        if dim == 0 {
            return Err(corrupt("dimension 0".into()));
        }
        let mut fields = Fields::default();
        let field_count = d.len(usize::from(u16::MAX))?;
        for _ in 0..field_count {
            let name = d.str()?;
            fields
                .intern(&name)
                .ok_or_else(|| corrupt("too many fields".into()))?;
        }
        let n = d.len(MAX_POINTS)?;
        let mut ids = Ids::default();
        ids.reserve(n.min(1 << 20));
        let mut deleted = Vec::with_capacity(n.min(1 << 20));
        let mut payloads = PayloadStore::default();
        payloads.reserve(n.min(1 << 20));
        let mut live = 0;
        for i in 0..n {
            let id = d.str()?;
            let dead = d.u8()? != 0;
            let count = d.len(usize::from(u16::MAX))?;
            let mut p = Payload::default();
            for _ in 0..count {
                let f = d.u16()?;
                if usize::from(f) >= field_count {
                    return Err(corrupt(format!("point {i}: unknown field {f}")));
                }
                p.set(f, d.value(0)?);
            }
            if ids.push(&id, !dead).1.is_some() {
                return Err(corrupt(format!("point id '{id}' is live twice")));
            }
            live += usize::from(!dead);
            deleted.push(dead);
            let encoded = Encoded::new(&p)
                .ok_or_else(|| corrupt(format!("point {i}: payload over 4 GiB")))?;
            payloads.push(&encoded);
        }
        payloads.shrink_to_fit();
        // The payload indexes are not in the snapshot: rebuilt from the payloads on another
        // core while this one reads the vectors and the graph.
        let mut index = crate::payload_index::PayloadIndex::default();
        let (vectors, quant, graph, linked, linked_live) = rayon::scope(|s| {
            s.spawn(|_| {
                for (i, dead) in deleted.iter().enumerate() {
                    if !dead {
                        index.insert(i as u32, &payloads.view(i).to_payload());
                    }
                }
            });
            let vectors = read_vectors(&mut d, version, &config, n, dir)?;
            let quant = match version {
                1 => None,
                _ => read_codes(&mut d, dim, n, metric)?,
            };
            let (graph, linked, linked_live) = read_graph(&mut d, &config, n, &deleted)?;
            Ok::<_, CodecError>((vectors, quant, graph, linked, linked_live))
        })?;
        d.finish()?;
        let dist = Kernels::detect().distance(metric);
        let inner = Inner {
            vectors,
            ids,
            payloads,
            fields,
            index,
            deleted,
            live,
            graph,
            linked: AtomicUsize::new(linked),
            linked_live: AtomicUsize::new(linked_live),
            quant: RwLock::new(quant),
        };
        let collection = Collection {
            config: RwLock::new(config),
            dist,
            qkernels: crate::quant::QuantKernels::detect(),
            inner: RwLock::new(inner),
            indexing: Mutex::new(()),
        };
        collection.refresh_codes();
        Ok((collection, seq))
    }
}

/// Writes `inner` under `config`: its vectors inline, or (`file`) only the name of the vectors
/// file that holds them.
pub(crate) fn write_inner<W: Write>(
    config: &CollectionConfig,
    inner: &Inner,
    out: W,
    seq: u64,
    file: Option<VectorsFile>,
) -> Result<W, CodecError> {
    let mut e = Encoder::new(out);
    e.bytes(MAGIC)?;
    e.u32(FORMAT_VERSION)?;
    e.u64(seq)?;
    e.len(config.dim)?;
    e.metric(config.metric)?;
    e.len(config.hnsw.m)?;
    e.len(config.hnsw.ef_construct)?;
    e.u64(config.hnsw.seed)?;
    e.len(config.ef)?;
    e.len(config.indexing_threshold)?;
    e.len(config.exact_below)?;
    // Formerly a planner fraction; the payload indexes count matches exactly now.
    e.f64(0.05)?;
    e.u8(u8::from(config.quantization))?;
    e.len(config.exact_rows_per_beam)?;
    e.u8(on_disk_code(config.on_disk))?;
    e.len(inner.fields.names().len())?;
    for name in inner.fields.names() {
        e.str(name)?;
    }
    let n = inner.ids.len();
    e.len(n)?;
    for i in 0..n {
        e.str(inner.ids.name(i as u32))?;
        e.u8(u8::from(inner.deleted[i]))?;
        let p = inner.payloads.view(i).to_payload();
        e.len(p.0.len())?;
        for (f, v) in &p.0 {
            e.u16(*f)?;
            e.value(v)?;
        }
    }
    match file {
        Some(f) => {
            e.u8(1)?;
            e.u64(f.generation)?;
            e.len(f.rows)?;
        }
        None => {
            e.u8(0)?;
            for row in inner.vectors.rows(0, n) {
                e.f32s(row)?;
            }
        }
    }
    match &*inner.quant.read() {
        Some(q) => {
            e.u8(1)?;
            let (lo, scale) = q.quantizer.ranges();
            e.f32s(lo)?;
            e.f32s(scale)?;
            e.len(q.rows)?;
            e.bytes(&q.codes[..q.rows * q.quantizer.stride()])?;
        }
        None => e.u8(0)?,
    }
    e.len(inner.linked.load(Ordering::Acquire))?;
    for i in 0..n as u32 {
        let level = inner.graph.level_of(i);
        e.u8(level)?;
        let slots: Vec<u32> = inner.graph.l0_slots(i).collect();
        e.u32s(&slots)?;
        if level != u8::MAX {
            for list in inner.graph.upper_of(i) {
                e.len(list.len())?;
                e.u32s(&list)?;
            }
        }
    }
    match inner.graph.entry_of() {
        Some((node, level)) => {
            e.u8(1)?;
            e.u32(node)?;
            e.len(level)?;
        }
        None => e.u8(0)?,
    }
    e.finish()
}

/// The `n` float vectors: inline, or mapped from the file of `dir` the snapshot names.
fn read_vectors<R: Read>(
    d: &mut Decoder<R>,
    version: u32,
    config: &CollectionConfig,
    n: usize,
    dir: Option<&Path>,
) -> Result<Vectors, CodecError> {
    let dim = config.dim;
    if version >= 2 && d.u8()? == 1 {
        let file = VectorsFile {
            generation: d.u64()?,
            rows: d.len(n)?,
        };
        if file.rows != n {
            return Err(CodecError::Corrupt(format!(
                "the vectors file holds {} rows for {n} points",
                file.rows
            )));
        }
        let dir = dir.ok_or_else(|| {
            CodecError::Corrupt("the snapshot's vectors are in a file beside it".into())
        })?;
        return Ok(Vectors::open_mapped(dir, dim, file)?);
    }
    let mut data = Vec::with_capacity((n * dim).min(MAX_LEN));
    d.f32s(n * dim, &mut data)?;
    Ok(Vectors::from_vec(dim, data))
}

/// The SQ8 quantizer and the codes of rows `[0, rows)`, when the snapshot has them.
fn read_codes<R: Read>(
    d: &mut Decoder<R>,
    dim: usize,
    n: usize,
    metric: Metric,
) -> Result<Option<QuantState>, CodecError> {
    if d.u8()? == 0 {
        return Ok(None);
    }
    let (mut lo, mut scale) = (Vec::with_capacity(dim), Vec::with_capacity(dim));
    d.f32s(dim, &mut lo)?;
    d.f32s(dim, &mut scale)?;
    let quantizer = Quantizer::from_ranges(lo, scale)
        .ok_or_else(|| CodecError::Corrupt("invalid quantizer ranges".into()))?;
    let rows = d.len(n)?;
    let mut codes = vec![0u8; rows * quantizer.stride()];
    d.bytes(&mut codes)?;
    Ok(Some(QuantState::new(quantizer, codes, rows, metric)))
}

/// The graph and the entry point of a snapshot; returns it with the linked count and the live
/// points among the linked.
fn read_graph<R: Read>(
    d: &mut Decoder<R>,
    config: &CollectionConfig,
    n: usize,
    deleted: &[bool],
) -> Result<(Hnsw, usize, usize), CodecError> {
    let corrupt = |m: String| CodecError::Corrupt(m);
    let linked = d.len(n)?;
    let mut graph = Hnsw::new(config.hnsw, config.metric != Metric::Dot);
    graph.grow(n);
    let stride = graph.l0_stride();
    let mut slots = Vec::with_capacity(stride);
    let mut linked_live = 0;
    for i in 0..n as u32 {
        let level = d.u8()?;
        slots.clear();
        d.u32s(stride, &mut slots)?;
        let mut upper = Vec::new();
        if level != u8::MAX {
            for _ in 0..level {
                let len = d.len(128)?;
                let mut list = Vec::with_capacity(len);
                d.u32s(len, &mut list)?;
                upper.push(list);
            }
            if (i as usize) < linked && !deleted[i as usize] {
                linked_live += 1;
            }
        }
        graph
            .restore_node(i, level, &slots, upper)
            .map_err(corrupt)?;
    }
    let entry = match d.u8()? {
        0 => None,
        _ => {
            let node = d.u32()?;
            let level = d.len(64)?;
            if node as usize >= n {
                return Err(corrupt("entry point out of range".into()));
            }
            Some((node, level))
        }
    };
    graph.restore_entry(entry);
    Ok((graph, linked, linked_live))
}
