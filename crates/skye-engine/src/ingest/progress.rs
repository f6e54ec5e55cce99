//! How far each model's current job has come, as the embedding consumer sees it: when its
//! first event was applied, how many events have been applied since, which partitions have
//! reported EOF. The binary adds what is still unread on the topics (the consumer lag) to tell
//! the events expected and an ETA.
//!
//! A job is told apart from the next by its embedding-store version (a RESET job writes a new
//! one) or, for jobs that keep the version (DELTA), by the previous job having seen every EOF.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One model of one entity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelKey {
    pub entity: String,
    pub model: String,
}

/// The figures of a model's current (or last) job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFigures {
    /// Embedding-store version the job writes.
    pub version: i64,
    /// Logical partitions the job has (EOFs expected).
    pub partitions: u32,
    /// Data events applied (EOFs not counted).
    pub applied: u64,
    /// Partitions whose EOF was applied.
    pub eofs: BTreeSet<String>,
    started: Instant,
    last: Instant,
}

impl JobFigures {
    /// Every partition has reported EOF.
    pub fn complete(&self) -> bool {
        self.partitions > 0 && self.eofs.len() >= self.partitions as usize
    }

    /// Time since the job's first applied event; frozen at its last event once complete.
    pub fn age(&self, now: Instant) -> Duration {
        let end = if self.complete() { self.last } else { now };
        end.saturating_duration_since(self.started)
    }

    /// Data events applied per second of the job so far (`None` before a second has passed).
    pub fn rate(&self) -> Option<f64> {
        let seconds = self
            .last
            .saturating_duration_since(self.started)
            .as_secs_f64();
        (seconds >= 1.0 && self.applied > 0).then(|| self.applied as f64 / seconds)
    }
}

/// Every model's job figures, updated by the embedding consumer after each applied batch.
#[derive(Debug, Default)]
pub struct JobProgress {
    jobs: Mutex<BTreeMap<ModelKey, JobFigures>>,
}

/// What one batch applied of one model's job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Applied {
    pub model: ModelKey,
    pub version: i64,
    pub partitions: u32,
    pub events: u64,
    /// The partition of an applied EOF.
    pub eof: Option<String>,
}

impl JobProgress {
    pub fn record(&self, applied: Applied) {
        self.record_at(applied, Instant::now());
    }

    fn record_at(&self, a: Applied, now: Instant) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let job = jobs.entry(a.model).or_insert_with(|| fresh(a.version, now));
        let next_job = a.version > job.version || (a.version == job.version && job.complete());
        if next_job && (a.events > 0 || a.version > job.version) {
            *job = fresh(a.version, now);
        }
        if a.version != job.version {
            return; // a straggler of an older job
        }
        job.partitions = a.partitions;
        job.applied += a.events;
        job.last = now;
        if let Some(p) = a.eof {
            job.eofs.insert(p);
        }
    }

    pub fn figures(&self) -> Vec<(ModelKey, JobFigures)> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.iter().map(|(k, f)| (k.clone(), f.clone())).collect()
    }
}

fn fresh(version: i64, now: Instant) -> JobFigures {
    JobFigures {
        version,
        partitions: 0,
        applied: 0,
        eofs: BTreeSet::new(),
        started: now,
        last: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i64, events: u64, eof: Option<&str>) -> Applied {
        Applied {
            model: ModelKey {
                entity: "e".into(),
                model: "m".into(),
            },
            version,
            partitions: 2,
            events,
            eof: eof.map(String::from),
        }
    }

    #[test]
    fn a_job_counts_until_its_eofs_and_the_next_one_starts_afresh() {
        let progress = JobProgress::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        progress.record_at(applied(1, 100, None), at(0));
        progress.record_at(applied(1, 300, Some("0")), at(4));
        let (_, job) = progress.figures().remove(0);
        assert_eq!((job.applied, job.complete()), (400, false));
        assert_eq!(job.rate(), Some(100.0));
        assert_eq!(
            job.age(at(10)),
            Duration::from_secs(10),
            "running: age grows"
        );

        progress.record_at(applied(1, 0, Some("1")), at(5));
        let (_, job) = progress.figures().remove(0);
        assert!(job.complete());
        assert_eq!(
            job.age(at(60)),
            Duration::from_secs(5),
            "complete: age frozen"
        );

        // A DELTA job keeps the version: its first data event starts a new job.
        progress.record_at(applied(1, 7, None), at(70));
        let (_, job) = progress.figures().remove(0);
        assert_eq!((job.applied, job.eofs.len()), (7, 0));

        // A RESET job's new version starts afresh; a late event of the old one is ignored.
        progress.record_at(applied(2, 5, None), at(80));
        progress.record_at(applied(1, 9, None), at(81));
        let (_, job) = progress.figures().remove(0);
        assert_eq!((job.version, job.applied), (2, 5));
    }
}
