//! Partitions: every (cell, year) with rows, files, bytes and small files,
//! sortable (`s`, `S`) and filterable (`/`).

use super::{Effects, move_selection};
use crate::catalog::health::partition_health;
use crate::catalog::stats::PartitionStats;
use crate::tui::keymap::Action;
use crate::tui::modal::Modal;
use crate::tui::model::Model;

pub const COMMANDS: &[Action] = &[
    Action::Up,
    Action::Down,
    Action::PageUp,
    Action::PageDown,
    Action::First,
    Action::Last,
    Action::Filter,
    Action::Sort,
    Action::SortReverse,
];

/// Sort column of the partitions table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Cell,
    Year,
    Rows,
    Files,
    Bytes,
    Small,
    /// Health score, worst first.
    Health,
}

impl SortKey {
    const ALL: [SortKey; 7] = [
        SortKey::Cell,
        SortKey::Year,
        SortKey::Rows,
        SortKey::Files,
        SortKey::Bytes,
        SortKey::Small,
        SortKey::Health,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Cell => "cell",
            SortKey::Year => "year",
            SortKey::Rows => "rows",
            SortKey::Files => "files",
            SortKey::Bytes => "bytes",
            SortKey::Small => "small",
            SortKey::Health => "health",
        }
    }

    fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// The partitions table's state.
#[derive(Debug, Clone)]
pub struct PartitionsView {
    pub sort: SortKey,
    pub descending: bool,
    /// Substring of the cell or year; edited in [`Modal::Filter`].
    pub filter: String,
    pub selected: usize,
}

impl Default for PartitionsView {
    fn default() -> Self {
        Self {
            sort: SortKey::Cell,
            descending: false,
            filter: String::new(),
            selected: 0,
        }
    }
}

impl PartitionsView {
    /// The partitions the table shows: filtered by the filter text (substring
    /// of the cell or year), sorted by the chosen column (ties by cell, year).
    pub fn visible_rows<'a>(&self, data: &'a Model) -> Vec<&'a PartitionStats> {
        let Some(view) = &data.stats else {
            return vec![];
        };
        let filter = self.filter.trim().to_lowercase();
        let score = |p: &PartitionStats| partition_health(p, &view.policy).score;
        let mut rows: Vec<&PartitionStats> = view
            .stats
            .partitions_detail
            .iter()
            .filter(|p| {
                filter.is_empty()
                    || p.cell.to_lowercase().contains(&filter)
                    || p.year.is_some_and(|y| y.to_string().contains(&filter))
            })
            .collect();
        rows.sort_by(|a, b| {
            let primary = match self.sort {
                SortKey::Cell => a.cell.cmp(&b.cell),
                SortKey::Year => a.year.cmp(&b.year),
                SortKey::Rows => a.rows.cmp(&b.rows),
                SortKey::Files => a.files.cmp(&b.files),
                SortKey::Bytes => a.bytes.cmp(&b.bytes),
                SortKey::Small => a.small_files.cmp(&b.small_files),
                SortKey::Health => score(a).cmp(&score(b)),
            };
            let primary = if self.descending {
                primary.reverse()
            } else {
                primary
            };
            primary.then_with(|| (&a.cell, a.year).cmp(&(&b.cell, b.year)))
        });
        rows
    }

    pub fn act(&mut self, action: Action, data: &Model, fx: &mut Effects) {
        let len = self.visible_rows(data).len();
        if move_selection(&mut self.selected, len, action) {
            return;
        }
        match action {
            Action::Filter => fx.open(Modal::Filter),
            Action::Sort => {
                self.sort = self.sort.next();
                self.descending =
                    !matches!(self.sort, SortKey::Cell | SortKey::Year | SortKey::Health);
            }
            Action::SortReverse => self.descending = !self.descending,
            _ => {}
        }
    }
}
