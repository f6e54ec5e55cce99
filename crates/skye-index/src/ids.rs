//! External point ids, each stored once: the bytes of every slot's id in one arena (slot order)
//! and a hash table of the live slots, probed by hashing the id a slot points at. Against a
//! `Vec<String>` plus a `HashMap<String, u32>` this saves two string headers, two allocations
//! and a second copy of every id (about 80 bytes per point at short ids).

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

#[derive(Default)]
pub(crate) struct Ids {
    bytes: Vec<u8>,
    /// End of slot `i`'s id in `bytes`; it starts at the previous end.
    ends: Vec<u64>,
    /// Live slots, keyed by their id.
    live: HashTable<u32>,
    hasher: RandomState,
}

/// Slot `slot`'s id in `bytes`.
fn name_in<'a>(bytes: &'a [u8], ends: &[u64], slot: u32) -> &'a str {
    let i = slot as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    // Only `&str`s are ever appended, so the slice is valid UTF-8.
    std::str::from_utf8(&bytes[start..ends[i] as usize]).unwrap_or_default()
}

impl Ids {
    /// Slots, live or not.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The id of `slot`. Panics when out of range (callers hold valid slots).
    pub(crate) fn name(&self, slot: u32) -> &str {
        name_in(&self.bytes, &self.ends, slot)
    }

    /// The live slot of `id`.
    pub(crate) fn slot(&self, id: &str) -> Option<u32> {
        let (bytes, ends) = (&self.bytes, &self.ends);
        self.live
            .find(self.hasher.hash_one(id), |&s| name_in(bytes, ends, s) == id)
            .copied()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.slot(id).is_some()
    }

    /// Appends `id` as a new slot, live when `live`; returns the slot and, for a live one, the
    /// slot that was live under the same id before (no longer in the table).
    pub(crate) fn push(&mut self, id: &str, live: bool) -> (u32, Option<u32>) {
        let slot = self.ends.len() as u32;
        self.bytes.extend_from_slice(id.as_bytes());
        self.ends.push(self.bytes.len() as u64);
        if !live {
            return (slot, None);
        }
        let Ids {
            bytes,
            ends,
            live,
            hasher,
        } = self;
        let rehash = |&s: &u32| hasher.hash_one(name_in(bytes, ends, s));
        match live.entry(
            hasher.hash_one(id),
            |&s| name_in(bytes, ends, s) == id,
            rehash,
        ) {
            Entry::Occupied(mut e) => (slot, Some(std::mem::replace(e.get_mut(), slot))),
            Entry::Vacant(e) => {
                e.insert(slot);
                (slot, None)
            }
        }
    }

    /// Takes `id` out of the live table; returns the slot it had.
    pub(crate) fn remove(&mut self, id: &str) -> Option<u32> {
        let (bytes, ends) = (&self.bytes, &self.ends);
        let hash = self.hasher.hash_one(id);
        match self
            .live
            .find_entry(hash, |&s| name_in(bytes, ends, s) == id)
        {
            Ok(e) => Some(e.remove().0),
            Err(_) => None,
        }
    }

    pub(crate) fn reserve(&mut self, slots: usize) {
        self.ends.reserve(slots);
    }

    /// Heap bytes: the arena, the ends and the table (a `u32` and a control byte per bucket at
    /// a load factor of at most 7/8).
    pub(crate) fn heap_bytes(&self) -> usize {
        let buckets = (self.live.capacity() * 8 / 7).next_power_of_two();
        self.bytes.capacity() + self.ends.capacity() * 8 + buckets * 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_their_live_slot_and_overwrites_retire_the_old_one() {
        let mut ids = Ids::default();
        assert_eq!(ids.push("a", true), (0, None));
        assert_eq!(ids.push("", true), (1, None));
        assert_eq!(ids.push("ünïcode", true), (2, None));
        assert_eq!(
            ids.push("a", true),
            (3, Some(0)),
            "the overwrite retires slot 0"
        );
        assert_eq!(ids.push("x", false), (4, None));
        assert_eq!(ids.slot("a"), Some(3));
        assert_eq!(ids.slot(""), Some(1));
        assert_eq!(ids.slot("ünïcode"), Some(2));
        assert_eq!(ids.slot("x"), None, "pushed dead");
        assert_eq!(ids.name(0), "a");
        assert_eq!(ids.name(4), "x");
        assert_eq!(ids.remove("a"), Some(3));
        assert_eq!(ids.remove("a"), None);
        assert!(!ids.contains("a"));
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn many_ids_survive_table_growth() {
        let mut ids = Ids::default();
        for i in 0..20_000 {
            ids.push(&format!("id-{i}"), true);
        }
        for i in (0..20_000).step_by(3) {
            assert_eq!(ids.remove(&format!("id-{i}")), Some(i as u32));
        }
        for i in 0..20_000u32 {
            let want = (i % 3 != 0).then_some(i);
            assert_eq!(ids.slot(&format!("id-{i}")), want, "id-{i}");
            assert_eq!(ids.name(i), format!("id-{i}"));
        }
    }
}
