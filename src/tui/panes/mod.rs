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

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Human byte count (KiB, MiB, …).
pub fn bytes(n: u64) -> String {
    crate::cli::human_bytes(n)
}

/// A rate with a sensible number of decimals.
pub fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
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
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100), "100");
        assert_eq!(bar(0.5, 4), "██░░");
    }
}
