//! Ingest jobs of the console: [`crate::ingest::run_locked`] on a tokio task,
//! its progress forwarded as [`Event::IngestProgress`], a stats refresh after
//! every commit. Pause is a cancel at the next chunk boundary (what is
//! complete is committed); resume starts the same spec again, which the
//! engine continues after the job's last checkpoint.

use tokio::sync::{oneshot, watch};

use super::{Event, JobId, JobKind, Jobs};
use crate::ingest::{IngestParams, IngestProgress};
use crate::runs::Stop;

/// An ingest job as the console starts it.
#[derive(Debug, Clone)]
pub struct IngestSpec {
    /// Shown in the jobs pane.
    pub label: String,
    /// What to ingest; built into options by the engine's one builder, with
    /// the catalog's S3 settings.
    pub params: IngestParams,
    /// Resume this paused job (keeps its row in the jobs pane).
    pub resume_id: Option<JobId>,
    /// Items the inventory lists, when known (progress and ETA by items).
    pub expected_items: Option<u64>,
}

impl IngestSpec {
    /// A console ingest of `params`.
    pub fn new(params: IngestParams) -> Self {
        Self {
            label: params.label(),
            params,
            resume_id: None,
            expected_items: None,
        }
    }

    /// An ingest of `inventory` (path or URL) with items fetched from
    /// `items_root` (or from the inventory's bucket), in chunks of `chunk_size`.
    pub fn inventory(
        inventory: &str,
        items_root: Option<&str>,
        job_name: Option<&str>,
        chunk_size: usize,
        concurrency: usize,
    ) -> Self {
        Self::new(IngestParams {
            job: job_name.map(str::to_string),
            chunk_size: Some(chunk_size.max(1)),
            concurrency: Some(concurrency.max(1)),
            ..IngestParams::inventory(inventory, items_root)
        })
    }
}

/// Runs `spec` as job `id` on a new task; `done` receives the summary.
pub(super) fn spawn(
    jobs: &Jobs,
    id: JobId,
    spec: IngestSpec,
    done: oneshot::Sender<IngestProgress>,
) -> tokio::task::JoinHandle<()> {
    let inner = jobs.inner.clone();
    let (progress_tx, mut progress_rx) = watch::channel(IngestProgress::default());
    let stop = Stop::new();
    inner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, stop.clone());
    let _ = inner.events.send(Event::JobStarted {
        id,
        kind: JobKind::Ingest,
        label: spec.label.clone(),
        spec: Some(spec.clone()),
    });
    tracing::info!("ingest job {id} ({}) started", spec.label);
    // Forward every snapshot; a new commit makes the stats stale.
    let forwarder = {
        let (events, stats) = (inner.events.clone(), inner.stats.clone());
        tokio::spawn(async move {
            let mut commits = 0;
            while progress_rx.changed().await.is_ok() {
                let progress = progress_rx.borrow_and_update().clone();
                if progress.commits != commits {
                    commits = progress.commits;
                    stats.refresh();
                }
                if events.send(Event::IngestProgress { id, progress }).is_err() {
                    return;
                }
            }
        })
    };
    tokio::spawn(async move {
        let result = crate::ingest::run_locked(
            inner.catalog.clone(),
            &spec.params,
            &inner.config.lock,
            inner.config.ledger,
            progress_tx,
            &stop,
        )
        .await;
        // The sender is gone: the forwarder drains the last snapshot and ends.
        let _ = forwarder.await;
        inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        inner.stats.refresh();
        let paused = stop.is_pause();
        match &result {
            Ok(p) => tracing::info!(
                "ingest job {id} ended ({:?}): {} items, {} rows, {} failed, {} commits",
                p.phase,
                p.items,
                p.rows,
                p.failed,
                p.commits
            ),
            Err(e) => tracing::error!("ingest job {id} could not run: {e}"),
        }
        if let Ok(p) = &result {
            let _ = done.send(p.clone());
        }
        let _ = inner
            .events
            .send(Event::IngestFinished { id, result, paused });
    })
}
