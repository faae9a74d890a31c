//! Lock: who holds the catalog lock (owner, host, pid, operation,
//! generation, job), heartbeat age against the TTL with a countdown to
//! staleness — by the holder's timestamps and by the console's own watch —
//! and the actions: a acquire, r release, s steal (disabled when read-only).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::block;
use crate::fmt::format_age;
use crate::lock::{Assessment, LockRecord, LockState, Watched};
use crate::tui::app::App;
use crate::tui::keymap::Action;

/// A one-line summary for the header.
pub fn summary(app: &App) -> (String, ratatui::style::Style) {
    match app
        .data
        .lock
        .watched
        .as_deref()
        .map(|w| (&w.state, w.stale))
    {
        None => (
            app.data
                .lock
                .error
                .as_ref()
                .map_or("lock: reading…".into(), |e| format!("lock: error {e}")),
            app.theme.dim(),
        ),
        Some((LockState::Free { .. }, _)) => ("lock: free".into(), app.theme.ok()),
        Some((LockState::Held { record, .. }, stale)) => (
            format!(
                "lock: {} {} by {}{}",
                if stale { "STALE" } else { "held" },
                super::safe(record.operation.as_deref().unwrap_or("-")),
                super::safe(&record.owner),
                record
                    .generation
                    .map(|g| format!(" gen {g}"))
                    .unwrap_or_default()
            ),
            if stale {
                app.theme.bad()
            } else {
                app.theme.warn()
            },
        ),
        Some((LockState::Unreadable { .. }, _)) => ("lock: UNREADABLE".into(), app.theme.bad()),
    }
}

/// The lock's detail lines (also used by the overview's lock box).
pub fn lines(app: &App) -> Vec<Line<'static>> {
    // Lock records are written by other machines and tools: data.
    let kv = |k: &str, v: Span<'static>| {
        let v = Span::styled(super::safe(&v.content).into_owned(), v.style);
        Line::from(vec![Span::styled(format!("{k:<12}"), app.theme.dim()), v])
    };
    let Some(w) = app.data.lock.watched.as_deref() else {
        return vec![Line::styled(
            app.data
                .lock
                .error
                .clone()
                .unwrap_or_else(|| "reading the lock…".into()),
            app.theme.dim(),
        )];
    };
    // Seconds since the read, so countdowns move between reads.
    let since = app
        .data
        .lock
        .read_at
        .map_or(0.0, |t| t.elapsed().as_secs_f64());
    let mut out = vec![];
    match &w.state {
        LockState::Free { released, .. } => {
            out.push(kv("state", Span::styled("FREE", app.theme.ok())));
            if let Some(r) = released {
                out.push(kv(
                    "last holder",
                    Span::raw(format!(
                        "{} released at {} (generation {})",
                        r.owner,
                        r.released.as_deref().unwrap_or("?"),
                        r.generation.map_or("-".into(), |g| g.to_string())
                    )),
                ));
            }
        }
        LockState::Unreadable {
            reason,
            fingerprint,
            preview,
            ..
        } => {
            out.push(kv("state", Span::styled("UNREADABLE", app.theme.bad())));
            out.push(kv("reason", Span::raw(reason.clone())));
            out.push(kv("content", Span::raw(preview.clone())));
            out.push(kv(
                "fingerprint",
                Span::raw(format!(
                    "{fingerprint} (only `ecops lock steal --force {fingerprint}` replaces it)"
                )),
            ));
        }
        LockState::Held {
            record, assessment, ..
        } => out.extend(held_lines(app, w, record, assessment, since)),
    }
    out
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let mut all = lines(app);
    all.push(Line::raw(""));
    let actions = if app.init.read_only {
        Line::styled(
            "read-only console: acquire, release and steal are disabled",
            app.theme.dim(),
        )
    } else {
        let k = |a| Span::styled(app.keys.label(a).to_string(), app.theme.key());
        Line::from(vec![
            k(Action::Acquire),
            Span::raw(" acquire (1 h)   "),
            k(Action::Release),
            Span::raw(" release ours   "),
            k(Action::Steal),
            Span::raw(" steal (stale locks only; type the generation to confirm)"),
        ])
    };
    all.push(actions);
    if let Some(o) = &app.data.lock.outcome {
        all.push(Line::from(vec![
            Span::styled(
                format!("last {}: ", o.action.label()),
                if o.ok {
                    app.theme.ok()
                } else {
                    app.theme.bad()
                },
            ),
            Span::raw(o.message.clone()),
        ]));
    }
    frame.render_widget(
        Paragraph::new(all)
            .wrap(Wrap { trim: false })
            .block(block(app, "Catalog lock")),
        area,
    );
}

/// Who holds the lock, its heartbeat against the TTL, and our watch of it.
fn held_lines(
    app: &App,
    w: &Watched,
    record: &LockRecord,
    assessment: &Assessment,
    since: f64,
) -> Vec<Line<'static>> {
    // Lock records are written by other machines and tools: data.
    let kv = |k: &str, v: Span<'static>| {
        let v = Span::styled(super::safe(&v.content).into_owned(), v.style);
        Line::from(vec![Span::styled(format!("{k:<12}"), app.theme.dim()), v])
    };
    let mut out = vec![];
    let ours = app.data.lock.held_generation.is_some()
        && app.data.lock.held_generation == record.generation;
    // One rule for CLI and console (lock::stale): the verdict says which
    // part made the lock stale, or when it becomes stealable.
    let state = if w.stale {
        Span::styled(format!("STALE — {}", assessment.why), app.theme.bad())
    } else {
        Span::styled(
            format!("HELD (live) — {}", assessment.why),
            app.theme.warn(),
        )
    };
    out.push(kv("state", state));
    out.push(kv(
        "holder",
        Span::raw(format!(
            "{}{}",
            record.owner,
            if ours { "  ← this console" } else { "" }
        )),
    ));
    out.push(kv(
        "host / pid",
        Span::raw(format!("{} / {}", record.hostname, record.pid)),
    ));
    out.push(kv(
        "operation",
        Span::raw(format!(
            "{}{}",
            record
                .operation
                .as_deref()
                .unwrap_or("- (earthcatalog lock)"),
            record
                .job_id
                .as_ref()
                .map(|j| format!(", job {j}"))
                .unwrap_or_default()
        )),
    ));
    out.push(kv(
        "generation",
        Span::raw(record.generation.map_or(
            "- (earthcatalog lock: confirm a steal with its owner)".into(),
            |g| g.to_string(),
        )),
    ));
    let ttl = record.ttl().num_milliseconds() as f64 / 1000.0;
    let age = assessment.age_seconds.map(|a| a + since);
    let skew = assessment.skew_seconds;
    out.push(kv(
        "heartbeat",
        Span::raw(format!(
            "{} ago · TTL {} · skew allowance {}{}",
            age.map_or("?".into(), format_age),
            format_age(ttl),
            format_age(skew),
            age.map(|a| {
                if a >= ttl + skew {
                    format!(" · expired {} ago by its own clock", format_age(a - ttl))
                } else {
                    format!(
                        " · expires by its own clock in {}",
                        format_age(ttl + skew - a)
                    )
                }
            })
            .unwrap_or_default()
        )),
    ));
    let watched = w.observed_seconds + since;
    out.push(kv(
        "our watch",
        Span::raw(format!(
            "unchanged for {}{}",
            format_age(watched),
            if w.stale { " — stealable" } else { "" }
        )),
    ));
    if let Some(p) = &record.progress {
        out.push(kv("progress", Span::raw(p.to_string())));
    }
    out
}
