//! Conversions from skye-core's engine-neutral search types (feature `core`), and evaluation of
//! a filter on a payload that lives outside any collection.
//!
//! The embedded vector store converts every query and point through here; the serving engine
//! evaluates filters for vector DBs that hold no payloads (NGT, Eigenix) with the same rules,
//! so a filter means one thing whichever store answers.

use skye_core::vector_store::{Condition as NeutralCondition, PayloadValue, SearchFilter};

use crate::filter::{CompiledFilter, Condition, Filter};
use crate::payload::{Fields, GeoPoint, Payload, Value};

impl From<&PayloadValue> for Value {
    fn from(v: &PayloadValue) -> Self {
        match v {
            PayloadValue::Keyword(s) => Value::Keyword(s.clone()),
            PayloadValue::Integer(i) => Value::Integer(*i),
            PayloadValue::Float(f) => Value::Float(*f),
            PayloadValue::Bool(b) => Value::Bool(*b),
            PayloadValue::Geo(lat, lon) => Value::Geo(GeoPoint {
                lat: *lat,
                lon: *lon,
            }),
            PayloadValue::List(items) => Value::List(items.iter().map(Value::from).collect()),
        }
    }
}

impl From<&NeutralCondition> for Condition {
    fn from(c: &NeutralCondition) -> Self {
        match c {
            NeutralCondition::Match { field, any } => Condition::Match {
                field: field.clone(),
                any: any.iter().map(Value::from).collect(),
            },
            NeutralCondition::Exists { field } => Condition::Exists {
                field: field.clone(),
            },
            NeutralCondition::Text { field, query } => Condition::Text {
                field: field.clone(),
                query: query.clone(),
            },
            NeutralCondition::Range {
                field,
                gt,
                gte,
                lt,
                lte,
            } => Condition::Range {
                field: field.clone(),
                gt: *gt,
                gte: *gte,
                lt: *lt,
                lte: *lte,
            },
            NeutralCondition::GeoRadius {
                field,
                lat,
                lon,
                radius_m,
            } => Condition::GeoRadius {
                field: field.clone(),
                center: GeoPoint {
                    lat: *lat,
                    lon: *lon,
                },
                radius_m: *radius_m,
            },
        }
    }
}

impl From<&SearchFilter> for Filter {
    fn from(f: &SearchFilter) -> Self {
        Filter {
            must: f.must.iter().map(Condition::from).collect(),
            must_not: f.must_not.iter().map(Condition::from).collect(),
        }
    }
}

/// A filter compiled once and evaluated on many payloads given by field name.
#[derive(Debug, Clone)]
pub struct NamedFilter {
    fields: Fields,
    compiled: CompiledFilter,
}

impl NamedFilter {
    pub fn new(filter: &SearchFilter) -> Self {
        let filter = Filter::from(filter);
        let mut fields = Fields::default();
        for c in filter.must.iter().chain(&filter.must_not) {
            fields.intern(c.field());
        }
        let compiled = CompiledFilter::compile(&filter, &fields);
        NamedFilter { fields, compiled }
    }

    /// Whether `payload` satisfies the filter; fields the filter does not name are ignored.
    pub fn matches<'a>(
        &self,
        payload: impl IntoIterator<Item = (&'a String, &'a PayloadValue)>,
    ) -> bool {
        let mut p = Payload::default();
        for (name, value) in payload {
            if let Some(id) = self.fields.get(name) {
                p.set(id, Value::from(value));
            }
        }
        self.compiled.matches_payload(&p)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn payload() -> BTreeMap<String, PayloadValue> {
        BTreeMap::from([
            ("brand".into(), PayloadValue::Keyword("Acme".into())),
            ("price".into(), PayloadValue::Integer(499)),
            ("out_of_stock".into(), PayloadValue::Bool(false)),
            (
                "tags".into(),
                PayloadValue::List(vec![PayloadValue::Keyword("red".into())]),
            ),
            ("loc".into(), PayloadValue::Geo(12.97, 77.59)),
        ])
    }

    fn filter(must: Vec<NeutralCondition>, must_not: Vec<NeutralCondition>) -> NamedFilter {
        NamedFilter::new(&SearchFilter { must, must_not })
    }

    #[test]
    fn named_payloads_are_filtered_like_collection_points() {
        let p = payload();
        let keyword = |f: &str, v: &str| NeutralCondition::Match {
            field: f.into(),
            any: vec![PayloadValue::Keyword(v.into())],
        };
        assert!(filter(vec![keyword("brand", "Acme")], vec![]).matches(&p));
        assert!(!filter(vec![keyword("brand", "Other")], vec![]).matches(&p));
        assert!(filter(vec![keyword("tags", "red")], vec![]).matches(&p));
        assert!(!filter(vec![], vec![keyword("tags", "red")]).matches(&p));
        // A must_not on a field the payload lacks keeps the point; a must drops it.
        assert!(filter(vec![], vec![keyword("colour", "red")]).matches(&p));
        assert!(!filter(vec![keyword("colour", "red")], vec![]).matches(&p));
        let bool_match = NeutralCondition::Match {
            field: "out_of_stock".into(),
            any: vec![PayloadValue::Bool(false)],
        };
        assert!(filter(vec![bool_match], vec![]).matches(&p));
        let range = NeutralCondition::Range {
            field: "price".into(),
            gt: None,
            gte: Some(499.0),
            lt: Some(500.0),
            lte: None,
        };
        assert!(filter(vec![range], vec![]).matches(&p));
        let near = |radius_m| NeutralCondition::GeoRadius {
            field: "loc".into(),
            lat: 12.98,
            lon: 77.59,
            radius_m,
        };
        assert!(filter(vec![near(2_000.0)], vec![]).matches(&p));
        assert!(!filter(vec![near(500.0)], vec![]).matches(&p));
        assert!(
            filter(vec![], vec![]).matches(&p),
            "no conditions: everything"
        );
    }
}
