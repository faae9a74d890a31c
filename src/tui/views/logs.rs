//! Logs: the display level of the logs pane (+/-).

use crate::tui::keymap::Action;

pub const COMMANDS: &[Action] = &[Action::LogMore, Action::LogLess];

/// Log display levels, least to most detail.
pub const LOG_LEVELS: [tui_logger::LevelFilter; 5] = [
    tui_logger::LevelFilter::Error,
    tui_logger::LevelFilter::Warn,
    tui_logger::LevelFilter::Info,
    tui_logger::LevelFilter::Debug,
    tui_logger::LevelFilter::Trace,
];

/// The level shown and the logger widget's state.
pub struct LogsView {
    /// Index into [`LOG_LEVELS`].
    pub level: usize,
    pub state: tui_logger::TuiWidgetState,
}

impl std::fmt::Debug for LogsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsView")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Default for LogsView {
    fn default() -> Self {
        Self::at(2)
    }
}

impl LogsView {
    fn at(level: usize) -> Self {
        Self {
            level,
            state: tui_logger::TuiWidgetState::new().set_default_display_level(LOG_LEVELS[level]),
        }
    }

    pub fn act(&mut self, action: Action) {
        let level = match action {
            Action::LogMore => (self.level + 1).min(LOG_LEVELS.len() - 1),
            Action::LogLess => self.level.saturating_sub(1),
            _ => return,
        };
        *self = Self::at(level);
    }
}
