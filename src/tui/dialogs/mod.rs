//! Overlays: the help screen, confirmations and the steal dialog.

pub mod confirm;
pub mod help;
pub mod steal;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::tui::theme::Theme;

/// A `width`×`height` rectangle centred in `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The dialog frame: clears `rect` and draws `lines` wrapped in a bordered
/// box titled `title`, in the warning style.
pub fn frame(frame: &mut Frame, rect: Rect, title: &str, lines: Vec<Line>, theme: &Theme) {
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.warn())
                .title(Span::styled(title.to_string(), theme.warn())),
        ),
        rect,
    );
}
