//! Ingest as every front end runs it: under the catalog lock (taken before
//! the first row is read, fenced on every commit, renewed with the job's
//! progress in it, released at the end) and recorded in the run ledger.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use super::{IngestParams, IngestProgress, Phase};
use crate::catalog::EarthCatalog;
use crate::lock::job::{LockSettings, LockedJob, run_locked as under_lock};
use crate::runs::{
    Activity, Counters, JobError, JobProgress, JobSummary, LedgerOptions, RunKind, RunSpec,
    RunState, Stop,
};

/// Runs the ingest `params` asks for under the lock, fetching with the
/// catalog's S3 settings, recorded in the ledger with `ledger` (None: not
/// recorded). `Err`: it could not start, nothing changed; otherwise the
/// summary, whose phase says how it ended (failed part-way: what was
/// complete is committed).
pub async fn run_locked(
    catalog: Arc<EarthCatalog>,
    params: &IngestParams,
    lock: &LockSettings,
    ledger: Option<LedgerOptions>,
    progress: watch::Sender<IngestProgress>,
    stop: &Stop,
) -> Result<IngestProgress, JobError> {
    let opts = params.build(catalog.s3()).map_err(JobError::refused)?;
    // The job id goes into the run record, so `ecops runs resume` continues
    // this very job even if its inventory is named differently then.
    let job_id =
        super::job::JobSpec::of_input(&opts).map(|spec| spec.job_id(opts.job_name.as_deref()));
    let mut inputs = serde_json::to_value(params.redacted()).unwrap_or_default();
    inputs["job_id"] = json!(job_id);
    let job = LockedJob {
        catalog: &catalog,
        operation: "ingest",
        job_id: opts.job_name.clone(),
        lock,
        run: RunSpec {
            kind: RunKind::Ingest,
            inputs,
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

impl JobProgress for IngestProgress {
    fn lock_view(&self) -> serde_json::Value {
        json!({
            "job_id": self.job_id, "items": self.items, "rows": self.rows,
            "failed": self.failed, "commits": self.commits, "position": self.position,
        })
    }

    fn activity(&self) -> Activity {
        Activity {
            phase: match self.phase {
                Phase::Starting => "starting",
                Phase::Running => "fetching",
                Phase::Done => "done",
                Phase::Cancelled => "cancelled",
                Phase::Failed => "failed",
            }
            .to_string(),
            chunk: (self.chunk > 0)
                .then(|| format!("chunk {} (position {})", self.chunk, self.position)),
            counters: Counters {
                items_listed: self.items,
                items_fetched: self.fetched,
                items_failed: self.failed,
                rows: self.rows.max(self.rows_built),
                files: self.files,
                bytes: self.bytes_out,
                bytes_fetched: self.bytes_in,
                commits: self.commits,
            },
        }
    }
}

impl JobSummary for IngestProgress {
    fn run_state(&self) -> RunState {
        match self.phase {
            Phase::Failed => RunState::Failed,
            Phase::Cancelled => RunState::Cancelled,
            Phase::Starting | Phase::Running | Phase::Done => RunState::Done,
        }
    }

    /// 0 clean, 3 some items dead-lettered, 130 interrupted, 1 failed.
    fn exit_code(&self) -> i32 {
        match self.phase {
            Phase::Failed => 1,
            Phase::Cancelled => 130,
            _ if self.failed > 0 => 3,
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
