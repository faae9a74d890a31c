//! Logs: the engine's `tracing` output captured by tui-logger (nothing goes
//! to stderr while the console runs), with a display level filter (+/-).

use ratatui::Frame;
use ratatui::layout::Rect;
use tui_logger::{TuiLoggerLevelOutput, TuiLoggerWidget};

use super::block;
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::views::logs::LOG_LEVELS;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let level = LOG_LEVELS[app.views.logs.level];
    let widget = TuiLoggerWidget::default()
        .block(block(
            app,
            format!(
                "Logs — showing {level} and above ({}/{})",
                app.keys.label(Action::LogMore),
                app.keys.label(Action::LogLess)
            ),
        ))
        .output_separator(' ')
        .output_timestamp(Some("%H:%M:%S".to_string()))
        .output_level(Some(TuiLoggerLevelOutput::Abbreviated))
        .output_target(false)
        .output_file(false)
        .output_line(false)
        .style_error(app.theme.bad())
        .style_warn(app.theme.warn())
        .style_info(app.theme.text())
        .style_debug(app.theme.dim())
        .style_trace(app.theme.dim())
        .state(&app.views.logs.state);
    frame.render_widget(widget, area);
}
