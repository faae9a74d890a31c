//! Throughput: items/s, rows/s, MB/s and failures/s of all ingest jobs over
//! the last minutes (one sample per second), now vs. average, and the ETA of
//! the running jobs — from their progress events.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::{block, rate, thousands};
use crate::fmt::format_age;
use crate::jobs::throughput::Rates;
use crate::tui::app::App;

const LABEL_WIDTH: u16 = 36;

/// Name, value picker, running total, formatter of one sparkline.
type Series = (&'static str, fn(&Rates) -> f64, u64, fn(f64) -> String);

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let running: Vec<_> = app
        .data
        .jobs
        .iter()
        .filter(|j| j.state.is_active())
        .collect();
    let eta = running
        .iter()
        .filter_map(|j| j.eta_seconds())
        .fold(None, |a: Option<f64>, e| Some(a.map_or(e, |a| a.max(e))));
    let title = format!(
        "Throughput — {} running{}",
        app.data.running(),
        eta.map(|e| format!(" · ETA {}", format_age(e)))
            .unwrap_or_default()
    );
    let outer = block(app, title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if inner.height == 0 {
        return;
    }
    let (now, avg) = (app.data.throughput.current(), app.data.throughput.average());
    let totals = app.data.throughput.totals();
    let series: [Series; 4] = [
        ("items/s", |r| r.items, totals.items, rate),
        ("rows/s ", |r| r.rows, totals.rows, rate),
        ("MB/s   ", |r| r.bytes, totals.bytes, |v| rate(v / 1e6)),
        ("fail/s ", |r| r.failed, totals.failed, rate),
    ];
    let rows = Layout::vertical(vec![Constraint::Ratio(1, 4); 4]).split(inner);
    for (i, (name, pick, total, fmt)) in series.iter().enumerate() {
        let [label, spark] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Min(1)])
                .areas(rows[i]);
        let total_text = if i == 2 {
            super::bytes(*total)
        } else {
            thousands(*total)
        };
        let line = Line::from(vec![
            Span::styled(*name, app.theme.series(i)),
            Span::raw(format!(" {:>7}", fmt(pick(&now)))),
            Span::styled(format!(" avg {:>6}", fmt(pick(&avg))), app.theme.dim()),
            Span::styled(format!(" Σ{total_text}"), app.theme.dim()),
        ]);
        frame.render_widget(Paragraph::new(line), label);
        let data = app
            .data
            .throughput
            .series(usize::from(spark.width), |r| match i {
                2 => r.bytes / 1e3, // KB/s keeps small rates visible
                _ => pick(r),
            });
        frame.render_widget(
            Sparkline::default().data(&data).style(app.theme.series(i)),
            spark,
        );
    }
}
