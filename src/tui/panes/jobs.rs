//! Jobs: running and finished ingest, compaction and query jobs with progress
//! bars and counters; the Jobs view adds the selected job's details and its
//! dead letters.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{bar, block, bytes, rate, safe, thousands};
use crate::runs::{RunState, RunView};
use crate::tui::app::{App, JobState, JobView};
use crate::tui::keymap::Action;
use crate::tui::model::JobRow;

fn state_style(app: &App, state: JobState) -> ratatui::style::Style {
    match state {
        JobState::Running | JobState::Pausing => app.theme.ok(),
        JobState::Paused | JobState::Cancelled => app.theme.warn(),
        JobState::Failed => app.theme.bad(),
        JobState::Done => app.theme.text(),
    }
}

/// The jobs table: the console's jobs, then every other run the ledger shows.
pub fn draw_list(frame: &mut Frame, area: Rect, app: &App) {
    let wide = area.width >= 110;
    let rows = app.data.rows();
    let external = rows
        .iter()
        .filter(|r| matches!(r, JobRow::External(_)))
        .count();
    let outer = block(
        app,
        format!(
            "Jobs — {} running, {} total{}",
            app.data.running(),
            rows.len(),
            if external > 0 {
                format!(" ({external} external)")
            } else {
                String::new()
            }
        ),
    );
    if rows.is_empty() {
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
    let table_rows = rows.iter().map(|row| match row {
        JobRow::Own(j) => Row::new(own_cells(app, j, wide)),
        JobRow::External(r) => Row::new(external_cells(app, r, wide)),
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
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(app.theme.header()))
        .row_highlight_style(app.theme.selected())
        .block(outer);
    let mut state = TableState::default().with_selected(Some(app.views.jobs.selected));
    frame.render_stateful_widget(table, area, &mut state);
    super::record_list(app, area, 1, state.offset());
}

fn own_cells<'a>(app: &App, j: &'a JobView, wide: bool) -> Vec<Cell<'a>> {
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
        Cell::from(safe(&j.label).into_owned()),
        Cell::from(Span::styled(j.state.label(), state_style(app, j.state))),
        Cell::from(progress),
        Cell::from(thousands(t.items)),
        Cell::from(thousands(t.rows)),
        failed_cell(app, t.failed),
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
    cells
}

/// An external run: `ext`, its kind, where it runs, its state as the
/// ledger's silence says, and its counters.
fn external_cells<'a>(app: &App, r: &'a RunView, wide: bool) -> Vec<Cell<'a>> {
    let beat = r
        .heartbeat_age_seconds
        .map(|a| format!("beat {}", crate::fmt::format_age(a)))
        .unwrap_or_default();
    let mut cells = vec![
        Cell::from(Span::styled("ext", app.theme.dim())),
        Cell::from(r.kind.label()),
        Cell::from(safe(&format!("{} · {}", where_it_runs(r), r.id)).into_owned()),
        Cell::from(Span::styled(r.state.label(), run_state_style(app, r.state))),
        Cell::from(match app.data.backfill(&r.id) {
            // A backfill: its phase's progress (chunks, then partitions).
            Some(b) => super::backfill::progress(b).1,
            None if r.is_live() => beat,
            None => String::new(),
        }),
        Cell::from(thousands(r.items)),
        Cell::from(thousands(r.rows)),
        failed_cell(app, r.failed),
    ];
    if wide {
        let end = r.ended.unwrap_or_else(chrono::Utc::now);
        let elapsed = (end - r.started).num_milliseconds() as f64 / 1000.0;
        cells.extend([
            Cell::from(thousands(r.commits)),
            Cell::from(thousands(r.files)),
            Cell::from(rate(r.items_per_second)),
            Cell::from(crate::fmt::format_age(elapsed)),
        ]);
    }
    cells
}

fn failed_cell<'a>(app: &App, failed: u64) -> Cell<'a> {
    Cell::from(Span::styled(
        thousands(failed),
        if failed > 0 {
            app.theme.warn()
        } else {
            app.theme.text()
        },
    ))
}

/// "host pid N", or the engine task(s) of its workers.
pub fn where_it_runs(r: &RunView) -> String {
    let tasks: Vec<&str> = r
        .workers
        .iter()
        .filter(|w| !w.engine_task.starts_with("local:"))
        .map(|w| w.engine_task.as_str())
        .collect();
    match tasks.as_slice() {
        [] => format!("{} pid {}", r.host, r.pid),
        [one] => (*one).to_string(),
        many => format!("{} tasks", many.len()),
    }
}

fn run_state_style(app: &App, state: RunState) -> ratatui::style::Style {
    match state {
        RunState::Running => app.theme.ok(),
        RunState::Paused | RunState::Cancelled | RunState::Stalled => app.theme.warn(),
        RunState::Failed | RunState::Abandoned => app.theme.bad(),
        RunState::Done => app.theme.text(),
    }
}

/// The selected job's (or external run's) details and dead letters.
pub fn draw_detail(frame: &mut Frame, area: Rect, app: &App) {
    if let Some(JobRow::External(r)) = app.views.jobs.selected_row(&app.data) {
        let lines = run_lines(app, r);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(
                    app,
                    format!("Run {} — {}", safe(&r.id), r.kind.label()),
                )),
            area,
        );
        return;
    }
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
            .block(block(app, format!("Job {} — {}", j.id, safe(&j.label)))),
        area,
    );
}

fn detail_lines<'a>(app: &App, j: &'a JobView) -> Vec<Line<'a>> {
    let kv = |k: &str, v: String| key_value(app, k, &v);
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
        lines.push(Line::raw(safe(l).into_owned()));
    }
    if let Some(e) = &j.error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<13}", "error"), app.theme.bad()),
            Span::raw(safe(e).into_owned()),
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
        Some(Err(e)) => lines.push(Line::styled(
            safe(&format!("dead letters: {e}")).into_owned(),
            app.theme.bad(),
        )),
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
                    safe(&l.reason),
                    safe(l.key.as_deref().unwrap_or("-"))
                )));
            }
        }
    }
    lines
}

/// A detail line: the key dimmed, then the value (data: drawn [`safe`]).
pub fn key_value<'a>(app: &App, key: &str, value: &str) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{key:<13}"), app.theme.dim()),
        Span::raw(safe(value).into_owned()),
    ])
}

/// An external run: who started it where, its workers, counters and outcome.
fn run_lines<'a>(app: &App, r: &'a RunView) -> Vec<Line<'a>> {
    let kv = |k: &str, v: String| key_value(app, k, &v);
    let mut lines = vec![
        kv(
            "state",
            format!(
                "{}{}",
                r.state.label(),
                r.heartbeat_age_seconds
                    .map(|a| format!(" · last heartbeat {} ago", crate::fmt::format_age(a)))
                    .unwrap_or_default()
            ),
        ),
        kv(
            "started",
            format!(
                "{} by {}@{} (pid {})",
                r.started.format("%Y-%m-%d %H:%M:%S UTC"),
                r.user,
                r.host,
                r.pid
            ),
        ),
        kv(
            "counters",
            format!(
                "{} items · {} rows · {} files ({}) · {} commits · {} failed",
                thousands(r.items),
                thousands(r.rows),
                thousands(r.files),
                bytes(r.bytes),
                thousands(r.commits),
                thousands(r.failed)
            ),
        ),
        kv(
            "rate",
            format!(
                "{} items/s · {} rows/s",
                rate(r.items_per_second),
                rate(r.rows_per_second)
            ),
        ),
    ];
    if let Some(stop) = &r.stop_request {
        lines.push(kv("stop", stop.clone()));
    }
    if let Some(e) = &r.error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<13}", "error"), app.theme.bad()),
            Span::raw(safe(e).into_owned()),
        ]));
    }
    for w in &r.workers {
        lines.push(kv(
            "worker",
            format!(
                "{} · {} · {} · beat {} ago · {} items · {} items/s · {} rows/s · {} failed{}",
                w.engine_task,
                w.state.label(),
                w.phase,
                crate::fmt::format_age(w.heartbeat_age_seconds),
                thousands(w.counters.items_listed),
                rate(w.items_per_second),
                rate(w.rows_per_second),
                thousands(w.counters.items_failed),
                w.chunk
                    .as_deref()
                    .map(|c| format!(" · {c}"))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(b) = app.data.backfill(&r.id) {
        lines.push(kv(
            "backfill",
            format!(
                "{} · chunks {}/{} ({} failed) · partitions {}/{} — details in the Backfill view ({})",
                b.state.label(),
                b.chunks.done,
                b.chunks.total,
                b.chunks.failed,
                b.partitions_reduced,
                b.partitions,
                app.keys.label(Action::GoView(crate::tui::views::View::Backfill))
            ),
        ));
    }
    lines.push(kv("inputs", r.record.inputs.to_string()));
    match app.data.runs.dead_letters.get(&r.id) {
        None => lines.push(Line::styled(
            format!(
                "{}: load this run's dead letters",
                app.keys.label(Action::DeadLetters)
            ),
            app.theme.dim(),
        )),
        Some(Err(e)) => lines.push(Line::styled(
            safe(&format!("dead letters: {e}")).into_owned(),
            app.theme.bad(),
        )),
        Some(Ok(letters)) => {
            lines.push(Line::styled(
                format!("{} dead letters", letters.len()),
                app.theme.warn(),
            ));
            for l in letters.iter().take(50) {
                lines.push(Line::raw(format!(
                    "{:>7} {} · {}",
                    l.position,
                    safe(&l.reason),
                    safe(l.key.as_deref().unwrap_or("-"))
                )));
            }
        }
    }
    lines
}
