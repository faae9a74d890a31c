//! Confirmation queue: actions that change the catalog or stop work ask
//! first, one dialog at a time, in the order they were asked.

use std::collections::VecDeque;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::jobs::Request;
use crate::tui::theme::Theme;

/// A question whose "yes" sends `yes`.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub yes: Request,
}

/// Pending confirmations; the first is shown.
#[derive(Debug, Clone, Default)]
pub struct ConfirmQueue {
    queue: VecDeque<Confirm>,
}

impl ConfirmQueue {
    pub fn push(&mut self, confirm: Confirm) {
        self.queue.push_back(confirm);
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn front(&self) -> Option<&Confirm> {
        self.queue.front()
    }

    /// `y`/Enter answers yes (returns the request), `n`/Esc no; other keys are ignored.
    pub fn on_key(&mut self, key: &KeyEvent) -> Option<Request> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                self.queue.pop_front().map(|c| c.yes)
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                self.queue.pop_front();
                None
            }
            _ => None,
        }
    }
}

/// Draws the first pending confirmation over `area`.
pub fn draw(frame: &mut Frame, area: Rect, queue: &ConfirmQueue, theme: &Theme) {
    let Some(c) = queue.front() else {
        return;
    };
    let height = (c.lines.len() as u16 + 4).min(area.height);
    let rect = super::centered(area, 70, height);
    let mut lines: Vec<Line> = c.lines.iter().map(|l| Line::raw(l.as_str())).collect();
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("y", theme.key()),
        Span::raw("/Enter yes   "),
        Span::styled("n", theme.key()),
        Span::raw("/Esc no"),
    ]));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.warn())
                .title(Span::styled(format!(" {} ", c.title), theme.warn())),
        ),
        rect,
    );
}
