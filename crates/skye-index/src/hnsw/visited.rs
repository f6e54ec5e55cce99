//! Per-thread "visited" marks, reused across searches: a `u16` epoch per node, so clearing is a
//! counter increment (hnswlib's VisitedList).

use std::cell::RefCell;

pub(crate) struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    /// Marks `i`; returns whether it was already marked in this search.
    #[inline]
    pub(crate) fn check_and_mark(&mut self, i: u32) -> bool {
        let slot = &mut self.marks[i as usize];
        if *slot == self.epoch {
            true
        } else {
            *slot = self.epoch;
            false
        }
    }

    #[inline]
    pub(crate) fn slot_ptr(&self, i: u32) -> *const u16 {
        self.marks.as_ptr().wrapping_add(i as usize)
    }
}

thread_local! {
    static POOL: RefCell<Visited> = const { RefCell::new(Visited { marks: Vec::new(), epoch: 0 }) };
}

/// Runs `f` with a cleared visited set able to hold `n` nodes.
pub(crate) fn with_visited<R>(n: usize, f: impl FnOnce(&mut Visited) -> R) -> R {
    POOL.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            reset(&mut v, n);
            f(&mut v)
        }
        // Re-entrant use on the same thread (not expected): use a fresh set.
        Err(_) => {
            let mut v = Visited {
                marks: vec![0; n],
                epoch: 1,
            };
            f(&mut v)
        }
    })
}

fn reset(v: &mut Visited, n: usize) {
    if v.marks.len() < n {
        v.marks.resize(n, 0);
    }
    v.epoch = v.epoch.wrapping_add(1);
    if v.epoch == 0 {
        v.marks.iter_mut().for_each(|m| *m = 0);
        v.epoch = 1;
    }
}
