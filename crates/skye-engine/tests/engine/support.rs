//! The registry every engine test starts from: store "1", entity "e", model "m" (DOT, 2-d), and
//! the variants a test asks for.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use skye_backends::embedded::{EmbeddedConfigStore, EmbeddedVectorStore};
use skye_core::domain::VectorDbType;
use skye_core::registration::{RegisterEntity, RegisterModel, RegisterStore, RegisterVariant};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, ScoredPoint, SearchQuery, VariantKey, VectorRead,
    VectorStoreError,
};
use skye_engine::registry::Registry;

/// Registers the fixture; each of `variants` is a register-variant body without entity/model.
pub async fn registry_with(dir: &Path, variants: &[Value]) -> Arc<Registry> {
    let store = Arc::new(EmbeddedConfigStore::open(&dir.join("c.redb")).unwrap());
    let r = Arc::new(Registry::open(store, "skye").await.unwrap());
    r.register_store(RegisterStore::from_json(json!({"embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"})).unwrap())
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

/// A vector DB without payloads (as NGT and Eigenix) for NGT variants' collections: it fails a
/// query that carries a filter or asks for payload fields, so the engine must filter such
/// variants itself. Other collections pass through. Counts the searches it answers.
#[derive(Debug)]
pub struct PayloadBlind {
    inner: Arc<EmbeddedVectorStore>,
    pub searches: AtomicUsize,
}

impl PayloadBlind {
    pub fn new(inner: Arc<EmbeddedVectorStore>) -> Self {
        PayloadBlind {
            inner,
            searches: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl VectorRead for PayloadBlind {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        if collection.variant.db() == VectorDbType::Ngt
            && queries
                .iter()
                .any(|q| q.filter.is_some() || !q.with_payload.is_empty())
        {
            return Err(VectorStoreError::InvalidArgument(
                "this store holds no payloads".into(),
            ));
        }
        self.searches.fetch_add(1, Ordering::Relaxed);
        self.inner.search(collection, queries).await
    }

    async fn collection_info(
        &self,
        collection: &CollectionRef,
    ) -> Result<CollectionInfo, VectorStoreError> {
        self.inner.collection_info(collection).await
    }

    async fn versions(&self, variant: &VariantKey) -> Result<Vec<i64>, VectorStoreError> {
        self.inner.versions(variant).await
    }
}
