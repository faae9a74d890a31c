//! One file per pane. Each `draw` renders from [`App`] state only: no I/O,
//! no waiting — the background tasks keep that state current. Text that
//! comes from data (item ids and properties, run and lock records, error
//! text) is drawn through [`safe`], so control characters in it show
//! escaped instead of vanishing or reaching the terminal.

pub mod backfill;
pub mod cells;
pub mod history;
pub mod jobs;
pub mod lock;
pub mod logs;
pub mod map;
pub mod partitions;
pub mod query;
pub mod throughput;

use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders};

use super::app::App;

/// A bordered pane with a title.
pub fn block<'a>(app: &App, title: impl Into<String>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border())
        .title(Span::styled(
            format!(" {} ", title.into()),
            app.theme.title(),
        ))
}

pub use crate::fmt::{human_bytes as bytes, rate, terminal_safe as safe, thousands};

/// Records where a table's data rows were drawn (`area`: the table's
/// area; `inset`: 1 inside a border, 0 without) so mouse clicks find rows.
pub fn record_list(app: &App, area: Rect, inset: u16, offset: usize) {
    let y = area.y + inset + 1; // the header row
    let rows = (area.y + area.height).saturating_sub(y + inset);
    app.list_hit.set(Some(crate::tui::app::ListHit {
        x: area.x,
        width: area.width,
        y,
        rows,
        offset,
    }));
}

/// A text progress bar `width` cells wide.
pub fn bar(fraction: f64, width: usize) -> String {
    let f = fraction.clamp(0.0, 1.0);
    let full = (f * width as f64).round() as usize;
    format!(
        "{}{}",
        "█".repeat(full),
        "░".repeat(width.saturating_sub(full))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(bar(0.5, 4), "██░░");
    }
}
