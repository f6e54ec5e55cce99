//! Reads fields out of a JSON object the way Go's `encoding/json` would (case-insensitive keys,
//! missing = zero value, unknown keys ignored), but records *every* type error instead of
//! stopping at the first, so a client sees all of its mistakes in one answer.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ValidationErrors;
use crate::json_compat::{Shape, fold_keys};
use crate::tree::parse_go_bool;

/// A JSON object being read, with the errors found so far.
#[derive(Debug)]
pub struct FieldReader {
    map: Map<String, Value>,
    prefix: String,
    pub errors: ValidationErrors,
}

impl FieldReader {
    /// Reads `value`, which must be a JSON object, after folding its keys per `shape`.
    pub fn new(mut value: Value, shape: &Shape) -> Result<Self, ValidationErrors> {
        fold_keys(&mut value, shape);
        match value {
            Value::Object(map) => Ok(FieldReader {
                map,
                prefix: String::new(),
                errors: ValidationErrors::new(),
            }),
            other => {
                let mut errors = ValidationErrors::new();
                errors.push(
                    "",
                    format!("request body must be a JSON object, got {}", kind(&other)),
                );
                Err(errors)
            }
        }
    }

    /// A reader for a nested object; its errors are prefixed with `field`.
    pub fn nested(&mut self, field: &str) -> Option<FieldReader> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(FieldReader {
                map,
                prefix: self.path(field),
                errors: ValidationErrors::new(),
            }),
            Some(other) => {
                self.fail(field, format!("must be an object, got {}", kind(&other)));
                None
            }
        }
    }

    /// Takes back the errors of a nested reader.
    pub fn absorb(&mut self, nested: FieldReader) {
        self.errors.0.extend(nested.errors.0);
    }

    pub fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        let path = self.path(field);
        self.errors.push(path, message);
    }

    /// Whether the key is present with a non-null value.
    pub fn has(&self, field: &str) -> bool {
        self.map.get(field).is_some_and(|v| !v.is_null())
    }

    /// A string; numbers are accepted and rendered (ids are strings that clients send as numbers).
    pub fn string(&mut self, field: &str) -> String {
        match self.map.remove(field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                self.fail(field, format!("must be a string, got {}", describe(&other)));
                String::new()
            }
        }
    }

    /// A boolean; the strings Go's `ParseBool` accepts are tolerated.
    pub fn bool(&mut self, field: &str) -> bool {
        match self.map.remove(field) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) if parse_go_bool(&s).is_some() => {
                parse_go_bool(&s).unwrap_or(false)
            }
            Some(other) => {
                self.fail(
                    field,
                    format!("must be a boolean, got {}", describe(&other)),
                );
                false
            }
        }
    }

    /// An integer, `None` when absent. A string holding an integer is refused: the original
    /// stores such values verbatim and then cannot load its own tree (spec AC §1.1).
    pub fn opt_int(&mut self, field: &str) -> Option<i64> {
        match self.map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(i),
                None => {
                    self.fail(field, format!("must be an integer, got {n}"));
                    None
                }
            },
            Some(other) => {
                self.fail(
                    field,
                    format!("must be an integer, got {}", describe(&other)),
                );
                None
            }
        }
    }

    /// An integer within `min..=max`; absent = `default`.
    pub fn int_in(&mut self, field: &str, default: i64, min: i64, max: i64) -> i64 {
        match self.opt_int(field) {
            None => default,
            Some(v) if (min..=max).contains(&v) => v,
            Some(v) => {
                self.fail(field, format!("must be between {min} and {max}, got {v}"));
                default
            }
        }
    }

    /// A value deserialised with serde, `None` when absent.
    pub fn typed<T: DeserializeOwned>(&mut self, field: &str, shape: Option<&Shape>) -> Option<T> {
        let mut value = match self.map.remove(field) {
            None | Some(Value::Null) => return None,
            Some(v) => v,
        };
        if let Some(shape) = shape {
            fold_keys(&mut value, shape);
        }
        match serde_json::from_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(field, e.to_string());
                None
            }
        }
    }

    /// A string parsed with `FromStr`, `None` when absent or empty.
    pub fn parsed<T>(&mut self, field: &str) -> Option<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.string(field);
        if text.is_empty() {
            return None;
        }
        match text.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(field, e.to_string());
                None
            }
        }
    }

    /// Checks a name field with [`crate::domain::names::check_name`].
    pub fn name(&mut self, field: &str) -> String {
        let name = self.string(field);
        if let Err(msg) = crate::domain::names::check_name(&name) {
            self.fail(field, msg);
        }
        name
    }
}

/// `a string ("4")`: the kind, and short scalars verbatim, so the client sees what it sent.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() <= 32 => format!("a string ({v})"),
        Value::Number(_) | Value::Bool(_) => format!("{} ({v})", kind(v)),
        _ => kind(v).to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
