//! Building a variant's point payload and evaluating its ingestion filter (spec AC §4.3).
//!
//! Payload field F of variant V takes, in order: the event's non-empty value, the aggregator
//! row's column, the field's `default_value` (an empty default means the type's zero value). The
//! text is converted with F's `field_schema`; a text starting with `[` is a JSON array and becomes
//! a list. Aggregator values are typed the same way (the original stores them as raw strings,
//! spec AC §8 B9).
//!
//! The vss filter admits an item when every criterion's column (the aggregator value, or the
//! criterion's `default_value` when the row lacks it) equals `filter_value`. The batch and the
//! real-time paths use this same rule (the original differs between them, spec AC §8 B24).

use std::collections::BTreeMap;

use skye_core::domain::{FieldSchema, Variant};
use skye_core::storage::AggregatorRow;
use skye_core::time::datetime_seconds;
use skye_core::tree::parse_go_bool;
use skye_core::vector_store::PayloadValue;

/// The payload of one point of `variant`; an error names the field and the bad value.
pub fn build_payload(
    variant: &Variant,
    event: &BTreeMap<String, String>,
    aggregator: Option<&AggregatorRow>,
) -> Result<BTreeMap<String, PayloadValue>, String> {
    let mut out = BTreeMap::new();
    for (name, field) in &variant.vector_db_config.payload {
        let from_event = event.get(name).filter(|s| !s.is_empty());
        let value = match from_event {
            Some(text) => typed(field.field_schema, text)
                .map_err(|e| format!("payload field '{name}': {e}"))?,
            None => match aggregator.and_then(|row| row.get(name)) {
                Some(text) => match typed(field.field_schema, text) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(field = %name, error = %e,
                            "aggregator value does not fit the field; using the default");
                        default_of(field.field_schema, &field.default_value)
                            .map_err(|e| format!("default of payload field '{name}': {e}"))?
                    }
                },
                None => default_of(field.field_schema, &field.default_value)
                    .map_err(|e| format!("default of payload field '{name}': {e}"))?,
            },
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Whether the variant's vss filter admits a candidate with this aggregator row.
pub fn admits(variant: &Variant, aggregator: Option<&AggregatorRow>) -> bool {
    variant.filter.criteria().iter().all(|c| {
        let value = aggregator
            .and_then(|row| row.get(&c.column_name))
            .filter(|v| !v.is_empty())
            .map(String::as_str)
            .unwrap_or(&c.default_value);
        value == c.filter_value
    })
}

fn default_of(schema: FieldSchema, text: &str) -> Result<PayloadValue, String> {
    if text.trim().is_empty() {
        return Ok(match schema {
            FieldSchema::Integer | FieldSchema::Datetime => PayloadValue::Integer(0),
            FieldSchema::Float => PayloadValue::Float(0.0),
            FieldSchema::Boolean => PayloadValue::Bool(false),
            FieldSchema::Geo => PayloadValue::Geo(0.0, 0.0),
            FieldSchema::Keyword | FieldSchema::Text => PayloadValue::Keyword(String::new()),
        });
    }
    typed(schema, text)
}

/// `text` as a value of `schema`; `[..]` is a JSON array of such values.
pub fn typed(schema: FieldSchema, text: &str) -> Result<PayloadValue, String> {
    let t = text.trim();
    if t.starts_with('[') && schema != FieldSchema::Geo {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(t).map_err(|e| format!("'{text}' is not a JSON array: {e}"))?;
        return items
            .into_iter()
            .map(|item| {
                let s = match item {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                scalar(schema, &s)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(PayloadValue::List);
    }
    scalar(schema, t)
}

fn scalar(schema: FieldSchema, text: &str) -> Result<PayloadValue, String> {
    let t = text.trim();
    match schema {
        FieldSchema::Keyword | FieldSchema::Text => Ok(PayloadValue::Keyword(text.to_string())),
        FieldSchema::Integer => t
            .parse::<i64>()
            .or_else(|_| match t.parse::<f64>() {
                Ok(f) if f.is_finite() && f.fract() == 0.0 => Ok(f as i64),
                _ => Err(()),
            })
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
        FieldSchema::Geo => geo(t).ok_or_else(|| {
            format!(
                "'{text}' is not a geo point: give \"lat,lon\", [lat, lon] or \
                 {{\"lat\": …, \"lon\": …}} in degrees"
            )
        }),
    }
}

/// A point as `lat,lon`, `[lat, lon]` or `{"lat": …, "lon": …}` (Qdrant's form), in degrees.
fn geo(t: &str) -> Option<PayloadValue> {
    let (lat, lon) = if t.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(t).ok()?;
        (v.get("lat")?.as_f64()?, v.get("lon")?.as_f64()?)
    } else {
        let inner = t
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(t);
        let (a, b) = inner.split_once(',')?;
        (a.trim().parse().ok()?, b.trim().parse().ok()?)
    };
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
        .then_some(PayloadValue::Geo(lat, lon))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skye_core::domain::{Criterion, PayloadField, VssFilter};

    fn variant() -> Variant {
        let mut v: Variant = crate::test_support::variant("catalog", "m", "organic");
        for (name, schema, default) in [
            ("brand", FieldSchema::Keyword, ""),
            ("price", FieldSchema::Float, "1.5"),
            ("sizes", FieldSchema::Integer, ""),
            ("live", FieldSchema::Boolean, "true"),
        ] {
            v.vector_db_config.payload.insert(
                name.into(),
                PayloadField {
                    field_schema: schema,
                    default_value: default.into(),
                    ..Default::default()
                },
            );
        }
        v.filter = VssFilter {
            criteria: Some(vec![Criterion {
                column_name: "out_of_stock".into(),
                filter_value: "false".into(),
                default_value: "false".into(),
            }]),
        };
        v
    }

    #[test]
    fn event_then_aggregator_then_default() {
        let v = variant();
        let event = BTreeMap::from([
            ("brand".to_string(), "acme".to_string()),
            ("sizes".to_string(), "[1, 2]".to_string()),
            ("live".to_string(), String::new()),
        ]);
        let agg = AggregatorRow::from([("live".to_string(), "false".to_string())]);
        let p = build_payload(&v, &event, Some(&agg)).unwrap();
        assert_eq!(p["brand"], PayloadValue::Keyword("acme".into()));
        assert_eq!(
            p["sizes"],
            PayloadValue::List(vec![PayloadValue::Integer(1), PayloadValue::Integer(2)])
        );
        assert_eq!(
            p["live"],
            PayloadValue::Bool(false),
            "aggregator beats default"
        );
        assert_eq!(p["price"], PayloadValue::Float(1.5), "default");
        let bad = BTreeMap::from([("price".to_string(), "cheap".to_string())]);
        assert!(build_payload(&v, &bad, None).unwrap_err().contains("price"));
    }

    #[test]
    fn every_documented_format_converts() {
        let ok = |schema, text: &str| typed(schema, text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let dt = PayloadValue::Integer(1_772_339_400);
        assert_eq!(ok(FieldSchema::Datetime, "1772339400"), dt);
        assert_eq!(ok(FieldSchema::Datetime, "2026-03-01T10:00:00+05:30"), dt);
        assert_eq!(
            ok(FieldSchema::Datetime, r#"["2026-03-01T04:30:00Z", 5]"#),
            PayloadValue::List(vec![dt, PayloadValue::Integer(5)])
        );
        let point = PayloadValue::Geo(12.5, 77.25);
        for text in [
            "12.5,77.25",
            "[12.5, 77.25]",
            r#"{"lat": 12.5, "lon": 77.25}"#,
        ] {
            assert_eq!(ok(FieldSchema::Geo, text), point, "{text}");
        }
        for bad in ["12.5", "91,0", r#"{"lat": 1}"#, "a,b"] {
            assert!(
                typed(FieldSchema::Geo, bad)
                    .unwrap_err()
                    .contains("lat,lon"),
                "{bad}"
            );
        }
        assert!(
            typed(FieldSchema::Datetime, "soon")
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(
            typed(FieldSchema::Integer, "many")
                .unwrap_err()
                .contains("'many'")
        );
    }

    #[test]
    fn the_filter_uses_the_default_when_the_row_lacks_the_column() {
        let v = variant();
        assert!(admits(&v, None));
        let oos = AggregatorRow::from([("out_of_stock".to_string(), "true".to_string())]);
        assert!(!admits(&v, Some(&oos)));
        let mut open = variant();
        open.filter = VssFilter::default();
        assert!(admits(&open, Some(&oos)));
    }
}
