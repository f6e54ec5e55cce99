//! The registry's write requests (spec AC §1.1), decoded and validated.
//!
//! Each request is decoded from the JSON body with Go-compatible key matching and validated in
//! one pass that reports every problem at once. Checks that need the registry's current content
//! (does the entity exist? is the name taken?) are the engine's job.

mod model;
mod reader;
mod variant;

use serde_json::Value;

pub use model::RegisterModel;
pub use reader::FieldReader;
pub use variant::RegisterVariant;

use crate::domain::Store;
use crate::error::ValidationErrors;
use crate::json_compat::{Nested, Shape};

/// `POST /api/v1/model/register-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterStore {
    pub store: Store,
}

static STORE_SHAPE: Shape = Shape {
    fields: &[
        ("conf_id", Nested::Leaf),
        ("db", Nested::Leaf),
        ("embeddings_table", Nested::Leaf),
        ("aggregator_table", Nested::Leaf),
    ],
};

impl RegisterStore {
    pub fn from_json(value: Value) -> Result<Self, ValidationErrors> {
        let mut r = FieldReader::new(value, &STORE_SHAPE)?;
        let conf_id = r.int_in("conf_id", 0, 0, i64::from(u16::MAX));
        let db = r.string("db");
        let embeddings_table = r.string("embeddings_table");
        let aggregator_table = r.string("aggregator_table");
        for (field, table) in [
            ("embeddings_table", &embeddings_table),
            ("aggregator_table", &aggregator_table),
        ] {
            if table.is_empty() {
                // Every entity of a store keeps its rows under these names, in every backend.
                r.fail(
                    field,
                    "is required: the table of the store's rows".to_string(),
                );
            } else if let Err(msg) = check_table_name(table) {
                r.fail(field, msg);
            }
        }
        r.errors.into_result()?;
        Ok(RegisterStore {
            store: Store {
                conf_id,
                db,
                embeddings_table,
                aggregator_table,
            },
        })
    }
}

/// Table names end up in CQL statements in scale-out mode: plain identifiers only.
fn check_table_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Ok(()),
        Some(c)
            if c.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            if name.len() <= 48 {
                Ok(())
            } else {
                Err("must be at most 48 characters".to_string())
            }
        }
        Some(_) => Err(format!(
            "'{name}' is not a valid table name (a letter, then letters, digits or '_')"
        )),
    }
}

/// `POST /api/v1/model/register-frequency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterFrequency {
    pub frequency: String,
}

impl RegisterFrequency {
    pub fn from_json(value: Value) -> Result<Self, ValidationErrors> {
        static SHAPE: Shape = Shape {
            fields: &[("frequency", Nested::Leaf)],
        };
        let mut r = FieldReader::new(value, &SHAPE)?;
        let frequency = r.name("frequency");
        r.errors.into_result()?;
        Ok(RegisterFrequency { frequency })
    }
}

/// `POST /api/v1/model/register-entity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterEntity {
    pub entity: String,
    pub store_id: String,
}

impl RegisterEntity {
    pub fn from_json(value: Value) -> Result<Self, ValidationErrors> {
        static SHAPE: Shape = Shape {
            fields: &[("entity", Nested::Leaf), ("store_id", Nested::Leaf)],
        };
        let mut r = FieldReader::new(value, &SHAPE)?;
        let entity = r.name("entity");
        let store_id = r.string("store_id");
        if store_id.is_empty() {
            r.fail("store_id", "is required");
        }
        r.errors.into_result()?;
        Ok(RegisterEntity { entity, store_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn store_accepts_go_style_keys_and_reports_every_error() {
        let ok = RegisterStore::from_json(
            json!({"Conf_Id": 1, "EMBEDDINGS_TABLE": "emb", "aggregator_table": "agg"}),
        )
        .unwrap();
        assert_eq!(ok.store.conf_id, 1);
        assert_eq!(ok.store.embeddings_table, "emb");
        let err = RegisterStore::from_json(
            json!({"conf_id": "1", "embeddings_table": "a-b", "aggregator_table": 5}),
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn entity_store_id_may_be_a_number() {
        let e = RegisterEntity::from_json(json!({"entity": "catalog", "store_id": 1})).unwrap();
        assert_eq!(e.store_id, "1");
        let err = RegisterEntity::from_json(json!({"entity": "a/b"})).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
    }

    #[test]
    fn non_object_bodies_are_refused() {
        let err = RegisterFrequency::from_json(json!(["daily"])).unwrap_err();
        assert!(err.to_string().contains("must be a JSON object"));
    }
}
