//! History: what the console did, as the headless commands (and, for
//! queries, PyIceberg and DuckDB one-liners) with the same effect; `Y`
//! copies the selected one.

use super::move_selection;
use crate::tui::keymap::Action;
use crate::tui::model::Model;

pub const COMMANDS: &[Action] = &[
    Action::Up,
    Action::Down,
    Action::PageUp,
    Action::PageDown,
    Action::First,
    Action::Last,
];

/// The selected line (one per equivalent command, newest entry first).
#[derive(Debug, Default)]
pub struct HistoryView {
    pub selected: usize,
}

impl HistoryView {
    pub fn act(&mut self, action: Action, data: &Model) {
        move_selection(&mut self.selected, data.history_lines().len(), action);
    }
}
