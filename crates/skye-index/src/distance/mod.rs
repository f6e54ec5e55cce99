//! Distance kernels and metrics.
//!
//! Kernels are selected once at start-up by CPU feature detection (AVX-512F, then AVX2+FMA, then
//! portable code) and handed out as plain `fn` pointers resolved once per index, the way hnswlib
//! does; the per-vector loop has no `dyn` and no feature checks.
//!
//! Internally every metric is a *distance* (lower is better): −dot for DOT and COSINE (COSINE
//! vectors are normalised on the way in), squared L2 for EUCLIDEAN, L1 for MANHATTAN. Scores
//! reported to callers follow the spec (serving §1.6): similarity for DOT/COSINE (higher is
//! better), distance for EUCLIDEAN/MANHATTAN (lower is better, L2 not squared).

pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use std::sync::OnceLock;

/// A distance or similarity between two equally long vectors.
pub type KernelFn = fn(&[f32], &[f32]) -> f32;

/// The internal distance of a metric on this CPU: one indirect call straight into the
/// kernel (no wrapper), like hnswlib's distance function pointer.
#[derive(Clone, Copy)]
pub struct DistanceFn {
    f: unsafe fn(&[f32], &[f32]) -> f32,
}

impl std::fmt::Debug for DistanceFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DistanceFn")
    }
}

impl DistanceFn {
    /// Distance between `a` and `b` (lower is better).
    #[inline(always)]
    pub fn eval(self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `f` is either a safe portable function or a kernel whose target features
        // `Kernels::for_level` confirmed at runtime before handing it out.
        unsafe { (self.f)(a, b) }
    }
}

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Dot,
    Cosine,
    Euclidean,
    Manhattan,
}

/// The instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdLevel {
    Scalar,
    Avx2,
    Avx512,
}

/// The kernels of one instruction set.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    pub level: SimdLevel,
    pub dot: KernelFn,
    pub l2sq: KernelFn,
    pub l1: KernelFn,
    raw_neg_dot: unsafe fn(&[f32], &[f32]) -> f32,
    raw_l2sq: unsafe fn(&[f32], &[f32]) -> f32,
    raw_l1: unsafe fn(&[f32], &[f32]) -> f32,
}

fn neg_dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    -scalar::dot(a, b)
}

/// The portable kernels.
pub const SCALAR: Kernels = Kernels {
    level: SimdLevel::Scalar,
    dot: scalar::dot,
    l2sq: scalar::l2sq,
    l1: scalar::l1,
    raw_neg_dot: neg_dot_scalar,
    raw_l2sq: scalar::l2sq,
    raw_l1: scalar::l1,
};

#[cfg(target_arch = "x86_64")]
mod dispatch {
    use super::{Kernels, SimdLevel, x86};

    // SAFETY (every wrapper): only reachable through `detect`, which hands these out after
    // `is_x86_feature_detected!` confirmed the features the kernels need.
    fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        unsafe { x86::dot_avx2(a, b) }
    }
    fn l2sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        unsafe { x86::l2sq_avx2(a, b) }
    }
    fn l1_avx2(a: &[f32], b: &[f32]) -> f32 {
        unsafe { x86::l1_avx2(a, b) }
    }
    fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        unsafe { x86::dot_avx512(a, b) }
    }
    fn l2sq_avx512(a: &[f32], b: &[f32]) -> f32 {
        unsafe { x86::l2sq_avx512(a, b) }
    }
    fn l1_avx512(a: &[f32], b: &[f32]) -> f32 {
        unsafe { x86::l1_avx512(a, b) }
    }

    pub const AVX2: Kernels = Kernels {
        level: SimdLevel::Avx2,
        dot: dot_avx2,
        l2sq: l2sq_avx2,
        l1: l1_avx2,
        raw_neg_dot: x86::neg_dot_avx2,
        raw_l2sq: x86::l2sq_avx2,
        raw_l1: x86::l1_avx2,
    };
    pub const AVX512: Kernels = Kernels {
        level: SimdLevel::Avx512,
        dot: dot_avx512,
        l2sq: l2sq_avx512,
        l1: l1_avx512,
        raw_neg_dot: x86::neg_dot_avx512,
        raw_l2sq: x86::l2sq_avx512,
        raw_l1: x86::l1_avx512,
    };

    pub fn available(level: SimdLevel) -> bool {
        match level {
            SimdLevel::Scalar => true,
            SimdLevel::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            SimdLevel::Avx512 => is_x86_feature_detected!("avx512f"),
        }
    }
}

impl Kernels {
    /// The best kernels this CPU supports (detected once). `SKYE_SIMD=scalar|avx2|avx512` in
    /// the environment of a benchmark can force a lower level; the binary reads it, not this
    /// crate, through [`Kernels::for_level`].
    pub fn detect() -> &'static Kernels {
        static BEST: OnceLock<Kernels> = OnceLock::new();
        BEST.get_or_init(|| {
            [SimdLevel::Avx512, SimdLevel::Avx2]
                .into_iter()
                .find_map(Kernels::for_level)
                .unwrap_or(SCALAR)
        })
    }

    /// The kernels of `level`, if this CPU supports it.
    pub fn for_level(level: SimdLevel) -> Option<Kernels> {
        #[cfg(target_arch = "x86_64")]
        {
            if !dispatch::available(level) {
                return None;
            }
            match level {
                SimdLevel::Scalar => Some(SCALAR),
                SimdLevel::Avx2 => Some(dispatch::AVX2),
                SimdLevel::Avx512 => Some(dispatch::AVX512),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            (level == SimdLevel::Scalar).then_some(SCALAR)
        }
    }

    /// The internal distance (lower is better) of `metric`.
    pub fn distance(&self, metric: Metric) -> DistanceFn {
        let f = match metric {
            Metric::Dot | Metric::Cosine => self.raw_neg_dot,
            Metric::Euclidean => self.raw_l2sq,
            Metric::Manhattan => self.raw_l1,
        };
        DistanceFn { f }
    }
}

impl Metric {
    /// Whether vectors are normalised to unit length on the way in.
    pub fn normalizes(self) -> bool {
        self == Metric::Cosine
    }

    /// The score reported to callers for an internal distance.
    pub fn score(self, distance: f32) -> f32 {
        match self {
            Metric::Dot | Metric::Cosine => -distance,
            Metric::Euclidean => distance.max(0.0).sqrt(),
            Metric::Manhattan => distance,
        }
    }

    /// Whether a higher reported score is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Dot | Metric::Cosine)
    }
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let norm = scalar::dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_levels() -> Vec<Kernels> {
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter_map(Kernels::for_level)
            .collect()
    }

    fn close(a: f32, b: f32, scale: f32) -> bool {
        (a - b).abs() <= 1e-4 * scale.max(1.0)
    }

    proptest! {
        #[test]
        fn simd_kernels_equal_scalar(
            pairs in (0usize..200).prop_flat_map(|n| (
                proptest::collection::vec(-10.0f32..10.0, n),
                proptest::collection::vec(-10.0f32..10.0, n),
            ))
        ) {
            let (a, b) = pairs;
            let magnitude: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs() + (x - y).abs() * (x - y).abs()).sum();
            for k in all_levels() {
                prop_assert!(close((k.dot)(&a, &b), scalar::dot(&a, &b), magnitude), "{:?} dot", k.level);
                prop_assert!(close((k.l2sq)(&a, &b), scalar::l2sq(&a, &b), magnitude), "{:?} l2sq", k.level);
                prop_assert!(close((k.l1)(&a, &b), scalar::l1(&a, &b), magnitude), "{:?} l1", k.level);
                prop_assert!(close(k.distance(Metric::Dot).eval(&a, &b), -scalar::dot(&a, &b), magnitude));
                prop_assert!(close(k.distance(Metric::Euclidean).eval(&a, &b), scalar::l2sq(&a, &b), magnitude));
                prop_assert!(close(k.distance(Metric::Manhattan).eval(&a, &b), scalar::l1(&a, &b), magnitude));
            }
        }
    }

    #[test]
    fn detection_picks_an_available_level_and_scores_are_oriented() {
        let k = Kernels::detect();
        assert!(Kernels::for_level(k.level).is_some());
        assert_eq!(Metric::Euclidean.score(9.0), 3.0);
        assert_eq!(Metric::Dot.score(-2.5), 2.5);
        assert!(Metric::Cosine.higher_is_better() && !Metric::Manhattan.higher_is_better());
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0, 0.0];
        normalize(&mut zero);
        assert_eq!(zero, [0.0, 0.0]);
    }
}
