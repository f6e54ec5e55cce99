//! Payload indexes: for every field, which points hold each value, so that a filter becomes set
//! algebra on bitmaps (roaring) instead of a scan of every payload.
//!
//! Per field: keywords by exact value and by word (lower-cased runs of letters and digits, for
//! SEARCH), integers and floats in ordered maps (ranges are a walk over the map), booleans, the
//! points that have the field at all (EX), and the points with a geo value. A list is indexed
//! per element. Every live point is also in `all`, so a filter made only of exclusions is a
//! difference.
//!
//! [`PayloadIndex::select`] answers a compiled filter with a bitmap that holds every matching
//! live point, and says whether it holds exactly those (then the search never looks at a
//! payload) or a superset to check point by point: geo radii, full-text on list fields, and
//! conditions on values no index keys (a geo value compared for equality).
//!
//! The index is rebuilt from the payloads when a collection is loaded or compacted, and kept in
//! step by every upsert, delete, overwrite and payload update.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use roaring::{MultiOps, RoaringBitmap};

use crate::filter::{CompiledFilter, Condition, words_of};
use crate::payload::{FieldId, Payload, Value};

/// A float as an ordered map key (total order; -0.0 folded into 0.0, as `==` does).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF64(f64);

impl OrdF64 {
    fn new(x: f64) -> Self {
        OrdF64(x + 0.0)
    }
}

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Integers from which `as f64` is no longer exact: equality between an integer and a float
/// is checked on the points themselves there.
const EXACT_F64_INTS: f64 = 9_007_199_254_740_992.0;

/// The indexes of one field.
#[derive(Debug, Default)]
struct FieldIndex {
    keywords: HashMap<String, RoaringBitmap>,
    words: HashMap<String, RoaringBitmap>,
    ints: BTreeMap<i64, RoaringBitmap>,
    floats: BTreeMap<OrdF64, RoaringBitmap>,
    bools: [RoaringBitmap; 2],
    /// Points whose value is not an empty list (what EX asks).
    present: RoaringBitmap,
    /// Points with a geo value somewhere.
    geo: RoaringBitmap,
    /// A list value was indexed: the words of one element and another mix, so SEARCH checks.
    has_lists: bool,
    /// Changed by every write to the field (what a cached answer is checked against).
    generation: u64,
}

/// What a filter selects before any payload is read.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    /// Every live point that may match (`None`: the index does not narrow the filter).
    pub ids: Option<RoaringBitmap>,
    /// `ids` holds exactly the matching points: nothing is left to check per point.
    pub exact: bool,
}

/// The payload indexes of one collection, by field id.
#[derive(Debug, Default)]
pub(crate) struct PayloadIndex {
    fields: Vec<FieldIndex>,
    all: RoaringBitmap,
    /// Answers to the conditions that merge many bitmaps (ranges, long IN lists), most recent
    /// last: the same tenant, category or price band comes back query after query.
    answers: parking_lot::Mutex<Vec<Answer>>,
}

/// A cached answer of one field's index to one condition.
#[derive(Debug)]
struct Answer {
    field: FieldId,
    condition: Condition,
    generation: u64,
    ids: RoaringBitmap,
    exact: bool,
}

/// Answers kept per collection.
const ANSWERS: usize = 16;

/// Whether answering `cond` merges enough bitmaps to be worth keeping.
fn worth_keeping(cond: &Condition) -> bool {
    match cond {
        Condition::Range { .. } => true,
        Condition::Match { any, .. } => any.len() > 4,
        _ => false,
    }
}

fn add(map: &mut RoaringBitmap, id: u32, on: bool) {
    if on {
        map.insert(id);
    } else {
        map.remove(id);
    }
}

/// Inserts or removes `id` under `key` of an ordered or hashed map, dropping emptied bitmaps.
macro_rules! entry {
    ($map:expr, $key:expr, $id:expr, $on:expr) => {{
        if $on {
            $map.entry($key).or_default().insert($id);
        } else if let Some(b) = $map.get_mut(&$key) {
            b.remove($id);
            if b.is_empty() {
                $map.remove(&$key);
            }
        }
    }};
}

impl FieldIndex {
    /// Adds (`on`) or removes `id` under every key of `value`.
    fn apply(&mut self, id: u32, value: &Value, on: bool) {
        self.generation = self.generation.wrapping_add(1);
        if !matches!(value, Value::List(items) if items.is_empty()) {
            add(&mut self.present, id, on);
        }
        if matches!(value, Value::List(_)) && on {
            self.has_lists = true;
        }
        value.for_each_scalar(&mut |v| {
            match v {
                Value::Keyword(s) => {
                    for w in words_of(s) {
                        entry!(self.words, w, id, on);
                    }
                    entry!(self.keywords, s.clone(), id, on);
                }
                Value::Integer(x) => entry!(self.ints, *x, id, on),
                Value::Float(x) => entry!(self.floats, OrdF64::new(*x), id, on),
                Value::Bool(b) => add(&mut self.bools[usize::from(*b)], id, on),
                Value::Geo(_) => add(&mut self.geo, id, on),
                Value::List(_) => {}
            }
            false
        });
    }

    /// The points with a scalar equal to `v` (`None`: not answerable from the index).
    fn equal(&self, v: &Value) -> Option<(RoaringBitmap, bool)> {
        let get = |b: Option<&RoaringBitmap>| b.cloned().unwrap_or_default();
        Some(match v {
            Value::Keyword(s) => (get(self.keywords.get(s)), true),
            Value::Bool(b) => (self.bools[usize::from(*b)].clone(), true),
            Value::Integer(x) => {
                let mut ids = get(self.ints.get(x));
                ids |= get(self.floats.get(&OrdF64::new(*x as f64)));
                (ids, (*x as f64).abs() < EXACT_F64_INTS)
            }
            Value::Float(y) => {
                let mut ids = get(self.floats.get(&OrdF64::new(*y)));
                let integral = y.fract() == 0.0 && y.abs() < EXACT_F64_INTS;
                if integral {
                    ids |= get(self.ints.get(&(*y as i64)));
                }
                (ids, integral || y.fract() != 0.0)
            }
            Value::Geo(_) | Value::List(_) => return None,
        })
    }

    /// The points with a number within the bounds (compared as `f64`, as the scan does).
    fn range(
        &self,
        gt: Option<f64>,
        gte: Option<f64>,
        lt: Option<f64>,
        lte: Option<f64>,
    ) -> RoaringBitmap {
        let mut ids = RoaringBitmap::new();
        // Integers: `x as f64 > b` is `x >= floor(b) + 1`, `x as f64 >= b` is `x >= ceil(b)`…
        let lo = [
            gt.map(|b| (b.floor() as i64).saturating_add(1)),
            gte.map(|b| b.ceil() as i64),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(i64::MIN);
        let hi = [
            lt.map(|b| (b.ceil() as i64).saturating_sub(1)),
            lte.map(|b| b.floor() as i64),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(i64::MAX);
        if lo <= hi {
            ids = union_many(self.ints.range(lo..=hi).map(|(_, b)| b), &self.present);
        }
        let lower = match (gt, gte) {
            (Some(a), Some(b)) if a >= b => Bound::Excluded(OrdF64::new(a)),
            (_, Some(b)) => Bound::Included(OrdF64::new(b)),
            (Some(a), None) => Bound::Excluded(OrdF64::new(a)),
            (None, None) => Bound::Unbounded,
        };
        let upper = match (lt, lte) {
            (Some(a), Some(b)) if a <= b => Bound::Excluded(OrdF64::new(a)),
            (_, Some(b)) => Bound::Included(OrdF64::new(b)),
            (Some(a), None) => Bound::Excluded(OrdF64::new(a)),
            (None, None) => Bound::Unbounded,
        };
        if valid_range(lower, upper) {
            ids |= union_many(
                self.floats.range((lower, upper)).map(|(_, b)| b),
                &self.present,
            );
        }
        ids
    }

    /// The points that match `cond` on this field, and whether exactly those.
    fn condition(&self, cond: &Condition) -> Option<(RoaringBitmap, bool)> {
        match cond {
            Condition::Match { any, .. } => {
                let mut ids = RoaringBitmap::new();
                let mut exact = true;
                for v in any {
                    let (b, e) = self.equal(v)?;
                    ids |= b;
                    exact &= e;
                }
                Some((ids, exact))
            }
            Condition::Exists { .. } => Some((self.present.clone(), true)),
            Condition::Text { query, .. } => {
                let mut words = words_of(query);
                let Some(first) = words.next() else {
                    return Some((RoaringBitmap::new(), true));
                };
                let mut ids = self.words.get(&first).cloned().unwrap_or_default();
                for w in words {
                    match self.words.get(&w) {
                        Some(b) => ids &= b,
                        None => ids.clear(),
                    }
                }
                Some((ids, !self.has_lists))
            }
            Condition::Range {
                gt, gte, lt, lte, ..
            } => Some((self.range(*gt, *gte, *lt, *lte), true)),
            Condition::GeoRadius { .. } => Some((self.geo.clone(), false)),
        }
    }

    fn heap_bytes(&self) -> usize {
        let bitmaps = |m: &mut dyn Iterator<Item = &RoaringBitmap>| -> usize {
            m.map(RoaringBitmap::serialized_size).sum()
        };
        bitmaps(&mut self.keywords.values())
            + self.keywords.keys().map(|k| k.len() + 48).sum::<usize>()
            + bitmaps(&mut self.words.values())
            + self.words.keys().map(|k| k.len() + 48).sum::<usize>()
            + bitmaps(&mut self.ints.values())
            + self.ints.len() * 40
            + bitmaps(&mut self.floats.values())
            + self.floats.len() * 40
            + bitmaps(&mut self.bools.iter())
            + self.present.serialized_size()
            + self.geo.serialized_size()
    }
}

/// The union of `maps`, all subsets of `within`. A wide range covers thousands of small bitmaps
/// (one per distinct value): those are set into a plain bit array spanning `within` first, then
/// turned into one bitmap, which costs a few nanoseconds per point instead of a merge per
/// bitmap.
fn union_many<'a>(
    maps: impl Iterator<Item = &'a RoaringBitmap>,
    within: &RoaringBitmap,
) -> RoaringBitmap {
    let maps: Vec<&RoaringBitmap> = maps.collect();
    let (Some(lo), Some(hi)) = (within.min(), within.max()) else {
        return RoaringBitmap::new();
    };
    if maps.len() <= DENSE_UNION_FROM {
        return maps.into_iter().union();
    }
    // Whole words from the one holding `lo`, so that bit 0 of the array is a multiple of 64.
    let base = lo & !63;
    let mut words = vec![0u64; ((hi - base) / 64 + 1) as usize];
    for map in maps {
        for id in map {
            let bit = id - base;
            words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    RoaringBitmap::from_lsb0_bytes(base, &bytes)
}

/// Bitmaps a union merges one by one; more go through a bit array.
const DENSE_UNION_FROM: usize = 64;

/// Whether a float range is non-empty enough for `BTreeMap::range` (which panics on a range
/// whose start is after its end, or on equal excluded bounds).
fn valid_range(lower: Bound<OrdF64>, upper: Bound<OrdF64>) -> bool {
    match (lower, upper) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a < b,
        _ => true,
    }
}

impl PayloadIndex {
    fn field_mut(&mut self, f: FieldId) -> &mut FieldIndex {
        let i = usize::from(f);
        if self.fields.len() <= i {
            self.fields.resize_with(i + 1, FieldIndex::default);
        }
        &mut self.fields[i]
    }

    /// Indexes a new live point.
    pub(crate) fn insert(&mut self, id: u32, payload: &Payload) {
        self.all.insert(id);
        for (f, v) in &payload.0 {
            self.field_mut(*f).apply(id, v, true);
        }
    }

    /// Forgets a point that is deleted or overwritten.
    pub(crate) fn remove(&mut self, id: u32, payload: &Payload) {
        self.all.remove(id);
        for (f, v) in &payload.0 {
            self.field_mut(*f).apply(id, v, false);
        }
    }

    /// A payload update of one field of a live point.
    pub(crate) fn update(&mut self, id: u32, f: FieldId, old: Option<&Value>, new: Option<&Value>) {
        let field = self.field_mut(f);
        if let Some(v) = old {
            field.apply(id, v, false);
        }
        if let Some(v) = new {
            field.apply(id, v, true);
        }
    }

    /// Live points indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.all.len()
    }

    /// What the indexes take, roughly.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.all.serialized_size()
            + self
                .fields
                .iter()
                .map(FieldIndex::heap_bytes)
                .sum::<usize>()
            + self
                .answers
                .lock()
                .iter()
                .map(|a| a.ids.serialized_size())
                .sum::<usize>()
    }

    /// `index`'s answer to `cond`, from the cache when the field has not changed since.
    fn answer(
        &self,
        f: FieldId,
        index: &FieldIndex,
        cond: &Condition,
    ) -> Option<(RoaringBitmap, bool)> {
        if !worth_keeping(cond) {
            return index.condition(cond);
        }
        let mut answers = self.answers.lock();
        if let Some(at) = answers
            .iter()
            .position(|a| a.field == f && a.generation == index.generation && a.condition == *cond)
        {
            let hit = answers.remove(at);
            let found = (hit.ids.clone(), hit.exact);
            answers.push(hit);
            return Some(found);
        }
        drop(answers);
        let (ids, exact) = index.condition(cond)?;
        let mut answers = self.answers.lock();
        answers.retain(|a| !(a.field == f && a.condition == *cond));
        if answers.len() >= ANSWERS {
            answers.remove(0);
        }
        answers.push(Answer {
            field: f,
            condition: cond.clone(),
            generation: index.generation,
            ids: ids.clone(),
            exact,
        });
        Some((ids, exact))
    }

    /// The live points that may match `filter`: the conditions the indexes answer are set
    /// algebra (AND = intersection, NOT = difference); the others leave a superset to check.
    pub(crate) fn select(&self, filter: &CompiledFilter) -> Selection {
        let mut exact = true;
        let mut ids: Option<RoaringBitmap> = None;
        for (field, cond) in filter.must() {
            let found = match field {
                // A field no point has: nothing matches.
                None => Some((RoaringBitmap::new(), true)),
                Some(f) => match self.fields.get(usize::from(f)) {
                    None => Some((RoaringBitmap::new(), true)),
                    Some(index) => self.answer(f, index, cond),
                },
            };
            match found {
                Some((b, e)) => {
                    exact &= e;
                    match &mut ids {
                        Some(acc) => *acc &= b,
                        None => ids = Some(b),
                    }
                }
                None => exact = false,
            }
        }
        for (field, cond) in filter.must_not() {
            let Some((f, index)) = field.and_then(|f| Some((f, self.fields.get(usize::from(f))?)))
            else {
                continue; // nobody has the field: nobody is excluded
            };
            match self.answer(f, index, cond) {
                Some((b, true)) => {
                    let acc = ids.get_or_insert_with(|| self.all.clone());
                    *acc -= b;
                }
                _ => exact = false,
            }
        }
        if let Some(acc) = &mut ids {
            *acc &= &self.all;
        }
        Selection { ids, exact }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::filter::Filter;
    use crate::payload::{Fields, GeoPoint};

    fn value() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            prop::sample::select(vec!["acme", "zeta", "red shirt", "Blue shirt", ""])
                .prop_map(|s| Value::Keyword(s.to_string())),
            (-5i64..5).prop_map(Value::Integer),
            prop::sample::select(vec![-1.5f64, 0.0, -0.0, 2.0, 2.5]).prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            (0.0f64..0.05).prop_map(|d| Value::Geo(GeoPoint {
                lat: 12.9 + d,
                lon: 77.6
            })),
        ];
        prop_oneof![
            4 => scalar.clone(),
            1 => prop::collection::vec(scalar, 0..3).prop_map(Value::List),
        ]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        let field = prop::sample::select(vec!["a", "b", "nope"]).prop_map(String::from);
        let bound = prop::option::of(prop::sample::select(vec![
            -2.0f64, -0.5, 0.0, 2.0, 2.5, 4.0,
        ]));
        prop_oneof![
            (field.clone(), prop::collection::vec(value(), 1..3))
                .prop_map(|(field, any)| Condition::Match { field, any }),
            field.clone().prop_map(|field| Condition::Exists { field }),
            (
                field.clone(),
                prop::sample::select(vec!["shirt", "RED shirt", "acme", "", "x"])
            )
                .prop_map(|(field, q)| Condition::Text {
                    field,
                    query: q.to_string()
                }),
            (
                field.clone(),
                bound.clone(),
                bound.clone(),
                bound.clone(),
                bound
            )
                .prop_map(|(field, gt, gte, lt, lte)| Condition::Range {
                    field,
                    gt,
                    gte,
                    lt,
                    lte
                }),
            (field, 100.0f64..6000.0).prop_map(|(field, radius_m)| Condition::GeoRadius {
                field,
                center: GeoPoint {
                    lat: 12.9,
                    lon: 77.6
                },
                radius_m,
            }),
        ]
    }

    proptest! {
        /// Whatever the data and the filter, index selection (plus the per-point check where it
        /// says one is needed) finds exactly the points the scan finds, through updates and
        /// removals.
        #[test]
        fn the_index_selects_what_the_scan_matches(
            points in prop::collection::vec(prop::collection::vec((0usize..2, value()), 0..3), 1..40),
            updates in prop::collection::vec((0usize..40, 0usize..2, prop::option::of(value())), 0..10),
            removed in prop::collection::vec(0usize..40, 0..5),
            must in prop::collection::vec(condition(), 0..3),
            must_not in prop::collection::vec(condition(), 0..2),
        ) {
            let mut fields = Fields::default();
            let names = ["a", "b"].map(|n| fields.intern(n).unwrap());
            let mut payloads: Vec<Payload> = points
                .iter()
                .map(|p| {
                    let mut payload = Payload::default();
                    for (f, v) in p {
                        payload.set(names[*f], v.clone());
                    }
                    payload
                })
                .collect();
            let mut index = PayloadIndex::default();
            for (i, p) in payloads.iter().enumerate() {
                index.insert(i as u32, p);
            }
            for (i, f, v) in updates {
                let Some(p) = payloads.get_mut(i) else { continue };
                let old = p.get(names[f]).cloned();
                match &v {
                    Some(v) => p.set(names[f], v.clone()),
                    None => p.remove(names[f]),
                }
                index.update(i as u32, names[f], old.as_ref(), v.as_ref());
            }
            let mut live = vec![true; payloads.len()];
            for i in removed {
                if i < payloads.len() && live[i] {
                    index.remove(i as u32, &payloads[i]);
                    live[i] = false;
                }
            }
            let filter = Filter { must, must_not };
            let compiled = CompiledFilter::compile(&filter, &fields);
            let selection = index.select(&compiled);
            for (i, p) in payloads.iter().enumerate() {
                let scan = live[i] && compiled.matches_payload(p);
                let selected = live[i]
                    && selection.ids.as_ref().is_none_or(|b| b.contains(i as u32))
                    && (selection.exact || compiled.matches_payload(p));
                prop_assert_eq!(scan, selected, "point {} {:?} under {:?}", i, p, filter);
            }
            if selection.exact {
                let ids = selection.ids.as_ref().map_or(index.len(), RoaringBitmap::len);
                let matching = payloads.iter().enumerate().filter(|(i, p)| live[*i] && compiled.matches_payload(p)).count();
                prop_assert_eq!(ids as usize, matching, "an exact selection counts the matches");
            }
        }
    }

    /// A range over thousands of distinct values (the bit-array union) selects what a narrow
    /// one (merged bitmap by bitmap) and the scan select, floats and integers alike, with ids
    /// that do not start at 0.
    #[test]
    fn wide_ranges_select_what_the_scan_matches() {
        let mut fields = Fields::default();
        let (int, float) = (fields.intern("i").unwrap(), fields.intern("f").unwrap());
        let mut index = PayloadIndex::default();
        let mut payloads = Vec::new();
        for i in 0..20_000u32 {
            let mut p = Payload::default();
            p.set(int, Value::Integer(i64::from(i % 7_000)));
            p.set(float, Value::Float(f64::from(i % 5_000) / 10.0));
            if i >= 130 {
                index.insert(i, &p);
            }
            payloads.push(p);
        }
        for (field, gte, lt) in [
            ("i", 100.0, 6_000.0),
            ("i", 10.0, 40.0),
            ("f", 20.05, 400.0),
            ("f", 1.0, 3.0),
        ] {
            let filter = Filter {
                must: vec![Condition::Range {
                    field: field.into(),
                    gt: None,
                    gte: Some(gte),
                    lt: Some(lt),
                    lte: None,
                }],
                must_not: vec![],
            };
            let compiled = CompiledFilter::compile(&filter, &fields);
            let selection = index.select(&compiled);
            assert!(selection.exact);
            let expected: RoaringBitmap = (130..20_000u32)
                .filter(|&i| compiled.matches_payload(&payloads[i as usize]))
                .collect();
            assert_eq!(selection.ids.unwrap(), expected, "{field} in [{gte}, {lt})");
            // Asked again (from the cache), then after a write moved a point into the range.
            assert_eq!(index.select(&compiled).ids.unwrap(), expected);
            let (id, f) = if field == "i" {
                (13_000, int)
            } else {
                (132, float)
            };
            let old = payloads[id as usize].get(f).cloned();
            let new = Value::Float(gte);
            index.update(id, f, old.as_ref(), Some(&new));
            let mut moved = expected.clone();
            assert!(moved.insert(id), "{id} was outside the range");
            assert_eq!(
                index.select(&compiled).ids.unwrap(),
                moved,
                "after the write"
            );
            index.update(id, f, Some(&new), old.as_ref());
            assert_eq!(index.select(&compiled).ids.unwrap(), expected, "and back");
        }
    }
}
