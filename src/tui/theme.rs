//! Colours. Only the 16 standard ANSI colours are used (they render on every
//! terminal, including 16-colour ones); with `NO_COLOR` set to anything
//! non-empty (<https://no-color.org>) the console uses bold, reverse and dim only.

use ratatui::style::{Color, Modifier, Style};

/// The console's styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// False: no colour at all, modifiers only.
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set and non-empty.
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// A theme without colour.
    pub fn mono() -> Self {
        Self { color: false }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn text(&self) -> Style {
        Style::new()
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self) -> Style {
        self.dim()
    }

    pub fn border_focus(&self) -> Style {
        self.fg(Color::Cyan)
    }

    /// Selected row, active tab.
    pub fn selected(&self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn header(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Sparkline / bar colour of a series.
    pub fn series(&self, i: usize) -> Style {
        const COLORS: [Color; 4] = [Color::Green, Color::Cyan, Color::Blue, Color::Red];
        self.fg(COLORS[i % COLORS.len()])
    }

    /// Colour of a map cell by its share of the largest cell's rows (0..=1).
    pub fn heat(&self, share: f64) -> Color {
        if !self.color {
            return Color::Reset;
        }
        match share {
            s if s >= 0.66 => Color::Red,
            s if s >= 0.33 => Color::Yellow,
            s if s >= 0.1 => Color::Green,
            _ => Color::Cyan,
        }
    }

    /// Colour of the coastlines.
    pub fn land(&self) -> Color {
        if self.color {
            Color::Gray
        } else {
            Color::Reset
        }
    }
}
