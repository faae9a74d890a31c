//! The views (tabs). Each view owns its state and its key handling, and
//! lists the actions it offers (`COMMANDS`): that list feeds the key
//! dispatch, the footer and the `?` help through the one key table
//! ([`super::keymap`]). What a view cannot do itself (start background
//! work, open a dialog, switch views, say something) it asks for through
//! [`Effects`], which the app carries out.
//!
//! Shared data that several views show (stats, lock, jobs) lives in
//! [`super::model::Model`]; a view's own state is its selection, sort,
//! form and the like.

pub mod backfill;
pub mod cells;
pub mod history;
pub mod jobs;
pub mod lock;
pub mod logs;
pub mod partitions;
pub mod query;

use super::keymap::Action;
use super::modal::Modal;
use super::model::Model;
use crate::jobs::Request;

/// The views (tabs), in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Jobs,
    Partitions,
    Cells,
    Lock,
    Query,
    Logs,
    History,
    Backfill,
}

impl View {
    pub const ALL: [View; 9] = [
        View::Overview,
        View::Jobs,
        View::Partitions,
        View::Cells,
        View::Lock,
        View::Query,
        View::Logs,
        View::History,
        View::Backfill,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Jobs => "Jobs",
            View::Partitions => "Partitions",
            View::Cells => "Cells",
            View::Lock => "Lock",
            View::Query => "Query",
            View::Logs => "Logs",
            View::History => "History",
            View::Backfill => "Backfill",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// The view `delta` tabs away (wrapping).
    pub fn step(self, delta: isize) -> View {
        let n = View::ALL.len() as isize;
        View::ALL[(self.index() as isize + delta).rem_euclid(n) as usize]
    }
}

/// The actions `view` offers (besides the global ones).
pub fn commands(view: View) -> &'static [Action] {
    match view {
        View::Overview | View::Jobs => jobs::COMMANDS,
        View::Partitions => partitions::COMMANDS,
        View::Cells => cells::COMMANDS,
        View::Lock => lock::COMMANDS,
        View::Query => query::COMMANDS,
        View::Logs => logs::COMMANDS,
        View::History => history::COMMANDS,
        View::Backfill => backfill::COMMANDS,
    }
}

/// Something a view asks the app to do.
#[derive(Debug)]
pub enum Effect {
    /// Hand this to the background jobs.
    Request(Request),
    /// A line for the status bar (`true`: an error).
    Status(String, bool),
    Open(Modal),
    Go(View),
}

/// The effects of one key, in order.
#[derive(Debug, Default)]
pub struct Effects(pub Vec<Effect>);

impl Effects {
    pub fn request(&mut self, r: Request) {
        self.0.push(Effect::Request(r));
    }
    pub fn say(&mut self, text: impl Into<String>) {
        self.0.push(Effect::Status(text.into(), false));
    }
    pub fn error(&mut self, text: impl Into<String>) {
        self.0.push(Effect::Status(text.into(), true));
    }
    pub fn open(&mut self, m: Modal) {
        self.0.push(Effect::Open(m));
    }
    pub fn go(&mut self, v: View) {
        self.0.push(Effect::Go(v));
    }
}

/// Every view's own state.
#[derive(Debug)]
pub struct Views {
    pub jobs: jobs::JobsView,
    pub partitions: partitions::PartitionsView,
    pub cells: cells::CellsView,
    pub lock: lock::LockView,
    pub query: query::QueryView,
    pub logs: logs::LogsView,
    pub history: history::HistoryView,
    pub backfill: backfill::BackfillView,
}

impl Default for Views {
    fn default() -> Self {
        Self {
            jobs: jobs::JobsView::default(),
            partitions: partitions::PartitionsView::default(),
            cells: cells::CellsView::default(),
            lock: lock::LockView,
            query: query::QueryView::default(),
            logs: logs::LogsView::default(),
            history: history::HistoryView::default(),
            backfill: backfill::BackfillView::default(),
        }
    }
}

impl Views {
    /// Hands `action` (one of `commands(view)`) to the view that owns it.
    pub fn act(&mut self, view: View, action: Action, data: &mut Model, fx: &mut Effects) {
        match view {
            View::Overview | View::Jobs => self.jobs.act(action, data, fx),
            View::Partitions => self.partitions.act(action, data, fx),
            View::Cells => self.cells.act(action, data),
            View::Lock => self.lock.act(action, data, fx),
            View::Query => self.query.act(action, fx),
            View::Logs => self.logs.act(action),
            View::History => self.history.act(action, data),
            View::Backfill => self.backfill.act(action, data, fx),
        }
    }
}

/// Moves a list selection for the list keys (`len` rows); other actions
/// leave it. Returns true if `action` was a list key.
pub fn move_selection(selected: &mut usize, len: usize, action: Action) -> bool {
    let delta: isize = match action {
        Action::Up => -1,
        Action::Down => 1,
        Action::PageUp => -10,
        Action::PageDown => 10,
        Action::First => isize::MIN / 2,
        Action::Last => isize::MAX / 2,
        _ => return false,
    };
    if len == 0 {
        *selected = 0;
        return true;
    }
    *selected = (*selected as isize)
        .saturating_add(delta)
        .clamp(0, len as isize - 1) as usize;
    true
}

/// The list keys, offered by every view with a list.
pub const LIST: [Action; 6] = [
    Action::Up,
    Action::Down,
    Action::PageUp,
    Action::PageDown,
    Action::First,
    Action::Last,
];
