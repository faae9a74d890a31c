//! The map: a world outline (ratatui's built-in coastlines) with a dot at
//! the centre of every cell that holds rows, coloured by its rows relative
//! to the fullest cell; the top cells are drawn as their H3 outlines and the
//! selected top cell is marked ◆. The geometry comes precomputed with the
//! stats ([`crate::jobs::stats::CellGeo`]).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Map, MapResolution, Points};

use super::block;
use crate::tui::app::App;

/// Top cells drawn as outlines.
pub const OUTLINED: usize = 10;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let cells = app
        .data
        .stats
        .as_ref()
        .map_or(&[][..], |s| s.cells.as_slice());
    let max = cells.iter().map(|c| c.rows).max().unwrap_or(1).max(1);
    let selected = app
        .data
        .stats
        .as_ref()
        .and_then(|s| s.stats.top_cells.get(app.views.cells.selected))
        .map(|c| c.cell.clone());
    let title = format!(
        "Map — {} cells with data (top {OUTLINED} outlined){}",
        cells.len(),
        selected
            .as_ref()
            .map(|c| format!(" · ◆ {c}"))
            .unwrap_or_default()
    );
    let theme = app.theme;
    // The fullest cells get their outlines; the rest a dot, so the coastlines stay readable.
    let outlined: Vec<&str> = app
        .data
        .stats
        .as_ref()
        .map(|s| {
            s.stats
                .top_cells
                .iter()
                .take(OUTLINED)
                .map(|c| c.cell.as_str())
                .collect()
        })
        .unwrap_or_default();
    let resolution = if area.width >= 100 {
        MapResolution::High
    } else {
        MapResolution::Low
    };
    let canvas = Canvas::default()
        .block(block(app, title))
        .marker(Marker::Braille)
        .x_bounds([-180.0, 180.0])
        .y_bounds([-90.0, 90.0])
        .paint(move |ctx| {
            ctx.draw(&Map {
                resolution,
                color: theme.land(),
            });
            ctx.layer();
            for c in cells {
                let color = theme.heat(c.rows as f64 / max as f64);
                if outlined.contains(&c.cell.as_str()) {
                    let n = c.outline.len();
                    for i in 0..n {
                        let (a, b) = (c.outline[i], c.outline[(i + 1) % n]);
                        // Edges across the antimeridian would streak over the map.
                        if (a.0 - b.0).abs() > 180.0 {
                            continue;
                        }
                        ctx.draw(&CanvasLine {
                            x1: a.0,
                            y1: a.1,
                            x2: b.0,
                            y2: b.1,
                            color,
                        });
                    }
                } else {
                    ctx.print(
                        c.centroid.0,
                        c.centroid.1,
                        Span::styled("•", ratatui::style::Style::new().fg(color)),
                    );
                }
            }
            if let Some(sel) = &selected
                && let Some(c) = cells.iter().find(|c| &c.cell == sel)
            {
                ctx.layer();
                ctx.draw(&Points {
                    coords: &[c.centroid],
                    color: theme.marker(),
                });
                ctx.print(c.centroid.0, c.centroid.1, Span::styled("◆", theme.key()));
            }
        });
    frame.render_widget(canvas, area);
}
