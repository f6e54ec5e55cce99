//! A whole collection in one file: config, points, payloads, vectors and the graph, with a
//! trailing CRC-32. Restoring needs no graph rebuild.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use super::codec::{CodecError, Decoder, Encoder, MAX_LEN};
use crate::collection::{Collection, CollectionConfig, Inner, MAX_POINTS};
use crate::distance::{Kernels, Metric};
use crate::hnsw::{Hnsw, HnswParams};
use crate::payload::{Fields, Payload};
use crate::vectors::Vectors;

const MAGIC: &[u8; 8] = b"SKYECOL1";
const FORMAT_VERSION: u32 = 1;

impl Collection {
    /// Writes the collection; `seq` is the last WAL sequence number it reflects.
    pub fn write_snapshot<W: Write>(&self, out: W, seq: u64) -> Result<W, CodecError> {
        let config = self.config();
        let inner = self.inner.read();
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
        e.len(inner.fields.names().len())?;
        for name in inner.fields.names() {
            e.str(name)?;
        }
        let n = inner.ids.len();
        e.len(n)?;
        for i in 0..n {
            e.str(&inner.ids[i])?;
            e.u8(u8::from(inner.deleted[i]))?;
            let p = &inner.payloads[i].0;
            e.len(p.len())?;
            for (f, v) in p {
                e.u16(*f)?;
                e.value(v)?;
            }
        }
        e.f32s(inner.vectors.as_slice())?;
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

    /// Reads a collection written by [`Collection::write_snapshot`]; returns it with its WAL
    /// sequence number.
    pub fn read_snapshot<R: Read>(input: R) -> Result<(Collection, u64), CodecError> {
        let corrupt = |m: String| CodecError::Corrupt(m);
        let mut d = Decoder::new(input);
        let mut magic = [0u8; 8];
        d.bytes(&mut magic)?;
        if &magic != MAGIC {
            return Err(corrupt("not a Skye collection snapshot".into()));
        }
        let version = d.u32()?;
        if version != FORMAT_VERSION {
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
        let mut ids = Vec::with_capacity(n.min(1 << 20));
        let mut deleted = Vec::with_capacity(n.min(1 << 20));
        let mut payloads = Vec::with_capacity(n.min(1 << 20));
        let mut index_of = HashMap::with_capacity(n.min(1 << 20));
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
            if !dead {
                live += 1;
                if index_of.insert(id.clone(), i as u32).is_some() {
                    return Err(corrupt(format!("point id '{id}' is live twice")));
                }
            }
            ids.push(id);
            deleted.push(dead);
            payloads.push(p);
        }
        let mut data = Vec::with_capacity((n * dim).min(MAX_LEN));
        d.f32s(n * dim, &mut data)?;
        let mut vectors = Vectors::with_capacity(dim, n);
        data.chunks_exact(dim).for_each(|row| vectors.push(row));
        let linked = d.len(n)?;
        let mut graph = Hnsw::new(config.hnsw, metric != Metric::Dot);
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
        d.finish()?;
        let dist = Kernels::detect().distance(metric);
        // The payload indexes are not in the snapshot: rebuilt from the payloads.
        let mut index = crate::payload_index::PayloadIndex::default();
        for (i, p) in payloads.iter().enumerate() {
            if !deleted[i] {
                index.insert(i as u32, p);
            }
        }
        let inner = Inner {
            vectors,
            ids,
            index_of,
            payloads,
            fields,
            index,
            deleted,
            live,
            graph,
            linked: AtomicUsize::new(linked),
            linked_live: AtomicUsize::new(linked_live),
            quant: RwLock::new(None),
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
