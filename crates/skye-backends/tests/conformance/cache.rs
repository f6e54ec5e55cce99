//! The [`DistributedCache`] contract (see `skye_core::cache`): the in-process cache always, Redis
//! when `SKYE_TEST_REDIS_ADDR` names a server (`.ci/run` starts one).

use std::sync::Arc;
use std::time::Duration;

use skye_backends::embedded::MemoryCache;
use skye_core::cache::DistributedCache;

/// Every case, with keys under `prefix` (unique per run: servers are shared).
pub async fn run_suite(cache: Arc<dyn DistributedCache>, prefix: &str) {
    let k = |s: &str| format!("{prefix}:{s}");
    assert_eq!(
        cache.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    cache
        .set_many(
            vec![(k("a"), b"alpha".to_vec()), (k("b"), vec![0, 159, 255])],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let got = cache
        .get_many(&[k("a"), k("missing"), k("b"), k("a")])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(b"alpha".to_vec()),
            None,
            Some(vec![0, 159, 255]),
            Some(b"alpha".to_vec())
        ],
        "binary values, misses and duplicates, in order"
    );
    cache
        .set_many(vec![(k("a"), b"again".to_vec())], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get_many(&[k("a")]).await.unwrap()[0].as_deref(),
        Some(&b"again"[..])
    );
    // TTL: whole seconds (Redis `EX`).
    cache
        .set_many(vec![(k("short"), b"x".to_vec())], Duration::from_secs(1))
        .await
        .unwrap();
    assert!(cache.get_many(&[k("short")]).await.unwrap()[0].is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        cache.get_many(&[k("short")]).await.unwrap()[0].is_none(),
        "expired"
    );
}

#[tokio::test]
async fn memory_cache_conformance() {
    run_suite(Arc::new(MemoryCache::new(10_000)), "mem").await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_cache_conformance() {
    use skye_backends::redis::RedisCache;
    let Some(addr) = crate::service("SKYE_TEST_REDIS_ADDR", "redis_cache_conformance") else {
        return;
    };
    let cache = Arc::new(RedisCache::new(&addr, "", 0, Duration::from_secs(1)).unwrap());
    let prefix = format!("skye-conformance-{}", std::process::id());
    run_suite(cache, &prefix).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn an_unreachable_redis_is_an_error_quickly_not_a_hang() {
    use skye_backends::redis::RedisCache;
    let cache = RedisCache::new("127.0.0.1:1", "", 0, Duration::from_millis(100)).unwrap();
    let started = std::time::Instant::now();
    assert!(cache.get_many(&["k".to_string()]).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
}
