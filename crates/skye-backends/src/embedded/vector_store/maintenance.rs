//! Background upkeep of the embedded collections: linking pending points, compaction, the
//! locality renumbering after a bulk build, and the checkpoints that follow.

use super::*;

impl EmbeddedVectorStore {
    /// Links the points a previous run left pending, in the background when a tokio runtime is
    /// there (the store serves meanwhile, searching them exactly), else before returning.
    pub(super) fn resume_maintenance(&self) {
        let handles: Vec<Arc<Handle>> = self.collections.read().values().cloned().collect();
        for handle in handles {
            self.resume(&handle);
        }
    }

    pub(super) fn resume(&self, handle: &Arc<Handle>) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.schedule_maintenance(handle);
        } else {
            handle.durable.collection().maybe_index();
        }
    }

    /// Background upkeep after writes (one task per collection at a time): links pending points
    /// when the indexing threshold says so, and compacts when deleted or overwritten points
    /// (tombstones) reach a quarter of the live ones. Without compaction, steady churn (real-time
    /// flags removing and re-adding items) grows memory and slows searches without bound.
    pub(super) fn schedule_maintenance(&self, handle: &Arc<Handle>) {
        if !upkeep_due(handle) || handle.indexing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (handle, closing) = (handle.clone(), self.closing.clone());
        tokio::task::spawn_blocking(move || {
            loop {
                let c = handle.durable.collection();
                let reclaimed = if compaction_due(&c.info()) {
                    handle.compactions.fetch_add(1, Ordering::Relaxed);
                    c.compact()
                } else {
                    0
                };
                // A long build is checkpointed every few minutes (a crash loses at most that
                // much of it) and stops early when the process shuts down.
                let mut progress = BuildProgress::new(handle.durable.dir());
                let mut out_of_time = false;
                let linked = c.index_pending_while(&mut |done, total| {
                    progress.step(done, total);
                    out_of_time = progress.started.elapsed() >= BUILD_CHECKPOINT_EVERY;
                    !closing.load(Ordering::Acquire) && !out_of_time
                });
                let renumbered_at = handle.renumbered_at.load(Ordering::Acquire);
                let reordered = !out_of_time
                    && !closing.load(Ordering::Acquire)
                    && reorder_due(renumbered_at, &c.info());
                if reordered {
                    let started = std::time::Instant::now();
                    c.reorder();
                    let linked_now = c.info().indexed_points;
                    handle.renumbered_at.store(linked_now, Ordering::Release);
                    tracing::info!(
                        collection = %handle.durable.dir().display(),
                        seconds = started.elapsed().as_secs_f64(),
                        "points renumbered for search locality after a bulk build"
                    );
                }
                // Persist the graph with the points: a restart then loads it instead of
                // replaying the WAL and rebuilding the index (on shutdown too: the links made
                // so far are kept, the rest is linked after the restart).
                if linked > 0 || reclaimed > 0 || reordered {
                    match handle.durable.checkpoint() {
                        Err(e) => {
                            tracing::warn!(error = %e, "checkpoint after indexing failed; the WAL still holds every write")
                        }
                        Ok(()) if reordered => {
                            if let Err(e) = mark_ordered(handle.durable.dir(), c.info().points) {
                                tracing::warn!(error = %e, "cannot record the renumbering; it runs again after a restart");
                            }
                        }
                        Ok(()) => {}
                    }
                }
                handle.indexing.store(false, Ordering::Release);
                tracing::debug!(linked, reclaimed, "collection maintenance done");
                // Writes that landed meanwhile found the flag set and left their upkeep to this
                // task: look again, or the last batch of a job could wait for a next write.
                if closing.load(Ordering::Acquire)
                    || !(out_of_time || upkeep_due(&handle))
                    || handle.indexing.swap(true, Ordering::AcqRel)
                {
                    break;
                }
            }
        });
    }
}

/// File in a collection's directory holding its point count when it was last renumbered for
/// locality. Without it, a build cut short by a shutdown (a job reports COMPLETED at 95 %
/// linked, and operators restart then) would forget after the restart that its points were
/// never renumbered.
const LOCALITY_MARK: &str = "locality";

/// The point count the collection's locality mark recorded (0 without one).
pub(super) fn renumbered_at_open(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join(LOCALITY_MARK))
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(0)
}

/// Records that the collection's `points` were renumbered (after the checkpoint that holds
/// them; a crash before it renumbers again, which is harmless).
fn mark_ordered(dir: &Path, points: usize) -> std::io::Result<()> {
    let tmp = dir.join(format!("{LOCALITY_MARK}.tmp"));
    std::fs::write(&tmp, points.to_string())?;
    std::fs::rename(&tmp, dir.join(LOCALITY_MARK))
}

/// A background index build checkpoints at least this often.
const BUILD_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(120);

/// Logs a long index build every [`BuildProgress::EVERY`]: points linked, rate, time left.
struct BuildProgress<'a> {
    collection: &'a Path,
    started: std::time::Instant,
    first: Option<usize>,
    last_log: std::time::Instant,
}

impl<'a> BuildProgress<'a> {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    fn new(collection: &'a Path) -> Self {
        let now = std::time::Instant::now();
        BuildProgress {
            collection,
            started: now,
            first: None,
            last_log: now,
        }
    }

    fn step(&mut self, linked: usize, total: usize) {
        let first = *self.first.get_or_insert(linked);
        let rate = (linked - first) as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        if self.last_log.elapsed() < Self::EVERY || linked >= total || rate < 1.0 {
            return;
        }
        self.last_log = std::time::Instant::now();
        tracing::info!(
            collection = %self.collection.display(),
            linked,
            total,
            points_per_second = rate.round(),
            eta_seconds = ((total - linked) as f64 / rate.max(1e-9)).round(),
            "index build progress"
        );
    }
}

/// Collections smaller than this are not renumbered for locality: their codes and links fit in
/// the CPU caches anyway.
const REORDER_MIN_POINTS: usize = 50_000;

/// Whether to renumber a fully linked collection so graph neighbours sit together
/// ([`skye_index::Collection::reorder`]): once at least half of its points were linked since
/// it was last renumbered (at `renumbered_at` linked points), i.e. after a bulk load (a reset
/// job's new version, before it serves), not after every delta.
pub(super) fn reorder_due(renumbered_at: usize, info: &skye_index::CollectionInfo) -> bool {
    info.indexed_points == info.points && renumbering_pays(renumbered_at, info.points)
}

/// Whether a renumbering is running or will be due once the points now pending are linked.
/// It holds the collection's write lock for its whole length (seconds at a million points), so
/// the lifecycle waits for it before a new version serves, rather than stalling its searches.
pub(super) fn reorder_ahead(renumbered_at: usize, info: &skye_index::CollectionInfo) -> bool {
    info.indexing_threshold > 0 && renumbering_pays(renumbered_at, info.points)
}

fn renumbering_pays(renumbered_at: usize, points: usize) -> bool {
    let linked_since = points.saturating_sub(renumbered_at);
    points >= REORDER_MIN_POINTS && linked_since.saturating_mul(2) >= points
}

/// Whether a collection has points to link, tombstones to compact or a renumbering due (a
/// restart right after a bulk build's last link leaves one).
fn upkeep_due(handle: &Handle) -> bool {
    let c = handle.durable.collection();
    let info = c.info();
    compaction_due(&info)
        || c.indexing_due()
        || reorder_due(handle.renumbered_at.load(Ordering::Acquire), &info)
}

/// Tombstones that trigger a compaction: at least this many…
const COMPACT_MIN_TOMBSTONES: usize = 1_000;

/// …and at least a quarter of the live points. Only with indexing on (threshold > 0): a bulk
/// load defers it with the links (a compaction copies every live point; it repairs the graph
/// around the tombstones rather than relinking it).
fn compaction_due(info: &skye_index::CollectionInfo) -> bool {
    info.indexing_threshold > 0
        && info.tombstones >= COMPACT_MIN_TOMBSTONES
        && info.tombstones * 4 >= info.points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(points: usize, indexed_points: usize) -> skye_index::CollectionInfo {
        skye_index::CollectionInfo {
            points,
            indexed_points,
            tombstones: 0,
            indexing_threshold: 1,
        }
    }

    #[test]
    fn collections_are_renumbered_after_bulk_builds_only() {
        // A bulk load, fully linked (never renumbered, or mostly new since): due.
        assert!(reorder_due(0, &info(100_000, 100_000)));
        assert!(reorder_due(40_000, &info(100_000, 100_000)));
        // Still linking, or mostly old points (deltas), or too small to matter: not due.
        assert!(!reorder_due(0, &info(100_000, 99_999)));
        assert!(!reorder_due(60_000, &info(100_000, 100_000)));
        assert!(!reorder_due(0, &info(40_000, 40_000)));
    }

    #[test]
    fn a_renumbering_is_ahead_from_the_start_of_a_bulk_build_to_its_end() {
        // From the first link (COMPLETED used to come at 95 %) until it has run.
        assert!(reorder_ahead(0, &info(100_000, 0)));
        assert!(reorder_ahead(0, &info(100_000, 95_000)));
        assert!(reorder_ahead(0, &info(100_000, 100_000)));
        // Done, then a delta on top; a deferred build (threshold 0); a small collection.
        assert!(!reorder_ahead(100_000, &info(100_000, 100_000)));
        assert!(!reorder_ahead(100_000, &info(101_000, 100_000)));
        let deferred = skye_index::CollectionInfo {
            indexing_threshold: 0,
            ..info(100_000, 0)
        };
        assert!(!reorder_ahead(0, &deferred));
        assert!(!reorder_ahead(0, &info(40_000, 0)));
    }

    #[test]
    fn the_locality_mark_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        // Never renumbered (no mark, or an unreadable one): every linked point counts.
        assert_eq!(renumbered_at_open(dir.path()), 0);
        std::fs::write(dir.path().join(LOCALITY_MARK), "garbage").unwrap();
        assert_eq!(renumbered_at_open(dir.path()), 0);
        mark_ordered(dir.path(), 100_000).unwrap();
        assert_eq!(renumbered_at_open(dir.path()), 100_000);
        // A build cut short by a restart: the points linked after it reopens make it due.
        assert!(!reorder_due(100_000, &info(150_000, 150_000)));
        assert!(reorder_due(100_000, &info(200_000, 200_000)));
    }
}
