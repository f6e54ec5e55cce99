//! Runs vector searches with their concurrency permit, their caller's lifetime and a stop flag
//! held together (Qdrant's `StoppingGuard` is the model).
//!
//! A search runs as its own task holding its permit, so `max_concurrent_searches` bounds the
//! work actually running, not the requests still waiting for it: a caller that gives up (its
//! deadline passed, the client went away) drops its [`StopGuard`], which sets the search's
//! [`StopFlag`]; the engine sees the flag between graph hops and scanned blocks and ends early,
//! and only then is the permit released.

use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

use skye_core::vector_store::StopFlag;
use tokio::sync::Semaphore;

/// Why a search did not run to an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("too many searches in flight; retry with backoff")]
    Overloaded,
    #[error("the search task failed")]
    Failed,
}

/// Sets its flag when dropped: the caller of a search has stopped waiting.
#[derive(Debug)]
pub struct StopGuard(StopFlag);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Searches at most `max` at a time.
#[derive(Debug, Clone)]
pub struct SearchExecutor {
    permits: Arc<Semaphore>,
}

impl SearchExecutor {
    pub fn new(max: usize) -> Self {
        SearchExecutor {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// Runs `work` (given the stop flag to hand to the engine) when a permit is free, or
    /// refuses at once (overload never turns into queueing latency). Dropping the returned
    /// future stops the work; its permit is released when the work has ended.
    pub async fn run<T, F, Fut>(&self, work: F) -> Result<T, Refused>
    where
        F: FnOnce(StopFlag) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Overloaded)?;
        let stop = StopFlag::new();
        let guard = StopGuard(stop.clone());
        let task = work(stop);
        // The task carries the caller's span: its stages stay in the request's trace.
        let handle = tokio::spawn(
            async move {
                let out = task.await;
                drop(permit);
                out
            }
            .instrument(tracing::Span::current()),
        );
        let out = handle.await.map_err(|e| {
            tracing::error!(error = %e, "a search task panicked");
            Refused::Failed
        });
        drop(guard);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_search_is_stopped_and_keeps_its_permit_until_it_ends() {
        let ex = SearchExecutor::new(1);
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let first = ex.run(|stop| async move {
            // Work that notices the flag only every 100 ms.
            while !stop.is_stopped() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = seen_tx.send(());
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(20), first)
                .await
                .is_err()
        );
        let second = ex.run(|_| async {}).await;
        assert_eq!(second, Err(Refused::Overloaded), "the permit is still held");
        tokio::time::timeout(Duration::from_secs(2), seen_rx)
            .await
            .expect("the work saw its stop flag")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            ex.run(|_| async { 7 }).await,
            Ok(7),
            "released after the work"
        );
    }
}
