//! The immutable view of the registry that readers use.
//!
//! A [`ConfigSnapshot`] is built from the whole config tree and never mutated; a new one replaces
//! it atomically when the tree changes, so a reader never sees a half-applied update (the
//! original mutates its config in place while requests read it, spec serving §9 S7).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{Entity, Model, Store, Variant, names};
use crate::error::{ErrorCode, HasErrorCode};

/// A key of the tree that could not be decoded. The rest of the tree still loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadError {
    pub key: String,
    pub message: String,
}

/// Everything registered, at one revision of the config store.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigSnapshot {
    /// Store revision this snapshot reflects.
    pub revision: u64,
    pub frequencies: Vec<String>,
    pub stores: BTreeMap<String, Store>,
    pub entities: BTreeMap<String, Entity>,
    /// Keys that were skipped because their values do not decode.
    pub load_errors: Vec<LoadError>,
}

/// A name that is not registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("entity '{0}' not found")]
    Entity(String),
    #[error("model '{model}' not found in entity '{entity}'")]
    Model { entity: String, model: String },
    #[error("variant '{variant}' not found in model '{model}' of entity '{entity}'")]
    Variant {
        entity: String,
        model: String,
        variant: String,
    },
    #[error("store '{0}' not found")]
    Store(String),
}

impl HasErrorCode for LookupError {
    fn code(&self) -> ErrorCode {
        ErrorCode::NotFound
    }
}

impl ConfigSnapshot {
    pub fn entity(&self, entity: &str) -> Result<&Entity, LookupError> {
        self.entities
            .get(entity)
            .ok_or_else(|| LookupError::Entity(entity.to_string()))
    }

    pub fn model(&self, entity: &str, model: &str) -> Result<&Model, LookupError> {
        self.entity(entity)?
            .models
            .get(model)
            .ok_or_else(|| LookupError::Model {
                entity: entity.to_string(),
                model: model.to_string(),
            })
    }

    pub fn variant(
        &self,
        entity: &str,
        model: &str,
        variant: &str,
    ) -> Result<&Variant, LookupError> {
        self.model(entity, model)?
            .variants
            .get(variant)
            .ok_or_else(|| LookupError::Variant {
                entity: entity.to_string(),
                model: model.to_string(),
                variant: variant.to_string(),
            })
    }

    pub fn store(&self, id: &str) -> Result<&Store, LookupError> {
        self.stores
            .get(id)
            .ok_or_else(|| LookupError::Store(id.to_string()))
    }

    /// The store an entity's embeddings and aggregator rows live in.
    pub fn store_of(&self, entity: &str) -> Result<&Store, LookupError> {
        self.store(&self.entity(entity)?.store_id)
    }

    /// The model called `model` under any entity, with a name that normalises the same way
    /// (model names are unique across entities, spec AC §1.1).
    pub fn find_model_like(&self, model: &str) -> Option<&Model> {
        let wanted = names::normalize(model);
        self.entities
            .values()
            .flat_map(|e| e.models.values())
            .find(|m| names::normalize(&m.name) == wanted)
    }

    /// An entity whose name normalises like `entity`.
    pub fn find_entity_like(&self, entity: &str) -> Option<&Entity> {
        let wanted = names::normalize(entity);
        self.entities
            .values()
            .find(|e| names::normalize(&e.name) == wanted)
    }

    /// Every variant of every model, in name order.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.entities.values().flat_map(|e| e.models.values())
    }

    pub fn variants(&self) -> impl Iterator<Item = &Variant> {
        self.entities
            .values()
            .flat_map(|e| e.models.values())
            .flat_map(|m| m.variants.values())
    }
}
