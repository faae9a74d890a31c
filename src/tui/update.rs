//! Background events applied to the app, one named step per event kind.

use std::time::Instant;

use super::app::App;
use super::modal::{Confirm, Modal};
use super::model::{JobState, JobView};
use crate::compact::CompactPhase;
use crate::ingest::{IngestProgress, Phase};
use crate::jobs::throughput::Totals;
use crate::jobs::{
    CompactOutcome, Event, IngestSpec, JobId, JobKind, LockAction, LockOutcome, MaintenanceOutcome,
    QueryOutcome, Request,
};
use crate::runs::JobError;

impl App {
    /// Applies a background event.
    pub fn on_event(&mut self, event: Event) {
        // A re-read of an unchanged lock or ledger only moves ages: those tick slowly.
        let quiet = match &event {
            Event::Lock(Ok(w)) => self.same_lock(w),
            Event::Runs(Ok(s)) => self.same_runs(s),
            Event::Presence(o) => *o == self.data.others,
            Event::Backfills(b) => *b == self.data.backfills,
            _ => false,
        };
        if quiet {
            self.age_tick(Instant::now());
        } else {
            self.dirty = true;
        }
        match event {
            Event::JobStarted {
                id,
                kind,
                label,
                spec,
            } => self.job_started(id, kind, label, spec),
            Event::IngestProgress { id, progress } => {
                if let Some(job) = self.data.job_mut(id) {
                    job.progress = Some(progress);
                }
            }
            Event::IngestFinished { id, result, paused } => {
                self.ingest_finished(id, result, paused)
            }
            Event::DeadLetters { id, result } => {
                if let Some(job) = self.data.job_mut(id) {
                    job.dead_letters = Some(result);
                }
            }
            Event::CompactProgress { id, progress } => {
                if let Some(job) = self.data.job_mut(id) {
                    job.lines = crate::jobs::compact::describe(&progress);
                    job.compact = Some(progress);
                }
            }
            Event::Compact { id, result } => self.compaction_finished(id, result),
            Event::Query { id, result } => self.query_finished(id, result),
            Event::Maintenance { id, result } => self.maintenance_finished(id, result),
            Event::Stats(Ok(view)) => {
                self.data.stats = Some(view);
                self.data.stats_error = None;
            }
            Event::Stats(Err(e)) => self.data.stats_error = Some(e.message()),
            Event::Lock(Ok(watched)) => {
                if let Some(dialog) = self.modals.steal_mut() {
                    dialog.observe(&watched);
                }
                let lock = &mut self.data.lock;
                lock.watched = Some(watched);
                lock.error = None;
                lock.read_at = Some(Instant::now());
            }
            Event::Lock(Err(e)) => self.data.lock.error = Some(e.message()),
            Event::LockOutcome(outcome) => self.lock_outcome(outcome),
            Event::Runs(Ok(snapshot)) => self.runs_read(snapshot),
            Event::Runs(Err(e)) => self.data.runs.error = Some(e.message()),
            Event::RunDeadLetters { run, result } => {
                self.data.runs.dead_letters.insert(run, result);
            }
            Event::Notice(text) => self.set_status(text, false),
            Event::Presence(others) => self.data.others = others,
            Event::Backfills(statuses) => self.data.backfills = statuses,
        }
    }

    /// A new reading of the ledger: external runs seen running keep their
    /// counters in the throughput totals from now on.
    fn runs_read(&mut self, snapshot: std::sync::Arc<crate::runs::Snapshot>) {
        self.data.runs.snapshot = Some(snapshot);
        self.data.runs.error = None;
        let live: Vec<String> = self
            .data
            .external_runs()
            .iter()
            .filter(|r| r.state == crate::runs::RunState::Running)
            .map(|r| r.id.clone())
            .collect();
        self.data.runs.seen_live.extend(live);
    }

    /// True if `s` says nothing new: the same runs, states and counters, and
    /// nothing running (a live run's rates and ages are news).
    fn same_runs(&self, s: &crate::runs::Snapshot) -> bool {
        let Some(old) = &self.data.runs.snapshot else {
            return false;
        };
        let key = |r: &crate::runs::RunView| (r.id.clone(), r.state, r.counters());
        s.runs.iter().all(|r| !r.is_live())
            && old.runs.len() == s.runs.len()
            && old.runs.iter().map(key).eq(s.runs.iter().map(key))
            && old.unreadable == s.unreadable
    }

    /// True if `w` shows the lock object and verdict already shown.
    fn same_lock(&self, w: &crate::lock::Watched) -> bool {
        self.data
            .lock
            .watched
            .as_deref()
            .is_some_and(|old| old.stale == w.stale && old.state.same_object(&w.state))
            && self.data.lock.error.is_none()
    }

    /// A new job, or a resumed one (which keeps its earlier counters).
    fn job_started(&mut self, id: JobId, kind: JobKind, label: String, spec: Option<IngestSpec>) {
        if let Some(job) = self.data.job_mut(id) {
            job.carried = job.totals();
            job.progress = None;
            job.state = JobState::Running;
            job.error = None;
            job.ended = None;
            return;
        }
        self.data.jobs.push(JobView {
            id,
            kind,
            label,
            expected_items: spec.as_ref().and_then(|s| s.expected_items),
            spec,
            state: JobState::Running,
            progress: None,
            compact: None,
            carried: Totals::default(),
            error: None,
            started: Instant::now(),
            ended: None,
            dead_letters: None,
            lines: vec![],
        });
    }

    fn ingest_finished(
        &mut self,
        id: JobId,
        result: Result<IngestProgress, JobError>,
        paused: bool,
    ) {
        let Some(job) = self.data.job_mut(id) else {
            return;
        };
        job.ended = Some(Instant::now());
        let (message, bad) = match result {
            Ok(p) => {
                job.state = match p.phase {
                    Phase::Cancelled if paused => JobState::Paused,
                    Phase::Cancelled => JobState::Cancelled,
                    Phase::Failed => JobState::Failed,
                    _ => JobState::Done,
                };
                job.error = p.error.clone();
                job.progress = Some(p);
                let t = job.totals();
                let message = format!(
                    "job {id} {}: {} items, {} rows, {} failed",
                    job.state.label(),
                    t.items,
                    t.rows,
                    t.failed
                );
                (message, job.state == JobState::Failed)
            }
            Err(e) => {
                job.state = JobState::Failed;
                let message = format!("job {id} failed: {e}");
                job.error = Some(e.message());
                (message, true)
            }
        };
        self.set_status(message, bad);
    }

    /// A compaction plan or run ended; a plan with work asks to run it.
    fn compaction_finished(&mut self, id: JobId, result: Result<CompactOutcome, JobError>) {
        let Some(job) = self.data.job_mut(id) else {
            return;
        };
        job.ended = Some(Instant::now());
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                job.state = JobState::Failed;
                let message = format!("compaction: {e}");
                job.error = Some(e.message());
                return self.set_status(message, true);
            }
        };
        job.state = match outcome.summary.phase {
            CompactPhase::Failed => JobState::Failed,
            CompactPhase::Cancelled => JobState::Cancelled,
            _ => JobState::Done,
        };
        job.error = outcome.summary.error.clone();
        job.lines = outcome.lines.clone();
        let failed = job.state == JobState::Failed;
        job.compact = Some(outcome.summary);
        self.set_status(outcome.lines.join(" · "), failed);
        if let Some(request) = outcome.follow_up {
            let mut lines = outcome.lines;
            lines.extend(self.data.others_warning());
            self.modals.push(Modal::Confirm(Confirm::new(
                "Run this compaction?",
                lines,
                Request::Compact(request),
            )));
        }
    }

    /// A maintenance plan or run ended; a plan with work asks to run it,
    /// confirmed by typing the number of files it deletes.
    fn maintenance_finished(&mut self, id: JobId, result: Result<MaintenanceOutcome, JobError>) {
        let Some(job) = self.data.job_mut(id) else {
            return;
        };
        job.ended = Some(Instant::now());
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                job.state = JobState::Failed;
                let message = format!("{}: {e}", job.label);
                job.error = Some(e.message());
                return self.set_status(message, true);
            }
        };
        job.state = JobState::Done;
        job.lines = outcome.lines.clone();
        let title = job.label.clone();
        self.set_status(outcome.lines.join(" · "), false);
        if let Some(request) = outcome.follow_up {
            let mut lines = outcome.lines;
            lines.push(String::new());
            lines.push(format!(
                "Type {} (the number of files) and confirm to delete them.",
                outcome.files
            ));
            self.modals.push(Modal::Confirm(Confirm::typed(
                format!("Run: {}?", title.trim_end_matches(" plan (dry run)")),
                lines,
                Request::Maintenance(request),
                outcome.files.to_string(),
            )));
        }
    }

    fn query_finished(&mut self, id: JobId, result: Result<QueryOutcome, JobError>) {
        if let Some(job) = self.data.job_mut(id) {
            job.ended = Some(Instant::now());
            match &result {
                Ok(o) => {
                    job.state = JobState::Done;
                    job.lines = vec![format!(
                        "{} results in {} ms",
                        o.rows.len(),
                        o.took.as_millis()
                    )];
                }
                Err(e) => {
                    job.state = JobState::Failed;
                    job.error = Some(e.message());
                }
            }
        }
        let status = match &result {
            Ok(o) => (
                format!(
                    "query: {} results in {} ms",
                    o.rows.len(),
                    o.took.as_millis()
                ),
                false,
            ),
            Err(e) => (format!("query: {e}"), true),
        };
        if self.views.query.finished(id, result) {
            self.set_status(status.0, status.1);
        }
    }

    fn lock_outcome(&mut self, outcome: LockOutcome) {
        self.data.lock.held_generation = outcome.held_generation;
        if outcome.action == LockAction::Steal
            && let Some(dialog) = self.modals.steal_mut()
        {
            dialog.finish(outcome.clone());
        }
        self.set_status(
            format!("lock {}: {}", outcome.action.label(), outcome.message),
            !outcome.ok,
        );
        self.data.lock.outcome = Some(outcome);
    }
}
