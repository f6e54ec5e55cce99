//! The [`ConfigStore`] contract (see `skye_core::config_store`).

use std::sync::Arc;
use std::time::Duration;

use skye_backends::embedded::EmbeddedConfigStore;
use skye_core::config_store::{
    Compare, ConfigRead, ConfigStore, Op, Txn, WatchEvent, WatchItem, WatchStream,
};
use tokio_stream::StreamExt;

const WATCH_WAIT: Duration = Duration::from_secs(5);

async fn next_batch(stream: &mut WatchStream) -> Option<WatchItem> {
    tokio::time::timeout(WATCH_WAIT, stream.next())
        .await
        .expect("watch delivered nothing within 5 s")
        .map(|item| item.expect("watch error"))
}

async fn value(store: &dyn ConfigStore, key: &str) -> Option<String> {
    let r = store.range(key).await.unwrap();
    r.kvs
        .into_iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value)
}

/// Every case, each under its own sub-prefix of `root`.
pub async fn run_suite(store: Arc<dyn ConfigStore>, root: &str) {
    puts_bump_the_revision_and_range_is_prefix_exact(&*store, &format!("{root}/range")).await;
    compares_guard_every_op(&*store, &format!("{root}/cmp")).await;
    deletes_and_prefix_deletes(&*store, &format!("{root}/del")).await;
    watch_delivers_each_transaction_once_in_order(&*store, &format!("{root}/watch")).await;
    watch_from_the_past_replays_or_asks_for_resync(&*store, &format!("{root}/past")).await;
    concurrent_cas_loses_no_update(store.clone(), &format!("{root}/cas")).await;
}

async fn puts_bump_the_revision_and_range_is_prefix_exact(store: &dyn ConfigStore, p: &str) {
    let r1 = store
        .txn(Txn::new().put(format!("{p}/a/x"), "1"))
        .await
        .unwrap();
    assert!(r1.succeeded);
    let r2 = store
        .txn(
            Txn::new()
                .put(format!("{p}/a/y"), "2")
                .put(format!("{p}/ab/z"), "3"),
        )
        .await
        .unwrap();
    assert!(r2.revision > r1.revision);
    let range = store.range(&format!("{p}/a/")).await.unwrap();
    assert!(range.revision >= r2.revision);
    let keys: Vec<_> = range.kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(
        keys,
        [format!("{p}/a/x"), format!("{p}/a/y")],
        "range must not match {p}/ab/"
    );
    let x = &range.kvs[0];
    assert_eq!(
        (x.create_revision, x.mod_revision),
        (r1.revision, r1.revision)
    );
    let r3 = store
        .txn(Txn::new().put(format!("{p}/a/x"), "10"))
        .await
        .unwrap();
    let x = store
        .range(&format!("{p}/a/x"))
        .await
        .unwrap()
        .kvs
        .remove(0);
    assert_eq!(
        (x.value.as_str(), x.create_revision, x.mod_revision),
        ("10", r1.revision, r3.revision)
    );
}

async fn compares_guard_every_op(store: &dyn ConfigStore, p: &str) {
    let k = format!("{p}/k");
    let created = store
        .txn(Txn::new().when(Compare::Absent(k.clone())).put(&k, "v1"))
        .await
        .unwrap();
    assert!(created.succeeded);
    let again = store
        .txn(
            Txn::new()
                .when(Compare::Absent(k.clone()))
                .put(&k, "v2")
                .put(format!("{p}/side"), "x"),
        )
        .await
        .unwrap();
    assert!(!again.succeeded, "Absent must fail on an existing key");
    assert_eq!(
        again.revision, created.revision,
        "a failed txn changes nothing"
    );
    assert_eq!(
        value(store, &format!("{p}/side")).await,
        None,
        "no op of a failed txn applies"
    );

    let stale = store
        .txn(
            Txn::new()
                .when(Compare::ModRevision(k.clone(), created.revision + 100))
                .put(&k, "v3"),
        )
        .await
        .unwrap();
    assert!(!stale.succeeded);
    let cas = store
        .txn(
            Txn::new()
                .when(Compare::ModRevision(k.clone(), created.revision))
                .put(&k, "v4"),
        )
        .await
        .unwrap();
    assert!(cas.succeeded);
    assert!(
        !store
            .txn(
                Txn::new()
                    .when(Compare::Value(k.clone(), "v1".into()))
                    .put(&k, "v5")
            )
            .await
            .unwrap()
            .succeeded
    );
    assert!(
        store
            .txn(
                Txn::new()
                    .when(Compare::Value(k.clone(), "v4".into()))
                    .put(&k, "v6")
            )
            .await
            .unwrap()
            .succeeded
    );
    assert_eq!(value(store, &k).await.as_deref(), Some("v6"));
    let missing = store
        .txn(
            Txn::new()
                .when(Compare::ModRevision(format!("{p}/none"), 0))
                .put(&k, "v7"),
        )
        .await
        .unwrap();
    assert!(!missing.succeeded, "ModRevision requires the key to exist");
}

async fn deletes_and_prefix_deletes(store: &dyn ConfigStore, p: &str) {
    store
        .txn(
            Txn::new()
                .put(format!("{p}/t/1"), "a")
                .put(format!("{p}/t/2"), "b")
                .put(format!("{p}/tt"), "c"),
        )
        .await
        .unwrap();
    store
        .txn(Txn::new().delete(format!("{p}/t/1")))
        .await
        .unwrap();
    assert_eq!(value(store, &format!("{p}/t/1")).await, None);
    let mut txn = Txn::new();
    txn.ops.push(Op::DeletePrefix(format!("{p}/t/")));
    store.txn(txn).await.unwrap();
    let left: Vec<_> = store
        .range(&format!("{p}/"))
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(left, [format!("{p}/tt")]);
    let before = store.range(&format!("{p}/")).await.unwrap().revision;
    let noop = store
        .txn(Txn::new().delete(format!("{p}/never")))
        .await
        .unwrap();
    assert!(noop.succeeded);
    assert!(noop.revision >= before);
}

async fn watch_delivers_each_transaction_once_in_order(store: &dyn ConfigStore, p: &str) {
    let start = store.range(&format!("{p}/")).await.unwrap().revision + 1;
    let mut stream = store.watch(&format!("{p}/w/"), start).await.unwrap();
    let r1 = store
        .txn(
            Txn::new()
                .put(format!("{p}/w/a"), "1")
                .put(format!("{p}/w/b"), "2"),
        )
        .await
        .unwrap();
    store
        .txn(Txn::new().put(format!("{p}/other"), "ignored"))
        .await
        .unwrap();
    let r3 = store
        .txn(Txn::new().delete(format!("{p}/w/a")))
        .await
        .unwrap();

    let Some(WatchItem::Batch(b1)) = next_batch(&mut stream).await else {
        panic!("expected a batch")
    };
    assert_eq!(b1.revision, r1.revision);
    assert_eq!(b1.events.len(), 2, "one transaction is one batch");
    assert!(
        matches!(&b1.events[0], WatchEvent::Put(kv) if kv.key == format!("{p}/w/a") && kv.value == "1")
    );
    let Some(WatchItem::Batch(b3)) = next_batch(&mut stream).await else {
        panic!("expected a batch")
    };
    assert_eq!(
        b3.revision, r3.revision,
        "events outside the prefix are not delivered"
    );
    assert!(matches!(&b3.events[..], [WatchEvent::Delete(kv)] if kv.key == format!("{p}/w/a")));
}

async fn watch_from_the_past_replays_or_asks_for_resync(store: &dyn ConfigStore, p: &str) {
    let r1 = store
        .txn(Txn::new().put(format!("{p}/k"), "1"))
        .await
        .unwrap();
    store
        .txn(Txn::new().put(format!("{p}/k"), "2"))
        .await
        .unwrap();
    let mut stream = store.watch(&format!("{p}/"), r1.revision).await.unwrap();
    match next_batch(&mut stream).await {
        Some(WatchItem::Resync) => {}
        Some(WatchItem::Batch(b)) => {
            assert_eq!(
                b.revision, r1.revision,
                "replay starts at the requested revision"
            );
            let Some(WatchItem::Batch(b2)) = next_batch(&mut stream).await else {
                panic!("expected the second batch")
            };
            assert!(matches!(&b2.events[..], [WatchEvent::Put(kv)] if kv.value == "2"));
        }
        None => panic!("watch ended"),
    }
}

async fn concurrent_cas_loses_no_update(store: Arc<dyn ConfigStore>, p: &str) {
    let key = format!("{p}/counter");
    store.txn(Txn::new().put(&key, "0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let kv = store.range(&key).await.unwrap().kvs.remove(0);
                let n: u64 = kv.value.parse().unwrap();
                let txn = Txn::new()
                    .when(Compare::ModRevision(key.clone(), kv.mod_revision))
                    .put(&key, (n + 1).to_string());
                if store.txn(txn).await.unwrap().succeeded {
                    break;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(value(&*store, &key).await.as_deref(), Some("8"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_config_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedConfigStore::open(&dir.path().join("config.redb")).unwrap());
    run_suite(store, "/conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_config_store_survives_reopen_and_refuses_a_second_opener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/config.redb");
    let rev = {
        let store = EmbeddedConfigStore::open(&path).unwrap();
        assert!(
            EmbeddedConfigStore::open(&path)
                .unwrap_err()
                .to_string()
                .contains("in use")
        );
        store
            .txn(Txn::new().put("/k", "durable"))
            .await
            .unwrap()
            .revision
    };
    let store = EmbeddedConfigStore::open(&path).unwrap();
    let range = store.range("/k").await.unwrap();
    assert_eq!(range.revision, rev);
    assert_eq!(range.kvs[0].value, "durable");
    let next = store.txn(Txn::new().put("/k2", "x")).await.unwrap();
    assert_eq!(next.revision, rev + 1, "revisions continue after a restart");
    // History from before the restart is gone: a watch from there must ask for a resync.
    let mut stream = store.watch("/", rev).await.unwrap();
    assert!(matches!(
        next_batch(&mut stream).await,
        Some(WatchItem::Resync)
    ));
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_config_store_conformance() {
    use skye_backends::etcd::EtcdConfigStore;
    let Some(endpoints) =
        crate::service("SKYE_TEST_ETCD_ENDPOINTS", "etcd_config_store_conformance")
    else {
        return;
    };
    let endpoints: Vec<String> = endpoints.split(',').map(String::from).collect();
    let store = EtcdConfigStore::connect(&endpoints, "", "").await.unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    run_suite(Arc::new(store), &format!("/skye-conformance/{nanos}")).await;
}
