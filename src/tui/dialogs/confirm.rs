//! A confirmation: actions that change the catalog or stop work ask first
//! (the modal stack answers them one at a time, in the order asked).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::tui::keymap::{Action, Keymap};
use crate::tui::modal::Confirm;
use crate::tui::theme::Theme;

/// Draws `c` over `area`.
pub fn draw(frame: &mut Frame, area: Rect, c: &Confirm, theme: &Theme, keys: &Keymap) {
    let extra = if c.typed.is_some() { 6 } else { 4 };
    let height = (c.lines.len() as u16 + extra).min(area.height);
    let mut lines: Vec<Line> = c
        .lines
        .iter()
        .map(|l| Line::raw(crate::fmt::terminal_safe(l).into_owned()))
        .collect();
    lines.push(Line::raw(""));
    match &c.typed {
        None => lines.push(Line::from(vec![
            Span::styled(keys.label(Action::Yes).to_string(), theme.key()),
            Span::raw(format!("/{} yes   ", keys.label(Action::Confirm))),
            Span::styled(keys.label(Action::No).to_string(), theme.key()),
            Span::raw(format!("/{} no", keys.label(Action::Back))),
        ])),
        Some(token) => {
            lines.push(Line::from(vec![
                Span::raw("Type "),
                Span::styled(token.clone(), theme.key()),
                Span::raw(format!(
                    " and press {}; {} aborts.",
                    keys.label(Action::Confirm),
                    keys.label(Action::Back)
                )),
            ]));
            lines.push(Line::from(vec![
                Span::styled("> ", theme.key()),
                Span::raw(c.input.clone()),
                Span::styled("█", theme.dim()),
            ]));
            if let Some(e) = &c.error {
                lines.push(Line::styled(e.clone(), theme.bad()));
            }
        }
    }
    let title = format!(" {} ", c.title);
    super::frame(
        frame,
        super::centered(area, 70, height),
        &title,
        lines,
        theme,
    );
}
