//! The in-process result cache of similar-candidates queries.
//!
//! Keys carry everything that changes an answer — entity, model, variant, the **read version**
//! (so a version switch never serves the old collection's neighbours, spec serving §9 S23),
//! `limit`, the exact query vector, the effective filters and the attributes — hashed with
//! length-prefixed, little-endian fields (no `["ab","c"]` ≡ `["a","bc"]` collisions, S25).
//! Capacity is in bytes; entries expire after the variant's `in-memory-cache-TTL-seconds`
//! (0 = [`DEFAULT_TTL`]; the original's "0 = never" lets entries outlive every change, S24).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use skye_core::cache::DistributedCache;
use skye_core::vector_store::ScoredPoint;

use super::filters::FilterSpec;

/// TTL used when a variant enables caching with a TTL of 0.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// A variant's TTL field in seconds as a duration (0 = [`DEFAULT_TTL`]).
pub fn ttl_of(seconds: u64) -> Duration {
    match seconds {
        0 => DEFAULT_TTL,
        s => Duration::from_secs(s),
    }
}

/// Writes `entries` to the distributed cache off the response path; a failure only costs a
/// later miss.
pub fn write_back(
    remote: Arc<dyn DistributedCache>,
    entries: Vec<(String, Vec<u8>)>,
    ttl: Duration,
) {
    if entries.is_empty() {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = remote.set_many(entries, ttl).await {
            tracing::warn!(error = %e, "distributed cache write failed");
        }
    });
}

/// What identifies one query's answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(Box<[u8]>);

/// Builds a [`CacheKey`] from length-prefixed parts.
#[derive(Debug, Default)]
pub struct KeyBuilder(Vec<u8>);

impl KeyBuilder {
    pub fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    pub fn num(mut self, n: i64) -> Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }

    pub fn vector(mut self, v: &[f32]) -> Self {
        self = self.num(v.len() as i64);
        v.iter()
            .for_each(|x| self.0.extend_from_slice(&x.to_le_bytes()));
        self
    }

    pub fn filters(mut self, specs: &[FilterSpec]) -> Self {
        self = self.num(specs.len() as i64);
        for f in specs {
            self = self
                .str(&f.field)
                .str(f.op.name())
                .num(f.values.len() as i64);
            for v in &f.values {
                self = self.str(v);
            }
        }
        self
    }

    pub fn strs(mut self, items: &[String]) -> Self {
        self = self.num(items.len() as i64);
        for s in items {
            self = self.str(s);
        }
        self
    }

    pub fn build(self) -> CacheKey {
        CacheKey(self.0.into_boxed_slice())
    }
}

impl CacheKey {
    /// The key in the distributed cache: a readable prefix (for operators: `SCAN sc:catalog:*`)
    /// and the FNV-1a 128 hash of every part (stable across builds, so pods of different
    /// releases share entries). Not the original's key format (spec serving §4.2; see
    /// [`super::original_cache`]): that one omits the read version and `limit` and serves stale
    /// or short answers (§9 S23).
    pub fn distributed(&self, prefix: &str) -> String {
        const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let hash = self
            .0
            .iter()
            .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
        format!("{prefix}:{hash:032x}:V3")
    }
}

/// Encodes an answer for the distributed cache.
pub fn encode_hits(hits: &[ScoredPoint]) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::with_capacity(16 + hits.len() * 32);
    out.extend_from_slice(&(hits.len() as u32).to_le_bytes());
    for h in hits {
        put(&mut out, &h.id);
        out.extend_from_slice(&h.score.to_le_bytes());
        out.extend_from_slice(&(h.payload.len() as u32).to_le_bytes());
        for (k, v) in &h.payload {
            put(&mut out, k);
            put(&mut out, v);
        }
    }
    out
}

/// Decodes [`encode_hits`]; `None` for anything malformed (treated as a miss).
pub fn decode_hits(mut b: &[u8]) -> Option<Vec<ScoredPoint>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    fn u32_of(b: &mut &[u8]) -> Option<u32> {
        take(b, 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    }
    fn string(b: &mut &[u8]) -> Option<String> {
        let n = u32_of(b)? as usize;
        String::from_utf8(take(b, n)?.to_vec()).ok()
    }
    let n = u32_of(&mut b)?;
    let mut hits = Vec::with_capacity(n.min(10_000) as usize);
    for _ in 0..n {
        let id = string(&mut b)?;
        let score = f32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?);
        let fields = u32_of(&mut b)?;
        let mut payload = std::collections::BTreeMap::new();
        for _ in 0..fields {
            payload.insert(string(&mut b)?, string(&mut b)?);
        }
        hits.push(ScoredPoint { id, score, payload });
    }
    b.is_empty().then_some(hits)
}

/// What a cached value costs in memory, roughly (the cache's capacity is in bytes).
pub trait Weigh {
    fn weigh(&self) -> u64;
}

impl Weigh for Vec<ScoredPoint> {
    fn weigh(&self) -> u64 {
        self.iter()
            .map(|h| {
                48 + h.id.len()
                    + h.payload
                        .iter()
                        .map(|(k, v)| 48 + k.len() + v.len())
                        .sum::<usize>()
            })
            .sum::<usize>() as u64
            + 64
    }
}

#[derive(Debug)]
struct Entry<V> {
    value: Arc<V>,
    expires: Instant,
    bytes: u64,
}

#[derive(Clone)]
struct ByBytes;

impl<V> Weighter<CacheKey, Arc<Entry<V>>> for ByBytes {
    fn weight(&self, key: &CacheKey, value: &Arc<Entry<V>>) -> u64 {
        key.0.len() as u64 + value.bytes
    }
}

/// Counts the entries the cache drops to stay within its capacity.
#[derive(Clone, Default)]
struct CountEvictions(Arc<AtomicU64>);

impl<K, V> Lifecycle<K, V> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: K, _val: V) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Byte-bounded, TTL'd cache (of similar-candidates answers by default), with hit, miss and
/// eviction counters.
pub struct ResultCache<V = Vec<ScoredPoint>> {
    cache: Cache<CacheKey, Arc<Entry<V>>, ByBytes, DefaultHashBuilder, CountEvictions>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: CountEvictions,
}

impl<V: Weigh> std::fmt::Debug for ResultCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCache")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counts since start and the cache's present size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries dropped to stay within the capacity (expired entries are not counted).
    pub evictions: u64,
    /// Weight held now: keys and estimated value bytes.
    pub bytes: u64,
    pub entries: u64,
}

impl<V: Weigh> ResultCache<V> {
    /// A cache holding at most about `capacity_bytes` of keys and values.
    pub fn new(capacity_bytes: u64) -> Self {
        // Items estimate only sizes the internal tables; the weight bound is what limits.
        let items = (capacity_bytes / 512).clamp(16, 1 << 22) as usize;
        let evictions = CountEvictions::default();
        ResultCache {
            cache: Cache::with(
                items,
                capacity_bytes,
                ByBytes,
                DefaultHashBuilder::default(),
                evictions.clone(),
            ),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions,
        }
    }

    pub fn get(&self, key: &CacheKey) -> Option<Arc<V>> {
        let found = self
            .cache
            .get(key)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.value.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Inserts `value` for `ttl` (0 = [`DEFAULT_TTL`]).
    pub fn insert(&self, key: CacheKey, value: V, ttl: Duration) {
        let ttl = if ttl.is_zero() { DEFAULT_TTL } else { ttl };
        let bytes = value.weigh();
        self.cache.insert(
            key,
            Arc::new(Entry {
                value: Arc::new(value),
                expires: Instant::now() + ttl,
                bytes,
            }),
        );
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.0.load(Ordering::Relaxed),
            bytes: self.cache.weight(),
            entries: self.cache.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str) -> ScoredPoint {
        ScoredPoint {
            id: id.into(),
            score: 1.0,
            payload: Default::default(),
        }
    }

    #[test]
    fn answers_round_trip_and_garbage_is_a_miss() {
        let mut h = hit("a1");
        h.payload.insert("brand".into(), "acme".into());
        let hits = vec![h, hit("b")];
        let bytes = encode_hits(&hits);
        assert_eq!(decode_hits(&bytes).unwrap(), hits);
        assert!(decode_hits(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode_hits(b"junk").is_none());
        let k = KeyBuilder::default().str("x").build();
        assert_eq!(k.distributed("sc:e"), k.clone().distributed("sc:e"));
        assert_ne!(
            k.distributed("sc:e"),
            KeyBuilder::default().str("y").build().distributed("sc:e")
        );
    }

    #[test]
    fn keys_are_length_prefixed_and_entries_expire_and_are_bounded() {
        let a = KeyBuilder::default()
            .strs(&["ab".into(), "c".into()])
            .build();
        let b = KeyBuilder::default()
            .strs(&["a".into(), "bc".into()])
            .build();
        assert_ne!(a, b);
        let cache = ResultCache::new(1 << 20);
        cache.insert(a.clone(), vec![hit("x")], Duration::from_millis(30));
        assert_eq!(cache.get(&a).unwrap()[0].id, "x");
        assert!(cache.get(&b).is_none());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&a).is_none(), "expired");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.evictions), (1, 2, 0));
        assert_eq!(
            stats.entries, 1,
            "an expired entry stays until evicted or replaced"
        );
        assert!(stats.bytes > 0);

        let small = ResultCache::new(4096);
        for i in 0..200 {
            small.insert(
                KeyBuilder::default().num(i).build(),
                vec![hit("y"); 4],
                Duration::from_secs(60),
            );
        }
        let kept = (0..200)
            .filter(|i| small.get(&KeyBuilder::default().num(*i).build()).is_some())
            .count();
        assert!(
            kept > 0 && kept < 50,
            "byte bound holds: {kept} entries kept"
        );
        let stats = small.stats();
        assert!(stats.bytes <= 4096, "{stats:?}");
        assert_eq!(stats.evictions, 200 - stats.entries, "{stats:?}");
    }
}
