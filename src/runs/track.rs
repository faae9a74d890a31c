//! Recording a job in the ledger while it runs: one call wraps the job's
//! future, starts its run record and heartbeat, turns operator requests
//! into stops, and writes the outcome. [`crate::lock::job::run_locked`]
//! calls it for every job under the catalog lock; backfill workers, which
//! take no lock, call it directly.

use std::future::Future;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use super::error::JobError;
use super::ledger::{Ledger, LedgerOptions, RunEnd};
use super::record::{Activity, RunKind, RunState};
use super::stop::Stop;
use crate::store::Store;

/// What a job's live progress tells the lock record and the ledger.
pub trait JobProgress: Clone + Send + Sync + 'static {
    /// Shown in the catalog lock while the job holds it (`lock status`).
    fn lock_view(&self) -> Value;
    /// Published in the job's worker record every heartbeat.
    fn activity(&self) -> Activity;
}

/// What a job's final summary tells the ledger and the front ends.
pub trait JobSummary: Serialize {
    /// Done, failed or cancelled (a cancel asked as a pause is recorded as paused).
    fn run_state(&self) -> RunState;
    /// The process exit code a headless run ends with.
    fn exit_code(&self) -> i32;
    /// The (redacted) error that ended it, if any.
    fn error(&self) -> Option<String>;
    /// Its final counters.
    fn activity(&self) -> Activity;
    /// Notes that the catalog lock was lost while it ran.
    fn note_lock_lost(&mut self, reason: &str);
    /// Records the run it was recorded as.
    fn set_run(&mut self, run: &str);
}

/// What to record about a job.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub kind: RunKind,
    /// The job's options as a rerun needs them (redacted).
    pub inputs: Value,
    /// None: do not record (a read-only console, tests that opt out).
    pub ledger: Option<LedgerOptions>,
}

impl RunSpec {
    /// A run of `kind` with `inputs`, recorded with the default options.
    pub fn new(kind: RunKind, inputs: Value) -> Self {
        Self {
            kind,
            inputs,
            ledger: Some(LedgerOptions::default()),
        }
    }
}

/// Runs `work`, recorded in the ledger of `base` as a run of `spec`: a run
/// record and heartbeats with the latest `progress`, operator requests
/// tripping `stop`, the outcome at the end. A ledger that cannot be written
/// only costs a warning: the job runs all the same.
pub async fn track<P, T>(
    base: &Store,
    spec: RunSpec,
    progress: watch::Receiver<P>,
    stop: &Stop,
    work: impl Future<Output = Result<T, JobError>>,
) -> Result<T, JobError>
where
    P: JobProgress,
    T: JobSummary,
{
    let Some(opts) = spec.ledger else {
        return work.await;
    };
    let writer = match Ledger::new(base).begin(spec.kind, spec.inputs, opts).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("this run is not recorded in the run ledger: {e}");
            return work.await;
        }
    };
    let run_id = writer.id().to_string();
    tracing::info!("run {run_id} started ({})", spec.kind.label());
    let (activity_tx, activity_rx) = watch::channel(progress.borrow().activity());
    let mirror = tokio::spawn(mirror_activity(progress.clone(), activity_tx));
    let heartbeat = writer.start(activity_rx, stop.clone());
    let mut result = work.await;
    mirror.abort();
    let last = progress.borrow().activity();
    let (activity, end) = match &mut result {
        Ok(summary) => {
            summary.set_run(&run_id);
            (summary.activity(), end_of(summary, stop))
        }
        Err(e) => (last.clone(), failed_end(e, last, stop)),
    };
    tracing::info!("run {run_id} ended: {}", end.state.label());
    heartbeat.finish(activity, end).await;
    result
}

async fn mirror_activity<P: JobProgress>(
    mut progress: watch::Receiver<P>,
    activity: watch::Sender<Activity>,
) {
    while progress.changed().await.is_ok() {
        let now = progress.borrow_and_update().activity();
        activity.send_replace(now);
    }
}

fn end_of<T: JobSummary>(summary: &T, stop: &Stop) -> RunEnd {
    let state = match summary.run_state() {
        RunState::Cancelled if stop.is_pause() => RunState::Paused,
        s => s,
    };
    RunEnd {
        state,
        exit_code: summary.exit_code(),
        error: summary.error(),
        summary: serde_json::to_value(summary).unwrap_or(Value::Null),
        counters: summary.activity().counters,
        stopped_by: stop.requested().and_then(|r| r.control),
    }
}

fn failed_end(error: &JobError, last: Activity, stop: &Stop) -> RunEnd {
    RunEnd {
        state: RunState::Failed,
        exit_code: 1,
        error: Some(error.message()),
        summary: serde_json::json!({ "error": error.message() }),
        counters: last.counters,
        stopped_by: stop.requested().and_then(|r| r.control),
    }
}

/// Jobs without live progress (maintenance) publish nothing but their phase.
impl JobProgress for () {
    fn lock_view(&self) -> Value {
        Value::Null
    }

    fn activity(&self) -> Activity {
        Activity {
            phase: "running".into(),
            ..Activity::default()
        }
    }
}
