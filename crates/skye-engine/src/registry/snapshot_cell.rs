//! Keeps the latest [`ConfigSnapshot`] in step with the config store.
//!
//! Readers call [`SnapshotCell::load`]: one atomic pointer load, no lock, never a torn read.
//! One background task owns the flat copy of the tree, applies watch batches to it, decodes a
//! new snapshot and swaps it in; on a resync or a broken watch it reloads the whole prefix.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use skye_core::config_store::{ConfigStore, ConfigStoreError, WatchEvent, WatchItem};
use skye_core::snapshot::ConfigSnapshot;
use skye_core::tree::{TreeRoot, decode};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// Wait between attempts to re-establish a broken watch.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// The shared, always-current snapshot.
#[derive(Debug)]
pub struct SnapshotCell {
    current: Arc<ArcSwap<ConfigSnapshot>>,
    revision: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for SnapshotCell {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Followed {
    /// History was lost and the tree reloaded: watch again from the new revision.
    Resynced,
    /// The stream ended (store shutting down or connection lost).
    Ended,
}

struct Follower {
    store: Arc<dyn ConfigStore>,
    root: TreeRoot,
    flat: BTreeMap<String, String>,
    revision: u64,
    current: Arc<ArcSwap<ConfigSnapshot>>,
    notify: watch::Sender<u64>,
}

impl SnapshotCell {
    /// Loads the tree and starts following it.
    pub async fn start(
        store: Arc<dyn ConfigStore>,
        root: TreeRoot,
    ) -> Result<Self, ConfigStoreError> {
        let current = Arc::new(ArcSwap::from_pointee(ConfigSnapshot::default()));
        let (notify, revision) = watch::channel(0);
        let mut follower = Follower {
            store,
            root,
            flat: BTreeMap::new(),
            revision: 0,
            current: current.clone(),
            notify,
        };
        follower.reload().await?;
        for err in &current.load().load_errors {
            tracing::warn!(key = %err.key, error = %err.message, "config key skipped");
        }
        let task = tokio::spawn(follower.run());
        Ok(SnapshotCell {
            current,
            revision,
            task,
        })
    }

    /// Stops following the store and waits until the follower has released it.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // A cancelled task resolves to a JoinError, which is what we asked for.
        let _ = (&mut self.task).await;
    }

    /// The latest snapshot.
    pub fn load(&self) -> Arc<ConfigSnapshot> {
        self.current.load_full()
    }

    /// Waits until the snapshot reflects store revision `revision`, or `timeout` passes.
    /// Returns whether it got there.
    pub async fn wait_for(&self, revision: u64, timeout: Duration) -> bool {
        let mut rx = self.revision.clone();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Follower {
    async fn reload(&mut self) -> Result<(), ConfigStoreError> {
        let range = self.store.range(&self.root.prefix()).await?;
        self.flat = range.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
        self.publish(range.revision);
        Ok(())
    }

    fn publish(&mut self, revision: u64) {
        self.revision = self.revision.max(revision);
        let snap = decode(
            &self.root,
            self.revision,
            self.flat.iter().map(|(k, v)| (k.clone(), v.clone())),
        );
        self.current.store(Arc::new(snap));
        self.notify.send_replace(self.revision);
    }

    async fn run(mut self) {
        loop {
            match self.follow().await {
                Ok(Followed::Resynced) => continue,
                Ok(Followed::Ended) => tracing::warn!("config watch ended; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "config watch failed; reconnecting"),
            }
            tokio::time::sleep(RETRY_DELAY).await;
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "config reload failed");
            }
        }
    }

    /// Follows the watch until it ends, fails or asks for a resync (done here).
    async fn follow(&mut self) -> Result<Followed, ConfigStoreError> {
        let mut stream = self
            .store
            .watch(&self.root.prefix(), self.revision + 1)
            .await?;
        while let Some(item) = stream.next().await {
            match item? {
                WatchItem::Batch(batch) => {
                    if batch.revision <= self.revision {
                        continue;
                    }
                    for event in batch.events {
                        match event {
                            WatchEvent::Put(kv) => {
                                self.flat.insert(kv.key, kv.value);
                            }
                            WatchEvent::Delete(kv) => {
                                self.flat.remove(&kv.key);
                            }
                        }
                    }
                    self.publish(batch.revision);
                }
                WatchItem::Resync => {
                    self.reload().await?;
                    return Ok(Followed::Resynced);
                }
            }
        }
        Ok(Followed::Ended)
    }
}
