//! An in-process [`DistributedCache`]: a TTL map. It is what the conformance suite checks every
//! distributed cache against, and stands in for Redis in single-process tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use skye_core::cache::{CacheError, DistributedCache};

/// A bounded TTL map.
#[derive(Debug)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    max_entries: usize,
}

impl MemoryCache {
    pub fn new(max_entries: usize) -> Self {
        MemoryCache {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }
}

#[async_trait]
impl DistributedCache for MemoryCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let now = Instant::now();
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys
            .iter()
            .map(|k| {
                map.get(k)
                    .filter(|(_, until)| *until > now)
                    .map(|(v, _)| v.clone())
            })
            .collect())
    }

    async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() + entries.len() > self.max_entries {
            map.retain(|_, (_, until)| *until > now);
        }
        for (k, v) in entries {
            if map.len() >= self.max_entries && !map.contains_key(&k) {
                break;
            }
            map.insert(k, (v, now + ttl));
        }
        Ok(())
    }
}
