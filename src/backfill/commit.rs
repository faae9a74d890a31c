//! Phase 4, commit (`ecops backfill commit`): under the catalog lock with
//! fencing, register every final file in one append whose snapshot summary
//! names the run — a second commit finds it and does nothing more than the
//! cleanup it may have missed — then delete the staging and close the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use super::layout::{Layout, MapMarker, ReduceMarker};
use super::plan::PlanOptions;
use super::reduce::name_some;
use super::{BackfillError, SUMMARY_CHUNKS, SUMMARY_RUN};
use crate::catalog::EarthCatalog;
use crate::catalog::append::ITEMS_WRITTEN;
use crate::ingest::Mode;
use crate::lock::job::{LockSettings, LockedJob, run_locked};
use crate::runs::{
    Activity, Counters, JobError, JobSummary, Ledger, LedgerOptions, RunKind, RunSpec, RunState,
    RunTarget, Stop,
};

/// How to commit.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    pub run: Option<String>,
    pub lock: LockSettings,
    pub ledger: Option<LedgerOptions>,
    /// Wait for the reduce phase to finish instead of refusing.
    pub wait: bool,
}

/// What the commit did (`ecops backfill commit --json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CommitReport {
    pub run: String,
    pub files: u64,
    pub rows: u64,
    pub snapshots_added: u64,
    pub snapshot_id: Option<i64>,
    /// The run was committed before: nothing was registered again.
    pub already_committed: bool,
    pub staging_deleted: u64,
    /// Commit attempts retried (another writer won the pointer, or an
    /// attempt failed unclearly and had not landed).
    pub commit_retries: u64,
    pub seconds: f64,
    pub error: Option<String>,
}

/// Commits backfill `opts.run` (or the newest unfinished one).
pub async fn commit(
    catalog: Arc<EarthCatalog>,
    opts: &CommitOptions,
    stop: &Stop,
) -> Result<CommitReport, JobError> {
    let run = super::status::resolve_run(&catalog, opts.run.as_deref()).await?;
    let layout = Layout::new(catalog.base(), &run.id);
    let plan = super::status::read_plan(&layout).await?;
    let planned: PlanOptions =
        serde_json::from_value(run.inputs.clone()).map_err(JobError::refused)?;
    wait_for_reduce(&layout, plan.partitions, opts.wait, stop).await?;
    let job = LockedJob {
        catalog: &catalog,
        operation: "backfill",
        job_id: Some(run.id.clone()),
        lock: &opts.lock,
        run: RunSpec {
            kind: RunKind::Backfill,
            inputs: serde_json::Value::Null,
            ledger: opts.ledger,
            target: RunTarget::Join(run.id.clone()),
        },
    };
    let (_tx, progress) = watch::channel(());
    let full = planned.params.mode == Some(Mode::Full);
    let report = run_locked(job, progress, stop, async {
        register(&catalog, &layout, plan.chunks, full).await
    })
    .await?;
    close_run(&catalog, &run.id, &report).await;
    Ok(report)
}

/// Refuses (naming the partitions and how many buckets they hold) unless
/// every partition is reduced; with `wait`, polls until it is.
async fn wait_for_reduce(
    layout: &Layout,
    partitions: u32,
    wait: bool,
    stop: &Stop,
) -> Result<(), JobError> {
    loop {
        let reduced = layout.reduced().await.map_err(JobError::failed)?;
        let missing: Vec<u64> = (0..partitions)
            .filter(|p| !reduced.contains(p))
            .map(u64::from)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if !wait || *stop.receiver().borrow() {
            let buckets = buckets_in(layout, &missing).await;
            return Err(JobError::refused(format!(
                "commit refused: {} of {partitions} partitions are not reduced ({}; {buckets} buckets)",
                missing.len(),
                name_some(&missing, "p")
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Buckets the map phase staged for `partitions` (what a commit now would miss).
async fn buckets_in(layout: &Layout, partitions: &[u64]) -> u64 {
    let mut buckets = std::collections::BTreeSet::new();
    let chunks = layout.mapped().await.unwrap_or_default();
    let keys = chunks.into_iter().map(|c| layout.map_done(c)).collect();
    let markers: Vec<MapMarker> = layout.get_many(keys).await.unwrap_or_default();
    for m in markers {
        for s in m
            .staged
            .iter()
            .filter(|s| partitions.contains(&u64::from(s.partition)))
        {
            buckets.extend(s.buckets.iter().map(|b| (b.cell.clone(), b.year)));
        }
    }
    buckets.len() as u64
}

/// Registers the final files in one append (unless this run's snapshot is
/// already there), then deletes the staging.
async fn register(
    catalog: &EarthCatalog,
    layout: &Layout,
    chunks: u64,
    full: bool,
) -> Result<CommitReport, JobError> {
    let started = Instant::now();
    let run = layout.run().to_string();
    let mut report = CommitReport {
        run: run.clone(),
        ..CommitReport::default()
    };
    let retries_before = catalog
        .commit_stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    let table = catalog.table().await.map_err(JobError::failed)?;
    let done = table.metadata().snapshots().find(|s| {
        s.summary()
            .additional_properties
            .get(SUMMARY_RUN)
            .map(String::as_str)
            == Some(run.as_str())
    });
    if let Some(snapshot) = done {
        report.already_committed = true;
        report.snapshot_id = Some(snapshot.snapshot_id());
    } else {
        if full
            && table
                .metadata()
                .current_snapshot()
                .is_some_and(|s| has_rows(s))
        {
            return Err(JobError::refused(
                "mode full needs an empty table (a backfill never drops data); the table has rows now",
            ));
        }
        let markers = reduce_markers(layout).await.map_err(JobError::failed)?;
        let mut files = Vec::new();
        for m in &markers {
            for f in &m.files {
                report.rows += f.record_count;
                files.push(f.to_data_file(&table).map_err(JobError::failed)?);
            }
        }
        report.files = files.len() as u64;
        let mut summary = std::collections::HashMap::from([
            ("ecops.operation".to_string(), "backfill".to_string()),
            (SUMMARY_RUN.to_string(), run.clone()),
            (SUMMARY_CHUNKS.to_string(), chunks.to_string()),
        ]);
        if let Some(n) = items_written(layout).await {
            summary.insert(ITEMS_WRITTEN.to_string(), n.to_string());
        }
        crate::testkit::pause_before_commit().await;
        let table = catalog
            .commit_append(files, summary)
            .await
            .map_err(JobError::failed)?;
        report.snapshots_added = 1;
        report.snapshot_id = table.metadata().current_snapshot_id();
        // The commit's ids went to an index delta: fold it into the main file.
        catalog.settle_index_after_job().await;
    }
    report.commit_retries = catalog
        .commit_stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed)
        - retries_before;
    report.staging_deleted = delete_staging(layout).await;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn has_rows(snapshot: &iceberg::spec::Snapshot) -> bool {
    snapshot
        .summary()
        .additional_properties
        .get("total-records")
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// Items the map phase staged, when every chunk's marker says (reduce
/// keeps one version of an item seen twice, so this may count it twice).
async fn items_written(layout: &Layout) -> Option<u64> {
    let chunks = layout.mapped().await.ok()?;
    let keys = chunks.into_iter().map(|c| layout.map_done(c)).collect();
    let markers: Vec<MapMarker> = layout.get_many(keys).await.ok()?;
    markers.iter().map(|m| m.written).sum()
}

async fn reduce_markers(layout: &Layout) -> Result<Vec<ReduceMarker>, BackfillError> {
    let partitions = layout.reduced().await?;
    let keys = partitions.into_iter().map(|p| layout.reduce_done(p));
    layout.get_many(keys.collect()).await
}

/// Deletes staged rows and planned chunks (markers and the plan stay, for
/// status); a failure only leaves files for `remove-orphans`-like cleanup.
async fn delete_staging(layout: &Layout) -> u64 {
    let mut deleted = 0;
    for dir in [layout.staging(), layout.chunks_dir()] {
        match layout.delete_all(&dir).await {
            Ok(n) => deleted += n,
            Err(e) => tracing::warn!("backfill {}: staging not deleted: {e}", layout.run()),
        }
    }
    deleted
}

/// Marks the run done in the ledger with the commit's summary.
async fn close_run(catalog: &EarthCatalog, run: &str, report: &CommitReport) {
    let ledger = Ledger::new(catalog.base());
    let Ok(mut record) = ledger.read_run(run).await else {
        return;
    };
    record.state = RunState::Done;
    record.ended = Some(Utc::now());
    record.exit_code = Some(0);
    record.summary = Some(json!(report));
    record.counters = Some(Counters {
        rows: report.rows,
        files: report.files,
        commits: report.snapshots_added,
        ..Counters::default()
    });
    if let Err(e) = ledger.write_run(&record).await {
        tracing::warn!("backfill {run}: run record not closed: {e}");
    }
}

impl JobSummary for CommitReport {
    fn run_state(&self) -> RunState {
        if self.error.is_some() {
            RunState::Failed
        } else {
            RunState::Done
        }
    }

    fn exit_code(&self) -> i32 {
        i32::from(self.error.is_some())
    }

    fn error(&self) -> Option<String> {
        self.error.clone()
    }

    fn activity(&self) -> Activity {
        Activity {
            phase: "commit".into(),
            chunk: None,
            counters: Counters {
                rows: self.rows,
                files: self.files,
                commits: self.snapshots_added,
                ..Counters::default()
            },
        }
    }

    fn note_lock_lost(&mut self, reason: &str) {
        self.error = Some(format!("the catalog lock was lost: {reason}"));
    }

    fn set_run(&mut self, _run: &str) {}
}
