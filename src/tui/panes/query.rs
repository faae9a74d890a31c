//! Query form: geometry, datetime interval, filter and limit; Enter runs the
//! query in the background; the results table (id, datetime, platform, cell,
//! href) with the plan summary and timing. `y` shows the results as plain
//! text without borders, for copying with the terminal's own selection.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{block, safe, thousands};
use crate::jobs::QueryOutcome;
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::modal::Modal;
use crate::tui::views::query::{QueryRun, QueryView};

fn plan_line(o: &QueryOutcome) -> String {
    format!(
        "{} results{} · {} cells · {} of {} files pruned · {} rows scanned · {} ms",
        thousands(o.rows.len() as u64),
        if o.truncated { " (limit reached)" } else { "" },
        o.cells.map_or("all".into(), thousands),
        thousands(o.files_pruned),
        thousands(o.files_total),
        thousands(o.rows_scanned),
        o.took.as_millis()
    )
}

/// Results as plain tab-free text lines (for copying).
pub fn plain_lines(o: &QueryOutcome) -> Vec<String> {
    let mut out = vec![plan_line(o)];
    out.push("id datetime platform cell href".into());
    for r in &o.rows {
        out.push(format!(
            "{} {} {} {} {}",
            safe(&r.id),
            safe(&r.datetime),
            safe(&r.platform),
            safe(&r.cell),
            safe(&r.href)
        ));
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let q = &app.views.query;
    let editing = app.modals.top_is(|m| matches!(m, Modal::QueryEdit));
    if q.plain
        && let Some(Ok(o)) = &q.result
    {
        let lines: Vec<Line> = plain_lines(o).into_iter().map(Line::raw).collect();
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let [form, status, results] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Length(2),
        Constraint::Min(3),
    ])
    .areas(area);
    draw_form(frame, form, app, editing);
    let status_line = match (&q.run, &q.result) {
        (QueryRun::Queued | QueryRun::Running(_), _) => Line::styled("running…", app.theme.warn()),
        (QueryRun::Idle, Some(Ok(o))) => Line::styled(plan_line(o), app.theme.ok()),
        (QueryRun::Idle, Some(Err(e))) => {
            Line::styled(format!("error: {}", safe(&e.to_string())), app.theme.bad())
        }
        (QueryRun::Idle, None) => Line::styled("no query run yet", app.theme.dim()),
    };
    frame.render_widget(
        Paragraph::new(status_line).wrap(Wrap { trim: true }),
        status,
    );
    let rows: Vec<Row> = match &q.result {
        Some(Ok(o)) => o
            .rows
            .iter()
            .map(|r| {
                Row::new(
                    [&r.id, &r.datetime, &r.platform, &r.cell, &r.href]
                        .map(|text| Cell::from(safe(text).into_owned())),
                )
            })
            .collect(),
        _ => vec![],
    };
    // Ids are what operators copy: give them their full width (up to half
    // the pane) and let the href take what is left.
    let longest_id = match &q.result {
        Some(Ok(o)) => o.rows.iter().map(|r| safe(&r.id).chars().count()).max(),
        _ => None,
    }
    .unwrap_or(2)
    .max(2) as u16;
    let widths = [
        Constraint::Length(longest_id.min(results.width / 2)),
        Constraint::Length(20),
        Constraint::Length(8),
        Constraint::Length(15),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(["id", "datetime", "platform", "cell", "href"]).style(app.theme.header()))
        .row_highlight_style(app.theme.selected())
        .block(block(
            app,
            format!(
                "Results ({}: plain text for copying)",
                app.keys.label(Action::PlainResults)
            ),
        ));
    let mut state = TableState::default().with_selected(Some(q.selected));
    frame.render_stateful_widget(table, results, &mut state);
    super::record_list(app, results, 1, state.offset());
}

/// The form's four fields, the focused one marked (with a cursor while editing).
fn draw_form(frame: &mut Frame, area: Rect, app: &App, editing: bool) {
    let q = &app.views.query;
    let mut lines = vec![];
    for (i, label) in QueryView::LABELS.iter().enumerate() {
        let focused = i == q.focus;
        let value = &q.fields[i];
        let mut spans = vec![Span::styled(
            format!("{}{label:<9}", if focused { "▸" } else { " " }),
            if focused {
                app.theme.key()
            } else {
                app.theme.dim()
            },
        )];
        if value.is_empty() && !(focused && editing) {
            spans.push(Span::styled(QueryView::PLACEHOLDERS[i], app.theme.dim()));
        } else {
            spans.push(Span::raw(safe(value).into_owned()));
        }
        if focused && editing {
            spans.push(Span::styled("█", app.theme.key()));
        }
        lines.push(Line::from(spans));
    }
    let k = |a| app.keys.label(a);
    let title = if editing {
        format!(
            "Query — editing ({} runs, {}/{} field, {} done)",
            k(Action::Confirm),
            k(Action::FieldUp),
            k(Action::FieldDown),
            k(Action::Back)
        )
    } else {
        format!(
            "Query — {} edit · {} run",
            k(Action::EditField),
            k(Action::RunQuery)
        )
    };
    frame.render_widget(Paragraph::new(lines).block(block(app, title)), area);
}
