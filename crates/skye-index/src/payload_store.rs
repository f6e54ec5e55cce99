//! Every point's payload in one byte arena.
//!
//! A `Vec<(FieldId, Value)>` per point costs a vector header, 40 bytes per field and an
//! allocation per keyword: about 300 bytes of heap for four short fields, most of a
//! collection's non-index memory at catalog scale. Here a payload is its fields encoded one
//! after another in a shared `Vec<u8>` (about 30 bytes for the same four fields) plus a 12-byte
//! span per point. Filters read the encoded fields in place through [`ValueRef`]; nothing is
//! allocated to test a point.
//!
//! Encoding of one payload, fields in ascending id order:
//!
//! ```text
//! field  := id:u16le value
//! value  := 0 len:varint utf8    keyword
//!         | 1 i64le              integer
//!         | 2 f64le              float
//!         | 3 | 4                false | true
//!         | 5 lat:f64le lon:f64le
//!         | 6 count:varint bytes:varint value*   list (byte length first, so it skips in O(1))
//! ```
//!
//! A replaced payload of the same length is rewritten in place (a stock flag flipping, a price
//! changing); one of another length is appended and the old bytes counted as garbage, and the
//! arena is repacked once the garbage outweighs the live bytes.

use crate::payload::{FieldId, GeoPoint, Payload, Value};

const KEYWORD: u8 = 0;
const INTEGER: u8 = 1;
const FLOAT: u8 = 2;
const FALSE: u8 = 3;
const TRUE: u8 = 4;
const GEO: u8 = 5;
const LIST: u8 = 6;

/// Below this many bytes the arena is never repacked (the copy would cost more than it frees).
const REPACK_MIN_BYTES: usize = 1 << 20;

/// The payloads of a collection's slots.
#[derive(Debug, Clone, Default)]
pub(crate) struct PayloadStore {
    bytes: Vec<u8>,
    starts: Vec<u64>,
    lens: Vec<u32>,
    /// Bytes of `bytes` no span points at.
    garbage: usize,
}

/// One payload encoded, ready to be stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Encoded(Vec<u8>);

impl Encoded {
    /// Encodes `payload`; `None` when it is too large for one span (4 GiB).
    pub(crate) fn new(payload: &Payload) -> Option<Encoded> {
        let mut out = Vec::new();
        for (f, v) in &payload.0 {
            out.extend_from_slice(&f.to_le_bytes());
            encode_value(v, &mut out);
        }
        u32::try_from(out.len()).ok().map(|_| Encoded(out))
    }

    pub(crate) fn view(&self) -> PayloadView<'_> {
        PayloadView { bytes: &self.0 }
    }
}

impl PayloadStore {
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    pub(crate) fn reserve(&mut self, points: usize) {
        self.starts.reserve(points);
        self.lens.reserve(points);
    }

    /// Appends the payload of the next slot.
    pub(crate) fn push(&mut self, payload: &Encoded) {
        self.push_bytes(&payload.0);
    }

    /// Appends a payload read from another store (compaction copies the bytes as they are).
    pub(crate) fn push_view(&mut self, view: PayloadView<'_>) {
        self.push_bytes(view.bytes);
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        self.starts.push(self.bytes.len() as u64);
        // Every stored payload came through `Encoded::new` or another store: within a u32.
        self.lens.push(bytes.len() as u32);
        self.bytes.extend_from_slice(bytes);
    }

    /// The payload of `slot` (empty for a slot the store does not hold).
    pub(crate) fn view(&self, slot: usize) -> PayloadView<'_> {
        let bytes = match (self.starts.get(slot), self.lens.get(slot)) {
            (Some(&start), Some(&len)) => {
                let start = start as usize;
                self.bytes.get(start..start + len as usize).unwrap_or(&[])
            }
            _ => &[],
        };
        PayloadView { bytes }
    }

    /// Replaces the payload of `slot`.
    pub(crate) fn replace(&mut self, slot: usize, payload: &Encoded) {
        let (Some(start), Some(len)) =
            (self.starts.get(slot).copied(), self.lens.get(slot).copied())
        else {
            return;
        };
        let (start, len) = (start as usize, len as usize);
        if payload.0.len() == len {
            self.bytes[start..start + len].copy_from_slice(&payload.0);
            return;
        }
        self.garbage += len;
        self.starts[slot] = self.bytes.len() as u64;
        self.lens[slot] = payload.0.len() as u32;
        self.bytes.extend_from_slice(&payload.0);
        if self.garbage > REPACK_MIN_BYTES && self.garbage * 2 > self.bytes.len() {
            self.repack();
        }
    }

    /// Copies the live spans into a fresh arena, in slot order.
    fn repack(&mut self) {
        let mut fresh = PayloadStore::default();
        fresh.bytes.reserve_exact(self.bytes.len() - self.garbage);
        fresh.reserve(self.len());
        for slot in 0..self.len() {
            fresh.push_view(self.view(slot));
        }
        *self = fresh;
    }

    /// Drops the arena's spare capacity (after a load or a compaction).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.lens.shrink_to_fit();
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.starts.capacity() * std::mem::size_of::<u64>()
            + self.lens.capacity() * std::mem::size_of::<u32>()
    }
}

/// One stored payload, read in place.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PayloadView<'a> {
    bytes: &'a [u8],
}

impl<'a> PayloadView<'a> {
    /// The fields in id order. Stops at the first malformed byte (none are written).
    pub(crate) fn iter(self) -> impl Iterator<Item = (FieldId, ValueRef<'a>)> {
        let mut rest = self.bytes;
        std::iter::from_fn(move || {
            let (id, tail) = rest.split_first_chunk::<2>()?;
            let (value, tail) = decode_value(tail)?;
            rest = tail;
            Some((FieldId::from_le_bytes(*id), value))
        })
    }

    pub(crate) fn get(self, field: FieldId) -> Option<ValueRef<'a>> {
        self.iter()
            .take_while(|(f, _)| *f <= field)
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v)
    }

    /// The payload as owned values.
    pub(crate) fn to_payload(self) -> Payload {
        Payload(self.iter().map(|(f, v)| (f, v.to_value())).collect())
    }
}

/// A payload value read from the arena.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ValueRef<'a> {
    Keyword(&'a str),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Geo(GeoPoint),
    List(ListRef<'a>),
}

/// The elements of a stored list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ListRef<'a> {
    count: usize,
    bytes: &'a [u8],
}

impl<'a> ListRef<'a> {
    pub(crate) fn is_empty(self) -> bool {
        self.count == 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = ValueRef<'a>> {
        let mut rest = self.bytes;
        (0..self.count).map_while(move |_| {
            let (value, tail) = decode_value(rest)?;
            rest = tail;
            Some(value)
        })
    }
}

impl<'a> ValueRef<'a> {
    pub(crate) fn to_value(self) -> Value {
        match self {
            ValueRef::Keyword(s) => Value::Keyword(s.to_string()),
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Geo(g) => Value::Geo(g),
            ValueRef::List(items) => Value::List(items.iter().map(ValueRef::to_value).collect()),
        }
    }

    /// The value as a number, for range conditions.
    pub(crate) fn as_f64(self) -> Option<f64> {
        match self {
            ValueRef::Integer(i) => Some(i as f64),
            ValueRef::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Calls `f` on the value, or on each element of a list, until it answers true.
    pub(crate) fn any_scalar(self, f: &mut impl FnMut(ValueRef<'a>) -> bool) -> bool {
        match self {
            ValueRef::List(items) => items.iter().any(|v| v.any_scalar(f)),
            scalar => f(scalar),
        }
    }

    /// Equality with a query value: across numeric types (an integer field matches `2.0`),
    /// strict otherwise.
    pub(crate) fn equals(self, other: &Value) -> bool {
        match (self, other) {
            (ValueRef::Keyword(a), Value::Keyword(b)) => a == b,
            (ValueRef::Integer(a), Value::Integer(b)) => a == *b,
            (ValueRef::Float(a), Value::Float(b)) => a == *b,
            (ValueRef::Integer(a), Value::Float(b)) => (a as f64) == *b,
            (ValueRef::Float(a), Value::Integer(b)) => a == (*b as f64),
            (ValueRef::Bool(a), Value::Bool(b)) => a == *b,
            (ValueRef::Geo(a), Value::Geo(b)) => a == *b,
            (ValueRef::List(a), Value::List(b)) => {
                a.count == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            _ => false,
        }
    }
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Keyword(s) => {
            out.push(KEYWORD);
            put_varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Integer(i) => {
            out.push(INTEGER);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Geo(g) => {
            out.push(GEO);
            out.extend_from_slice(&g.lat.to_le_bytes());
            out.extend_from_slice(&g.lon.to_le_bytes());
        }
        Value::List(items) => {
            let mut body = Vec::new();
            for item in items {
                encode_value(item, &mut body);
            }
            out.push(LIST);
            put_varint(items.len() as u64, out);
            put_varint(body.len() as u64, out);
            out.extend_from_slice(&body);
        }
    }
}

/// One value and the bytes after it; `None` on a malformed or truncated encoding.
fn decode_value(bytes: &[u8]) -> Option<(ValueRef<'_>, &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    match tag {
        KEYWORD => {
            let (len, rest) = take_varint(rest)?;
            let (text, rest) = split(rest, len)?;
            Some((ValueRef::Keyword(std::str::from_utf8(text).ok()?), rest))
        }
        INTEGER => {
            let (b, rest) = rest.split_first_chunk::<8>()?;
            Some((ValueRef::Integer(i64::from_le_bytes(*b)), rest))
        }
        FLOAT => {
            let (b, rest) = rest.split_first_chunk::<8>()?;
            Some((ValueRef::Float(f64::from_le_bytes(*b)), rest))
        }
        FALSE => Some((ValueRef::Bool(false), rest)),
        TRUE => Some((ValueRef::Bool(true), rest)),
        GEO => {
            let (lat, rest) = rest.split_first_chunk::<8>()?;
            let (lon, rest) = rest.split_first_chunk::<8>()?;
            let point = GeoPoint {
                lat: f64::from_le_bytes(*lat),
                lon: f64::from_le_bytes(*lon),
            };
            Some((ValueRef::Geo(point), rest))
        }
        LIST => {
            let (count, rest) = take_varint(rest)?;
            let (len, rest) = take_varint(rest)?;
            let (body, rest) = split(rest, len)?;
            let count = usize::try_from(count).ok()?;
            Some((ValueRef::List(ListRef { count, bytes: body }), rest))
        }
        _ => None,
    }
}

fn split(bytes: &[u8], len: u64) -> Option<(&[u8], &[u8])> {
    let len = usize::try_from(len).ok()?;
    (len <= bytes.len()).then(|| bytes.split_at(len))
}

fn put_varint(mut x: u64, out: &mut Vec<u8>) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut x = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        x |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((x, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            "[a-zé ]{0,12}".prop_map(Value::Keyword),
            any::<i64>().prop_map(Value::Integer),
            any::<f64>()
                .prop_filter("NaN never equals itself", |f| !f.is_nan())
                .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            (-90.0f64..90.0, -180.0f64..180.0)
                .prop_map(|(lat, lon)| Value::Geo(GeoPoint { lat, lon })),
        ];
        scalar.prop_recursive(2, 16, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(Value::List)
        })
    }

    fn payload() -> impl Strategy<Value = Payload> {
        prop::collection::btree_map(any::<u16>(), value(), 0..6)
            .prop_map(|fields| Payload(fields.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn payloads_read_back_as_written(points in prop::collection::vec(payload(), 1..20),
                                         replaced in prop::collection::vec((any::<prop::sample::Index>(), payload()), 0..20)) {
            let mut store = PayloadStore::default();
            let mut model = points.clone();
            for p in &points {
                store.push(&Encoded::new(p).unwrap());
            }
            for (slot, p) in replaced {
                let slot = slot.index(model.len());
                store.replace(slot, &Encoded::new(&p).unwrap());
                model[slot] = p;
            }
            for (slot, p) in model.iter().enumerate() {
                let view = store.view(slot);
                prop_assert_eq!(&view.to_payload(), p);
                for (f, v) in &p.0 {
                    prop_assert!(view.get(*f).is_some_and(|r| r.equals(v)));
                }
                prop_assert!(view.get(u16::MAX).is_none() || p.get(u16::MAX).is_some());
            }
        }
    }

    #[test]
    fn four_catalog_fields_take_about_thirty_bytes() {
        let p = Payload(vec![
            (0, Value::Keyword("c42".into())),
            (1, Value::Keyword("t3".into())),
            (2, Value::Keyword("h1".into())),
            (3, Value::Integer(4_999)),
        ]);
        // (id 2 + tag 1 + length 1 + text) × 3 + (id 2 + tag 1 + 8) = 7 + 6 + 6 + 11.
        assert_eq!(Encoded::new(&p).unwrap().0.len(), 30);
    }

    #[test]
    fn garbage_from_growing_payloads_is_repacked() {
        let mut store = PayloadStore::default();
        let small = Encoded::new(&Payload(vec![(0, Value::Integer(1))])).unwrap();
        for _ in 0..1_000 {
            store.push(&small);
        }
        let big = Payload(vec![(0, Value::Keyword("x".repeat(4_000)))]);
        let big = Encoded::new(&big).unwrap();
        for round in 0..3 {
            for slot in 0..1_000 {
                store.replace(slot, if round % 2 == 0 { &big } else { &small });
            }
        }
        // Live bytes are 1,000 × 4 KB; without repacking the arena would hold three rounds.
        assert!(
            store.bytes.len() < 2 * 1_000 * 4_010 + REPACK_MIN_BYTES,
            "{}",
            store.bytes.len()
        );
        assert!(
            store
                .view(999)
                .get(0)
                .is_some_and(|v| v.equals(&Value::Keyword("x".repeat(4_000))))
        );
    }

    #[test]
    fn same_length_replacements_rewrite_in_place() {
        let mut store = PayloadStore::default();
        let flag = |b| Encoded::new(&Payload(vec![(7, Value::Bool(b))])).unwrap();
        store.push(&flag(false));
        store.replace(0, &flag(true));
        assert_eq!(store.bytes.len(), 3);
        assert_eq!(store.view(0).get(7), Some(ValueRef::Bool(true)));
        assert_eq!(store.view(5).get(7), None);
    }
}
