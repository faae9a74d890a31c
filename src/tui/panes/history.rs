//! History: each console action with its equivalent commands, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::block;
use crate::tui::app::App;
use crate::tui::keymap::Action;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let lines = app.data.history_lines();
    let title = format!(
        "History — equivalent commands ({} copies the selected one)",
        app.keys.label(Action::Copy)
    );
    if lines.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "Nothing yet: each ingest, compaction, query and lock action is listed here as the command that does the same headless.",
                app.theme.dim(),
            ))
            .block(block(app, title)),
            area,
        );
        return;
    }
    let rows = lines.iter().map(|(e, tool, command)| {
        Row::new(vec![
            Cell::from(e.at.format("%H:%M:%S").to_string()),
            Cell::from(e.what.clone()),
            Cell::from(*tool),
            Cell::from(command.to_string()),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(28),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(["at", "action", "tool", "command"]).style(app.theme.header()))
        .row_highlight_style(app.theme.selected())
        .block(block(app, title));
    let mut state = TableState::default().with_selected(Some(app.views.history.selected));
    frame.render_stateful_widget(table, area, &mut state);
    super::record_list(app, area, 1, state.offset());
}
