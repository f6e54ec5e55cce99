//! Decoding JSON the way existing Skye clients expect.
//!
//! The original decodes request bodies and etcd JSON blobs with Go's `encoding/json`: object keys
//! match field names case-insensitively, unknown keys are ignored, missing keys take zero values
//! (spec AC §1.0). Serde matches keys exactly, so before deserialising we *fold* keys: any key
//! that equals a known field name after lower-casing and dropping `_`/`-` is renamed to that
//! field. This also accepts `rate_limit` where the original only took `RateLimit`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// The fields of one JSON object type, and the shapes of nested objects.
#[derive(Debug)]
pub struct Shape {
    pub fields: &'static [(&'static str, Nested)],
}

/// What sits under a field.
#[derive(Debug)]
pub enum Nested {
    /// A scalar, or a value whose keys are data (kept verbatim).
    Leaf,
    /// An object of the given shape.
    Object(&'static Shape),
    /// An array of objects of the given shape.
    ArrayOf(&'static Shape),
    /// An object whose keys are data (e.g. payload field names) and whose values have the shape.
    MapOf(&'static Shape),
}

fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Renames the keys of `value` (recursively, following `shape`) to their canonical field names.
pub fn fold_keys(value: &mut Value, shape: &Shape) {
    let Value::Object(map) = value else { return };
    let old = std::mem::take(map);
    for (key, mut child) in old {
        let folded = fold(&key);
        let found = shape.fields.iter().find(|(name, _)| fold(name) == folded);
        match found {
            Some((name, nested)) => {
                match nested {
                    Nested::Leaf => {}
                    Nested::Object(inner) => fold_keys(&mut child, inner),
                    Nested::ArrayOf(inner) => {
                        if let Value::Array(items) = &mut child {
                            items.iter_mut().for_each(|item| fold_keys(item, inner));
                        }
                    }
                    Nested::MapOf(inner) => {
                        if let Value::Object(entries) = &mut child {
                            entries.values_mut().for_each(|v| fold_keys(v, inner));
                        }
                    }
                }
                map.insert((*name).to_string(), child);
            }
            None => {
                map.insert(key, child);
            }
        }
    }
}

/// Deserialises a `{string: scalar}` object into `{string: string}`, rendering numbers and bools
/// as text. Vector-DB `params` are strings in the original, but clients naturally send `"m": 16`.
pub fn lenient_string_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of strings, numbers or booleans")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = access.next_entry::<String, Value>()? {
                let text = match v {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    other => {
                        return Err(de::Error::custom(format!(
                            "value of '{k}' must be a string, number or boolean, got {other}"
                        )));
                    }
                };
                out.insert(k, text);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// Deserialises a string that may arrive as a JSON number (`"store_id": 1` or `"1"`).
pub fn string_or_number<'de, D>(d: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    match <Value as serde::Deserialize>::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static INNER: Shape = Shape {
        fields: &[("rate_limit", Nested::Leaf), ("burst_limit", Nested::Leaf)],
    };
    static OUTER: Shape = Shape {
        fields: &[
            ("entity", Nested::Leaf),
            ("rate_limiters", Nested::Object(&INNER)),
            ("payload", Nested::MapOf(&INNER)),
            ("filter", Nested::ArrayOf(&INNER)),
        ],
    };

    #[test]
    fn folds_keys_like_go_and_keeps_data_keys() {
        let mut v = json!({
            "Entity": "e",
            "RATE_LIMITERS": {"RateLimit": 1, "burstlimit": 2},
            "payload": {"Stock_Flag": {"Rate-Limit": 3}},
            "filter": [{"BURST_LIMIT": 4}],
            "unknown": true
        });
        fold_keys(&mut v, &OUTER);
        assert_eq!(
            v,
            json!({
                "entity": "e",
                "rate_limiters": {"rate_limit": 1, "burst_limit": 2},
                "payload": {"Stock_Flag": {"rate_limit": 3}},
                "filter": [{"burst_limit": 4}],
                "unknown": true
            })
        );
    }

    #[derive(serde::Deserialize)]
    struct P {
        #[serde(deserialize_with = "lenient_string_map")]
        params: BTreeMap<String, String>,
        #[serde(deserialize_with = "string_or_number")]
        id: String,
    }

    #[test]
    fn lenient_maps_stringify_scalars_and_reject_objects() {
        let p: P = serde_json::from_value(
            json!({"params": {"m": 16, "on_disk": true, "x": "y"}, "id": 7}),
        )
        .unwrap();
        assert_eq!(p.params["m"], "16");
        assert_eq!(p.params["on_disk"], "true");
        assert_eq!(p.id, "7");
        assert!(serde_json::from_value::<P>(json!({"params": {"m": [1]}, "id": "1"})).is_err());
    }
}
