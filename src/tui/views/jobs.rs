//! Overview and Jobs: the jobs list (shared by both views) and the job
//! actions: new ingest, compaction plan, pause/resume, cancel, dead letters.
//! The list holds the console's own jobs and every other run on the catalog
//! the ledger shows; pause and cancel of an external run are requests the run
//! honours at its next commit, and resume runs a paused ingest again here.

use super::{Effects, View, move_selection};
use crate::jobs::{CompactRequest, IngestSpec, JobKind, MaintenanceRequest, Request};
use crate::runs::{RunKind, RunState, RunView};
use crate::tui::keymap::Action;
use crate::tui::modal::{Confirm, Modal};
use crate::tui::model::{JobRow, JobState, JobView, Model};

pub const COMMANDS: &[Action] = &[
    Action::Up,
    Action::Down,
    Action::PageUp,
    Action::PageDown,
    Action::First,
    Action::Last,
    Action::NewIngest,
    Action::Compact,
    Action::PauseResume,
    Action::CancelJob,
    Action::DeadLetters,
    Action::RetryDeadLetters,
    Action::Expire,
    Action::RemoveOrphans,
];

/// The selected row of the jobs list.
#[derive(Debug, Default)]
pub struct JobsView {
    pub selected: usize,
}

impl JobsView {
    /// The selected row: one of the console's jobs or an external run.
    pub fn selected_row<'a>(&self, data: &'a Model) -> Option<JobRow<'a>> {
        data.rows().get(self.selected).copied()
    }

    /// The selected row when it is one of the console's jobs.
    pub fn selected_job<'a>(&self, data: &'a Model) -> Option<&'a JobView> {
        match self.selected_row(data)? {
            JobRow::Own(job) => Some(job),
            JobRow::External(_) => None,
        }
    }

    pub fn act(&mut self, action: Action, data: &mut Model, fx: &mut Effects) {
        if move_selection(&mut self.selected, data.rows().len(), action) {
            return;
        }
        if let Some(JobRow::External(run)) = self.selected_row(data) {
            let run = run.clone();
            return match action {
                Action::NewIngest => fx.open(Modal::CommandLine("ingest ".into())),
                Action::Compact => plan_compaction(None, fx),
                Action::PauseResume => external_pause_resume(&run, fx),
                Action::CancelJob => external_cancel(&run, fx),
                Action::DeadLetters => external_dead_letters(&run, fx),
                _ => {}
            };
        }
        match action {
            Action::NewIngest => fx.open(Modal::CommandLine("ingest ".into())),
            Action::Compact => plan_compaction(None, fx),
            Action::PauseResume => self.pause_resume(data, fx),
            Action::CancelJob => self.cancel(data, fx),
            Action::DeadLetters => self.dead_letters(data, fx),
            Action::RetryDeadLetters => {
                let spec = IngestSpec::new(crate::ingest::IngestParams {
                    retry_dead_letters: true,
                    ..Default::default()
                });
                fx.say("retrying the catalog's dead letters");
                fx.request(Request::Ingest(Box::new(spec)));
            }
            Action::Expire => fx.open(Modal::CommandLine("expire 7d --retain-last 1".into())),
            Action::RemoveOrphans => fx.open(Modal::CommandLine("orphans 3d".into())),
            _ => {}
        }
    }

    fn pause_resume(&self, data: &mut Model, fx: &mut Effects) {
        let Some(job) = self.selected_job(data) else {
            return fx.error("no job selected");
        };
        let id = job.id;
        match (job.state, job.kind, &job.spec) {
            (JobState::Running, JobKind::Ingest, _) => {
                fx.request(Request::Cancel { id, pause: true });
                if let Some(job) = data.job_mut(id) {
                    job.state = JobState::Pausing;
                }
                fx.say(format!("pausing job {id} at its next chunk boundary"));
            }
            (
                JobState::Paused | JobState::Cancelled | JobState::Failed,
                JobKind::Ingest,
                Some(spec),
            ) => {
                let mut spec = spec.clone();
                spec.resume_id = Some(id);
                fx.request(Request::Ingest(Box::new(spec)));
                fx.say(format!("resuming job {id} from its last checkpoint"));
            }
            _ => fx.error("only a running or paused ingest can be paused or resumed"),
        }
    }

    fn cancel(&self, data: &Model, fx: &mut Effects) {
        match self.selected_job(data) {
            Some(job) if job.state.is_active() => {
                let id = job.id;
                fx.open(Modal::Confirm(Confirm::new(
                    format!("Cancel job {id}?"),
                    vec![
                        job.label.clone(),
                        "It stops at its next chunk boundary; what is complete stays committed."
                            .into(),
                    ],
                    Request::Cancel { id, pause: false },
                )))
            }
            _ => fx.error("no running job selected"),
        }
    }

    fn dead_letters(&self, data: &Model, fx: &mut Effects) {
        let Some(job) = self.selected_job(data) else {
            return fx.error("no job selected");
        };
        match job.progress.as_ref().map(|p| p.job_id.clone()) {
            Some(job_id) if !job_id.is_empty() => {
                fx.request(Request::DeadLetters { id: job.id, job_id });
                fx.go(View::Jobs);
            }
            _ => fx.error("this job has no dead letters (not an ingest that ran)"),
        }
    }
}

/// Pause a running external run (at its next commit), or run a paused,
/// cancelled, failed or abandoned external ingest again from its checkpoint.
fn external_pause_resume(run: &RunView, fx: &mut Effects) {
    match (run.state, run.kind) {
        (RunState::Running, _) => fx.request(Request::RunControl {
            run: run.id.clone(),
            request: crate::runs::Request::Pause,
        }),
        (
            RunState::Paused | RunState::Cancelled | RunState::Failed | RunState::Abandoned,
            RunKind::Ingest,
        ) => match resume_spec(run) {
            Some(spec) => {
                fx.say(format!("resuming run {} here from its checkpoint", run.id));
                fx.request(Request::Ingest(Box::new(spec)));
            }
            None => fx.error(format!("run {}: its inputs cannot be read", run.id)),
        },
        _ => fx.error(format!(
            "run {} is {}: only a running run can be paused, a stopped ingest resumed",
            run.id,
            run.state.label()
        )),
    }
}

/// The console ingest that continues an external ingest run's job.
fn resume_spec(run: &RunView) -> Option<crate::jobs::IngestSpec> {
    let mut params: crate::ingest::IngestParams =
        serde_json::from_value(run.record.inputs.clone()).ok()?;
    if params.job.is_none() {
        params.job = run.record.inputs["job_id"].as_str().map(str::to_string);
    }
    Some(crate::jobs::IngestSpec::new(params))
}

fn external_cancel(run: &RunView, fx: &mut Effects) {
    if !matches!(run.state, RunState::Running | RunState::Stalled) {
        return fx.error(format!(
            "run {} is {}: nothing to cancel",
            run.id,
            run.state.label()
        ));
    }
    let where_ = match run.workers.first() {
        Some(w) if run.workers.len() == 1 => {
            format!("{} (pid {} on {})", w.engine_task, w.pid, w.host)
        }
        _ => format!("{} workers", run.workers.len()),
    };
    fx.open(Modal::Confirm(Confirm::new(
        format!("Cancel run {}?", run.id),
        vec![
            format!(
                "{} started by {}@{} — {where_}",
                run.kind.label(),
                run.user,
                run.host
            ),
            "It stops at its next commit and exits 130; rerunning it resumes from the checkpoint."
                .into(),
        ],
        Request::RunControl {
            run: run.id.clone(),
            request: crate::runs::Request::Cancel,
        },
    )))
}

fn external_dead_letters(run: &RunView, fx: &mut Effects) {
    let job_id = run
        .record
        .summary
        .as_ref()
        .and_then(|s| s["job_id"].as_str())
        .or(run.record.inputs["job_id"].as_str());
    match job_id {
        Some(job_id) if run.kind == RunKind::Ingest => fx.request(Request::RunDeadLetters {
            run: run.id.clone(),
            job_id: job_id.to_string(),
        }),
        _ => fx.error(format!("run {} has no dead letters to read", run.id)),
    }
}

/// Asks for a compaction plan (a dry run); its outcome asks to run it.
pub fn plan_compaction(threshold: Option<usize>, fx: &mut Effects) {
    fx.request(Request::Compact(CompactRequest {
        dry_run: true,
        threshold,
    }));
    fx.say("planning compaction (dry run)…");
    fx.go(View::Jobs);
}

/// Asks for a maintenance plan (a dry run); its outcome asks, by typed
/// confirmation, to run it.
pub fn plan_maintenance(request: MaintenanceRequest, fx: &mut Effects) {
    fx.say(format!("planning: {}…", request.label()));
    fx.request(Request::Maintenance(request));
    fx.go(View::Jobs);
}
