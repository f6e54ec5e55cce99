//! The registry every engine test starts from: store "1", entity "e", model "m" (DOT, 2-d), and
//! the variants a test asks for.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use skye_backends::embedded::EmbeddedConfigStore;
use skye_core::registration::{RegisterEntity, RegisterModel, RegisterStore, RegisterVariant};
use skye_engine::registry::Registry;

/// Registers the fixture; each of `variants` is a register-variant body without entity/model.
pub async fn registry_with(dir: &Path, variants: &[Value]) -> Arc<Registry> {
    let store = Arc::new(EmbeddedConfigStore::open(&dir.join("c.redb")).unwrap());
    let r = Arc::new(Registry::open(store, "skye").await.unwrap());
    r.register_store(RegisterStore::from_json(json!({})).unwrap())
        .await
        .unwrap();
    r.register_entity(RegisterEntity::from_json(json!({"entity": "e", "store_id": "1"})).unwrap())
        .await
        .unwrap();
    r.register_model(
        RegisterModel::from_json(json!({"entity": "e", "model": "m",
            "model_config": {"distance_function": "DOT", "vector_dimension": 2}}))
        .unwrap(),
    )
    .await
    .unwrap();
    for v in variants {
        let mut body = v.clone();
        body["entity"] = json!("e");
        body["model"] = json!("m");
        r.register_variant(RegisterVariant::from_json(body).unwrap())
            .await
            .unwrap();
    }
    r
}
