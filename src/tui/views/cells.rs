//! Cells: the top cells by rows (j/k select one, which the map marks).

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

/// The selected top cell.
#[derive(Debug, Default)]
pub struct CellsView {
    pub selected: usize,
}

impl CellsView {
    pub fn act(&mut self, action: Action, data: &Model) {
        let len = data.stats.as_ref().map_or(0, |s| s.stats.top_cells.len());
        move_selection(&mut self.selected, len, action);
    }
}
