//! Where a backfill stands, from its markers in the store and its run in
//! the ledger: phase, chunks, partitions, counters, failures, stragglers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::BackfillError;
use super::layout::{Layout, MapFailure, MapMarker, PlanRecord, ReduceMarker};
use crate::catalog::EarthCatalog;
use crate::runs::{JobError, Ledger, RunKind, RunRecord, RunState, RunsReader, WorkerView};

/// The phase of a backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    /// Planning has not finished.
    Planning,
    Planned,
    Mapping,
    Reducing,
    Committing,
    Committed,
    Failed,
}

impl BackfillState {
    pub fn label(self) -> &'static str {
        match self {
            BackfillState::Planning => "planning",
            BackfillState::Planned => "planned",
            BackfillState::Mapping => "mapping",
            BackfillState::Reducing => "reducing",
            BackfillState::Committing => "committing",
            BackfillState::Committed => "committed",
            BackfillState::Failed => "failed",
        }
    }
}

/// Chunk counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChunkCounts {
    pub total: u64,
    pub done: u64,
    /// Chunks whose last attempt failed and that are not done.
    pub failed: u64,
    /// Chunks a live worker is on now.
    pub running: u64,
}

/// A failed chunk and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedChunk {
    pub chunk: u64,
    pub engine_task: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// `ecops backfill status --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub run: String,
    pub state: BackfillState,
    pub chunks: ChunkCounts,
    pub partitions: u64,
    pub partitions_reduced: u64,
    /// (cell, year) buckets merged by the partitions reduced so far.
    pub buckets_reduced: u64,
    pub items: u64,
    pub rows: u64,
    pub failed_items: u64,
    /// Final files written by reduce.
    pub files: u64,
    pub snapshots_added: u64,
    pub failed_chunks: Vec<FailedChunk>,
    /// Chunks running more than 3× the median chunk time.
    pub stragglers: Vec<String>,
    /// Σ items/s of live map workers.
    pub items_per_second: f64,
    pub median_chunk_seconds: Option<f64>,
    /// Seconds left in the current phase at the current rate, when known.
    pub eta_seconds: Option<f64>,
    /// Seconds the reduce phase still needs (partitions left × the median
    /// partition time ÷ reducers at work), once a partition is reduced.
    pub reduce_eta_seconds: Option<f64>,
    pub workers: Vec<WorkerView>,
    #[serde(skip)]
    pub record: Option<RunRecord>,
}

/// The backfill run `run`, or the catalog's newest unfinished one.
pub async fn resolve_run(catalog: &EarthCatalog, run: Option<&str>) -> Result<RunRecord, JobError> {
    let ledger = Ledger::new(catalog.base());
    if let Some(id) = run {
        let record = ledger.read_run(id).await.map_err(JobError::refused)?;
        if record.kind != RunKind::Backfill {
            return Err(JobError::refused(format!(
                "run {id} is a {} run, not a backfill",
                record.kind.label()
            )));
        }
        return Ok(record);
    }
    let ids = ledger.run_ids().await.map_err(JobError::failed)?;
    for id in ids.iter().rev().filter(|id| id.contains("-backfill-")) {
        if let Ok(record) = ledger.read_run(id).await
            && !record.state.is_final()
        {
            return Ok(record);
        }
    }
    Err(JobError::refused(
        "no unfinished backfill on this catalog (give --run, or plan one with `ecops backfill plan`)",
    ))
}

/// The plan, or a refusal saying planning has not finished.
pub async fn read_plan(layout: &Layout) -> Result<PlanRecord, JobError> {
    layout
        .get::<PlanRecord>(&layout.plan())
        .await
        .map_err(JobError::failed)?
        .ok_or_else(|| {
            JobError::refused(format!(
                "backfill run {}: planning has not finished (rerun `ecops backfill plan` with the same inputs)",
                layout.run()
            ))
        })
}

/// The status of backfill `run` (or the newest unfinished one).
pub async fn status(catalog: &EarthCatalog, run: Option<&str>) -> Result<Status, JobError> {
    let record = resolve_run(catalog, run).await?;
    let workers = live_workers(catalog, &record.id).await;
    status_of(catalog.base(), record, workers, &mut MarkerCache::default()).await
}

/// Done markers already read. They never change once written (conditional
/// creates), so a poller that keeps its cache reads each one once: a
/// refresh costs three LISTs plus the markers that are new.
#[derive(Debug, Default)]
pub struct MarkerCache {
    mapped: HashMap<u64, MapMarker>,
    reduced: HashMap<u32, ReduceMarker>,
}

/// The status of the backfill run `record` of the catalog at `base`, its
/// workers as a ledger reader sees them (the console keeps one reader for
/// every run).
pub async fn status_of(
    base: &crate::store::Store,
    record: RunRecord,
    workers: Vec<WorkerView>,
    cache: &mut MarkerCache,
) -> Result<Status, JobError> {
    let layout = Layout::new(base, &record.id);
    let plan = layout
        .get::<PlanRecord>(&layout.plan())
        .await
        .map_err(JobError::failed)?;
    let markers = read_markers(&layout, cache)
        .await
        .map_err(JobError::failed)?;
    Ok(assemble(record, plan, markers, workers))
}

/// Every marker of the run.
struct Markers {
    mapped: Vec<MapMarker>,
    failures: Vec<MapFailure>,
    reduced: Vec<ReduceMarker>,
}

async fn read_markers(layout: &Layout, cache: &mut MarkerCache) -> Result<Markers, BackfillError> {
    let chunks = layout.mapped().await?;
    let unread: Vec<String> = chunks
        .iter()
        .filter(|c| !cache.mapped.contains_key(c))
        .map(|&c| layout.map_done(c))
        .collect();
    let fresh: Vec<MapMarker> = layout.get_many(unread).await?;
    cache.mapped.extend(fresh.into_iter().map(|m| (m.chunk, m)));
    let mapped: Vec<MapMarker> = chunks
        .iter()
        .filter_map(|c| cache.mapped.get(c).cloned())
        .collect();
    let done: std::collections::HashSet<u64> = mapped.iter().map(|m| m.chunk).collect();
    let failed: Vec<String> = layout
        .failed_chunks()
        .await?
        .into_iter()
        .filter(|c| !done.contains(c))
        .map(|c| layout.map_failed(c))
        .collect();
    let failures = layout.get_many(failed).await?;
    let partitions = layout.reduced().await?;
    let unread: Vec<String> = partitions
        .iter()
        .filter(|p| !cache.reduced.contains_key(p))
        .map(|&p| layout.reduce_done(p))
        .collect();
    let fresh: Vec<ReduceMarker> = layout.get_many(unread).await?;
    cache
        .reduced
        .extend(fresh.into_iter().map(|r| (r.partition, r)));
    let reduced = partitions
        .iter()
        .filter_map(|p| cache.reduced.get(p).cloned())
        .collect();
    Ok(Markers {
        mapped,
        failures,
        reduced,
    })
}

/// The run's workers as the ledger shows them.
async fn live_workers(catalog: &EarthCatalog, run: &str) -> Vec<WorkerView> {
    let mut reader = RunsReader::new(catalog.base());
    match reader.refresh().await {
        Ok(s) => s
            .runs
            .into_iter()
            .find(|r| r.id == run)
            .map(|r| r.workers)
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!("reading the run ledger: {e}");
            Vec::new()
        }
    }
}

fn assemble(
    record: RunRecord,
    plan: Option<PlanRecord>,
    m: Markers,
    workers: Vec<WorkerView>,
) -> Status {
    let total = plan.as_ref().map_or(0, |p| p.chunks);
    let partitions = plan.as_ref().map_or(0, |p| u64::from(p.partitions));
    let live: Vec<&WorkerView> = workers
        .iter()
        .filter(|w| w.state == RunState::Running)
        .collect();
    let running = live.iter().filter(|w| w.chunk.is_some()).count() as u64;
    let mut seconds: Vec<f64> = m.mapped.iter().map(|x| x.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let median = (!seconds.is_empty()).then(|| seconds[seconds.len() / 2]);
    let items_per_second = live.iter().fold(0.0, |a, w| a + w.items_per_second);
    let committed = record.state == RunState::Done;
    let state = phase(&record, plan.is_some(), total, &m, partitions, committed);
    let rows_left = total.saturating_sub(m.mapped.len() as u64);
    let per_chunk = m
        .mapped
        .iter()
        .map(|x| x.items)
        .sum::<u64>()
        .checked_div(m.mapped.len() as u64);
    let eta = match (state, per_chunk) {
        (BackfillState::Mapping, Some(n)) if items_per_second > 0.0 => {
            Some((rows_left * n) as f64 / items_per_second)
        }
        _ => None,
    };
    Status {
        run: record.id.clone(),
        state,
        chunks: ChunkCounts {
            total,
            done: m.mapped.len() as u64,
            failed: m.failures.len() as u64,
            running,
        },
        partitions,
        partitions_reduced: m.reduced.len() as u64,
        buckets_reduced: m.reduced.iter().map(|r| r.buckets).sum(),
        items: m.mapped.iter().map(|x| x.items).sum(),
        // Once reduced, the rows that will be (or were) registered; before, the rows staged.
        rows: if m.reduced.is_empty() {
            m.mapped.iter().map(|x| x.rows).sum()
        } else {
            m.reduced.iter().map(|r| r.rows_out).sum()
        },
        failed_items: m.mapped.iter().map(|x| x.failed).sum(),
        files: m.reduced.iter().map(|r| r.files.len() as u64).sum(),
        snapshots_added: record
            .summary
            .as_ref()
            .and_then(|s| s["snapshots_added"].as_u64())
            .unwrap_or(0),
        failed_chunks: m
            .failures
            .iter()
            .map(|f| FailedChunk {
                chunk: f.chunk,
                engine_task: f.engine_task.clone(),
                reason: f.reason.clone(),
                at: f.at,
            })
            .collect(),
        stragglers: stragglers(&live, median),
        items_per_second,
        median_chunk_seconds: median,
        eta_seconds: eta,
        reduce_eta_seconds: reduce_eta(&m.reduced, partitions, &live),
        workers,
        record: Some(record),
    }
}

/// Partitions left × the median partition time ÷ the reducers at work (at
/// least one): None before the first partition is reduced, 0 when all are.
fn reduce_eta(reduced: &[ReduceMarker], partitions: u64, live: &[&WorkerView]) -> Option<f64> {
    let mut seconds: Vec<f64> = reduced.iter().map(|r| r.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let median = *seconds.get(seconds.len() / 2)?;
    let left = partitions.saturating_sub(reduced.len() as u64) as f64;
    let reducers = live.iter().filter(|w| w.phase == "reduce").count().max(1) as f64;
    Some(left * median / reducers)
}

fn phase(
    record: &RunRecord,
    planned: bool,
    chunks: u64,
    m: &Markers,
    partitions: u64,
    committed: bool,
) -> BackfillState {
    if committed {
        return BackfillState::Committed;
    }
    if record.state == RunState::Failed {
        return BackfillState::Failed;
    }
    if !planned {
        return BackfillState::Planning;
    }
    let mapped = m.mapped.len() as u64;
    let reduced = m.reduced.len() as u64;
    match () {
        _ if mapped == 0 && m.failures.is_empty() => BackfillState::Planned,
        _ if mapped < chunks => BackfillState::Mapping,
        _ if reduced < partitions => BackfillState::Reducing,
        _ => BackfillState::Committing,
    }
}

/// Workers on a chunk for more than 3× the median chunk time (by their
/// heartbeat: the chunk they report now has been theirs since at least then).
fn stragglers(live: &[&WorkerView], median: Option<f64>) -> Vec<String> {
    let Some(median) = median.filter(|m| *m > 0.0) else {
        return vec![];
    };
    live.iter()
        .filter_map(|w| {
            let since = w.chunk_seconds?;
            (since > 3.0 * median).then(|| {
                format!(
                    "{} on {} for {:.0} s (median {:.0} s)",
                    w.engine_task,
                    w.chunk.as_deref().unwrap_or("?"),
                    since,
                    median
                )
            })
        })
        .collect()
}
