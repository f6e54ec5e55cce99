//! Decorators that time every call to a backend and report it, with its outcome, to a
//! [`BackendObserver`] (Prometheus in the binary): the embedding and aggregator stores, the
//! event log (and each subscription it hands out), the distributed cache and the vector store's
//! writes. Serving's vector reads are observed by the breaker that guards them
//! ([`crate::breaker::GuardedVectorRead`]), so the vector decorator passes reads through.
//!
//! `backend` is the role (`embeddings`, `aggregator`, `event_log`, `cache`, `vector`), `op` the
//! trait method, and the outcome `ok`, `error` (the backend failed: unavailable, internal,
//! timeout) or `rejected` (the call was refused on its merits, e.g. a missing collection).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skye_core::cache::{CacheError, DistributedCache};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::event_log::{EventLog, EventLogError, Produce, Record, Subscription};
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation, StorageError,
};
use skye_core::vector_store::{
    CollectionInfo, CollectionRef, CollectionSpec, PayloadValue, ScoredPoint, SearchQuery,
    SnapshotInfo, VariantKey, VectorPoint, VectorRead, VectorStore, VectorStoreError,
};

use crate::breaker::BackendObserver;

/// A backend `T` whose calls are reported as `backend`.
#[derive(Debug, Clone)]
pub struct Observed<T: ?Sized> {
    inner: Arc<T>,
    probe: Probe,
}

#[derive(Debug, Clone)]
struct Probe {
    backend: &'static str,
    observer: Arc<dyn BackendObserver>,
}

impl Probe {
    async fn time<R, E: HasErrorCode>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<R, E>>,
    ) -> Result<R, E> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if is_failure(e.code()) => "error",
            Err(_) => "rejected",
        };
        let seconds = started.elapsed().as_secs_f64();
        self.observer.observe(self.backend, op, outcome, seconds);
        result
    }
}

fn is_failure(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::Timeout
    )
}

impl<T: ?Sized> Observed<T> {
    pub fn new(inner: Arc<T>, backend: &'static str, observer: Arc<dyn BackendObserver>) -> Self {
        Observed {
            inner,
            probe: Probe { backend, observer },
        }
    }
}

#[async_trait]
impl EmbeddingStore for Observed<dyn EmbeddingStore> {
    async fn put(
        &self,
        generation: Generation<'_>,
        rows: Vec<EmbeddingRow>,
        ttl: Option<Duration>,
    ) -> Result<(), StorageError> {
        let call = self.inner.put(generation, rows, ttl);
        self.probe.time("put", call).await
    }

    async fn get(
        &self,
        generation: Generation<'_>,
        ids: &[String],
    ) -> Result<Vec<Option<EmbeddingRow>>, StorageError> {
        self.probe
            .time("get", self.inner.get(generation, ids))
            .await
    }

    async fn drop_generation(&self, generation: Generation<'_>) -> Result<(), StorageError> {
        let call = self.inner.drop_generation(generation);
        self.probe.time("drop_generation", call).await
    }
}

#[async_trait]
impl AggregatorStore for Observed<dyn AggregatorStore> {
    async fn get(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Option<AggregatorRow>>, StorageError> {
        self.probe.time("get", self.inner.get(table, ids)).await
    }

    async fn merge(
        &self,
        table: &str,
        updates: Vec<(String, AggregatorRow)>,
    ) -> Result<(), StorageError> {
        self.probe
            .time("merge", self.inner.merge(table, updates))
            .await
    }
}

#[async_trait]
impl DistributedCache for Observed<dyn DistributedCache> {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        self.probe.time("get_many", self.inner.get_many(keys)).await
    }

    async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.probe
            .time("set_many", self.inner.set_many(entries, ttl))
            .await
    }
}

#[async_trait]
impl EventLog for Observed<dyn EventLog> {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<u32, EventLogError> {
        let call = self.inner.ensure_topic(topic, partitions);
        self.probe.time("ensure_topic", call).await
    }

    async fn produce(&self, records: Vec<Produce>) -> Result<Vec<(u32, u64)>, EventLogError> {
        self.probe
            .time("produce", self.inner.produce(records))
            .await
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Box<dyn Subscription>, EventLogError> {
        let call = self.inner.subscribe(group, topics);
        let inner = self.probe.time("subscribe", call).await?;
        Ok(Box::new(ObservedSubscription {
            inner,
            probe: self.probe.clone(),
        }))
    }

    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>, EventLogError> {
        let call = self.inner.committed(group, topic, partition);
        self.probe.time("committed", call).await
    }

    async fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, EventLogError> {
        let call = self.inner.end_offset(topic, partition);
        self.probe.time("end_offset", call).await
    }

    async fn partitions(&self, topic: &str) -> Result<Option<u32>, EventLogError> {
        self.probe
            .time("partitions", self.inner.partitions(topic))
            .await
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>, EventLogError> {
        let call = self.inner.read(topic, partition, from, max);
        self.probe.time("read", call).await
    }
}

/// A subscription whose polls (their wait included), commits and seeks are reported.
#[derive(Debug)]
struct ObservedSubscription {
    inner: Box<dyn Subscription>,
    probe: Probe,
}

#[async_trait]
impl Subscription for ObservedSubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>, EventLogError> {
        self.probe.time("poll", self.inner.poll(max, wait)).await
    }

    async fn commit(&mut self, next: &[(String, u32, u64)]) -> Result<(), EventLogError> {
        self.probe.time("commit", self.inner.commit(next)).await
    }

    async fn seek(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), EventLogError> {
        let call = self.inner.seek(topic, partition, offset);
        self.probe.time("seek", call).await
    }
}

#[async_trait]
impl VectorRead for Observed<dyn VectorStore> {
    async fn search(
        &self,
        collection: &CollectionRef,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<ScoredPoint>>, VectorStoreError> {
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

    fn content_epoch(&self, collection: &CollectionRef) -> Option<u64> {
        self.inner.content_epoch(collection)
    }
}

#[async_trait]
impl VectorStore for Observed<dyn VectorStore> {
    async fn create_collection(&self, spec: CollectionSpec) -> Result<(), VectorStoreError> {
        let call = self.inner.create_collection(spec);
        self.probe.time("create_collection", call).await
    }

    async fn delete_collection(&self, collection: &CollectionRef) -> Result<(), VectorStoreError> {
        let call = self.inner.delete_collection(collection);
        self.probe.time("delete_collection", call).await
    }

    async fn upsert(
        &self,
        collection: &CollectionRef,
        points: Vec<VectorPoint>,
    ) -> Result<(), VectorStoreError> {
        let call = self.inner.upsert(collection, points);
        self.probe.time("upsert", call).await
    }

    async fn delete_points(
        &self,
        collection: &CollectionRef,
        ids: Vec<String>,
    ) -> Result<(), VectorStoreError> {
        let call = self.inner.delete_points(collection, ids);
        self.probe.time("delete_points", call).await
    }

    async fn set_payload(
        &self,
        collection: &CollectionRef,
        updates: Vec<(String, BTreeMap<String, PayloadValue>)>,
    ) -> Result<(), VectorStoreError> {
        let call = self.inner.set_payload(collection, updates);
        self.probe.time("set_payload", call).await
    }

    async fn set_indexing_threshold(
        &self,
        collection: &CollectionRef,
        threshold: usize,
    ) -> Result<(), VectorStoreError> {
        let call = self.inner.set_indexing_threshold(collection, threshold);
        self.probe.time("set_indexing_threshold", call).await
    }

    async fn create_snapshot(
        &self,
        collection: &CollectionRef,
    ) -> Result<SnapshotInfo, VectorStoreError> {
        let call = self.inner.create_snapshot(collection);
        self.probe.time("create_snapshot", call).await
    }

    async fn list_snapshots(
        &self,
        collection: &CollectionRef,
    ) -> Result<Vec<SnapshotInfo>, VectorStoreError> {
        let call = self.inner.list_snapshots(collection);
        self.probe.time("list_snapshots", call).await
    }

    async fn delete_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        let call = self.inner.delete_snapshot(collection, name);
        self.probe.time("delete_snapshot", call).await
    }

    async fn recover_snapshot(
        &self,
        collection: &CollectionRef,
        name: &str,
    ) -> Result<(), VectorStoreError> {
        let call = self.inner.recover_snapshot(collection, name);
        self.probe.time("recover_snapshot", call).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    struct Seen(Mutex<Vec<(&'static str, &'static str, &'static str)>>);

    impl BackendObserver for Seen {
        fn observe(&self, backend: &'static str, op: &'static str, outcome: &'static str, _: f64) {
            self.0.lock().unwrap().push((backend, op, outcome));
        }
    }

    /// Answers `get` for table "ok", refuses an empty table name, fails `merge`.
    #[derive(Debug)]
    struct Flaky;

    #[async_trait]
    impl AggregatorStore for Flaky {
        async fn get(
            &self,
            table: &str,
            ids: &[String],
        ) -> Result<Vec<Option<AggregatorRow>>, StorageError> {
            match table {
                "" => Err(StorageError::InvalidArgument("no table".into())),
                _ => Ok(vec![None; ids.len()]),
            }
        }

        async fn merge(
            &self,
            _: &str,
            _: Vec<(String, AggregatorRow)>,
        ) -> Result<(), StorageError> {
            Err(StorageError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn every_call_is_reported_with_its_outcome() {
        let seen = Arc::new(Seen::default());
        let store: Arc<dyn AggregatorStore> = Arc::new(Flaky);
        let observed = Observed::new(store, "aggregator", seen.clone());
        observed.get("t", &["1".into()]).await.unwrap();
        observed.get("", &["1".into()]).await.unwrap_err();
        observed.merge("t", vec![]).await.unwrap_err();
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                ("aggregator", "get", "ok"),
                ("aggregator", "get", "rejected"),
                ("aggregator", "merge", "error"),
            ]
        );
    }
}
