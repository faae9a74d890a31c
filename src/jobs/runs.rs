//! The run ledger as the console sees it: a task re-reads it every few
//! seconds (one LIST plus a GET per changed record) and reports every run on
//! the catalog — the console's own and external ones (headless, cron, a
//! cluster) — as [`Event::Runs`], and the backfill runs' phases and chunks
//! (from their markers: new ones only) as [`Event::Backfills`]. Operator requests to external runs
//! (cancel, pause) are written here, never by a read-only console.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Event, Jobs};
use crate::ingest::dead_letter;
use crate::runs::{JobError, Ledger, Request, RunsReader};
use crate::store::Store;

/// Re-reads the ledger every `every` and sends what it sees.
pub(super) fn spawn(
    store: Store,
    events: mpsc::UnboundedSender<Event>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = RunsReader::new(&store);
        let mut backfills = super::backfill::Follower::default();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let snapshot = reader
                .refresh()
                .await
                .map(Arc::new)
                .map_err(JobError::failed);
            // Backfill runs: their phase and chunks from their markers.
            let statuses = match &snapshot {
                Ok(s) => Some(backfills.statuses(&store, s).await),
                Err(_) => None,
            };
            if events.send(Event::Runs(snapshot)).is_err() {
                return;
            }
            if let Some(statuses) = statuses
                && events.send(Event::Backfills(statuses)).is_err()
            {
                return;
            }
        }
    })
}

impl Jobs {
    /// Asks run `run` (anyone's) to stop or pause at its next commit.
    pub(super) fn request_run(&self, run: String, request: Request) {
        if self.refuse_write(&format!("{} of run {run}", request.label())) {
            return;
        }
        let ledger = Ledger::new(self.inner.catalog.base());
        let jobs = self.clone();
        self.track(tokio::spawn(async move {
            match ledger.request(&run, request).await {
                Ok(_) => jobs.notice(format!(
                    "asked run {run} to {}: it stops at its next commit",
                    request.label()
                )),
                Err(e) => jobs.notice(format!(
                    "{} of run {run} failed: {}",
                    request.label(),
                    JobError::failed(e)
                )),
            }
        }));
    }

    /// Reads the dead letters of an external run's ingest job.
    pub(super) fn run_dead_letters(&self, run: String, job_id: String) {
        let base = self.inner.catalog.base().clone();
        let events = self.inner.events.clone();
        self.track(tokio::spawn(async move {
            let result = dead_letter::read_all(&base, Some(&job_id))
                .await
                .map(|(letters, _)| letters)
                .map_err(JobError::failed);
            let _ = events.send(Event::RunDeadLetters { run, result });
        }));
    }
}
