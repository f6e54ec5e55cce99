//! Redis as the distributed result cache (`--features redis`): one multiplexed async connection,
//! `MGET` for lookups and one pipeline of `SET key value EX ttl` for write-backs (spec serving
//! §4.3). Every call has a timeout; a failed call drops the connection so the next one
//! reconnects, one reconnect at a time (the calls meanwhile are misses rather than a queue
//! behind a server that accepts connections and never answers). Callers treat every error as a
//! miss.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use skye_core::cache::{CacheError, DistributedCache};
use tokio::sync::Mutex;

/// How long one Redis round trip may take before it counts as a miss.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// The Redis cache.
pub struct RedisCache {
    client: redis::Client,
    conn: std::sync::Mutex<Option<MultiplexedConnection>>,
    /// Held by the one call that reconnects.
    connecting: Mutex<()>,
    timeout: Duration,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn error(e: impl std::fmt::Display) -> CacheError {
    CacheError(e.to_string())
}

impl RedisCache {
    /// `addr` is `host:port` (the original's `REDIS_ADDR`) or a `redis://` URL.
    pub fn new(addr: &str, password: &str, db: i64, timeout: Duration) -> Result<Self, CacheError> {
        let url = if addr.starts_with("redis://") || addr.starts_with("rediss://") {
            addr.to_string()
        } else if password.is_empty() {
            format!("redis://{addr}/{db}")
        } else {
            format!("redis://:{password}@{addr}/{db}")
        };
        Ok(RedisCache {
            client: redis::Client::open(url).map_err(error)?,
            conn: std::sync::Mutex::new(None),
            connecting: Mutex::new(()),
            timeout,
        })
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_current(&self, c: Option<MultiplexedConnection>) {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = c;
    }

    async fn connection(&self) -> Result<MultiplexedConnection, CacheError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let Ok(_connecting) = self.connecting.try_lock() else {
            return Err(CacheError("redis: reconnecting".into()));
        };
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let c = tokio::time::timeout(
            self.timeout * 10,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| CacheError("redis connect timed out".into()))?
        .map_err(error)?;
        self.set_current(Some(c.clone()));
        Ok(c)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: impl FnOnce(&mut MultiplexedConnection) -> redis::RedisFuture<'_, T>,
    ) -> Result<T, CacheError> {
        let mut conn = self.connection().await?;
        let outcome = tokio::time::timeout(self.timeout, cmd(&mut conn)).await;
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.set_current(None);
                Err(CacheError(format!("redis {what}: {e}")))
            }
            Err(_) => {
                self.set_current(None);
                Err(CacheError(format!(
                    "redis {what} timed out after {:?}",
                    self.timeout
                )))
            }
        }
    }
}

#[async_trait]
impl DistributedCache for RedisCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cmd = redis::cmd("MGET").arg(keys).clone();
        self.run("MGET", move |c| {
            Box::pin(async move { cmd.query_async(c).await })
        })
        .await
    }

    async fn set_many(
        &self,
        entries: Vec<(String, Vec<u8>)>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (k, v) in &entries {
            pipe.cmd("SET")
                .arg(k)
                .arg(v.as_slice())
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .ignore();
        }
        self.run("SET pipeline", move |c| {
            Box::pin(async move { pipe.query_async::<()>(c).await })
        })
        .await
    }
}
