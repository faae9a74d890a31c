//! Compaction and maintenance as every front end runs them: under the
//! catalog lock (taken before planning, fenced on every commit, renewed with
//! the run's progress in it, released at the end) and recorded in the run
//! ledger. A dry run takes no lock and records no run: it writes nothing.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use super::maintenance::{ExpireOptions, ExpireReport, OrphanOptions, OrphanReport};
use super::{CompactOptions, CompactPhase, CompactProgress};
use crate::catalog::EarthCatalog;
use crate::lock::job::{LockSettings, LockedJob, run_locked as under_lock};
use crate::runs::{
    Activity, Counters, JobError, JobProgress, JobSummary, LedgerOptions, RunKind, RunSpec,
    RunState, Stop,
};

/// [`super::run`] holding the catalog lock (operation `compact`), recorded
/// as a run. `Err`: it could not start; a run that failed part-way returns
/// its summary with phase failed (committed groups stay).
pub async fn run_locked(
    catalog: Arc<EarthCatalog>,
    opts: CompactOptions,
    lock: &LockSettings,
    ledger: Option<LedgerOptions>,
    progress: watch::Sender<CompactProgress>,
    stop: &Stop,
) -> Result<CompactProgress, JobError> {
    if opts.dry_run {
        return super::run(catalog, opts, progress, stop.receiver())
            .await
            .map_err(JobError::refused);
    }
    let job = LockedJob {
        catalog: &catalog,
        operation: "compact",
        job_id: None,
        lock,
        run: RunSpec {
            kind: RunKind::Compact,
            inputs: json!({
                "threshold": opts.threshold,
                "small_file_bytes": opts.small_file_bytes,
                "target_file_size": opts.target_file_size,
                "group_files": opts.group_files,
                "max_commits": opts.max_commits,
            }),
            ledger,
            target: crate::runs::RunTarget::Own,
        },
    };
    let work = super::run(catalog.clone(), opts, progress.clone(), stop.receiver());
    under_lock(job, progress.subscribe(), stop, async {
        work.await.map_err(JobError::refused)
    })
    .await
}

/// Expires snapshots under the catalog lock, recorded as a run (no lock and
/// no run for a dry run).
pub async fn expire_snapshots(
    catalog: &EarthCatalog,
    opts: &ExpireOptions,
    lock: &LockSettings,
    ledger: Option<LedgerOptions>,
) -> Result<ExpireReport, JobError> {
    let expire = super::maintenance::expire::expire(catalog, opts);
    if opts.dry_run {
        return expire.await.map_err(JobError::refused);
    }
    let job = LockedJob {
        catalog,
        operation: "expire-snapshots",
        job_id: None,
        lock,
        run: RunSpec {
            kind: RunKind::ExpireSnapshots,
            inputs: json!({
                "older_than_seconds": opts.older_than.as_secs(),
                "retain_last": opts.retain_last,
            }),
            ledger,
            target: crate::runs::RunTarget::Own,
        },
    };
    let (_tx, progress) = watch::channel(());
    under_lock(job, progress, &Stop::new(), async {
        expire.await.map_err(JobError::failed)
    })
    .await
}

/// Removes orphans under the catalog lock, recorded as a run (no lock and no
/// run for a dry run).
pub async fn remove_orphans(
    catalog: &EarthCatalog,
    opts: &OrphanOptions,
    lock: &LockSettings,
    ledger: Option<LedgerOptions>,
) -> Result<OrphanReport, JobError> {
    let remove = super::maintenance::orphans::find_and_remove(catalog, opts);
    if opts.dry_run {
        return remove.await.map_err(JobError::refused);
    }
    let job = LockedJob {
        catalog,
        operation: "remove-orphans",
        job_id: None,
        lock,
        run: RunSpec {
            kind: RunKind::RemoveOrphans,
            inputs: json!({ "older_than_seconds": opts.older_than.as_secs() }),
            ledger,
            target: crate::runs::RunTarget::Own,
        },
    };
    let (_tx, progress) = watch::channel(());
    under_lock(job, progress, &Stop::new(), async {
        remove.await.map_err(JobError::failed)
    })
    .await
}

impl JobProgress for CompactProgress {
    fn lock_view(&self) -> serde_json::Value {
        json!({
            "buckets_planned": self.buckets_planned,
            "buckets_compacted": self.buckets_compacted,
            "files_in": self.files_in, "files_out": self.files_out,
            "commits": self.commits,
        })
    }

    fn activity(&self) -> Activity {
        Activity {
            phase: match self.phase {
                CompactPhase::Planning => "planning",
                CompactPhase::Running => "rewriting",
                CompactPhase::Done => "done",
                CompactPhase::Cancelled => "cancelled",
                CompactPhase::Failed => "failed",
            }
            .to_string(),
            chunk: (self.buckets_planned > 0).then(|| {
                format!(
                    "group {} · {}/{} buckets",
                    self.commits + 1,
                    self.buckets_compacted + self.buckets_pending_commit,
                    self.buckets_planned
                )
            }),
            counters: Counters {
                items_listed: 0,
                items_fetched: 0,
                items_failed: 0,
                rows: self.rows_after.min(self.rows_before),
                files: self.files_out,
                bytes: self.bytes_out,
                bytes_fetched: 0,
                commits: self.commits,
            },
        }
    }
}

impl JobSummary for CompactProgress {
    fn run_state(&self) -> RunState {
        match self.phase {
            CompactPhase::Failed => RunState::Failed,
            CompactPhase::Cancelled => RunState::Cancelled,
            _ => RunState::Done,
        }
    }

    /// 0 done, 130 interrupted (committed groups stay), 1 failed.
    fn exit_code(&self) -> i32 {
        match self.phase {
            CompactPhase::Failed => 1,
            CompactPhase::Cancelled => 130,
            _ => 0,
        }
    }

    fn error(&self) -> Option<String> {
        self.error.clone()
    }

    fn activity(&self) -> Activity {
        JobProgress::activity(self)
    }

    fn note_lock_lost(&mut self, reason: &str) {
        let error = self.error.take().unwrap_or_default();
        self.error = Some(JobError::lock_lost(error, reason).message());
    }

    fn set_run(&mut self, run: &str) {
        self.run = Some(run.to_string());
    }
}

/// Maintenance reports: a run that returns a report is done.
macro_rules! maintenance_summary {
    ($report:ty, $files:ident) => {
        impl JobSummary for $report {
            fn run_state(&self) -> RunState {
                RunState::Done
            }
            fn exit_code(&self) -> i32 {
                0
            }
            fn error(&self) -> Option<String> {
                (!self.delete_errors.is_empty()).then(|| self.delete_errors.join("; "))
            }
            fn activity(&self) -> Activity {
                Activity {
                    phase: "done".into(),
                    chunk: None,
                    counters: Counters {
                        files: self.$files,
                        ..Counters::default()
                    },
                }
            }
            fn note_lock_lost(&mut self, reason: &str) {
                self.delete_errors
                    .push(format!("the catalog lock was lost: {reason}"));
            }
            fn set_run(&mut self, run: &str) {
                self.run = Some(run.to_string());
            }
        }
    };
}

maintenance_summary!(ExpireReport, data_files_deleted);
maintenance_summary!(OrphanReport, deleted);
