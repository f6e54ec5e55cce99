//! Filters on payloads, evaluated during graph traversal.
//!
//! A [`Filter`] is a conjunction: every `must` condition holds and no `must_not` condition
//! holds. The serving layer maps the gRPC operators onto these conditions:
//!
//! | operator | condition |
//! |---|---|
//! | IN | `must Match` (any of the values; a list payload matches if any element does) |
//! | NIN | `must_not Match` (a point without the field is kept) |
//! | EX | `must Exists` (present and not an empty list) |
//! | SEARCH | `must Text` (every query word is a word of the value, case-insensitive; words are runs of letters and digits) |
//! | LT, LTE, GT, GTE, BTW (exclusive), BTWE (inclusive) | `must Range` |
//! | LAST_X_DAYS | `must Range { gte: now − x days }` on a timestamp field |
//! | WTHN | `must GeoRadius` |

use crate::payload::{FieldId, Fields, GeoPoint, Payload, Value};
use crate::payload_store::{Encoded, PayloadView, ValueRef};

/// One condition on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The field equals any of `any`.
    Match { field: String, any: Vec<Value> },
    /// The field is present and not an empty list.
    Exists { field: String },
    /// Every whitespace-separated word of `query` occurs in the (keyword) value, ignoring case.
    Text { field: String, query: String },
    /// The numeric field lies within the bounds.
    Range {
        field: String,
        gt: Option<f64>,
        gte: Option<f64>,
        lt: Option<f64>,
        lte: Option<f64>,
    },
    /// The geo field lies within `radius_m` metres of `center`.
    GeoRadius {
        field: String,
        center: GeoPoint,
        radius_m: f64,
    },
}

impl Condition {
    pub fn field(&self) -> &str {
        match self {
            Condition::Match { field, .. }
            | Condition::Exists { field }
            | Condition::Text { field, .. }
            | Condition::Range { field, .. }
            | Condition::GeoRadius { field, .. } => field,
        }
    }
}

/// All of `must` and none of `must_not`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub must: Vec<Condition>,
    pub must_not: Vec<Condition>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
    }

    /// Combines two filters (both must hold).
    pub fn and(mut self, other: Filter) -> Filter {
        self.must.extend(other.must);
        self.must_not.extend(other.must_not);
        self
    }
}

/// A filter with field names resolved for one collection.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFilter {
    must: Vec<(Option<FieldId>, Condition)>,
    must_not: Vec<(Option<FieldId>, Condition)>,
    /// Lower-cased query words of `Text` conditions, by position in `must`/`must_not`.
    words: Vec<Vec<String>>,
}

impl CompiledFilter {
    pub(crate) fn compile(filter: &Filter, fields: &Fields) -> Self {
        let resolve = |c: &Condition| (fields.get(c.field()), c.clone());
        let must: Vec<_> = filter.must.iter().map(resolve).collect();
        let must_not: Vec<_> = filter.must_not.iter().map(resolve).collect();
        let words = must
            .iter()
            .chain(&must_not)
            .map(|(_, c)| match c {
                Condition::Text { query, .. } => words_of(query).collect(),
                _ => Vec::new(),
            })
            .collect();
        CompiledFilter {
            must,
            must_not,
            words,
        }
    }

    /// The conditions every point must meet, with their fields.
    pub(crate) fn must(&self) -> impl Iterator<Item = (Option<FieldId>, &Condition)> {
        self.must.iter().map(|(f, c)| (*f, c))
    }

    /// The conditions no point may meet, with their fields.
    pub(crate) fn must_not(&self) -> impl Iterator<Item = (Option<FieldId>, &Condition)> {
        self.must_not.iter().map(|(f, c)| (*f, c))
    }

    /// Whether an owned payload matches (encodes it first: for callers outside a collection).
    pub(crate) fn matches_payload(&self, payload: &Payload) -> bool {
        Encoded::new(payload).is_some_and(|e| self.matches(e.view()))
    }

    pub(crate) fn matches(&self, payload: PayloadView<'_>) -> bool {
        let n = self.must.len();
        self.must
            .iter()
            .enumerate()
            .all(|(i, (f, c))| eval(*f, c, &self.words[i], payload))
            && !self
                .must_not
                .iter()
                .enumerate()
                .any(|(i, (f, c))| eval(*f, c, &self.words[n + i], payload))
    }
}

/// The words of a text, lower-cased: runs of letters and digits (what Qdrant's `word`
/// tokenizer with `lowercase` indexes, so a SEARCH means the same on both engines).
pub(crate) fn words_of(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn eval(
    field: Option<FieldId>,
    cond: &Condition,
    words: &[String],
    payload: PayloadView<'_>,
) -> bool {
    let Some(value) = field.and_then(|f| payload.get(f)) else {
        return false;
    };
    match cond {
        Condition::Match { any, .. } => value.any_scalar(&mut |v| any.iter().any(|w| v.equals(w))),
        Condition::Exists { .. } => !matches!(value, ValueRef::List(items) if items.is_empty()),
        Condition::Text { .. } => value.any_scalar(&mut |v| match v {
            ValueRef::Keyword(s) => {
                let text: Vec<String> = words_of(s).collect();
                !words.is_empty() && words.iter().all(|w| text.contains(w))
            }
            _ => false,
        }),
        Condition::Range {
            gt, gte, lt, lte, ..
        } => value.any_scalar(&mut |v| {
            v.as_f64().is_some_and(|x| {
                gt.is_none_or(|b| x > b)
                    && gte.is_none_or(|b| x >= b)
                    && lt.is_none_or(|b| x < b)
                    && lte.is_none_or(|b| x <= b)
            })
        }),
        Condition::GeoRadius {
            center, radius_m, ..
        } => value.any_scalar(&mut |v| match v {
            ValueRef::Geo(p) => haversine_m(*center, p) <= *radius_m,
            _ => false,
        }),
    }
}

/// Great-circle distance in metres.
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Fields, Payload) {
        let mut fields = Fields::default();
        let mut p = Payload::default();
        let mut put = |name: &str, v: Value| {
            let id = fields.intern(name).unwrap();
            p.set(id, v);
        };
        put("brand", Value::Keyword("Acme".into()));
        put(
            "tags",
            Value::List(vec![
                Value::Keyword("red".into()),
                Value::Keyword("cotton".into()),
            ]),
        );
        put("price", Value::Integer(499));
        put("rating", Value::Float(4.2));
        put("in_stock", Value::Bool(true));
        put("title", Value::Keyword("Red Cotton Kurta for Women".into()));
        put("listed_at", Value::Integer(1_700_000_000));
        put(
            "store",
            Value::Geo(GeoPoint {
                lat: 12.9716,
                lon: 77.5946,
            }),
        );
        put("empty", Value::List(vec![]));
        (fields, p)
    }

    fn check(filter: Filter) -> bool {
        let (fields, p) = setup();
        CompiledFilter::compile(&filter, &fields).matches_payload(&p)
    }

    fn must(c: Condition) -> Filter {
        Filter {
            must: vec![c],
            must_not: vec![],
        }
    }

    fn must_not(c: Condition) -> Filter {
        Filter {
            must: vec![],
            must_not: vec![c],
        }
    }

    fn range(
        field: &str,
        gt: Option<f64>,
        gte: Option<f64>,
        lt: Option<f64>,
        lte: Option<f64>,
    ) -> Condition {
        Condition::Range {
            field: field.into(),
            gt,
            gte,
            lt,
            lte,
        }
    }

    #[test]
    fn in_and_nin_on_every_type() {
        let m = |f: &str, v: Vec<Value>| Condition::Match {
            field: f.into(),
            any: v,
        };
        assert!(check(must(m(
            "brand",
            vec![Value::Keyword("Zed".into()), Value::Keyword("Acme".into())]
        ))));
        assert!(
            check(must(m("tags", vec![Value::Keyword("cotton".into())]))),
            "list: any element"
        );
        assert!(check(must(m("price", vec![Value::Integer(499)]))));
        assert!(
            check(must(m("price", vec![Value::Float(499.0)]))),
            "numeric across types"
        );
        assert!(check(must(m("rating", vec![Value::Float(4.2)]))));
        assert!(check(must(m("in_stock", vec![Value::Bool(true)]))));
        assert!(
            !check(must(m("in_stock", vec![Value::Keyword("true".into())]))),
            "types are not coerced from text here"
        );
        assert!(
            !check(must(m("missing", vec![Value::Integer(1)]))),
            "IN on a missing field excludes"
        );
        assert!(
            check(must_not(m("missing", vec![Value::Integer(1)]))),
            "NIN on a missing field keeps"
        );
        assert!(!check(must_not(m(
            "brand",
            vec![Value::Keyword("Acme".into())]
        ))));
    }

    #[test]
    fn exists_text_ranges_time_and_geo() {
        assert!(check(must(Condition::Exists {
            field: "brand".into()
        })));
        assert!(!check(must(Condition::Exists {
            field: "missing".into()
        })));
        assert!(!check(must(Condition::Exists {
            field: "empty".into()
        })));
        let text = |q: &str| {
            must(Condition::Text {
                field: "title".into(),
                query: q.into(),
            })
        };
        assert!(check(text("cotton KURTA")));
        assert!(!check(text("silk kurta")));
        assert!(!check(text("cott")), "a part of a word is not the word");
        assert!(!check(text("")), "an empty query matches nothing");
        assert!(
            check(must(range("price", None, None, None, Some(499.0)))),
            "LTE"
        );
        assert!(
            !check(must(range("price", None, None, Some(499.0), None))),
            "LT"
        );
        assert!(
            check(must(range("price", None, Some(499.0), None, None))),
            "GTE"
        );
        assert!(
            !check(must(range("price", Some(499.0), None, None, None))),
            "GT"
        );
        assert!(
            check(must(range("rating", Some(4.0), None, Some(4.5), None))),
            "BTW"
        );
        assert!(
            !check(must(range("price", Some(499.0), None, Some(600.0), None))),
            "BTW is exclusive"
        );
        assert!(
            check(must(range("price", None, Some(499.0), None, Some(499.0)))),
            "BTWE is inclusive"
        );
        assert!(
            !check(must(range("brand", None, Some(0.0), None, None))),
            "range on text never matches"
        );
        assert!(
            check(must(range(
                "listed_at",
                None,
                Some(1_699_000_000.0),
                None,
                None
            ))),
            "LAST_X_DAYS"
        );
        let near = GeoPoint {
            lat: 12.98,
            lon: 77.60,
        };
        assert!(check(must(Condition::GeoRadius {
            field: "store".into(),
            center: near,
            radius_m: 2_000.0
        })));
        assert!(!check(must(Condition::GeoRadius {
            field: "store".into(),
            center: near,
            radius_m: 500.0
        })));
    }

    #[test]
    fn haversine_is_sane() {
        let blr = GeoPoint {
            lat: 12.9716,
            lon: 77.5946,
        };
        let del = GeoPoint {
            lat: 28.7041,
            lon: 77.1025,
        };
        let d = haversine_m(blr, del);
        assert!((1_740_000.0..1_760_000.0).contains(&d), "{d}");
    }
}
