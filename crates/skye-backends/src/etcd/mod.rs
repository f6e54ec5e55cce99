//! etcd as the config store (`--features etcd`): the [`ConfigStore`] contract is etcd's v3 API,
//! so this is a direct mapping — prefix `Range`, `Txn` with compares on create/mod revision and
//! value, and a prefix `Watch` from a revision. The original's key layout lives above this layer
//! (`skye_core::tree`), so a tree written by the original or by Horizon is read as is.
//!
//! A watch response can carry several revisions; it is split into one [`WatchBatch`] per
//! revision. A compacted start revision, a cancelled watch or a broken stream yields
//! [`WatchItem::Resync`], after which the reader reloads and watches again.

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, TxnOp, WatchOptions,
};
use skye_core::config_store::{
    Compare, ConfigRead, ConfigStore, ConfigStoreError, KeyValue, Op, RangeResult, Txn, TxnResult,
    WatchBatch, WatchEvent, WatchItem, WatchStream,
};

/// Timeout of one etcd request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The etcd config store.
#[derive(Clone)]
pub struct EtcdConfigStore {
    client: Client,
}

impl std::fmt::Debug for EtcdConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdConfigStore").finish_non_exhaustive()
    }
}

/// A client error, kept as the cause.
fn unavailable(e: etcd_client::Error) -> ConfigStoreError {
    ConfigStoreError::Unavailable(skye_core::error::Cause::new(format!("etcd: {e}"), e))
}

fn rev(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

fn key_value(kv: &etcd_client::KeyValue) -> Result<KeyValue, ConfigStoreError> {
    let text = |b: &[u8], what: &str| {
        String::from_utf8(b.to_vec()).map_err(|_| {
            ConfigStoreError::Storage(
                format!(
                    "etcd {what} is not UTF-8: {:?}",
                    String::from_utf8_lossy(kv.key())
                )
                .into(),
            )
        })
    };
    Ok(KeyValue {
        key: text(kv.key(), "key")?,
        value: text(kv.value(), "value")?,
        create_revision: rev(kv.create_revision()),
        mod_revision: rev(kv.mod_revision()),
    })
}

impl EtcdConfigStore {
    /// Connects to `endpoints` (e.g. `127.0.0.1:2379`), with credentials when `user` is set.
    pub async fn connect(
        endpoints: &[String],
        user: &str,
        password: &str,
    ) -> Result<Self, ConfigStoreError> {
        if endpoints.is_empty() {
            return Err(ConfigStoreError::InvalidRequest(
                "no etcd endpoints configured (ETCD_SERVER)".into(),
            ));
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT);
        if !user.is_empty() {
            options = options.with_user(user, password);
        }
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(unavailable)?;
        Ok(EtcdConfigStore { client })
    }
}

#[async_trait]
impl ConfigRead for EtcdConfigStore {
    async fn range(&self, prefix: &str) -> Result<RangeResult, ConfigStoreError> {
        let mut kv = self.client.kv_client();
        let response = kv
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(unavailable)?;
        let revision = response.header().map(|h| rev(h.revision())).unwrap_or(0);
        let kvs = response
            .kvs()
            .iter()
            .map(key_value)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RangeResult { revision, kvs })
    }

    async fn watch(
        &self,
        prefix: &str,
        start_revision: u64,
    ) -> Result<WatchStream, ConfigStoreError> {
        let mut client = self.client.watch_client();
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(i64::try_from(start_revision).unwrap_or(i64::MAX));
        let mut stream = client
            .watch(prefix, Some(options))
            .await
            .map_err(unavailable)?;
        let out = async_stream(move |tx| async move {
            loop {
                let message = match stream.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) | Err(_) => {
                        let _ = tx.send(Ok(WatchItem::Resync)).await;
                        return;
                    }
                };
                if message.compact_revision() > 0 || message.canceled() {
                    let _ = tx.send(Ok(WatchItem::Resync)).await;
                    return;
                }
                let mut batches: Vec<WatchBatch> = Vec::new();
                for event in message.events() {
                    let Some(kv) = event.kv() else { continue };
                    let kv = match key_value(kv) {
                        Ok(kv) => kv,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            continue;
                        }
                    };
                    let revision = kv.mod_revision;
                    let event = match event.event_type() {
                        EventType::Put => WatchEvent::Put(kv),
                        EventType::Delete => WatchEvent::Delete(kv),
                    };
                    match batches.last_mut() {
                        Some(b) if b.revision == revision => b.events.push(event),
                        _ => batches.push(WatchBatch {
                            revision,
                            events: vec![event],
                        }),
                    }
                }
                for b in batches {
                    if tx.send(Ok(WatchItem::Batch(b))).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(out)
    }
}

/// A stream fed by a task through a bounded channel; dropping the stream stops the task.
fn async_stream<F, Fut>(body: F) -> WatchStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<WatchItem, ConfigStoreError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let task = tokio::spawn(body(tx));
    Box::pin(Receiver { rx, task })
}

struct Receiver {
    rx: tokio::sync::mpsc::Receiver<Result<WatchItem, ConfigStoreError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl futures_core::Stream for Receiver {
    type Item = Result<WatchItem, ConfigStoreError>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

#[async_trait]
impl ConfigStore for EtcdConfigStore {
    async fn txn(&self, txn: Txn) -> Result<TxnResult, ConfigStoreError> {
        let mut compares: Vec<EtcdCompare> = Vec::with_capacity(txn.compares.len());
        for c in &txn.compares {
            match c {
                Compare::Absent(k) => compares.push(EtcdCompare::create_revision(
                    k.as_str(),
                    CompareOp::Equal,
                    0,
                )),
                Compare::ModRevision(k, r) => {
                    // etcd compares a missing key's mod revision as 0; the contract requires
                    // the key to exist.
                    compares.push(EtcdCompare::create_revision(
                        k.as_str(),
                        CompareOp::Greater,
                        0,
                    ));
                    compares.push(EtcdCompare::mod_revision(
                        k.as_str(),
                        CompareOp::Equal,
                        i64::try_from(*r).unwrap_or(i64::MAX),
                    ));
                }
                Compare::Value(k, v) => {
                    compares.push(EtcdCompare::create_revision(
                        k.as_str(),
                        CompareOp::Greater,
                        0,
                    ));
                    compares.push(EtcdCompare::value(k.as_str(), CompareOp::Equal, v.as_str()));
                }
            }
        }

        let ops: Vec<TxnOp> = txn
            .ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => TxnOp::put(k.as_str(), v.as_str(), None),
                Op::Delete(k) => TxnOp::delete(k.as_str(), None),
                Op::DeletePrefix(p) => {
                    TxnOp::delete(p.as_str(), Some(DeleteOptions::new().with_prefix()))
                }
            })
            .collect();
        if txn.ops.iter().any(|op| match op {
            Op::Put(k, _) | Op::Delete(k) | Op::DeletePrefix(k) => k.is_empty(),
        }) {
            return Err(ConfigStoreError::InvalidRequest("empty key".into()));
        }
        let mut kv = self.client.kv_client();
        let response = kv
            .txn(etcd_client::Txn::new().when(compares).and_then(ops))
            .await
            .map_err(unavailable)?;
        Ok(TxnResult {
            succeeded: response.succeeded(),
            revision: response.header().map(|h| rev(h.revision())).unwrap_or(0),
        })
    }
}
