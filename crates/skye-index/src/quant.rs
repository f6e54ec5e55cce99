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

/// A query prepared against a [`Quantizer`].
#[derive(Debug, Clone)]
pub struct QuantQuery {
    /// DOT/COSINE: `q ⊙ scale`; EUCLIDEAN: `q − lo`. Padded to the stride with zeros.
    a: Vec<f32>,
    /// EUCLIDEAN: `scale` (padded); unused otherwise.
    b: Vec<f32>,
    /// DOT/COSINE: `Σ q·lo`.
    bias: f32,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NegDot,
    L2,
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

    /// Prepares `q` for asymmetric distances under `metric`; `None` for metrics without a
    /// quantised kernel (MANHATTAN).
    pub fn query(&self, q: &[f32], metric: Metric) -> Option<QuantQuery> {
        let pad = |mut v: Vec<f32>| {
            v.resize(self.stride, 0.0);
            v
        };
        match metric {
            Metric::Dot | Metric::Cosine => Some(QuantQuery {
                a: pad(q.iter().zip(&self.scale).map(|(x, s)| x * s).collect()),
                b: Vec::new(),
                bias: q.iter().zip(&self.lo).map(|(x, l)| x * l).sum(),
                kind: Kind::NegDot,
            }),
            Metric::Euclidean => Some(QuantQuery {
                a: pad(q.iter().zip(&self.lo).map(|(x, l)| x - l).collect()),
                b: pad(self.scale.clone()),
                bias: 0.0,
                kind: Kind::L2,
            }),
            Metric::Manhattan => None,
        }
    }
}

impl QuantQuery {
    /// Approximate internal distance (lower is better) to a code row.
    #[inline(always)]
    pub fn distance(&self, code: &[u8], kernels: &QuantKernels) -> f32 {
        match self.kind {
            // SAFETY: the kernels were selected after runtime feature detection; slices are
            // `stride` long (a multiple of 16).
            Kind::NegDot => -(unsafe { (kernels.dot)(&self.a, code) } + self.bias),
            Kind::L2 => unsafe { (kernels.l2)(&self.a, &self.b, code) },
        }
    }
}

/// Kernels over (float query, byte code) of one instruction set.
#[derive(Clone, Copy)]
pub struct QuantKernels {
    dot: unsafe fn(&[f32], &[u8]) -> f32,
    l2: unsafe fn(&[f32], &[f32], &[u8]) -> f32,
}

impl std::fmt::Debug for QuantKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuantKernels")
    }
}

fn dot_scalar(q: &[f32], c: &[u8]) -> f32 {
    q.iter().zip(c).map(|(x, &b)| x * f32::from(b)).sum()
}

fn l2_scalar(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    a.iter()
        .zip(s)
        .zip(c)
        .map(|((x, s), &b)| {
            let d = x - s * f32::from(b);
            d * d
        })
        .sum()
}

impl QuantKernels {
    /// The best kernels for this CPU.
    pub fn detect() -> QuantKernels {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return QuantKernels {
                    dot: x86::dot_avx512,
                    l2: x86::l2_avx512,
                };
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return QuantKernels {
                    dot: x86::dot_avx2,
                    l2: x86::l2_avx2,
                };
            }
        }
        Self::scalar()
    }

    pub fn scalar() -> QuantKernels {
        QuantKernels {
            dot: dot_scalar,
            l2: l2_scalar,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512F; `q.len() == c.len()`, a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(q: &[f32], c: &[u8]) -> f32 {
        let n = q.len().min(c.len()) / 16 * 16;
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 <= n <= both lengths.
            let codes = unsafe { _mm_loadu_si128(c.as_ptr().add(i).cast()) };
            let cf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes));
            let qv = unsafe { _mm512_loadu_ps(q.as_ptr().add(i)) };
            acc = _mm512_fmadd_ps(qv, cf, acc);
            i += 16;
        }
        _mm512_reduce_add_ps(acc)
    }

    /// # Safety
    /// AVX-512F; equal lengths, a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn l2_avx512(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
        let n = a.len().min(s.len()).min(c.len()) / 16 * 16;
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 <= n <= every length.
            let codes = unsafe { _mm_loadu_si128(c.as_ptr().add(i).cast()) };
            let cf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes));
            let av = unsafe { _mm512_loadu_ps(a.as_ptr().add(i)) };
            let sv = unsafe { _mm512_loadu_ps(s.as_ptr().add(i)) };
            let d = _mm512_fnmadd_ps(sv, cf, av);
            acc = _mm512_fmadd_ps(d, d, acc);
            i += 16;
        }
        _mm512_reduce_add_ps(acc)
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
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n <= both lengths.
            let codes = unsafe { _mm_loadl_epi64(c.as_ptr().add(i).cast()) };
            let cf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
            let qv = unsafe { _mm256_loadu_ps(q.as_ptr().add(i)) };
            acc = _mm256_fmadd_ps(qv, cf, acc);
            i += 8;
        }
        hsum(acc)
    }

    /// # Safety
    /// AVX2+FMA; equal lengths, a multiple of 16.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_avx2(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
        let n = a.len().min(s.len()).min(c.len()) / 8 * 8;
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n <= every length.
            let codes = unsafe { _mm_loadl_epi64(c.as_ptr().add(i).cast()) };
            let cf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
            let av = unsafe { _mm256_loadu_ps(a.as_ptr().add(i)) };
            let sv = unsafe { _mm256_loadu_ps(s.as_ptr().add(i)) };
            let d = _mm256_fnmadd_ps(sv, cf, av);
            acc = _mm256_fmadd_ps(d, d, acc);
            i += 8;
        }
        hsum(acc)
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
        let mut sets = vec![QuantKernels::scalar(), QuantKernels::detect()];
        sets.dedup_by(|a, b| std::ptr::fn_addr_eq(a.dot, b.dot));
        for kernels in sets {
            for row in data.chunks_exact(dim) {
                let mut code = Vec::new();
                quant.encode_into(row, &mut code);
                let dot = quant
                    .query(&q, Metric::Dot)
                    .unwrap()
                    .distance(&code, &kernels);
                assert!(
                    (dot + scalar::dot(&q, row)).abs() < 0.05,
                    "{dot} vs {}",
                    -scalar::dot(&q, row)
                );
                let l2 = quant
                    .query(&q, Metric::Euclidean)
                    .unwrap()
                    .distance(&code, &kernels);
                assert!(
                    (l2 - scalar::l2sq(&q, row)).abs() < 0.05,
                    "{l2} vs {}",
                    scalar::l2sq(&q, row)
                );
            }
        }
        assert!(quant.query(&q, Metric::Manhattan).is_none());
    }
}
