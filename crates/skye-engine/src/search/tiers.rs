//! The two cache layers every RPC puts in front of its backend, as one decorator: the
//! in-process [`ResultCache`], then the distributed cache (Redis), then the backend call for
//! whatever both missed, with the answers written back to the layers that missed them (Redis off
//! the response path). A Redis error is a miss, never a failed request.
//!
//! An RPC supplies the keys of its items (each layer optional per item: a variant's switches, a
//! format that cannot key a request) and a [`Codec`] for the distributed layer's bytes; the
//! backend call gets the indexes of the items to fetch and answers them in that order.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use skye_core::cache::DistributedCache;
use tracing::Instrument;

use super::cache::{CacheKey, CacheStats, ResultCache, Weigh, write_back};

/// The keys of one item in each layer; `None` = that layer is not used for it.
#[derive(Debug, Clone, Default)]
pub struct ItemKeys {
    pub memory: Option<CacheKey>,
    pub remote: Option<String>,
}

/// How long each layer keeps what it is given.
#[derive(Debug, Clone, Copy)]
pub struct Ttls {
    pub memory: Duration,
    pub remote: Duration,
}

/// Values to and from the distributed layer's bytes, and which values are worth keeping.
pub trait Codec<V>: Sync {
    fn encode(&self, value: &V) -> Vec<u8>;

    /// The value of item `index`; `None` = a miss (undecodable, or not acceptable here).
    fn decode(&self, index: usize, bytes: &[u8]) -> Option<V>;

    /// Whether `value` is cached at all (e.g. dot products never cache an empty vector).
    fn keeps(&self, _value: &V) -> bool {
        true
    }
}

/// What a lookup found where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// Items answered by a cache layer.
    pub hits: usize,
    /// Items with a key in some layer that every layer missed.
    pub misses: usize,
}

/// The two layers of one kind of value.
pub struct TwoTier<V> {
    memory: Arc<ResultCache<V>>,
    remote: Option<Arc<dyn DistributedCache>>,
    remote_counts: Arc<RemoteCounts>,
}

/// Counts of the distributed layer since start (its size and evictions are the server's).
#[derive(Debug, Default)]
struct RemoteCounts {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

/// Both layers' figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    pub memory: CacheStats,
    /// `None` without a distributed layer.
    pub distributed: Option<RemoteStats>,
}

/// Items the distributed layer answered, missed, or could not be asked for (a failed read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
}

impl<V: Weigh> std::fmt::Debug for TwoTier<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoTier")
            .field("memory", &self.memory)
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

impl<V> Clone for TwoTier<V> {
    fn clone(&self) -> Self {
        TwoTier {
            memory: self.memory.clone(),
            remote: self.remote.clone(),
            remote_counts: self.remote_counts.clone(),
        }
    }
}

/// A cache's figures, whatever it holds (what the metrics read).
pub trait TierFigures: Send + Sync + std::fmt::Debug {
    fn stats(&self) -> TierStats;
}

impl<V: Weigh + Clone + Default + Send + Sync + 'static> TierFigures for TwoTier<V> {
    fn stats(&self) -> TierStats {
        TwoTier::stats(self)
    }
}

impl<V: Weigh + Clone + Default + Send + Sync + 'static> TwoTier<V> {
    /// An in-process layer of `memory_bytes` and no distributed layer.
    pub fn new(memory_bytes: u64) -> Self {
        TwoTier {
            memory: Arc::new(ResultCache::new(memory_bytes)),
            remote: None,
            remote_counts: Arc::default(),
        }
    }

    pub fn with_remote(mut self, remote: Arc<dyn DistributedCache>) -> Self {
        self.remote = Some(remote);
        self
    }

    pub fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Hits and misses of the in-process layer since start.
    pub fn memory_stats(&self) -> CacheStats {
        self.memory.stats()
    }

    /// Both layers' counts and the in-process layer's size.
    pub fn stats(&self) -> TierStats {
        let c = &self.remote_counts;
        TierStats {
            memory: self.memory.stats(),
            distributed: self.remote.as_ref().map(|_| RemoteStats {
                hits: c.hits.load(Ordering::Relaxed),
                misses: c.misses.load(Ordering::Relaxed),
                errors: c.errors.load(Ordering::Relaxed),
            }),
        }
    }

    /// One value per item, in order: from the layers that have it, else from `fetch` (called
    /// once, with the indexes of the items every layer missed, answering them in that order).
    pub async fn get_or_fetch<E, F, Fut>(
        &self,
        keys: Vec<ItemKeys>,
        codec: &(dyn Codec<V> + Sync),
        ttls: Ttls,
        fetch: F,
    ) -> Result<(Vec<V>, Served), E>
    where
        F: FnOnce(Vec<usize>) -> Fut,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        let mut found: Vec<Option<V>> = vec![None; keys.len()];
        let mut served = Served::default();
        let memory = tracing::debug_span!("cache_memory", hits = tracing::field::Empty);
        for (slot, k) in found.iter_mut().zip(&keys) {
            if let Some(v) = k.memory.as_ref().and_then(|k| self.memory.get(k)) {
                *slot = Some((*v).clone());
                served.hits += 1;
            }
        }
        memory.record("hits", served.hits);
        drop(memory);
        let remote = match self.remote {
            Some(_) => tracing::debug_span!("cache_distributed", hits = tracing::field::Empty),
            None => tracing::Span::none(),
        };
        let remote_hits = self
            .read_remote(&keys, codec, ttls, &mut found)
            .instrument(remote.clone())
            .await;
        remote.record("hits", remote_hits);
        served.hits += remote_hits;
        let missing: Vec<usize> = (0..keys.len()).filter(|i| found[*i].is_none()).collect();
        served.misses = missing
            .iter()
            .filter(|i| keys[**i].memory.is_some() || keys[**i].remote.is_some())
            .count();
        if !missing.is_empty() {
            let fetched = fetch(missing.clone()).await?;
            let mut write = Vec::new();
            for (i, v) in missing.into_iter().zip(fetched) {
                let k = &keys[i];
                if codec.keeps(&v) {
                    if let Some(key) = &k.memory {
                        self.memory.insert(key.clone(), v.clone(), ttls.memory);
                    }
                    if let Some(key) = &k.remote {
                        write.push((key.clone(), codec.encode(&v)));
                    }
                }
                found[i] = Some(v);
            }
            if let Some(remote) = &self.remote {
                write_back(remote.clone(), write, ttls.remote);
            }
        }
        Ok((
            found.into_iter().map(Option::unwrap_or_default).collect(),
            served,
        ))
    }

    /// Fills what the distributed layer has (one round trip), copying it into the in-process
    /// layer; returns how many it answered.
    async fn read_remote(
        &self,
        keys: &[ItemKeys],
        codec: &(dyn Codec<V> + Sync),
        ttls: Ttls,
        found: &mut [Option<V>],
    ) -> usize {
        let Some(remote) = &self.remote else {
            return 0;
        };
        let asked: Vec<(usize, String)> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| found[*i].is_none())
            .filter_map(|(i, k)| Some((i, k.remote.clone()?)))
            .collect();
        if asked.is_empty() {
            return 0;
        }
        let names: Vec<String> = asked.iter().map(|(_, k)| k.clone()).collect();
        let values = match remote.get_many(&names).await {
            Ok(values) => values,
            Err(e) => {
                tracing::warn!(error = %e, "distributed cache read failed; treated as a miss");
                let errors = &self.remote_counts.errors;
                errors.fetch_add(asked.len() as u64, Ordering::Relaxed);
                return 0;
            }
        };
        let asked_count = asked.len();
        let mut hits = 0;
        for ((i, _), bytes) in asked.into_iter().zip(values) {
            let Some(v) = bytes.and_then(|b| codec.decode(i, &b)) else {
                continue;
            };
            if let Some(key) = &keys[i].memory {
                self.memory.insert(key.clone(), v.clone(), ttls.memory);
            }
            found[i] = Some(v);
            hits += 1;
        }
        let c = &self.remote_counts;
        c.hits.fetch_add(hits as u64, Ordering::Relaxed);
        c.misses
            .fetch_add((asked_count - hits) as u64, Ordering::Relaxed);
        hits
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use skye_core::cache::CacheError;

    use super::*;
    use crate::search::cache::KeyBuilder;

    #[derive(Debug, Default)]
    struct Map(Mutex<HashMap<String, Vec<u8>>>);

    #[async_trait]
    impl DistributedCache for Map {
        async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
            let m = self.0.lock().unwrap();
            Ok(keys.iter().map(|k| m.get(k).cloned()).collect())
        }
        async fn set_many(
            &self,
            entries: Vec<(String, Vec<u8>)>,
            _: Duration,
        ) -> Result<(), CacheError> {
            self.0.lock().unwrap().extend(entries);
            Ok(())
        }
    }

    impl Weigh for String {
        fn weigh(&self) -> u64 {
            self.len() as u64 + 32
        }
    }

    struct Text;

    impl Codec<String> for Text {
        fn encode(&self, v: &String) -> Vec<u8> {
            v.as_bytes().to_vec()
        }
        fn decode(&self, _: usize, b: &[u8]) -> Option<String> {
            String::from_utf8(b.to_vec()).ok()
        }
        fn keeps(&self, v: &String) -> bool {
            !v.is_empty()
        }
    }

    fn keys(names: &[&str]) -> Vec<ItemKeys> {
        names
            .iter()
            .map(|n| ItemKeys {
                memory: Some(KeyBuilder::default().str(n).build()),
                remote: Some(format!("r:{n}")),
            })
            .collect()
    }

    const TTLS: Ttls = Ttls {
        memory: Duration::from_secs(60),
        remote: Duration::from_secs(60),
    };

    #[tokio::test]
    async fn misses_are_fetched_once_and_written_back_to_both_layers() {
        let remote = Arc::new(Map::default());
        let a = TwoTier::<String>::new(1 << 20).with_remote(remote.clone());
        let fetch = |missing: Vec<usize>| async move {
            Ok::<_, ()>(
                missing
                    .iter()
                    .map(|i| {
                        if *i == 2 {
                            String::new()
                        } else {
                            format!("v{i}")
                        }
                    })
                    .collect(),
            )
        };
        let (got, served) = a
            .get_or_fetch(keys(&["x", "y", "z"]), &Text, TTLS, fetch)
            .await
            .unwrap();
        assert_eq!(got, ["v0", "v1", ""]);
        assert_eq!(served, Served { hits: 0, misses: 3 });
        let (got, served) = a
            .get_or_fetch(
                keys(&["x", "y", "z"]),
                &Text,
                TTLS,
                |m: Vec<usize>| async move {
                    assert_eq!(m, [2], "only the value that is not kept is fetched again");
                    Ok::<_, ()>(vec!["late".to_string()])
                },
            )
            .await
            .unwrap();
        assert_eq!(got, ["v0", "v1", "late"]);
        assert_eq!(served.hits, 2);
        // Another process sees the first two in Redis (written back asynchronously).
        for _ in 0..100 {
            if remote.0.lock().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let b = TwoTier::<String>::new(1 << 20).with_remote(remote);
        let (got, served) = b
            .get_or_fetch(keys(&["x", "y"]), &Text, TTLS, |_: Vec<usize>| async {
                Err::<Vec<String>, _>("not called")
            })
            .await
            .unwrap();
        assert_eq!(got, ["v0", "v1"]);
        assert_eq!(served, Served { hits: 2, misses: 0 });
    }

    #[tokio::test]
    async fn items_without_keys_are_fetched_every_time_and_errors_pass_through() {
        let a = TwoTier::<String>::new(1 << 20);
        let none = vec![ItemKeys::default(); 2];
        let (got, served) = a
            .get_or_fetch(none.clone(), &Text, TTLS, |m: Vec<usize>| async move {
                Ok::<_, ()>(m.iter().map(|i| i.to_string()).collect())
            })
            .await
            .unwrap();
        assert_eq!(
            (got, served),
            (vec!["0".to_string(), "1".into()], Served::default())
        );
        let e = a
            .get_or_fetch(none, &Text, TTLS, |_: Vec<usize>| async {
                Err::<Vec<String>, _>(7)
            })
            .await
            .unwrap_err();
        assert_eq!(e, 7);
    }
}
