//! Top cells: the cells with the most rows as a bar chart (j/k select one,
//! which the map marks), beside the map of every cell.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph};

use super::{block, thousands};
use crate::tui::app::App;

/// The bar chart of top cells (as many as fit).
pub fn draw_top(frame: &mut Frame, area: Rect, app: &App) {
    let Some(view) = &app.data.stats else {
        frame.render_widget(
            Paragraph::new("reading table stats…").block(block(app, "Top cells")),
            area,
        );
        return;
    };
    let top = &view.stats.top_cells;
    let outer = block(
        app,
        format!(
            "Top cells by rows — {} of {}",
            top.len().min(usize::from(area.height.saturating_sub(2))),
            view.stats.cells
        ),
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if top.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no rows yet", app.theme.dim())),
            inner,
        );
        return;
    }
    let fit = usize::from(inner.height).min(top.len());
    // Keep the selected cell in view.
    let start = app
        .views
        .cells
        .selected
        .saturating_sub(fit.saturating_sub(1));
    let bars: Vec<Bar> = top
        .iter()
        .enumerate()
        .skip(start)
        .take(fit)
        .map(|(i, c)| {
            let style = if i == app.views.cells.selected {
                app.theme.selected()
            } else {
                app.theme.series(0)
            };
            Bar::default()
                .value(c.rows)
                .label(Line::from(c.cell.clone()))
                .text_value(thousands(c.rows))
                .style(style)
                .value_style(app.theme.selected())
        })
        .collect();
    let chart = BarChart::default()
        .direction(Direction::Horizontal)
        .bar_width(1)
        .bar_gap(0)
        .data(BarGroup::default().bars(&bars));
    frame.render_widget(chart, inner);
}

/// The Cells view: top cells left, map right (stacked when narrow and tall).
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let chart_width = if area.width >= 120 { 48 } else { 34 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(chart_width), Constraint::Min(20)]).areas(area);
    draw_top(frame, left, app);
    super::map::draw(frame, right, app);
}
