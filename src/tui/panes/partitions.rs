//! Partitions: one row per (cell, year) with rows, files, bytes and the
//! small-file flag; sortable (`s`, `S`) and filterable (`/`); totals, and a
//! health summary (small-file share, average file size, snapshots, manifests).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::{block, bytes, thousands};
use crate::catalog::health::partition_health;
use crate::tui::app::App;
use crate::tui::modal::Modal;

/// The style of a health score: good, worrying, bad.
pub fn score_style(app: &App, score: u8) -> ratatui::style::Style {
    match score {
        80.. => app.theme.ok(),
        50.. => app.theme.warn(),
        _ => app.theme.bad(),
    }
}

/// A text sparkline of scores (0–100), newest last, at most `width` wide.
pub fn trend_text(scores: &[u8], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let skip = scores.len().saturating_sub(width);
    scores[skip..]
        .iter()
        .map(|s| BARS[(usize::from(*s) * 7 / 100).min(7)])
        .collect()
}

/// One line: the catalog's score, its trend over the snapshots and the fix.
pub fn score_line(app: &App) -> Line<'static> {
    let Some(view) = &app.data.stats else {
        return Line::styled("health: reading table stats…", app.theme.dim());
    };
    let h = &view.health;
    let fix = if h.fix.is_empty() {
        "nothing to fix".to_string()
    } else {
        format!("fix: {}", h.fix.join(" · "))
    };
    Line::from(vec![
        Span::styled("health ", app.theme.dim()),
        Span::styled(format!("{}/100", h.score), score_style(app, h.score)),
        Span::styled(
            format!(" {} ", trend_text(&view.trend, 24)),
            app.theme.dim(),
        ),
        Span::raw(fix),
    ])
}

/// Health lines (score and fix, small-file share, sizes, snapshots, manifests, freshness).
pub fn health_lines(app: &App) -> Vec<Line<'static>> {
    let Some(view) = &app.data.stats else {
        return vec![Line::styled(
            app.data
                .stats_error
                .clone()
                .unwrap_or_else(|| "reading table stats…".into()),
            app.theme.dim(),
        )];
    };
    let s = &view.stats;
    let share = if s.files > 0 {
        s.small_files as f64 / s.files as f64
    } else {
        0.0
    };
    let share_style = if share > 0.5 && s.files > 1 {
        app.theme.warn()
    } else {
        app.theme.ok()
    };
    let kv = |k: &str, v: Span<'static>| {
        Line::from(vec![Span::styled(format!("{k:<15}"), app.theme.dim()), v])
    };
    let mut lines = vec![
        score_line(app),
        kv(
            "small files",
            Span::styled(
                format!(
                    "{:.0}% ({} of {} below {})",
                    share * 100.0,
                    thousands(s.small_files),
                    thousands(s.files),
                    bytes(s.small_file_bytes)
                ),
                share_style,
            ),
        ),
        kv(
            "avg file size",
            Span::raw(format!(
                "{} · {} total",
                bytes(s.avg_file_bytes),
                bytes(s.bytes)
            )),
        ),
        kv(
            "snapshots",
            Span::raw(format!(
                "{} · current {} · {} manifests",
                thousands(s.snapshots),
                s.current_snapshot_id.map_or("-".into(), |i| i.to_string()),
                thousands(s.manifests)
            )),
        ),
        kv(
            "cells",
            Span::raw(format!(
                "{} in {} partitions · grid {}",
                thousands(s.cells),
                thousands(s.partitions),
                s.grid.as_ref().map_or("unknown".into(), |g| format!(
                    "{} res {}",
                    g.kind, g.resolution
                ))
            )),
        ),
    ];
    if let Some(u) = s.unique_items {
        lines.push(kv("unique items", Span::raw(thousands(u))));
    }
    lines.push(kv(
        "stats",
        Span::styled(
            format!(
                "read in {} ms at {}{}",
                view.took.as_millis(),
                view.at.format("%H:%M:%S"),
                app.data
                    .stats_error
                    .as_ref()
                    .map(|e| format!(" (last refresh failed: {e})"))
                    .unwrap_or_default()
            ),
            app.theme.dim(),
        ),
    ));
    lines
}

/// The health summary as a pane.
pub fn draw_health(frame: &mut Frame, area: Rect, app: &App) {
    frame.render_widget(
        Paragraph::new(health_lines(app)).block(block(app, "Health")),
        area,
    );
}

/// The partitions table with its totals line.
pub fn draw_table(frame: &mut Frame, area: Rect, app: &App) {
    let rows = app.views.partitions.visible_rows(&app.data);
    let total = app
        .data
        .stats
        .as_ref()
        .map_or(0, |s| s.stats.partitions_detail.len());
    let (r, f, b) = rows.iter().fold((0, 0, 0), |(r, f, b), p| {
        (r + p.rows, f + p.files, b + p.bytes)
    });
    let filter = if app.modals.top_is(|m| matches!(m, Modal::Filter)) {
        format!(" · filter: {}█", app.views.partitions.filter)
    } else if !app.views.partitions.filter.is_empty() {
        format!(" · filter: {}", app.views.partitions.filter)
    } else {
        String::new()
    };
    let title = format!(
        "Partitions — {} of {} · sort {} {}{}",
        thousands(rows.len() as u64),
        thousands(total as u64),
        app.views.partitions.sort.label(),
        if app.views.partitions.descending {
            "↓"
        } else {
            "↑"
        },
        filter
    );
    let outer = block(app, title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [table_area, totals_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let header = ["cell", "year", "rows", "files", "bytes", "small", "hlth"];
    let policy = app.data.stats.as_ref().map(|v| v.policy);
    let body = rows.iter().map(|p| {
        let score = policy.map(|pol| partition_health(p, &pol).score);
        let flag = if p.small_files > 0 {
            Span::styled(format!("▲{}", p.small_files), app.theme.warn())
        } else {
            Span::styled("ok", app.theme.ok())
        };
        Row::new(vec![
            Cell::from(p.cell.clone()),
            Cell::from(p.year.map_or("none".into(), |y| y.to_string())),
            Cell::from(Line::from(thousands(p.rows)).right_aligned()),
            Cell::from(Line::from(thousands(p.files)).right_aligned()),
            Cell::from(Line::from(bytes(p.bytes)).right_aligned()),
            Cell::from(flag),
            Cell::from(score.map_or(Span::raw(""), |sc| {
                Span::styled(format!("{sc:>3}"), score_style(app, sc))
            })),
        ])
    });
    let widths = [
        Constraint::Length(16),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(4),
    ];
    let table = Table::new(body, widths)
        .header(Row::new(header).style(app.theme.header()))
        .row_highlight_style(app.theme.selected());
    let mut state = TableState::default().with_selected(Some(app.views.partitions.selected));
    frame.render_stateful_widget(table, table_area, &mut state);
    super::record_list(app, table_area, 0, state.offset());
    let snapshots = app.data.stats.as_ref().map_or(0, |s| s.stats.snapshots);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("total ", app.theme.dim()),
            Span::raw(format!(
                "{} rows · {} files · {} · {} snapshots",
                thousands(r),
                thousands(f),
                bytes(b),
                thousands(snapshots)
            )),
        ])),
        totals_area,
    );
}
