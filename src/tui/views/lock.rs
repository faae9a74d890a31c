//! Lock: acquire a maintenance lock, release the console's, steal a stale
//! one through the typed-confirmation dialog. The `:acquire`, `:release`
//! and `:steal` commands call the same functions.

use std::time::Duration;

use super::{Effects, View};
use crate::jobs::{LockCommand, Request};
use crate::tui::dialogs::steal::StealDialog;
use crate::tui::keymap::Action;
use crate::tui::modal::{Confirm, Modal};
use crate::tui::model::Model;

pub const COMMANDS: &[Action] = &[Action::Acquire, Action::Release, Action::Steal];

/// The lock view keeps nothing of its own: the lock is shared data.
#[derive(Debug, Default)]
pub struct LockView;

/// TTL of a lock taken with `a` (the console renews it while it holds it).
pub const ACQUIRE_TTL: Duration = Duration::from_secs(3600);

impl LockView {
    pub fn act(&mut self, action: Action, data: &Model, fx: &mut Effects) {
        match action {
            Action::Acquire => acquire(ACQUIRE_TTL, fx),
            Action::Release => release(data, fx),
            Action::Steal => steal(data, fx),
            _ => {}
        }
    }
}

/// Takes the lock for a maintenance window of `ttl`.
pub fn acquire(ttl: Duration, fx: &mut Effects) {
    fx.request(Request::Lock(LockCommand::Acquire { ttl }));
    fx.go(View::Lock);
}

/// Asks to release the lock the console holds.
pub fn release(data: &Model, fx: &mut Effects) {
    fx.go(View::Lock);
    match data.lock.held_generation {
        Some(g) => fx.open(Modal::Confirm(Confirm::new(
            "Release the lock?",
            vec![format!(
                "The console holds generation {g}; it is replaced by a release marker."
            )],
            Request::Lock(LockCommand::Release),
        ))),
        None => fx.error(
            "the console holds no lock (a lock taken elsewhere is released there, or stolen when stale)",
        ),
    }
}

/// Opens the steal dialog on the lock as last read.
pub fn steal(data: &Model, fx: &mut Effects) {
    fx.go(View::Lock);
    match &data.lock.watched {
        Some(watched) => fx.open(Modal::Steal(StealDialog::open(watched))),
        None => fx.error("the lock has not been read yet"),
    }
}
