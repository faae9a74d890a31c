//! The steal dialog: shows the lock as the console watches it (refreshed
//! every second while the dialog is open), asks the operator to type the
//! holder's generation (or, for earthcatalog's generation-less locks, its
//! owner), and sends a steal of exactly the object on screen. The lock task
//! then re-reads the lock, refuses if it changed or is not stale by the
//! watcher's rule, and the dialog shows that outcome.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::fmt::format_age;
use crate::jobs::LockOutcome;
use crate::lock::{LockState, Watched, holder_identity};
use crate::tui::keymap::{Action, Keymap};
use crate::tui::modal::edit_text;
use crate::tui::theme::Theme;

/// Where the dialog is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StealPhase {
    Confirming,
    /// Sent; waiting for the lock task's outcome.
    Stealing,
    Done(LockOutcome),
}

/// What a key did.
#[derive(Debug, Clone, PartialEq)]
pub enum StealKey {
    None,
    Close,
    /// Steal this state (the one the operator confirmed).
    Steal(Box<LockState>),
}

/// The dialog's state.
#[derive(Debug, Clone)]
pub struct StealDialog {
    pub watched: Box<Watched>,
    pub input: String,
    pub phase: StealPhase,
    /// Why the last Enter did nothing.
    pub error: Option<String>,
}

impl StealDialog {
    pub fn open(watched: &Watched) -> Self {
        Self {
            watched: Box::new(watched.clone()),
            input: String::new(),
            phase: StealPhase::Confirming,
            error: None,
        }
    }

    /// A new read of the lock: shown while the operator is still deciding.
    pub fn observe(&mut self, watched: &Watched) {
        if self.phase == StealPhase::Confirming {
            *self.watched = watched.clone();
        }
    }

    /// The outcome of the steal.
    pub fn finish(&mut self, outcome: LockOutcome) {
        if self.phase == StealPhase::Stealing {
            self.phase = StealPhase::Done(outcome);
        }
    }

    /// What must be typed: ("generation", "7") or ("owner", "alice") for
    /// generation-less locks; None when there is nothing the dialog can steal.
    pub fn token(&self) -> Option<(&'static str, String)> {
        match &self.watched.state {
            LockState::Held { record, .. } => Some(match record.generation {
                Some(g) => ("generation", g.to_string()),
                None => ("owner", record.owner.clone()),
            }),
            LockState::Free { .. } | LockState::Unreadable { .. } => None,
        }
    }

    /// Handles a key (`action`: what the key table makes of it).
    pub fn on_key(&mut self, action: Option<Action>, key: &KeyEvent) -> StealKey {
        if action == Some(Action::Back) {
            return StealKey::Close;
        }
        if self.phase != StealPhase::Confirming {
            return match action {
                Some(Action::Confirm) if matches!(self.phase, StealPhase::Done(_)) => {
                    StealKey::Close
                }
                _ => StealKey::None,
            };
        }
        if action != Some(Action::Confirm) {
            edit_text(&mut self.input, action, key);
            return StealKey::None;
        }
        let Some((what, token)) = self.token() else {
            self.error = Some(match &self.watched.state {
                LockState::Free { .. } => "the lock is free: nothing to steal".into(),
                _ => "unreadable lock content: only `ecops lock steal --force FINGERPRINT` replaces it".into(),
            });
            return StealKey::None;
        };
        if self.input.trim() != token {
            self.error = Some(format!(
                "'{}' is not the holder's {what}; nothing was done",
                self.input.trim()
            ));
            return StealKey::None;
        }
        self.error = None;
        self.phase = StealPhase::Stealing;
        StealKey::Steal(Box::new(self.watched.state.clone()))
    }
}

/// Draws the dialog over `area`.
pub fn draw(frame: &mut Frame, area: Rect, dialog: &StealDialog, app: &crate::tui::app::App) {
    let (theme, keys, read_only) = (&app.theme, &app.keys, app.init.read_only);
    let mut lines = lock_lines(&dialog.watched, theme);
    if let Some(w) = app.data.others_warning() {
        lines.push(Line::styled(w, theme.bad()));
    }
    lines.push(Line::raw(""));
    lines.extend(prompt_lines(dialog, theme, keys, read_only));
    if let Some(e) = &dialog.error {
        lines.push(Line::styled(e.as_str(), theme.bad()));
    }
    let rect = super::centered(area, 76, 16);
    super::frame(frame, rect, " Steal the catalog lock ", lines, theme);
}

/// The holder, its age and whether our watch finds it stale.
fn lock_lines(w: &Watched, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![];
    match &w.state {
        LockState::Held {
            record, assessment, ..
        } => {
            lines.push(Line::from(vec![
                Span::styled("Holder  ", theme.dim()),
                Span::raw(holder_identity(record)),
            ]));
            let ttl = record.ttl().num_seconds() as f64;
            lines.push(Line::from(vec![
                Span::styled("Age     ", theme.dim()),
                Span::raw(format!(
                    "last heartbeat {} ago (TTL {}); unchanged under our watch for {}",
                    assessment.age_seconds.map_or("?".into(), format_age),
                    format_age(ttl),
                    format_age(w.observed_seconds)
                )),
            ]));
            lines.push(if w.stale {
                Line::styled(
                    format!("STALE: {} — it can be stolen", assessment.why),
                    theme.warn(),
                )
            } else {
                Line::styled(
                    format!("LIVE: {} — a steal now will be refused", assessment.why),
                    theme.ok(),
                )
            });
        }
        other => lines.push(Line::raw(other.describe())),
    }
    lines
}

/// What to type, or where the steal stands.
fn prompt_lines<'a>(
    dialog: &'a StealDialog,
    theme: &Theme,
    keys: &Keymap,
    read_only: bool,
) -> Vec<Line<'a>> {
    let mut lines = vec![];
    match (&dialog.phase, dialog.token()) {
        (_, _) if read_only => lines.push(Line::styled(
            "read-only console: steal is disabled",
            theme.bad(),
        )),
        (StealPhase::Confirming, Some((what, token))) => {
            lines.push(Line::from(vec![
                Span::raw(format!("Type the holder's {what} (")),
                Span::styled(token, theme.key()),
                Span::raw(format!(
                    ") and press {} to steal; {} aborts.",
                    keys.label(Action::Confirm),
                    keys.label(Action::Back)
                )),
            ]));
            lines.push(Line::from(vec![
                Span::styled("> ", theme.key()),
                Span::raw(dialog.input.as_str()),
                Span::styled("█", theme.dim()),
            ]));
        }
        (StealPhase::Confirming, None) => lines.push(Line::raw(format!(
            "Nothing the console can steal. {} closes.",
            keys.label(Action::Back)
        ))),
        (StealPhase::Stealing, _) => lines.push(Line::styled(
            "Stealing: re-reading the lock and replacing it only if unchanged and stale…",
            theme.warn(),
        )),
        (StealPhase::Done(outcome), _) => {
            lines.push(Line::styled(
                if outcome.ok { "STOLEN" } else { "REFUSED" },
                if outcome.ok { theme.ok() } else { theme.bad() },
            ));
            lines.push(Line::raw(outcome.message.as_str()));
            lines.push(Line::styled(
                format!(
                    "{}/{} closes.",
                    keys.label(Action::Confirm),
                    keys.label(Action::Back)
                ),
                theme.dim(),
            ));
        }
    }
    lines
}
