//! Backfill: every backfill run of the catalog, from the run ledger and the
//! run's markers — phase, chunks, buckets, the workers with their engine
//! tasks, stragglers, failed chunks and ETA per phase. A writer console
//! starts one (`n`, or `:backfill INVENTORY …`), retries what is not done
//! (`r`) and commits (`c`), each after a confirmation.

use super::{Effects, View, move_selection};
use crate::backfill::{BackfillState, Status};
use crate::jobs::{BackfillRequest, BackfillSpec, Request};
use crate::tui::keymap::Action;
use crate::tui::modal::{Confirm, Modal};
use crate::tui::model::Model;

pub const COMMANDS: &[Action] = &[
    Action::Up,
    Action::Down,
    Action::PageUp,
    Action::PageDown,
    Action::First,
    Action::Last,
    Action::NewBackfill,
    Action::RetryBackfill,
    Action::CommitBackfill,
];

/// The selected backfill run (in [`Model::backfills`], newest first).
#[derive(Debug, Default)]
pub struct BackfillView {
    pub selected: usize,
}

impl BackfillView {
    /// The selected run's status.
    pub fn selected_run<'a>(&self, data: &'a Model) -> Option<&'a Status> {
        data.backfills.get(self.selected)
    }

    /// The run named `run`, or the selected one.
    pub fn run<'a>(&self, run: Option<&str>, data: &'a Model) -> Result<&'a Status, String> {
        match run {
            Some(id) => data
                .backfill(id)
                .ok_or_else(|| format!("backfill {id} is not in the run ledger (yet)")),
            None => self
                .selected_run(data)
                .ok_or_else(|| "no backfill selected (Backfill view)".to_string()),
        }
    }

    pub fn act(&mut self, action: Action, data: &Model, fx: &mut Effects) {
        if move_selection(&mut self.selected, data.backfills.len(), action) {
            return;
        }
        let selected = self.run(None, data);
        match action {
            Action::NewBackfill => fx.open(Modal::CommandLine("backfill ".into())),
            Action::RetryBackfill => retry(selected, fx),
            Action::CommitBackfill => commit(selected, data, fx),
            _ => {}
        }
    }
}

/// Asks to plan `spec` and hand it to its engine.
pub fn start(spec: BackfillSpec, data: &Model, fx: &mut Effects) {
    let (plan, p) = (&spec.plan, &spec.plan.params);
    let mut lines = vec![
        format!("inventory   {}", p.inventory.as_deref().unwrap_or("-")),
        format!(
            "items root  {}",
            p.items_root.as_deref().unwrap_or("s3://<bucket>/<key>")
        ),
        format!(
            "tasks       {} map + {} reduce partitions on {} (at most {} at once)",
            plan.tasks,
            plan.partitions,
            spec.engine.label(),
            spec.max_parallel
        ),
        format!(
            "chunks of   {} items · mode {}",
            p.chunk_size.unwrap_or_default(),
            if p.mode == Some(crate::ingest::Mode::Full) {
                "full (into an empty table)"
            } else {
                "delta (appends)"
            }
        ),
        "Plan, map, reduce, then commit under the catalog lock in one snapshot.".into(),
    ];
    lines.extend(data.others_warning());
    fx.open(Modal::Confirm(Confirm::new(
        "Start this backfill?",
        lines,
        Request::Backfill(BackfillRequest::Start(Box::new(spec))),
    )));
    fx.go(View::Backfill);
}

/// Asks to run again what `status` has not done, through its engine.
pub fn retry(status: Result<&Status, String>, fx: &mut Effects) {
    let s = match status {
        Ok(s) => s,
        Err(e) => return fx.error(e),
    };
    if s.state == BackfillState::Committed {
        return fx.error(format!("backfill {} is committed: nothing to retry", s.run));
    }
    let c = &s.chunks;
    let mut lines = vec![
        format!(
            "{} of {} chunks not done ({} failed, {} running now)",
            c.total.saturating_sub(c.done),
            c.total,
            c.failed,
            c.running
        ),
        format!(
            "{} of {} partitions not reduced",
            s.partitions.saturating_sub(s.partitions_reduced),
            s.partitions
        ),
        "The tasks owning them run again through the engine the run recorded;".into(),
        "what is done is skipped, a chunk done twice counts once.".into(),
    ];
    if c.running > 0 {
        lines.push(format!(
            "WARNING: {} chunk(s) are running now; their tasks may be started twice.",
            c.running
        ));
    }
    fx.open(Modal::Confirm(Confirm::new(
        format!("Retry backfill {}?", s.run),
        lines,
        Request::Backfill(BackfillRequest::Retry { run: s.run.clone() }),
    )));
}

/// Asks to commit `status` (refused here already when reduce is not done).
pub fn commit(status: Result<&Status, String>, data: &Model, fx: &mut Effects) {
    let s = match status {
        Ok(s) => s,
        Err(e) => return fx.error(e),
    };
    match s.state {
        BackfillState::Committed => {
            return fx.error(format!("backfill {} is committed already", s.run));
        }
        BackfillState::Committing => {}
        _ => {
            return fx.error(format!(
                "backfill {} is {}: {} of {} partitions reduced; commit when reduce is done",
                s.run,
                s.state.label(),
                s.partitions_reduced,
                s.partitions
            ));
        }
    }
    let mut lines = vec![
        format!(
            "{} files · {} rows from {} buckets in {} partitions",
            s.files, s.rows, s.buckets_reduced, s.partitions
        ),
        "Registered under the catalog lock in one snapshot; then the staging is deleted.".into(),
    ];
    lines.extend(data.others_warning());
    fx.open(Modal::Confirm(Confirm::new(
        format!("Commit backfill {}?", s.run),
        lines,
        Request::Backfill(BackfillRequest::Commit { run: s.run.clone() }),
    )));
}
