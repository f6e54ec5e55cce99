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

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU8, AtomicU32};

use rayon::prelude::*;

use super::{AdmitAll, Exact, Hnsw, Scored, Space, UNLINKED, upper_lists};
use crate::vectors::gather_rows;

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

    /// Nodes `[0, linked)` not `skip`ped, in breadth-first order of layer 0 from the entry
    /// point (the nodes it does not reach after them, in id order). A node's neighbours, taken
    /// nearest first, get consecutive places: numbered in this order, an expansion's reads fall
    /// on a few neighbouring pages.
    pub fn locality_order(&self, linked: usize, skip: &[bool]) -> Vec<u32> {
        let linked = linked.min(self.capacity()).min(skip.len());
        let mut placed = vec![false; linked];
        let mut order = Vec::with_capacity(linked);
        let mut links = Vec::with_capacity(self.m0);
        let roots = self.entry_point().map(|(node, _)| node).into_iter();
        for root in roots.chain(0..linked as u32) {
            let r = root as usize;
            if r >= linked || placed[r] || skip[r] {
                continue;
            }
            placed[r] = true;
            order.push(root);
            let mut head = order.len() - 1;
            while let Some(&node) = order.get(head) {
                head += 1;
                self.neighbours0(node, &mut links);
                for &n in &links {
                    let i = n as usize;
                    if i < linked && !placed[i] && !skip[i] {
                        placed[i] = true;
                        order.push(n);
                    }
                }
            }
        }
        order
    }

    /// Renumbers the graph in place: node `order[k]` becomes node `k`, the nodes not in `order`
    /// are dropped and so are links to them; `new_id` is the inverse of `order` ([`DROPPED`] for
    /// a dropped node). The links are rewritten and moved where they are, so no second graph is
    /// built. Linked nodes keep their level, the others get the room their new id draws; the
    /// entry point moves to the highest kept node when it was dropped.
    pub fn renumber(&mut self, order: &[u32], new_id: &[u32]) {
        let entry = self.entry_point().and_then(|(node, level)| {
            let new = new_id[node as usize];
            (new != DROPPED).then_some((new, level))
        });
        let stride = self.m0 + 1;
        let map = |id: &mut u32| {
            *id = new_id[*id as usize];
            *id != DROPPED
        };
        // Same layout: the collects below reuse the allocation.
        let mut l0: Vec<u32> = std::mem::take(&mut self.l0)
            .into_iter()
            .map(AtomicU32::into_inner)
            .collect();
        let levels = &self.levels;
        l0.par_chunks_mut(stride)
            .enumerate()
            .for_each(|(node, row)| {
                let count = if levels[node].load(Acquire) == UNLINKED {
                    0
                } else {
                    (row[0] as usize).min(stride - 1)
                };
                let mut kept = 0;
                for i in 1..=count {
                    let mut id = row[i];
                    if map(&mut id) {
                        kept += 1;
                        row[kept] = id;
                    }
                }
                row[0] = kept as u32;
                // Past the count: no stale id of the old numbering (snapshots check every slot).
                row[kept + 1..].fill(0);
            });
        gather_rows(&mut l0, stride, order);
        self.l0 = l0.into_iter().map(AtomicU32::new).collect();
        let levels: Vec<AtomicU8> = order
            .iter()
            .map(|&old| AtomicU8::new(self.levels[old as usize].load(Acquire)))
            .collect();
        let mut upper = std::mem::take(&mut self.upper);
        self.upper = order
            .iter()
            .zip(&levels)
            .enumerate()
            .map(|(new, (&old, level))| {
                if level.load(Relaxed) == UNLINKED {
                    return upper_lists(self.random_level(new as u32));
                }
                let mut lists = upper[old as usize].take()?;
                for list in lists.get_mut().iter_mut() {
                    list.retain_mut(map);
                }
                Some(lists)
            })
            .collect();
        self.levels = levels;
        self.restore_entry(entry.or_else(|| self.highest_node()));
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
