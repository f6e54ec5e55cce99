//! Which vector DB holds a collection: the variant's `vector-db-type` decides.
//!
//! A collection name `<variant>_<model>_<version>` is matched against the registered variants;
//! EMBEDDED variants (and names no variant claims, e.g. benchmarks) go to the embedded engine,
//! the others to a remote store chosen for the variant (Qdrant at its `read_host` for reads and
//! `write_host` for writes). A build without the remote client answers UNAVAILABLE with the
//! feature to enable, instead of silently writing somewhere else.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skye_core::domain::VectorDbType;
use skye_core::vector_store::{
    CollectionInfo, CollectionSpec, PayloadValue, RemoteVectorStores, ScoredPoint, SearchQuery,
    VectorPoint, VectorRead, VectorStore, VectorStoreError,
};

use crate::registry::Registry;

/// Routes every call to the store of the collection's variant.
#[derive(Debug)]
pub struct VectorRouter {
    registry: Arc<Registry>,
    embedded: Arc<dyn VectorStore>,
    remote: Option<Arc<dyn RemoteVectorStores>>,
}

impl VectorRouter {
    pub fn new(
        registry: Arc<Registry>,
        embedded: Arc<dyn VectorStore>,
        remote: Option<Arc<dyn RemoteVectorStores>>,
    ) -> Self {
        VectorRouter {
            registry,
            embedded,
            remote,
        }
    }

    fn route(
        &self,
        collection: &str,
        write: bool,
    ) -> Result<Arc<dyn VectorStore>, VectorStoreError> {
        let snapshot = self.registry.snapshot();
        let owner = snapshot.variants().find(|v| {
            collection
                .strip_prefix(&format!("{}_{}_", v.name, v.model))
                .is_some_and(|version| version.parse::<i64>().is_ok())
        });
        match owner {
            Some(v) if v.vector_db_type != VectorDbType::Embedded => match &self.remote {
                Some(remote) => remote.for_variant(v, write),
                None => Err(VectorStoreError::Unavailable(format!(
                    "variant '{}' uses {}, and this build has no client for it (rebuild with \
                     `--features qdrant` or `--features ngt-eigenix`)",
                    v.name, v.vector_db_type
                ))),
            },
            _ => Ok(self.embedded.clone()),
        }
    }
}

#[async_trait]
impl VectorRead for VectorRouter {
    async fn search(
        &self,
        collection: &str,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
        self.route(collection, false)?
            .search(collection, queries)
            .await
    }

    async fn collection_info(&self, collection: &str) -> Result<CollectionInfo, VectorStoreError> {
        self.route(collection, true)?
            .collection_info(collection)
            .await
    }

    /// The embedded engine's collections plus those of every remote variant's write store.
    async fn list_collections(&self) -> Result<Vec<String>, VectorStoreError> {
        let mut names = self.embedded.list_collections().await?;
        if let Some(remote) = &self.remote {
            let snapshot = self.registry.snapshot();
            let mut seen = std::collections::HashSet::new();
            for v in snapshot
                .variants()
                .filter(|v| v.vector_db_type != VectorDbType::Embedded)
            {
                if !seen.insert((v.vector_db_type, v.vector_db_config.write_host.clone())) {
                    continue;
                }
                names.extend(remote.for_variant(v, true)?.list_collections().await?);
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[async_trait]
impl VectorStore for VectorRouter {
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError> {
        self.route(&spec.name, true)?.create_collection(spec).await
    }

    async fn delete_collection(&self, collection: &str) -> Result<(), VectorStoreError> {
        self.route(collection, true)?
            .delete_collection(collection)
            .await
    }

    async fn upsert(
        &self,
        collection: &str,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError> {
        self.route(collection, true)?
            .upsert(collection, points)
            .await
    }

    async fn delete_points(
        &self,
        collection: &str,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        self.route(collection, true)?
            .delete_points(collection, ids)
            .await
    }

    async fn set_payload(
        &self,
        collection: &str,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        self.route(collection, true)?
            .set_payload(collection, updates)
            .await
    }

    async fn set_indexing_threshold(
        &self,
        collection: &str,
        threshold: usize,
    ) -> Result<(), VectorStoreError> {
        self.route(collection, true)?
            .set_indexing_threshold(collection, threshold)
            .await
    }
}
