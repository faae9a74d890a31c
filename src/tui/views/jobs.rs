//! Overview and Jobs: the jobs list (shared by both views) and the job
//! actions: new ingest, compaction plan, pause/resume, cancel, dead letters.

use super::{Effects, View, move_selection};
use crate::jobs::{CompactRequest, IngestSpec, JobKind, MaintenanceRequest, Request};
use crate::tui::keymap::Action;
use crate::tui::modal::{Confirm, Modal};
use crate::tui::model::{JobState, JobView, Model};

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
    pub fn selected_job<'a>(&self, data: &'a Model) -> Option<&'a JobView> {
        data.jobs.get(self.selected)
    }

    pub fn act(&mut self, action: Action, data: &mut Model, fx: &mut Effects) {
        if move_selection(&mut self.selected, data.jobs.len(), action) {
            return;
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
