//! Scalar quantisation (SQ8) for graph traversal.
//!
//! Each dimension is mapped linearly onto 0..=255 from its range over the data. A row becomes
//! `stride` bytes (dimension rounded up to 16), so a 50-d vector is one cache line instead of
//! four. Searches walk the graph with *asymmetric* distances (float query against byte codes),
//! then rescore the best candidates with the exact float vectors, so the ranking returned is
//! exact among the candidates found.

use crate::distance::Metric;

/// Bytes per row: the dimension rounded up to a multiple of 16.
pub fn stride_for(dim: usize) -> usize {
    dim.div_ceil(16) * 16
}

/// Per-dimension linear code: `x ≈ lo + scale · code`.
#[derive(Debug, Clone)]
pub struct Quantizer {
    dim: usize,
    stride: usize,
    lo: Vec<f32>,
    scale: Vec<f32>,
}

/// A query prepared against a [`Quantizer`]. Every metric reduces to one product with the
/// codes: `q·x̂ = Σ q·lo + Σ (q ⊙ scale)·code`, and for EUCLIDEAN
/// `|q − x̂|² = |q|² + |x̂|² − 2 q·x̂` with `|x̂|²` kept per row ([`QuantState::sq_norms`]).
#[derive(Debug, Clone)]
pub struct QuantQuery {
    /// `q ⊙ scale`, padded to the stride with zeros.
    a: Vec<f32>,
    /// `a` on signed bytes, `a ≈ a8_step · a8` (for the byte-product kernel).
    a8: Vec<i8>,
    a8_step: f32,
    /// `Σ q·lo`.
    bias: f32,
    /// EUCLIDEAN: `|q|²`.
    q_sq: f32,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NegDot,
    L2,
}

/// A quantizer with the codes of rows `[0, rows)` (and, for EUCLIDEAN, each code's squared norm).
pub(crate) struct QuantState {
    pub(crate) quantizer: Quantizer,
    pub(crate) codes: Vec<u8>,
    pub(crate) rows: usize,
    /// `|x̂|²` of each coded row when the metric is EUCLIDEAN.
    pub(crate) sq_norms: Option<Vec<f32>>,
}

impl QuantState {
    /// `codes` of `rows` rows, with the squared norms derived when `metric` needs them.
    pub(crate) fn new(quantizer: Quantizer, codes: Vec<u8>, rows: usize, metric: Metric) -> Self {
        let mut state = QuantState {
            quantizer,
            codes,
            rows,
            sq_norms: (metric == Metric::Euclidean).then(|| Vec::with_capacity(rows)),
        };
        state.extend_norms();
        state
    }

    /// Derives the squared norms of the rows coded since the last call (a state without norms
    /// stays without).
    pub(crate) fn extend_norms(&mut self) {
        use rayon::prelude::*;
        let Some(norms) = self.sq_norms.as_mut() else {
            return;
        };
        let stride = self.quantizer.stride();
        let quantizer = &self.quantizer;
        norms.truncate(self.rows);
        let from = norms.len();
        norms.par_extend(
            self.codes[from * stride..self.rows * stride]
                .par_chunks(stride)
                .map(|code| quantizer.sq_norm(code)),
        );
    }

    /// Distances from `query` to the coded rows.
    pub(crate) fn walker<'a>(
        &'a self,
        query: &'a QuantQuery,
        kernels: &'a QuantKernels,
    ) -> crate::hnsw::Quantized<'a> {
        crate::hnsw::Quantized {
            query,
            codes: &self.codes,
            sq_norms: self.sq_norms.as_deref().unwrap_or_default(),
            stride: self.quantizer.stride(),
            kernels,
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let norms = self.sq_norms.as_ref().map_or(0, Vec::capacity);
        self.codes.capacity() + norms * std::mem::size_of::<f32>()
    }
}

impl Quantizer {
    /// Fits the ranges of `data` (row-major, `dim` wide). `None` for an empty set.
    pub fn fit(data: &[f32], dim: usize) -> Option<Self> {
        if dim == 0 {
            return None;
        }
        Self::fit_rows(data.chunks_exact(dim), dim)
    }

    /// Fits the ranges of `rows` (each `dim` wide). `None` for no rows.
    pub fn fit_rows<'a>(rows: impl Iterator<Item = &'a [f32]>, dim: usize) -> Option<Self> {
        let mut rows = rows.peekable();
        if dim == 0 || rows.peek().is_none() {
            return None;
        }
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for row in rows {
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        let scale = lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| ((h - l) / 255.0).max(f32::MIN_POSITIVE))
            .collect();
        Some(Quantizer {
            dim,
            stride: stride_for(dim),
            lo,
            scale,
        })
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Each dimension's lower bound and step (what a snapshot stores).
    pub(crate) fn ranges(&self) -> (&[f32], &[f32]) {
        (&self.lo, &self.scale)
    }

    /// A quantizer of known ranges (read back from a snapshot); `None` when they do not match.
    pub(crate) fn from_ranges(lo: Vec<f32>, scale: Vec<f32>) -> Option<Self> {
        let dim = lo.len();
        let valid = dim > 0
            && scale.len() == dim
            && lo.iter().all(|x| x.is_finite())
            && scale.iter().all(|s| s.is_finite() && *s > 0.0);
        valid.then(|| Quantizer {
            dim,
            stride: stride_for(dim),
            lo,
            scale,
        })
    }

    /// Appends the code of `row` to `out` (`stride` bytes; values outside the fitted range
    /// are clamped).
    pub fn encode_into(&self, row: &[f32], out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + self.stride, 0);
        self.encode_to(row, &mut out[at..]);
    }

    /// Writes the code of `row` into `out` (`stride` bytes, the padding zeroed).
    pub fn encode_to(&self, row: &[f32], out: &mut [u8]) {
        let (code, pad) = out.split_at_mut(self.dim);
        for (((c, &x), lo), scale) in code.iter_mut().zip(row).zip(&self.lo).zip(&self.scale) {
            *c = ((x - lo) / scale).round().clamp(0.0, 255.0) as u8;
        }
        pad.fill(0);
    }

    /// `|x̂|²` of the vector a code stands for.
    pub fn sq_norm(&self, code: &[u8]) -> f32 {
        code.iter()
            .zip(&self.lo)
            .zip(&self.scale)
            .map(|((&c, lo), scale)| {
                let x = lo + scale * f32::from(c);
                x * x
            })
            .sum()
    }

    /// Prepares `q` for asymmetric distances under `metric`; `None` for metrics without a
    /// quantised kernel (MANHATTAN).
    pub fn query(&self, q: &[f32], metric: Metric) -> Option<QuantQuery> {
        let kind = match metric {
            Metric::Dot | Metric::Cosine => Kind::NegDot,
            Metric::Euclidean => Kind::L2,
            Metric::Manhattan => return None,
        };
        let mut a: Vec<f32> = q.iter().zip(&self.scale).map(|(x, s)| x * s).collect();
        a.resize(self.stride, 0.0);
        let (a8, a8_step) = to_bytes(&a);
        Some(QuantQuery {
            a,
            a8,
            a8_step,
            bias: q.iter().zip(&self.lo).map(|(x, l)| x * l).sum(),
            q_sq: q.iter().map(|x| x * x).sum(),
            kind,
        })
    }
}

/// `a` on signed bytes in `-127..=127` and the step between them (`a ≈ step · bytes`).
fn to_bytes(a: &[f32]) -> (Vec<i8>, f32) {
    let top = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if top == 0.0 || !top.is_finite() {
        return (vec![0; a.len()], 0.0);
    }
    let step = top / 127.0;
    let bytes = a.iter().map(|x| (x / step).round() as i8).collect();
    (bytes, step)
}

impl QuantQuery {
    /// Whether [`QuantQuery::distance`] needs the row's `|x̂|²`.
    #[inline(always)]
    pub fn needs_norm(&self) -> bool {
        self.kind == Kind::L2
    }

    /// Approximate internal distance (lower is better) to a code row whose `|x̂|²` is
    /// `sq_norm` (read only for EUCLIDEAN).
    #[inline(always)]
    pub fn distance(&self, code: &[u8], sq_norm: f32, kernels: &QuantKernels) -> f32 {
        // SAFETY: the kernels were selected after runtime feature detection; slices are
        // `stride` long (a multiple of 16).
        let product = match kernels.dot8 {
            Some(dot8) => (unsafe { dot8(&self.a8, code) }) as f32 * self.a8_step,
            None => unsafe { (kernels.dot)(&self.a, code) },
        };
        let dot = product + self.bias;
        match self.kind {
            Kind::NegDot => -dot,
            Kind::L2 => self.q_sq + sq_norm - 2.0 * dot,
        }
    }
}

/// Byte query · byte code, on signed × unsigned bytes.
type BytesKernel = unsafe fn(&[i8], &[u8]) -> i32;

/// Kernels over (float query, byte code) of one instruction set.
#[derive(Clone, Copy)]
pub struct QuantKernels {
    dot: unsafe fn(&[f32], &[u8]) -> f32,
    /// Byte query × byte code (AVX-512 VNNI: 64 products an instruction); DOT/COSINE use it
    /// in place of `dot` where the CPU has it.
    dot8: Option<BytesKernel>,
}

impl std::fmt::Debug for QuantKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuantKernels")
    }
}

fn dot_scalar(q: &[f32], c: &[u8]) -> f32 {
    q.iter().zip(c).map(|(x, &b)| x * f32::from(b)).sum()
}

impl QuantKernels {
    /// The best kernels for this CPU.
    pub fn detect() -> QuantKernels {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                let vnni =
                    is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni");
                return QuantKernels {
                    dot: x86::dot_avx512,
                    dot8: vnni.then_some(x86::dot8_vnni as BytesKernel),
                };
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return QuantKernels {
                    dot: x86::dot_avx2,
                    dot8: None,
                };
            }
        }
        Self::scalar()
    }

    pub fn scalar() -> QuantKernels {
        QuantKernels {
            dot: dot_scalar,
            dot8: None,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `acc + q[..16] · c[..16]`, the codes widened to floats.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn step16(acc: __m512, pq: *const f32, pc: *const u8) -> __m512 {
        // SAFETY: the caller holds 16 readable lanes at each pointer.
        let (qv, codes) = unsafe { (_mm512_loadu_ps(pq), _mm_loadu_si128(pc.cast())) };
        _mm512_fmadd_ps(qv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes)), acc)
    }

    /// # Safety
    /// AVX-512F; `q.len() == c.len()`, a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(q: &[f32], c: &[u8]) -> f32 {
        let n = q.len().min(c.len()) / 16 * 16;
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        // Two accumulators: one FMA chain would wait on its own latency every step.
        let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        // SAFETY (every step): i + 32 (or i + 16) <= n <= both lengths.
        while i + 32 <= n {
            unsafe {
                acc0 = step16(acc0, pq.add(i), pc.add(i));
                acc1 = step16(acc1, pq.add(i + 16), pc.add(i + 16));
            }
            i += 32;
        }
        if i < n {
            acc0 = unsafe { step16(acc0, pq.add(i), pc.add(i)) };
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    /// `acc +` the byte products of the bytes `mask` selects of 64 at `pq` and `pc`, four
    /// products summed into each 32-bit lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn step64(acc: __m512i, pq: *const i8, pc: *const u8, mask: u64) -> __m512i {
        // SAFETY: the caller holds the bytes `mask` selects at both pointers; masked-out bytes
        // are not read.
        let (cv, qv) = unsafe {
            (
                _mm512_maskz_loadu_epi8(mask, pc.cast()),
                _mm512_maskz_loadu_epi8(mask, pq.cast()),
            )
        };
        _mm512_dpbusd_epi32(acc, cv, qv)
    }

    /// # Safety
    /// AVX-512F, BW and VNNI; equal lengths.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dot8_vnni(q: &[i8], c: &[u8]) -> i32 {
        let n = q.len().min(c.len());
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        let (mut acc0, mut acc1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let mut i = 0;
        // SAFETY (every step): its mask selects bytes [i, min(i + 64, n)), inside both slices.
        while i + 128 <= n {
            unsafe {
                acc0 = step64(acc0, pq.add(i), pc.add(i), u64::MAX);
                acc1 = step64(acc1, pq.add(i + 64), pc.add(i + 64), u64::MAX);
            }
            i += 128;
        }
        while i < n {
            let left = n - i;
            let mask = if left >= 64 {
                u64::MAX
            } else {
                (1u64 << left) - 1
            };
            acc0 = unsafe { step64(acc0, pq.add(i), pc.add(i), mask) };
            i += 64;
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0x55>(s, s)))
    }

    /// # Safety
    /// AVX2+FMA; equal lengths, a multiple of 16.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(q: &[f32], c: &[u8]) -> f32 {
        let n = q.len().min(c.len()) / 8 * 8;
        let (pq, pc) = (q.as_ptr(), c.as_ptr());
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn step(acc: __m256, pq: *const f32, pc: *const u8) -> __m256 {
            // SAFETY: the caller holds 8 readable lanes at each pointer.
            let (codes, qv) = unsafe { (_mm_loadl_epi64(pc.cast()), _mm256_loadu_ps(pq)) };
            _mm256_fmadd_ps(qv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes)), acc)
        }
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        // SAFETY (every step): i + 16 (or i + 8) <= n <= both lengths.
        while i + 16 <= n {
            unsafe {
                acc0 = step(acc0, pq.add(i), pc.add(i));
                acc1 = step(acc1, pq.add(i + 8), pc.add(i + 8));
            }
            i += 16;
        }
        if i < n {
            acc0 = unsafe { step(acc0, pq.add(i), pc.add(i)) };
        }
        hsum(_mm256_add_ps(acc0, acc1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::scalar;

    #[test]
    fn asymmetric_distances_approximate_exact_ones_on_every_kernel_set() {
        let dim = 50;
        let data: Vec<f32> = (0..dim * 40)
            .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
            .collect();
        let quant = Quantizer::fit(&data, dim).unwrap();
        assert_eq!(quant.stride(), 64);
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 / dim as f32) - 0.3).collect();
        let detected = QuantKernels::detect();
        let floats_only = QuantKernels {
            dot8: None,
            ..detected
        };
        for kernels in [QuantKernels::scalar(), floats_only, detected] {
            for row in data.chunks_exact(dim) {
                let mut code = Vec::new();
                quant.encode_into(row, &mut code);
                let dot = quant
                    .query(&q, Metric::Dot)
                    .unwrap()
                    .distance(&code, 0.0, &kernels);
                assert!(
                    (dot + scalar::dot(&q, row)).abs() < 0.05,
                    "{dot} vs {}",
                    -scalar::dot(&q, row)
                );
                let l2 = quant.query(&q, Metric::Euclidean).unwrap().distance(
                    &code,
                    quant.sq_norm(&code),
                    &kernels,
                );
                assert!(
                    (l2 - scalar::l2sq(&q, row)).abs() < 0.05,
                    "{l2} vs {}",
                    scalar::l2sq(&q, row)
                );
            }
        }
        assert!(quant.query(&q, Metric::Manhattan).is_none());
    }

    #[test]
    fn the_byte_product_kernel_is_exact_on_every_length() {
        let Some(dot8) = QuantKernels::detect().dot8 else {
            eprintln!("SKIPPED: this CPU has no AVX-512 VNNI; the byte-product kernel is unused");
            return;
        };
        for n in [16, 48, 64, 80, 128, 144, 384, 400] {
            let q: Vec<i8> = (0..n).map(|i: i32| (i * 53 % 255 - 127) as i8).collect();
            let c: Vec<u8> = (0..n).map(|i| (i * 97 % 256) as u8).collect();
            let want: i32 = q
                .iter()
                .zip(&c)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            // SAFETY: `dot8` was detected on this CPU; equal lengths.
            assert_eq!(unsafe { dot8(&q, &c) }, want, "length {n}");
        }
    }

    #[test]
    fn a_zero_query_has_zero_byte_steps() {
        let (bytes, step) = to_bytes(&[0.0; 32]);
        assert_eq!(step, 0.0);
        assert!(bytes.iter().all(|&b| b == 0));
        let (bytes, step) = to_bytes(&[1.0, -0.5, 0.25, 0.0]);
        assert_eq!(bytes, vec![127, -64, 32, 0]);
        assert!((step - 1.0 / 127.0).abs() < 1e-9);
    }
}
