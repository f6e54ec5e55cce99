//! Point payloads: typed values per field, with field names interned per collection. A
//! collection stores them encoded (`payload_store`); `Payload` is the decoded form.

use std::collections::HashMap;

/// A latitude/longitude pair in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// One payload value. Timestamps are integers (Unix seconds) in fields typed as datetime.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Keyword(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Geo(GeoPoint),
    List(Vec<Value>),
}

impl Value {
    /// The value as a number, for range conditions.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Calls `f` on the value, or on each element of a list.
    pub fn for_each_scalar<'a>(&'a self, f: &mut impl FnMut(&'a Value) -> bool) -> bool {
        match self {
            Value::List(items) => items.iter().any(|v| v.for_each_scalar(f)),
            scalar => f(scalar),
        }
    }

    /// Deterministic text form: how `attribute` values are returned to clients (every type,
    /// spec serving §9 S16). Lists render as JSON arrays, geo points as `lat,lon`.
    pub fn render(&self) -> String {
        match self {
            Value::Keyword(s) => s.clone(),
            Value::Integer(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Geo(g) => format!("{},{}", g.lat, g.lon),
            Value::List(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        Value::Keyword(s) => {
                            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                        }
                        other => other.render(),
                    })
                    .collect();
                format!("[{}]", parts.join(","))
            }
        }
    }
}

/// Interned field id.
pub type FieldId = u16;

/// Field-name interning of one collection.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    names: Vec<String>,
    ids: HashMap<String, FieldId>,
}

impl Fields {
    /// The id of `name`, interning it.
    pub fn intern(&mut self, name: &str) -> Option<FieldId> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        let id = FieldId::try_from(self.names.len()).ok()?;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        Some(id)
    }

    pub fn get(&self, name: &str) -> Option<FieldId> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: FieldId) -> &str {
        self.names
            .get(usize::from(id))
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The payload of one point, sorted by field id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload(pub Vec<(FieldId, Value)>);

impl Payload {
    pub fn get(&self, field: FieldId) -> Option<&Value> {
        self.0
            .binary_search_by_key(&field, |(f, _)| *f)
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Sets or replaces a field.
    pub fn set(&mut self, field: FieldId, value: Value) {
        match self.0.binary_search_by_key(&field, |(f, _)| *f) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (field, value)),
        }
    }

    pub fn remove(&mut self, field: FieldId) {
        if let Ok(i) = self.0.binary_search_by_key(&field, |(f, _)| *f) {
            self.0.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_renders_as_text() {
        assert_eq!(Value::Integer(-3).render(), "-3");
        assert_eq!(Value::Float(2.5).render(), "2.5");
        assert_eq!(Value::Bool(true).render(), "true");
        assert_eq!(
            Value::Geo(GeoPoint {
                lat: 12.5,
                lon: 77.0
            })
            .render(),
            "12.5,77"
        );
        let list = Value::List(vec![Value::Keyword("a\"b".into()), Value::Integer(1)]);
        assert_eq!(list.render(), r#"["a\"b",1]"#);
    }

    #[test]
    fn payload_fields_stay_sorted() {
        let mut fields = Fields::default();
        let (a, b) = (fields.intern("a").unwrap(), fields.intern("b").unwrap());
        assert_eq!(fields.intern("a"), Some(a));
        let mut p = Payload::default();
        p.set(b, Value::Integer(2));
        p.set(a, Value::Integer(1));
        p.set(b, Value::Integer(3));
        assert_eq!(p.0, vec![(a, Value::Integer(1)), (b, Value::Integer(3))]);
        p.remove(a);
        assert_eq!(p.get(a), None);
    }
}
