//! Builders shared by unit tests.

use skye_core::domain::Variant;
use skye_core::registration::RegisterVariant;

pub(crate) fn variant(entity: &str, model: &str, name: &str) -> Variant {
    RegisterVariant::from_json(serde_json::json!({
        "entity": entity, "model": model, "variant": name
    }))
    .expect("a minimal variant registers")
    .variant
}
