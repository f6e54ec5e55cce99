//! Removing deleted nodes from a built graph without relinking the live ones.
//!
//! Two steps. [`Hnsw::repair`] rewrites, in place, every list that points at a deleted node:
//! the live links stay, and the free slots are filled from the deleted neighbours' own
//! neighbours (the two-hop candidates that the deleted node used to route to), chosen with the
//! same neighbour heuristic as an insert. Searches run meanwhile: a list is swapped as a whole,
//! and deleted nodes keep routing until the second step. [`Hnsw::renumbered`] then copies the
//! graph into dense new ids, dropping the deleted nodes and any link still pointing at one.
//!
//! The cost is a few hundred distance evaluations per affected list against the thousands an
//! insert spends searching with `ef_construct`, so churn (a share of the points deleted and
//! re-added every day) costs a fraction of a rebuild.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use rayon::prelude::*;

use parking_lot::RwLock;

use super::{AdmitAll, Exact, Hnsw, Scored, Space, UNLINKED};

/// Two-hop candidates scored per free slot at most (nearest first).
const EXAMINE_PER_SLOT: usize = 4;
/// Marks a node dropped by [`Hnsw::renumbered`].
pub const DROPPED: u32 = u32::MAX;

impl Hnsw {
    /// Re-links the lists of nodes `nodes` that point at a deleted node (`deleted[i]`, for
    /// every node the graph holds). Deleted nodes' own lists are left as they are: they still
    /// route searches that reach them. Returns the lists rewritten. Inserts must not run
    /// meanwhile (they read lists this rewrites); searches may.
    pub fn repair(&self, space: Space<'_>, deleted: &[bool], nodes: std::ops::Range<u32>) -> usize {
        nodes
            .into_par_iter()
            .filter(|&p| !deleted[p as usize])
            .map(|p| self.repair_node(space, deleted, p))
            .sum()
    }

    fn repair_node(&self, space: Space<'_>, deleted: &[bool], p: u32) -> usize {
        let level = self.levels[p as usize].load(Acquire);
        if level == UNLINKED {
            return 0;
        }
        let (mut links, mut hop) = (Vec::new(), Vec::new());
        let mut rewritten = 0;
        for l in 0..=usize::from(level) {
            self.neighbours(p, l, &mut links);
            if !links.iter().any(|&n| deleted[n as usize]) {
                continue;
            }
            let mut candidates: Vec<u32> = Vec::new();
            for &d in links.iter().filter(|&&n| deleted[n as usize]) {
                self.neighbours(d, l, &mut hop);
                candidates.extend(hop.iter().filter(|&&c| c != p && !deleted[c as usize]));
            }
            links.retain(|&n| !deleted[n as usize]);
            candidates.sort_unstable();
            candidates.dedup();
            candidates.retain(|c| !links.contains(c));
            let fresh = self.refill(space, p, l, links.clone(), &candidates, deleted);
            let _writer = self.lock(p);
            self.write_links(p, l, &fresh);
            rewritten += 1;
        }
        rewritten
    }

    /// `kept` (live links of `p` at level `l`) extended with the best of `candidates`. A node
    /// left with no link at all (every neighbour and two-hop neighbour deleted) is searched for
    /// its neighbours as an insert would.
    fn refill(
        &self,
        space: Space<'_>,
        p: u32,
        l: usize,
        kept: Vec<u32>,
        candidates: &[u32],
        deleted: &[bool],
    ) -> Vec<u32> {
        let Space { vectors, dist } = space;
        let max = self.max_links(l);
        let base = vectors.get(p as usize);
        let score = |c: u32| Scored {
            dist: dist.eval(base, vectors.get(c as usize)),
            id: c,
        };
        if kept.is_empty() && candidates.is_empty() {
            return self.search_links(space, p, l, deleted);
        }
        let mut scored: Vec<Scored> = candidates.iter().map(|&c| score(c)).collect();
        scored.sort_unstable();
        scored.truncate(max.saturating_sub(kept.len()) * EXAMINE_PER_SLOT);
        self.select_from(space, kept.into_iter().map(score).collect(), &scored, max)
    }

    /// Neighbours for `p` at level `l` found by a search from the entry point, deleted nodes
    /// routing but not chosen.
    fn search_links(&self, space: Space<'_>, p: u32, l: usize, deleted: &[bool]) -> Vec<u32> {
        let Some((ep, top)) = self.entry_point() else {
            return Vec::new();
        };
        if l > top {
            return Vec::new();
        }
        let qd = Exact {
            q: space.vectors.get(p as usize),
            space,
        };
        let mut cur = Scored {
            dist: super::QueryDist::dist(&qd, ep),
            id: ep,
        };
        for level in (l + 1..=top).rev() {
            cur = self.greedy(&qd, cur, level);
        }
        let found: Vec<Scored> = self
            .search_layer(&qd, &[cur], self.params.ef_construct, l, &AdmitAll)
            .into_iter()
            .filter(|s| s.id != p && !deleted[s.id as usize])
            .collect();
        self.select(space, &found, self.max_links(l))
    }

    /// A copy of the graph over new ids: node `i` becomes `new_id[i]`, or is dropped where that
    /// is [`DROPPED`] (links to dropped nodes go too). `new_id` must keep the order of the kept
    /// nodes and `n` be their count. The entry point moves to the highest kept node when it was
    /// dropped.
    pub fn renumbered(&self, new_id: &[u32], n: usize) -> Hnsw {
        let mut fresh = Hnsw::new(self.params, !self.keep_pruned);
        fresh.grow(n);
        let map = |links: &mut Vec<u32>| {
            links.retain_mut(|id| {
                *id = new_id[*id as usize];
                *id != DROPPED
            });
        };
        // Layer 0 in parallel; the upper lists (linked nodes keep their level, the others the
        // room their new id draws) are placed after.
        let uppers: Vec<(u32, Option<Box<super::UpperLists>>)> = (0..new_id.len() as u32)
            .into_par_iter()
            .filter_map(|old| {
                let new = new_id[old as usize];
                let level = self.levels[old as usize].load(Acquire);
                if new == DROPPED || level == UNLINKED {
                    return None;
                }
                let mut links = Vec::with_capacity(self.m0);
                self.neighbours0(old, &mut links);
                map(&mut links);
                let base = fresh.l0_base(new);
                for (slot, &l) in fresh.l0[base + 1..].iter().zip(&links) {
                    slot.store(l, Relaxed);
                }
                fresh.l0[base].store(links.len() as u32, Relaxed);
                fresh.levels[new as usize].store(level, Release);
                let mut upper = self.upper_of(old);
                upper.iter_mut().for_each(map);
                Some((new, (level > 0).then(|| Box::new(RwLock::new(upper)))))
            })
            .collect();
        for (new, upper) in uppers {
            fresh.upper[new as usize] = upper;
        }
        let entry = self.entry_point().and_then(|(node, level)| {
            let new = new_id[node as usize];
            (new != DROPPED).then_some((new, level))
        });
        fresh.restore_entry(entry.or_else(|| fresh.highest_node()));
        fresh
    }

    /// The linked node with the highest level (the lowest id among equals).
    fn highest_node(&self) -> Option<(u32, usize)> {
        (0..self.capacity() as u32)
            .into_par_iter()
            .filter_map(|i| {
                let level = self.levels[i as usize].load(Acquire);
                (level != UNLINKED).then_some((usize::from(level), std::cmp::Reverse(i)))
            })
            .max()
            .map(|(level, std::cmp::Reverse(i))| (i, level))
    }
}
