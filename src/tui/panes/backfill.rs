//! Backfill: the backfill runs (phase, chunks, partitions, rate, ETA), the
//! selected one's details — chunks planned/running/done/failed, buckets
//! reduced, Σ items/s, ETA per phase, stragglers, failed chunks and why —
//! and its workers, one row per engine task (`slurm:<job>_<i>`,
//! `local:<pid>`, …) with its own rate.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{bar, block, rate, safe, thousands};
use crate::backfill::{BackfillState, Status};
use crate::fmt::format_age;
use crate::runs::{RunState, WorkerView};
use crate::tui::app::App;
use crate::tui::keymap::Action;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let runs = &app.data.backfills;
    let Some(selected) = app.views.backfill.selected_run(&app.data) else {
        let k = |a| app.keys.label(a);
        let text = if app.init.read_only {
            "No backfill runs on this catalog.".to_string()
        } else {
            format!(
                "No backfill runs on this catalog. {}: start one (:backfill INVENTORY --items-root URL --tasks N --engine local|slurm|k8s|batch)",
                k(Action::NewBackfill)
            )
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, app.theme.dim()))
                .wrap(Wrap { trim: true })
                .block(block(app, "Backfills")),
            area,
        );
        return;
    };
    let list_height = (runs.len() as u16 + 3).clamp(4, 8);
    let detail_height = 7 + detail_extra(selected).min(6);
    let [list, detail, workers] = Layout::vertical([
        Constraint::Length(list_height),
        Constraint::Length(detail_height),
        Constraint::Min(4),
    ])
    .areas(area);
    draw_runs(frame, list, app, runs);
    draw_detail(frame, detail, app, selected);
    draw_workers(frame, workers, app, selected);
}

/// Lines the detail needs besides the fixed ones: stragglers and failed chunks.
fn detail_extra(s: &Status) -> u16 {
    (s.stragglers.len() + s.failed_chunks.len()) as u16
}

/// The phase's progress: chunks while mapping, partitions while reducing.
pub fn progress(s: &Status) -> (f64, String) {
    let share = |done: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            done as f64 / total as f64
        }
    };
    match s.state {
        BackfillState::Reducing => (
            share(s.partitions_reduced, s.partitions),
            format!("reduce {}/{}", s.partitions_reduced, s.partitions),
        ),
        BackfillState::Committing | BackfillState::Committed => (1.0, s.state.label().into()),
        _ => (
            share(s.chunks.done, s.chunks.total),
            format!("map {}/{}", s.chunks.done, s.chunks.total),
        ),
    }
}

fn state_style(app: &App, state: BackfillState) -> ratatui::style::Style {
    match state {
        BackfillState::Failed => app.theme.bad(),
        BackfillState::Committed => app.theme.text(),
        BackfillState::Planning | BackfillState::Planned => app.theme.dim(),
        _ => app.theme.ok(),
    }
}

fn eta_text(seconds: Option<f64>) -> String {
    seconds.map_or("—".into(), format_age)
}

/// Time left in the map and reduce phases, as the phase allows.
fn etas(s: &Status) -> (String, String) {
    let map = match s.state {
        BackfillState::Mapping => eta_text(s.eta_seconds),
        BackfillState::Planning | BackfillState::Planned => "—".into(),
        _ => "done".into(),
    };
    let reduce = match s.state {
        BackfillState::Committing | BackfillState::Committed => "done".into(),
        _ => eta_text(s.reduce_eta_seconds),
    };
    (map, reduce)
}

/// Workers in phase order (plan, map, reduce, commit), then by engine task.
fn in_phase_order(workers: &[WorkerView]) -> Vec<&WorkerView> {
    let rank = |phase: &str| match phase {
        "map" => 1,
        "reduce" => 2,
        "commit" => 3,
        _ => 0,
    };
    let mut out: Vec<&WorkerView> = workers.iter().collect();
    out.sort_by(|a, b| (rank(&a.phase), &a.engine_task).cmp(&(rank(&b.phase), &b.engine_task)));
    out
}

fn draw_runs(frame: &mut Frame, area: Rect, app: &App, runs: &[Status]) {
    let wide = area.width >= 110;
    let rows = runs.iter().map(|s| {
        let (share, text) = progress(s);
        let mut cells = vec![
            Cell::from(safe(&s.run).into_owned()),
            Cell::from(Span::styled(s.state.label(), state_style(app, s.state))),
            Cell::from(format!("{} {text}", bar(share, 4))),
            Cell::from(Span::styled(
                thousands(s.chunks.failed),
                if s.chunks.failed > 0 {
                    app.theme.warn()
                } else {
                    app.theme.text()
                },
            )),
            Cell::from(rate(s.items_per_second)),
        ];
        if wide {
            cells.extend([
                Cell::from(thousands(s.items)),
                Cell::from(thousands(s.rows)),
                Cell::from(match etas(s) {
                    (map, _) if s.state == BackfillState::Mapping => map,
                    (_, reduce) => reduce,
                }),
            ]);
        }
        Row::new(cells)
    });
    let mut header = vec!["run", "phase", "progress", "failed", "items/s"];
    let mut widths = vec![
        Constraint::Length(32),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Length(6),
        Constraint::Length(8),
    ];
    if wide {
        header.extend(["items", "rows", "eta"]);
        widths.extend([
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(7),
        ]);
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(app.theme.header()))
        .row_highlight_style(app.theme.selected())
        .block(block(app, format!("Backfills — {}", runs.len())));
    let mut state = TableState::default().with_selected(Some(app.views.backfill.selected));
    frame.render_stateful_widget(table, area, &mut state);
    super::record_list(app, area, 1, state.offset());
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App, s: &Status) {
    let kv = |k: &str, v: String| super::jobs::key_value(app, k, &v);
    let c = &s.chunks;
    let mut lines = vec![
        kv(
            "chunks",
            format!(
                "{} planned · {} running · {} done · {} failed",
                thousands(c.total),
                thousands(c.running),
                thousands(c.done),
                thousands(c.failed)
            ),
        ),
        kv(
            "reduce",
            format!(
                "{}/{} partitions · {} buckets · {} files · {} snapshots added",
                s.partitions_reduced,
                s.partitions,
                thousands(s.buckets_reduced),
                thousands(s.files),
                s.snapshots_added
            ),
        ),
        kv(
            "items",
            format!(
                "{} items · {} rows · {} failed",
                thousands(s.items),
                thousands(s.rows),
                thousands(s.failed_items),
            ),
        ),
        kv(
            "rate",
            format!(
                "Σ {} items/s over {} live workers · median chunk {}",
                rate(s.items_per_second),
                s.workers
                    .iter()
                    .filter(|w| w.state == RunState::Running)
                    .count(),
                s.median_chunk_seconds
                    .map_or("—".into(), |m| format!("{m:.1} s"))
            ),
        ),
    ];
    let (map_eta, reduce_eta) = etas(s);
    lines.push(kv("eta", format!("map {map_eta} · reduce {reduce_eta}")));
    for straggler in &s.stragglers {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<13}", "straggler"), app.theme.warn()),
            Span::raw(safe(straggler).into_owned()),
        ]));
    }
    for f in &s.failed_chunks {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<13}", "failed chunk"), app.theme.bad()),
            Span::raw(format!(
                "c{:06} on {} at {}: {}",
                f.chunk,
                safe(&f.engine_task),
                f.at.format("%H:%M:%S"),
                safe(&f.reason)
            )),
        ]));
    }
    let title = format!(
        "Backfill {} — {} ({} retry · {} commit)",
        safe(&s.run),
        s.state.label(),
        app.keys.label(Action::RetryBackfill),
        app.keys.label(Action::CommitBackfill)
    );
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(app, title)),
        area,
    );
}

fn draw_workers(frame: &mut Frame, area: Rect, app: &App, s: &Status) {
    let wide = area.width >= 110;
    let rows = in_phase_order(&s.workers)
        .into_iter()
        .map(|w| worker_row(app, w, wide));
    let mut header = vec!["engine task", "phase", "state", "chunk", "items", "items/s"];
    let mut widths = vec![
        Constraint::Min(16),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(14),
        Constraint::Length(9),
        Constraint::Length(8),
    ];
    if wide {
        header.extend(["rows/s", "failed", "beat", "error"]);
        widths.extend([
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Fill(1),
        ]);
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(app.theme.header()))
        .block(block(app, format!("Workers — {}", s.workers.len())));
    frame.render_widget(table, area);
}

fn worker_row<'a>(app: &App, w: &'a WorkerView, wide: bool) -> Row<'a> {
    let state_style = match w.state {
        RunState::Running => app.theme.ok(),
        RunState::Done => app.theme.text(),
        RunState::Failed | RunState::Abandoned => app.theme.bad(),
        _ => app.theme.warn(),
    };
    let chunk = match (&w.chunk, w.chunk_seconds) {
        (Some(c), Some(t)) => format!("{} {}", safe(c), format_age(t)),
        (Some(c), None) => safe(c).into_owned(),
        _ => String::new(),
    };
    let mut cells = vec![
        Cell::from(safe(&w.engine_task).into_owned()),
        Cell::from(safe(&w.phase).into_owned()),
        Cell::from(Span::styled(w.state.label(), state_style)),
        Cell::from(chunk),
        Cell::from(thousands(w.counters.items_listed)),
        Cell::from(rate(w.items_per_second)),
    ];
    if wide {
        cells.extend([
            Cell::from(rate(w.rows_per_second)),
            Cell::from(thousands(w.counters.items_failed)),
            Cell::from(format_age(w.heartbeat_age_seconds)),
            Cell::from(safe(w.error.as_deref().unwrap_or("")).into_owned()),
        ]);
    }
    Row::new(cells)
}
