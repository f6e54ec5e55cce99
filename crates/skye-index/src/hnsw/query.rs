//! What a graph walk measures and what it may return: the distance from the query to a node
//! (exact on the floats, or asymmetric on the SQ8 codes) and the admission test of a filter.

use crate::distance::DistanceFn;
use crate::quant::{QuantKernels, QuantQuery};
use std::sync::atomic::Ordering::Acquire;

use crate::vectors::{Vectors, prefetch_lines};

/// The vectors a graph is built over and the distance between them.
#[derive(Debug, Clone, Copy)]
pub struct Space<'a> {
    pub vectors: &'a Vectors,
    pub dist: DistanceFn,
}

/// Distance from the query of a search to any node.
pub trait QueryDist {
    fn dist(&self, id: u32) -> f32;
    /// Hints that node `id` will be measured soon.
    fn prefetch(&self, id: u32);
}

/// Exact distances on the float vectors.
#[derive(Debug, Clone, Copy)]
pub struct Exact<'a> {
    pub q: &'a [f32],
    pub space: Space<'a>,
}

impl QueryDist for Exact<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        self.space
            .dist
            .eval(self.q, self.space.vectors.get(id as usize))
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        prefetch_row(self.space.vectors, id);
    }
}

/// Asymmetric distances on SQ8 codes (built by `QuantState::walker`).
#[derive(Debug, Clone, Copy)]
pub struct Quantized<'a> {
    pub query: &'a QuantQuery,
    pub codes: &'a [u8],
    /// `|x̂|²` per row, for EUCLIDEAN queries.
    pub sq_norms: &'a [f32],
    pub stride: usize,
    pub kernels: &'a QuantKernels,
}

impl QueryDist for Quantized<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let start = id as usize * self.stride;
        let norm = if self.query.needs_norm() {
            self.sq_norms[id as usize]
        } else {
            0.0
        };
        self.query
            .distance(&self.codes[start..start + self.stride], norm, self.kernels)
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        prefetch_lines(
            self.codes.as_ptr().wrapping_add(id as usize * self.stride),
            self.stride,
        );
        if self.query.needs_norm() {
            prefetch_lines(self.sq_norms.as_ptr().wrapping_add(id as usize).cast(), 4);
        }
    }
}

/// What a search may return, and whether it should stop early.
pub trait Admit {
    fn admit(&self, id: u32) -> bool;

    /// Checked every [`STOP_CHECK_EVERY`] expansions or scanned rows: `true` ends the search
    /// with what it has (the caller turns that into a cancellation).
    #[inline]
    fn stopped(&self) -> bool {
        false
    }
}

/// Work between two checks of [`Admit::stopped`]: cheap against the work itself, short enough
/// that an abandoned search ends within tens of microseconds.
pub const STOP_CHECK_EVERY: usize = 64;

/// `admit`, and a stop flag set when the caller of the search has gone.
#[derive(Debug, Clone, Copy)]
pub struct Stoppable<'a, A> {
    pub admit: A,
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
}

impl<A: Admit> Admit for Stoppable<'_, A> {
    #[inline]
    fn admit(&self, id: u32) -> bool {
        self.admit.admit(id)
    }

    #[inline]
    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Acquire))
    }
}

/// Admits every node.
#[derive(Debug, Clone, Copy)]
pub struct AdmitAll;

impl Admit for AdmitAll {
    #[inline]
    fn admit(&self, _: u32) -> bool {
        true
    }
}

impl<F: Fn(u32) -> bool> Admit for F {
    #[inline]
    fn admit(&self, id: u32) -> bool {
        self(id)
    }
}

/// Prefetches every cache line of row `id`.
#[inline(always)]
fn prefetch_row(vectors: &Vectors, id: u32) {
    prefetch_lines(vectors.row_ptr(id as usize).cast::<u8>(), vectors.dim() * 4);
}
