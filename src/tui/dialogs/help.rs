//! The `?` overlay: every action this console can do, with its keys from
//! the key table, grouped by the places that offer it, flowed into as many
//! columns as the screen needs (narrow columns show the short hint, wide
//! ones the full description). A read-only console lists no write actions.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::tui::app::App;
use crate::tui::keymap::{self, Action};
use crate::tui::views::{self, View};

/// Draws the help overlay over `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let rect = super::centered(area, area.width.saturating_sub(2).max(20), area.height);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border_focus())
        .title(Span::styled(
            " Help — keys (Esc or ? closes) ",
            theme.title(),
        ));
    let inner = block.inner(rect);
    frame.render_widget(Clear, rect);
    frame.render_widget(block, rect);
    let mut places: Vec<(&str, &[Action])> = vec![("Everywhere", keymap::GLOBAL)];
    places.extend(View::ALL.map(|v| (v.title(), views::commands(v))));
    places.extend(crate::tui::modal::ALL_COMMANDS.map(|c| ("Inputs and dialogs", c)));
    let read_only = app.init.read_only;
    let sections = app
        .keys
        .help_sections(&places, |a| !(read_only && a.writes()));
    let total: usize = sections.iter().map(|(_, rows)| rows.len() + 1).sum();
    let height = usize::from(inner.height.max(1));
    let columns = total.div_ceil(height).max(1);
    let width = usize::from(inner.width) / columns;
    let long = width >= 60;
    let mut lines: Vec<Line> = vec![];
    for (scope, rows) in sections {
        lines.push(Line::styled(scope, theme.title()));
        for (label, hint, help) in rows {
            let text = if long { help } else { hint };
            lines.push(Line::from(vec![
                Span::styled(format!(" {label:<10}"), theme.key()),
                Span::raw(text),
            ]));
        }
    }
    let areas =
        Layout::horizontal(vec![Constraint::Ratio(1, columns as u32); columns]).split(inner);
    for (i, chunk) in lines.chunks(height).enumerate() {
        if let Some(a) = areas.get(i) {
            frame.render_widget(Paragraph::new(chunk.to_vec()), *a);
        }
    }
}
