//! AVX2+FMA and AVX-512F kernels. Each `unsafe fn` requires its target features; the safe
//! wrappers are only handed out by [`super::Kernels::detect`] after runtime detection.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Horizontal sum of 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum256(v: __m256) -> f32 {
    let hi = _mm256_extractf128_ps::<1>(v);
    let lo = _mm256_castps256_ps128(v);
    let s = _mm_add_ps(hi, lo);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0x55>(s, s));
    _mm_cvtss_f32(s)
}

macro_rules! avx2_kernel {
    ($name:ident, $tail:expr, |$acc:ident, $va:ident, $vb:ident| $body:expr) => {
        /// # Safety
        /// The CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
            let n = a.len().min(b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            let mut acc2 = _mm256_setzero_ps();
            let mut acc3 = _mm256_setzero_ps();
            let mut i = 0;
            // SAFETY (all loads): i + 32 <= n (or i + 8 <= n below), both slices hold n floats.
            macro_rules! step {
                ($slot:ident, $off:expr) => {{
                    let $acc = $slot;
                    let $va = unsafe { _mm256_loadu_ps(pa.add(i + $off)) };
                    let $vb = unsafe { _mm256_loadu_ps(pb.add(i + $off)) };
                    $slot = $body;
                }};
            }
            while i + 32 <= n {
                step!(acc0, 0);
                step!(acc1, 8);
                step!(acc2, 16);
                step!(acc3, 24);
                i += 32;
            }
            while i + 8 <= n {
                let $acc = acc0;
                let $va = unsafe { _mm256_loadu_ps(pa.add(i)) };
                let $vb = unsafe { _mm256_loadu_ps(pb.add(i)) };
                acc0 = $body;
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
            let mut total = hsum256(sum);
            let tail: fn(&[f32], &[f32]) -> f32 = $tail;
            total += tail(&a[i..n], &b[i..n]);
            total
        }
    };
}

avx2_kernel!(dot_avx2, super::scalar::dot, |acc, va, vb| _mm256_fmadd_ps(
    va, vb, acc
));
avx2_kernel!(l2sq_avx2, super::scalar::l2sq, |acc, va, vb| {
    let d = _mm256_sub_ps(va, vb);
    _mm256_fmadd_ps(d, d, acc)
});
avx2_kernel!(l1_avx2, super::scalar::l1, |acc, va, vb| {
    let d = _mm256_sub_ps(va, vb);
    // |d| = d with the sign bit cleared.
    let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), d);
    _mm256_add_ps(acc, abs)
});

macro_rules! avx512_kernel {
    ($name:ident, |$acc:ident, $va:ident, $vb:ident| $body:expr) => {
        /// # Safety
        /// The CPU must support AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
            let n = a.len().min(b.len());
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc0 = _mm512_setzero_ps();
            let mut acc1 = _mm512_setzero_ps();
            let mut i = 0;
            // SAFETY (all loads): full loads stay below n; the tail uses a masked load that
            // touches only the lanes below n.
            while i + 32 <= n {
                let $acc = acc0;
                let $va = unsafe { _mm512_loadu_ps(pa.add(i)) };
                let $vb = unsafe { _mm512_loadu_ps(pb.add(i)) };
                acc0 = $body;
                let $acc = acc1;
                let $va = unsafe { _mm512_loadu_ps(pa.add(i + 16)) };
                let $vb = unsafe { _mm512_loadu_ps(pb.add(i + 16)) };
                acc1 = $body;
                i += 32;
            }
            while i + 16 <= n {
                let $acc = acc0;
                let $va = unsafe { _mm512_loadu_ps(pa.add(i)) };
                let $vb = unsafe { _mm512_loadu_ps(pb.add(i)) };
                acc0 = $body;
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
                let $acc = acc1;
                let $va = unsafe { _mm512_maskz_loadu_ps(mask, pa.add(i)) };
                let $vb = unsafe { _mm512_maskz_loadu_ps(mask, pb.add(i)) };
                acc1 = $body;
            }
            _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
        }
    };
}

avx512_kernel!(dot_avx512, |acc, va, vb| _mm512_fmadd_ps(va, vb, acc));
avx512_kernel!(l2sq_avx512, |acc, va, vb| {
    let d = _mm512_sub_ps(va, vb);
    _mm512_fmadd_ps(d, d, acc)
});
avx512_kernel!(l1_avx512, |acc, va, vb| {
    let d = _mm512_sub_ps(va, vb);
    _mm512_add_ps(acc, _mm512_abs_ps(d))
});

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn neg_dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    -unsafe { dot_avx2(a, b) }
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub unsafe fn neg_dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    -unsafe { dot_avx512(a, b) }
}
