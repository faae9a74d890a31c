//! One file per pane. Each `draw` renders from [`App`] state only: no I/O,
//! no waiting — the background tasks keep that state current.

pub mod cells;
pub mod jobs;
pub mod lock;
pub mod logs;
pub mod map;
pub mod partitions;
pub mod query;
pub mod throughput;

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

pub use crate::fmt::{human_bytes as bytes, rate, thousands};

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
