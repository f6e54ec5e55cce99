//! Dense vector storage: one contiguous `Vec<f32>`, row `i` at `[i·dim, (i+1)·dim)`.

/// Contiguous rows of `dim` floats.
#[derive(Debug, Clone)]
pub struct Vectors {
    dim: usize,
    data: Vec<f32>,
}

impl Vectors {
    pub fn new(dim: usize) -> Self {
        Vectors {
            dim,
            data: Vec::new(),
        }
    }

    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        Vectors {
            dim,
            data: Vec::with_capacity(dim * rows),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i`. Panics when out of range (callers hold valid internal ids).
    #[inline]
    pub fn get(&self, i: usize) -> &[f32] {
        let start = i * self.dim;
        &self.data[start..start + self.dim]
    }

    /// Pointer to row `i`, for prefetching.
    #[inline]
    pub(crate) fn row_ptr(&self, i: usize) -> *const f32 {
        self.data.as_ptr().wrapping_add(i * self.dim)
    }

    /// Appends a row of exactly `dim` floats.
    pub fn push(&mut self, row: &[f32]) {
        debug_assert_eq!(row.len(), self.dim);
        self.data.extend_from_slice(row);
    }

    /// Overwrites row `i`.
    pub fn set(&mut self, i: usize, row: &[f32]) {
        let start = i * self.dim;
        self.data[start..start + self.dim].copy_from_slice(row);
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn reserve(&mut self, rows: usize) {
        self.data.reserve(rows * self.dim);
    }

    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() * std::mem::size_of::<f32>()
    }
}

/// Issues a prefetch of the cache line at `p` (a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches every cache line of the `bytes` bytes at `p`.
#[inline(always)]
pub(crate) fn prefetch_lines(p: *const u8, bytes: usize) {
    let mut off = 0;
    while off < bytes {
        prefetch(p.wrapping_add(off));
        off += 64;
    }
}
