//! Ingest jobs of the console: [`crate::ingest::run_locked`] on a tokio task,
//! its progress forwarded as [`Event::IngestProgress`], a stats refresh after
//! every commit. Pause is a cancel at the next chunk boundary (what is
//! complete is committed); resume starts the same spec again, which the
//! engine continues after the job's last checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::{Event, JobId, JobKind, Jobs};
use crate::ingest::{
    FetchOptions, Filter, IngestOptions, IngestProgress, InventoryInput, Mode, RetryPolicy,
};

/// An ingest job as the console starts it.
#[derive(Debug, Clone)]
pub struct IngestSpec {
    /// Shown in the jobs pane.
    pub label: String,
    pub opts: IngestOptions,
    /// Resume this paused job (keeps its row in the jobs pane).
    pub resume_id: Option<JobId>,
    /// Items the inventory lists, when known (progress and ETA by items).
    pub expected_items: Option<u64>,
}

impl IngestSpec {
    /// An ingest of `inventory` (path or URL) with items fetched from
    /// `items_root` (or from the inventory's bucket), in chunks of `chunk_size`.
    pub fn inventory(
        inventory: &str,
        items_root: Option<&str>,
        job_name: Option<&str>,
        chunk_size: usize,
        concurrency: usize,
    ) -> Self {
        let opts = IngestOptions {
            inventory: InventoryInput::File(inventory.to_string()),
            filter: Filter::default(),
            fetch: FetchOptions {
                items_root: items_root.map(str::to_string),
                timeout: Duration::from_secs(30),
                retry: RetryPolicy::default(),
                pool_per_host: concurrency.max(1),
            },
            chunk_size: chunk_size.max(1),
            concurrency: concurrency.max(1),
            mode: Mode::Delta,
            job_name: job_name.map(str::to_string),
            ..IngestOptions::default()
        };
        let name = std::path::Path::new(inventory)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| inventory.to_string());
        Self {
            label: job_name.map_or(name, str::to_string),
            opts,
            resume_id: None,
            expected_items: None,
        }
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
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let paused = Arc::new(AtomicBool::new(false));
    inner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, (cancel_tx, paused.clone()));
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
            spec.opts.clone(),
            &inner.config.lock,
            progress_tx,
            cancel_rx,
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
        let paused = paused.load(Ordering::SeqCst);
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
        let _ = inner.events.send(Event::IngestFinished {
            id,
            result: result.map_err(|e| crate::store::redact_secrets(&e.to_string())),
            paused,
        });
    })
}
