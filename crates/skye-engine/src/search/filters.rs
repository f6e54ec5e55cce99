//! Request filters → vector-store conditions, typed by the variant's payload schema.
//!
//! Semantics of every operator of the API (spec serving §1.5, with its bugs fixed, §9 S11–S14):
//!
//! | op | field types | values | matches a point whose field… |
//! |---|---|---|---|
//! | IN | any but geo | ≥ 1 | equals one of the values (a list field: any element) |
//! | NIN | any but geo | ≥ 1 | equals none of them (a point without the field matches) |
//! | EX | any | none | exists and is not an empty list (not Qdrant's "not null") |
//! | SEARCH | keyword, text | ≥ 1 | has every word of the values as a word, ignoring case (words: runs of letters and digits) |
//! | LT, LTE, GT, GTE | integer, float, datetime | ≥ 1 (first used) | compares with the value (datetimes: Unix seconds or RFC 3339) |
//! | BTW / BTWE | integer, float, datetime | 2, v0 ≤ v1 | lies strictly / inclusively between |
//! | LAST_X_DAYS | datetime, integer (Unix seconds) | 1: days (may be fractional) | is at or after now − days |
//! | WTHN | geo | 3: lat, lon, radius in metres | lies within the radius (great-circle) |
//!
//! Values are parsed with the field's schema: booleans accept Go's `ParseBool` spellings, so
//! `IN ["true"]` on a boolean field works (the original compares it as text and never matches).
//! Every problem is a client error reported before any search runs.

use std::collections::BTreeMap;

use skye_core::domain::{FieldSchema, PayloadField};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::time::datetime_seconds;
use skye_core::tree::parse_go_bool;
use skye_core::vector_store::{Condition, PayloadValue, SearchFilter};

/// The operators of the API (numbers as in the proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    In,
    Nin,
    Ex,
    Search,
    Lte,
    Gte,
    Btwe,
    Btw,
    Lt,
    Gt,
    LastXDays,
    Wthn,
}

impl FilterOp {
    /// The operator of proto number `n`.
    pub fn from_proto(n: i32) -> Option<FilterOp> {
        use FilterOp::*;
        [
            In, Nin, Ex, Search, Lte, Gte, Btwe, Btw, Lt, Gt, LastXDays, Wthn,
        ]
        .get(usize::try_from(n).ok()?)
        .copied()
    }

    /// The operator named `name` (as `name()` spells it).
    pub fn from_name(name: &str) -> Option<FilterOp> {
        (0..12)
            .filter_map(FilterOp::from_proto)
            .find(|op| op.name().eq_ignore_ascii_case(name))
    }

    /// The operator's proto number.
    pub fn to_proto(self) -> i32 {
        self as i32
    }

    pub fn name(self) -> &'static str {
        use FilterOp::*;
        match self {
            In => "IN",
            Nin => "NIN",
            Ex => "EX",
            Search => "SEARCH",
            Lte => "LTE",
            Gte => "GTE",
            Btwe => "BTWE",
            Btw => "BTW",
            Lt => "LT",
            Gt => "GT",
            LastXDays => "LAST_X_DAYS",
            Wthn => "WTHN",
        }
    }
}

/// One filter of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSpec {
    pub field: String,
    pub op: FilterOp,
    pub values: Vec<String>,
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter on '{field}' ({op}): {reason}")]
pub struct FilterError {
    pub field: String,
    pub op: &'static str,
    pub reason: String,
}

impl HasErrorCode for FilterError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }
}

fn parse_value(schema: FieldSchema, text: &str) -> Result<PayloadValue, String> {
    let t = text.trim();
    match schema {
        FieldSchema::Keyword | FieldSchema::Text => Ok(PayloadValue::Keyword(text.to_string())),
        FieldSchema::Integer => t
            .parse()
            .map(PayloadValue::Integer)
            .map_err(|_| format!("'{text}' is not an integer")),
        FieldSchema::Datetime => datetime_seconds(t).map(PayloadValue::Integer),
        FieldSchema::Float => match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(PayloadValue::Float(f)),
            _ => Err(format!("'{text}' is not a finite number")),
        },
        FieldSchema::Boolean => parse_go_bool(t)
            .map(PayloadValue::Bool)
            .ok_or_else(|| format!("'{text}' is not a boolean")),
        FieldSchema::Geo => Err("geo fields only support WTHN and EX".to_string()),
    }
}

fn number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(format!("'{text}' is not a finite number")),
    }
}

/// A range bound of a field: datetimes also take RFC 3339 text.
fn bound(field_type: FieldSchema, text: &str) -> Result<f64, String> {
    match field_type {
        FieldSchema::Datetime if text.trim().parse::<f64>().is_err() => {
            datetime_seconds(text).map(|s| s as f64)
        }
        _ => number(text),
    }
}

/// Translates one filter. Returns the condition and whether it is negated (NIN).
pub fn translate(
    spec: &FilterSpec,
    schema: &BTreeMap<String, PayloadField>,
    now_unix: i64,
) -> Result<(Condition, bool), FilterError> {
    let fail = |reason: String| FilterError {
        field: spec.field.clone(),
        op: spec.op.name(),
        reason,
    };
    let field_type = schema
        .get(&spec.field)
        .map(|f| f.field_schema)
        .ok_or_else(|| fail("field not found in the variant's payload schema".to_string()))?;
    let need = |n: usize| {
        if spec.values.len() < n {
            Err(fail(format!(
                "needs at least {n} value(s), got {}",
                spec.values.len()
            )))
        } else {
            Ok(())
        }
    };
    let numeric = matches!(
        field_type,
        FieldSchema::Integer | FieldSchema::Float | FieldSchema::Datetime
    );
    let field = spec.field.clone();
    let range = |gt, gte, lt, lte| Condition::Range {
        field: field.clone(),
        gt,
        gte,
        lt,
        lte,
    };
    use FilterOp::*;
    let condition = match spec.op {
        In | Nin => {
            need(1)?;
            let any = spec
                .values
                .iter()
                .map(|v| parse_value(field_type, v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            Condition::Match { field, any }
        }
        Ex => Condition::Exists { field },
        Search => {
            need(1)?;
            if !matches!(field_type, FieldSchema::Keyword | FieldSchema::Text) {
                return Err(fail(format!(
                    "SEARCH needs a keyword or text field, this one is {field_type}"
                )));
            }
            let query = spec.values.join(" ");
            if query.split_whitespace().next().is_none() {
                return Err(fail("the search text is empty".to_string()));
            }
            Condition::Text { field, query }
        }
        Lt | Lte | Gt | Gte | Btw | Btwe => {
            if !numeric {
                return Err(fail(format!(
                    "range operators need a numeric or datetime field, this one is {field_type}"
                )));
            }
            let two = matches!(spec.op, Btw | Btwe);
            need(if two { 2 } else { 1 })?;
            let v0 = bound(field_type, &spec.values[0]).map_err(fail)?;
            match spec.op {
                Lt => range(None, None, Some(v0), None),
                Lte => range(None, None, None, Some(v0)),
                Gt => range(Some(v0), None, None, None),
                Gte => range(None, Some(v0), None, None),
                _ => {
                    let v1 = bound(field_type, &spec.values[1]).map_err(fail)?;
                    if v0 > v1 {
                        return Err(fail(format!(
                            "the lower bound {v0} is above the upper bound {v1}"
                        )));
                    }
                    if spec.op == Btw {
                        range(Some(v0), None, Some(v1), None)
                    } else {
                        range(None, Some(v0), None, Some(v1))
                    }
                }
            }
        }
        LastXDays => {
            if !matches!(field_type, FieldSchema::Datetime | FieldSchema::Integer) {
                return Err(fail(format!(
                    "LAST_X_DAYS needs a datetime field (Unix seconds), this one is {field_type}"
                )));
            }
            need(1)?;
            let days = number(&spec.values[0]).map_err(fail)?;
            if days <= 0.0 {
                return Err(fail(format!(
                    "the number of days must be positive, got {days}"
                )));
            }
            range(None, Some(now_unix as f64 - days * 86_400.0), None, None)
        }
        Wthn => {
            if field_type != FieldSchema::Geo {
                return Err(fail(format!(
                    "WTHN needs a geo field, this one is {field_type}"
                )));
            }
            need(3)?;
            let (lat, lon, radius_m) = (
                number(&spec.values[0]).map_err(fail)?,
                number(&spec.values[1]).map_err(fail)?,
                number(&spec.values[2]).map_err(fail)?,
            );
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) || radius_m <= 0.0
            {
                return Err(fail(format!(
                    "needs lat in [-90, 90], lon in [-180, 180] and a positive radius, got {lat}, {lon}, {radius_m}"
                )));
            }
            Condition::GeoRadius {
                field,
                lat,
                lon,
                radius_m,
            }
        }
    };
    Ok((condition, spec.op == Nin))
}

/// Translates a list of filters (a conjunction).
pub fn translate_all(
    specs: &[FilterSpec],
    schema: &BTreeMap<String, PayloadField>,
    now_unix: i64,
) -> Result<SearchFilter, FilterError> {
    let mut filter = SearchFilter::default();
    for spec in specs {
        let (condition, negated) = translate(spec, schema, now_unix)?;
        if negated {
            filter.must_not.push(condition);
        } else {
            filter.must.push(condition);
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> BTreeMap<String, PayloadField> {
        [
            ("brand", FieldSchema::Keyword),
            ("price", FieldSchema::Integer),
            ("rating", FieldSchema::Float),
            ("in_stock", FieldSchema::Boolean),
            ("listed_at", FieldSchema::Datetime),
            ("store", FieldSchema::Geo),
        ]
        .into_iter()
        .map(|(k, s)| {
            (
                k.to_string(),
                PayloadField {
                    field_schema: s,
                    ..PayloadField::default()
                },
            )
        })
        .collect()
    }

    fn t(field: &str, op: FilterOp, values: &[&str]) -> Result<(Condition, bool), FilterError> {
        let spec = FilterSpec {
            field: field.into(),
            op,
            values: values.iter().map(|s| s.to_string()).collect(),
        };
        translate(&spec, &schema(), 1_700_000_000)
    }

    #[test]
    fn every_operator_translates_with_typed_values() {
        use FilterOp::*;
        assert_eq!(
            t("in_stock", In, &["true"]).unwrap(),
            (
                Condition::Match {
                    field: "in_stock".into(),
                    any: vec![PayloadValue::Bool(true)]
                },
                false
            )
        );
        assert!(t("brand", Nin, &["a", "b"]).unwrap().1, "NIN is negated");
        assert_eq!(
            t("rating", In, &["4.5"]).unwrap().0,
            Condition::Match {
                field: "rating".into(),
                any: vec![PayloadValue::Float(4.5)]
            }
        );
        assert_eq!(
            t("store", Ex, &[]).unwrap().0,
            Condition::Exists {
                field: "store".into()
            }
        );
        assert_eq!(
            t("brand", Search, &["red", "kurta"]).unwrap().0,
            Condition::Text {
                field: "brand".into(),
                query: "red kurta".into()
            }
        );
        let r = |gt, gte, lt, lte| Condition::Range {
            field: "price".into(),
            gt,
            gte,
            lt,
            lte,
        };
        assert_eq!(
            t("price", Lt, &["5"]).unwrap().0,
            r(None, None, Some(5.0), None)
        );
        assert_eq!(
            t("price", Lte, &["5"]).unwrap().0,
            r(None, None, None, Some(5.0))
        );
        assert_eq!(
            t("price", Gt, &["5"]).unwrap().0,
            r(Some(5.0), None, None, None)
        );
        assert_eq!(
            t("price", Gte, &["5"]).unwrap().0,
            r(None, Some(5.0), None, None)
        );
        assert_eq!(
            t("price", Btw, &["1", "9"]).unwrap().0,
            r(Some(1.0), None, Some(9.0), None)
        );
        assert_eq!(
            t("price", Btwe, &["1", "9"]).unwrap().0,
            r(None, Some(1.0), None, Some(9.0))
        );
        assert_eq!(
            t("listed_at", LastXDays, &["2"]).unwrap().0,
            Condition::Range {
                field: "listed_at".into(),
                gt: None,
                gte: Some(1_700_000_000.0 - 172_800.0),
                lt: None,
                lte: None
            }
        );
        assert_eq!(
            t("store", Wthn, &["12.97", "77.59", "5000"]).unwrap().0,
            Condition::GeoRadius {
                field: "store".into(),
                lat: 12.97,
                lon: 77.59,
                radius_m: 5000.0
            }
        );
    }

    #[test]
    fn mistakes_are_client_errors_with_reasons() {
        use FilterOp::*;
        let cases = [
            (
                "nope",
                In,
                vec!["1"],
                "not found in the variant's payload schema",
            ),
            ("price", In, vec![], "needs at least 1 value"),
            ("price", In, vec!["cheap"], "is not an integer"),
            ("in_stock", In, vec!["maybe"], "is not a boolean"),
            ("brand", Lt, vec!["5"], "range operators need a numeric"),
            ("price", Btw, vec!["9", "1"], "lower bound"),
            ("price", Btwe, vec!["1"], "needs at least 2"),
            ("price", Search, vec!["x"], "SEARCH needs a keyword"),
            ("brand", Search, vec!["  "], "empty"),
            ("brand", LastXDays, vec!["1"], "needs a datetime"),
            ("listed_at", LastXDays, vec!["-1"], "must be positive"),
            ("store", Wthn, vec!["95", "0", "1"], "lat in [-90, 90]"),
            ("price", Wthn, vec!["1", "1", "1"], "needs a geo field"),
            ("store", In, vec!["1"], "geo fields only support"),
            ("rating", Gt, vec!["NaN"], "not a finite number"),
        ];
        for (field, op, values, reason) in cases {
            let values: Vec<&str> = values;
            let err = t(field, op, &values).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument);
            assert!(err.to_string().contains(reason), "{field} {op:?}: {err}");
        }
    }

    #[test]
    fn proto_numbers_map_to_operators() {
        assert_eq!(FilterOp::from_proto(0), Some(FilterOp::In));
        assert_eq!(FilterOp::from_proto(11), Some(FilterOp::Wthn));
        assert_eq!(FilterOp::from_proto(12), None);
        assert_eq!(FilterOp::from_proto(-1), None);
        for n in 0..12 {
            assert_eq!(FilterOp::from_proto(n).map(FilterOp::to_proto), Some(n));
            let op = FilterOp::from_proto(n).unwrap();
            assert_eq!(FilterOp::from_name(op.name()), Some(op));
        }
        assert_eq!(
            FilterOp::from_name("last_x_days"),
            Some(FilterOp::LastXDays)
        );
        assert_eq!(FilterOp::from_name("LIKE"), None);
        let all = translate_all(
            &[
                FilterSpec {
                    field: "brand".into(),
                    op: FilterOp::Nin,
                    values: vec!["x".into()],
                },
                FilterSpec {
                    field: "price".into(),
                    op: FilterOp::Gt,
                    values: vec!["1".into()],
                },
            ],
            &schema(),
            0,
        )
        .unwrap();
        assert_eq!((all.must.len(), all.must_not.len()), (1, 1));
    }
}
