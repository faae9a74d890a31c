//! Layout: header, view tabs, the current view's panes, key hints, and the
//! status or command line; overlays on top. Views fit 80×24 and add panes
//! on wider screens (≥ 120 columns).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, View};
use super::modal::Modal;
use super::panes::{self, block, thousands};

/// Width from which views show extra panes.
pub const WIDE: u16 = 120;

/// Draws the whole screen from `app`.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    app.screen_width.set(area.width);
    app.list_hit.set(None);
    let [header, tabs, body, hints, status] = Layout::vertical([
        Constraint::Length(u16::from(app.prefs.header)),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app);
    draw_tabs(frame, tabs, app);
    draw_view(frame, body, app);
    draw_hints(frame, hints, app);
    draw_status(frame, status, app);
    draw_modals(frame, area, body, app);
}

/// The open dialogs, bottom first (inputs draw themselves in their panes
/// and the status line).
fn draw_modals(frame: &mut Frame, area: Rect, body: Rect, app: &App) {
    use super::dialogs;
    for modal in app.modals.iter() {
        match modal {
            Modal::Help => dialogs::help::draw(frame, area, app),
            Modal::Steal(d) => dialogs::steal::draw(frame, body, d, app),
            Modal::Confirm(c) => dialogs::confirm::draw(frame, body, c, &app.theme, &app.keys),
            Modal::CommandLine(_) | Modal::Filter | Modal::QueryEdit => {}
        }
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = vec![Span::styled(" ecops ", app.theme.selected())];
    let place = match &app.init.demo {
        Some(_) => format!(" demo {} ", panes::safe(&app.init.base)),
        None => format!(" {} ", panes::safe(&app.init.base)),
    };
    spans.push(Span::raw(place));
    if let Some(s) = &app.data.stats {
        spans.push(Span::styled("│", app.theme.dim()));
        spans.push(Span::raw(format!(
            " {} rows · {} files · {} snapshots ",
            thousands(s.stats.rows),
            thousands(s.stats.files),
            thousands(s.stats.snapshots)
        )));
    }
    let (lock, style) = panes::lock::summary(app);
    spans.push(Span::styled("│ ", app.theme.dim()));
    spans.push(Span::styled(lock, style));
    let others = &app.data.others;
    if !others.consoles.is_empty() {
        spans.push(Span::styled(
            format!(
                " │ {} other console{}",
                others.consoles.len(),
                if others.consoles.len() == 1 { "" } else { "s" }
            ),
            app.theme.warn(),
        ));
    }
    if !others.writers.is_empty() {
        spans.push(Span::styled(
            format!(" │ running: {}", panes::safe(&others.writers.join(", "))),
            app.theme.warn(),
        ));
    }
    if app.init.read_only {
        spans.push(Span::styled(" READ-ONLY", app.theme.warn()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The tabs' labels and their columns at `width`: short names when the
/// full ones do not fit, so every tab stays visible.
fn tab_labels(width: u16) -> Vec<(View, String, u16)> {
    let full: usize = View::ALL
        .iter()
        .map(|v| v.title().chars().count() + 4)
        .sum();
    let short = full > usize::from(width);
    let mut x = 0u16;
    View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let title: String = if short {
                v.title().chars().take(4).collect()
            } else {
                v.title().to_string()
            };
            let text = format!(" {} {title} ", i + 1);
            let at = x;
            x += text.chars().count() as u16;
            (*v, text, at)
        })
        .collect()
}

/// The tab under column `x` of a screen `width` wide.
pub fn tab_at(width: u16, x: u16) -> Option<View> {
    tab_labels(width)
        .into_iter()
        .find(|(_, text, at)| (*at..*at + text.chars().count() as u16).contains(&x))
        .map(|(v, _, _)| v)
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let spans: Vec<Span> = tab_labels(area.width)
        .into_iter()
        .map(|(v, text, _)| {
            if v == app.view {
                Span::styled(text, app.theme.selected())
            } else {
                Span::styled(text, app.theme.dim())
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_view(frame: &mut Frame, area: Rect, app: &App) {
    let wide = area.width >= WIDE;
    match app.view {
        View::Overview => {
            let (main, side) = if wide {
                let [m, s] = Layout::horizontal([Constraint::Min(60), Constraint::Percentage(38)])
                    .areas(area);
                (m, Some(s))
            } else {
                (area, None)
            };
            let tp = (main.height * 2 / 5).max(6);
            let [score, top, bottom] = Layout::vertical([
                Constraint::Length(1),
                Constraint::Length(tp),
                Constraint::Min(3),
            ])
            .areas(main);
            frame.render_widget(Paragraph::new(panes::partitions::score_line(app)), score);
            panes::throughput::draw(frame, top, app);
            panes::jobs::draw_list(frame, bottom, app);
            if let Some(side) = side {
                let [l, c] =
                    Layout::vertical([Constraint::Length(11), Constraint::Min(4)]).areas(side);
                frame.render_widget(
                    Paragraph::new(panes::lock::lines(app))
                        .wrap(Wrap { trim: false })
                        .block(block(app, "Lock")),
                    l,
                );
                panes::cells::draw_top(frame, c, app);
            }
        }
        View::Jobs => {
            let [top, bottom] =
                Layout::vertical([Constraint::Percentage(45), Constraint::Min(4)]).areas(area);
            panes::jobs::draw_list(frame, top, app);
            panes::jobs::draw_detail(frame, bottom, app);
        }
        View::Partitions => {
            if wide {
                let [l, r] =
                    Layout::horizontal([Constraint::Length(64), Constraint::Min(40)]).areas(area);
                let [h, m] =
                    Layout::vertical([Constraint::Length(10), Constraint::Min(6)]).areas(r);
                panes::partitions::draw_table(frame, l, app);
                panes::partitions::draw_health(frame, h, app);
                panes::map::draw(frame, m, app);
            } else {
                let [h, t] =
                    Layout::vertical([Constraint::Length(9), Constraint::Min(4)]).areas(area);
                panes::partitions::draw_health(frame, h, app);
                panes::partitions::draw_table(frame, t, app);
            }
        }
        View::Cells => panes::cells::draw(frame, area, app),
        View::Lock => {
            if wide {
                let [l, r] = Layout::horizontal([Constraint::Percentage(55), Constraint::Min(40)])
                    .areas(area);
                panes::lock::draw(frame, l, app);
                panes::logs::draw(frame, r, app);
            } else {
                panes::lock::draw(frame, area, app);
            }
        }
        View::Query => panes::query::draw(frame, area, app),
        View::Logs => panes::logs::draw(frame, area, app),
        View::History => panes::history::draw(frame, area, app),
        View::Backfill => panes::backfill::draw(frame, area, app),
    }
}

fn draw_hints(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = vec![];
    let mut used = 0usize;
    // The top modal's keys, or the view's first and then the global ones.
    let hints = match app.modals.top() {
        Some(m) => app.keys.hints(m.commands()),
        None => [
            app.keys.hints(super::views::commands(app.view)),
            app.keys.hints(super::keymap::GLOBAL),
        ]
        .concat(),
    };
    for (label, hint, action) in hints {
        if app.init.read_only && action.writes() {
            continue;
        }
        let len = label.chars().count() + hint.chars().count() + 3;
        if used + len > usize::from(area.width) {
            break;
        }
        used += len;
        spans.push(Span::styled(format!(" {label}"), app.theme.key()));
        spans.push(Span::styled(format!(" {hint} "), app.theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let line = if let Some(cmd) = app.modals.command_line() {
        Line::from(vec![
            Span::styled(":", app.theme.key()),
            Span::raw(cmd.to_string()),
            Span::styled("█", app.theme.key()),
        ])
    } else if let Some((text, error)) = &app.status {
        Line::styled(
            panes::safe(text).into_owned(),
            if *error {
                app.theme.bad()
            } else {
                app.theme.text()
            },
        )
    } else if let Some(dir) = &app.init.demo {
        Line::styled(
            format!(
                "embedded demo: synthetic items in {} — pass --base or set ECOPS_BASE for a real catalog",
                dir.display()
            ),
            app.theme.dim(),
        )
    } else {
        Line::styled("? help · : command", app.theme.dim())
    };
    frame.render_widget(Paragraph::new(line), area);
}
