//! Compaction jobs: a dry-run plan first (no lock, nothing written), then,
//! once the operator confirms the plan, the run under the catalog lock
//! ([`crate::compact::run_locked`]) with its progress forwarded to the jobs pane.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Event, JobId, JobKind, Jobs};
use crate::catalog::EarthCatalog;
use crate::compact::{CompactOptions, CompactProgress};
use crate::ingest::LockSettings;
use crate::runs::JobError;

/// What to compact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRequest {
    /// Plan only: nothing is written, no lock is taken.
    pub dry_run: bool,
    /// Buckets with at least this many files (None: 2, as `ecops compact`).
    pub threshold: Option<usize>,
}

/// A plan or the result of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactOutcome {
    pub summary: CompactProgress,
    /// True when replace snapshots were committed.
    pub committed: bool,
    /// Lines describing the plan or the result.
    pub lines: Vec<String>,
    /// For a dry run with work to do: the request that carries the plan out.
    pub follow_up: Option<CompactRequest>,
}

/// Lines for the jobs pane and the confirmation dialog.
pub fn describe(p: &CompactProgress) -> Vec<String> {
    use crate::fmt::human_bytes;
    let mut lines = vec![format!(
        "{} of {} (cell, year) buckets {}",
        p.buckets_planned,
        p.buckets_scanned,
        if p.dry_run {
            "would be rewritten"
        } else {
            "planned"
        }
    )];
    lines.push(format!(
        "files {} → {} · rows {} → {} · {} → {}",
        p.files_before,
        p.files_after,
        p.rows_before,
        p.rows_after,
        human_bytes(p.bytes_before),
        human_bytes(p.bytes_after)
    ));
    if !p.dry_run {
        lines.push(format!(
            "{} buckets compacted · {} files in, {} out · {} duplicates removed · {} commits · {:.1} s",
            p.buckets_compacted,
            p.files_in,
            p.files_out,
            p.duplicates_removed,
            p.commits,
            p.seconds
        ));
    }
    if let Some(e) = &p.error {
        lines.push(format!("error: {e}"));
    }
    lines
}

/// Plans (dry run) or runs a compaction of `catalog`. `Err` when it could
/// not start; a run that failed part-way is `Ok` with `summary.phase` failed
/// (what was complete is committed).
pub async fn run(
    catalog: Arc<EarthCatalog>,
    request: CompactRequest,
    lock: &LockSettings,
    ledger: Option<crate::runs::LedgerOptions>,
    progress: watch::Sender<CompactProgress>,
    stop: &crate::runs::Stop,
) -> Result<CompactOutcome, JobError> {
    let opts = CompactOptions {
        threshold: request.threshold.unwrap_or(2).max(2),
        dry_run: request.dry_run,
        ..CompactOptions::default()
    };
    let summary = crate::compact::run_locked(catalog, opts, lock, ledger, progress, stop).await?;
    let follow_up = (request.dry_run && summary.buckets_planned > 0).then(|| CompactRequest {
        dry_run: false,
        ..request.clone()
    });
    let mut lines = describe(&summary);
    if request.dry_run && summary.buckets_planned == 0 {
        lines.push("nothing to compact".into());
    }
    Ok(CompactOutcome {
        committed: summary.commits > 0,
        lines,
        follow_up,
        summary,
    })
}

/// Runs `req` as job `id` on a new task, its progress and outcome sent as events.
pub(super) fn spawn(jobs: &Jobs, id: JobId, req: CompactRequest) -> tokio::task::JoinHandle<()> {
    let _ = jobs.inner.events.send(Event::JobStarted {
        id,
        kind: JobKind::Compact,
        label: if req.dry_run {
            "compaction plan (dry run)".into()
        } else {
            "compaction".into()
        },
        spec: None,
    });
    let (progress_tx, mut progress_rx) = watch::channel(crate::compact::CompactProgress::default());
    let stop = crate::runs::Stop::new();
    jobs.inner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, stop.clone());
    let inner = jobs.inner.clone();
    tokio::spawn(async move {
        let forward = {
            let events = inner.events.clone();
            tokio::spawn(async move {
                while progress_rx.changed().await.is_ok() {
                    let progress = progress_rx.borrow_and_update().clone();
                    if events
                        .send(Event::CompactProgress { id, progress })
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        let result = run(
            inner.catalog.clone(),
            req,
            &inner.config.lock,
            inner.config.ledger,
            progress_tx,
            &stop,
        )
        .await;
        let _ = forward.await;
        inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if result.as_ref().is_ok_and(|o| o.committed) {
            inner.stats.refresh();
        }
        match &result {
            Ok(o) => tracing::info!("compaction job {id}: {}", o.lines.join("; ")),
            Err(e) => tracing::error!("compaction job {id}: {e}"),
        }
        let _ = inner.events.send(Event::Compact { id, result });
    })
}
