//! Jobs: running and finished ingest, compaction and query jobs with progress
//! bars and counters; the Jobs view adds the selected job's details and its
//! dead letters.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{bar, block, bytes, rate, thousands};
use crate::tui::app::{App, JobState, JobView};
use crate::tui::keymap::Action;

fn state_style(app: &App, state: JobState) -> ratatui::style::Style {
    match state {
        JobState::Running | JobState::Pausing => app.theme.ok(),
        JobState::Paused | JobState::Cancelled => app.theme.warn(),
        JobState::Failed => app.theme.bad(),
        JobState::Done => app.theme.text(),
    }
}

/// The jobs table.
pub fn draw_list(frame: &mut Frame, area: Rect, app: &App) {
    let wide = area.width >= 110;
    let outer = block(
        app,
        format!(
            "Jobs — {} running, {} total",
            app.data.jobs.iter().filter(|j| j.state.is_active()).count(),
            app.data.jobs.len()
        ),
    );
    if app.data.jobs.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(
                    "No jobs yet. {}: new ingest (or :ingest PATH) · {}: compaction plan",
                    app.keys.label(Action::NewIngest),
                    app.keys.label(Action::Compact)
                ),
                app.theme.dim(),
            ))
            .block(outer),
            area,
        );
        return;
    }
    let mut header = vec![
        "#", "kind", "job", "state", "progress", "items", "rows", "failed",
    ];
    if wide {
        header.extend(["commits", "files", "items/s", "elapsed"]);
    }
    let rows = app.data.jobs.iter().map(|j| {
        let t = j.totals();
        let p = j.progress.as_ref();
        let progress = match j.fraction() {
            Some(f) => format!("{} {:>3.0}%", bar(f, 6), f * 100.0),
            None if j.state.is_active() => "…".to_string(),
            None => String::new(),
        };
        let mut cells = vec![
            Cell::from(j.id.to_string()),
            Cell::from(j.kind.label()),
            Cell::from(j.label.clone()),
            Cell::from(Span::styled(j.state.label(), state_style(app, j.state))),
            Cell::from(progress),
            Cell::from(thousands(t.items)),
            Cell::from(thousands(t.rows)),
            Cell::from(Span::styled(
                thousands(t.failed),
                if t.failed > 0 {
                    app.theme.warn()
                } else {
                    app.theme.text()
                },
            )),
        ];
        if wide {
            let elapsed = j.ended.unwrap_or_else(std::time::Instant::now) - j.started;
            cells.extend([
                Cell::from(p.map_or(String::new(), |p| thousands(p.commits))),
                Cell::from(p.map_or(String::new(), |p| thousands(p.files))),
                Cell::from(p.map_or(String::new(), |p| rate(p.items_per_second))),
                Cell::from(crate::fmt::format_age(elapsed.as_secs_f64())),
            ]);
        }
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Length(7),
        Constraint::Min(10),
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
    ];
    if wide {
        widths.extend([
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(8),
        ]);
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(app.theme.header()))
        .row_highlight_style(app.theme.selected())
        .block(outer);
    let mut state = TableState::default().with_selected(Some(app.views.jobs.selected));
    frame.render_stateful_widget(table, area, &mut state);
    super::record_list(app, area, 1, state.offset());
}

/// The selected job's details and dead letters.
pub fn draw_detail(frame: &mut Frame, area: Rect, app: &App) {
    let Some(j) = app.views.jobs.selected_job(&app.data) else {
        frame.render_widget(
            Paragraph::new(format!(
                "Select a job with {}.",
                app.keys.label(Action::Down)
            ))
            .block(block(app, "Job")),
            area,
        );
        return;
    };
    let lines = detail_lines(app, j);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(app, format!("Job {} — {}", j.id, j.label))),
        area,
    );
}

fn detail_lines<'a>(app: &App, j: &'a JobView) -> Vec<Line<'a>> {
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<13}"), app.theme.dim()),
            Span::raw(v),
        ])
    };
    let mut lines = vec![];
    if let Some(p) = &j.progress {
        lines.push(kv(
            "job id",
            format!(
                "{} ({:?}{})",
                p.job_id,
                p.phase,
                if p.complete { ", complete" } else { "" }
            ),
        ));
        lines.push(kv(
            "items",
            format!(
                "{} listed · {} fetched ({}) · {} failed · {} without geometry",
                thousands(p.items),
                thousands(p.fetched),
                bytes(p.bytes_in),
                thousands(p.failed),
                thousands(p.no_geometry)
            ),
        ));
        lines.push(kv(
            "written",
            format!(
                "{} rows · {} files ({}) · {} commits · inventory position {}{}",
                thousands(p.rows),
                thousands(p.files),
                bytes(p.bytes_out),
                thousands(p.commits),
                thousands(p.position),
                if p.resumed_from > 0 {
                    format!(" (resumed from {})", thousands(p.resumed_from))
                } else {
                    String::new()
                }
            ),
        ));
        if let Some(d) = &p.dead_letters {
            lines.push(kv("dead letters", d.clone()));
        }
    }
    for l in &j.lines {
        lines.push(Line::raw(l.as_str()));
    }
    if let Some(e) = &j.error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<13}", "error"), app.theme.bad()),
            Span::raw(e.as_str()),
        ]));
    }
    match &j.dead_letters {
        None => lines.push(Line::styled(
            format!(
                "{}: load this job's dead letters",
                app.keys.label(Action::DeadLetters)
            ),
            app.theme.dim(),
        )),
        Some(Err(e)) => lines.push(Line::styled(format!("dead letters: {e}"), app.theme.bad())),
        Some(Ok(letters)) if letters.is_empty() => {
            lines.push(Line::styled("no dead letters", app.theme.ok()))
        }
        Some(Ok(letters)) => {
            lines.push(Line::styled(
                format!(
                    "{} dead letters (position · stage · reason · key):",
                    letters.len()
                ),
                app.theme.warn(),
            ));
            for l in letters {
                lines.push(Line::raw(format!(
                    "{:>7} {:<9} {} · {}",
                    l.position,
                    format!("{:?}", l.stage).to_lowercase(),
                    l.reason,
                    l.key.as_deref().unwrap_or("-")
                )));
            }
        }
    }
    lines
}
