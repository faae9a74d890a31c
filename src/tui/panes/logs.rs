//! Logs: the engine's `tracing` output captured by tui-logger (nothing goes
//! to stderr while the console runs), with a display level filter (+/-).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use tui_logger::{ExtLogRecord, LogFormatter, TuiLoggerWidget};

use super::{block, safe};
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::views::logs::LOG_LEVELS;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let level = LOG_LEVELS[app.views.logs.level];
    let t = &app.theme;
    let widget = TuiLoggerWidget::default()
        .block(block(
            app,
            format!(
                "Logs — showing {level} and above ({}/{})",
                app.keys.label(Action::LogMore),
                app.keys.label(Action::LogLess)
            ),
        ))
        .formatter(Box::new(SafeLogFormatter {
            styles: [t.bad(), t.warn(), t.text(), t.dim(), t.dim()],
        }))
        .state(&app.views.logs.state);
    frame.render_widget(widget, area);
}

/// Continuation lines are indented this far (under the message, past the
/// time and level).
const INDENT: usize = 9;

/// tui-logger's standard layout — `HH:MM:SS L message`, wrapped to the
/// pane, continuation lines indented — with the message drawn [`safe`]: a
/// log line quoting an item id or a remote error shows its control
/// characters escaped.
struct SafeLogFormatter {
    /// Error, warn, info, debug, trace.
    styles: [Style; 5],
}

impl LogFormatter for SafeLogFormatter {
    fn min_width(&self) -> u16 {
        INDENT as u16 + 4
    }

    fn format(&self, width: usize, evt: &ExtLogRecord) -> Vec<Line<'_>> {
        let (style, letter) = match evt.level.as_str() {
            "ERROR" => (self.styles[0], 'E'),
            "WARN" => (self.styles[1], 'W'),
            "INFO" => (self.styles[2], 'I'),
            "DEBUG" => (self.styles[3], 'D'),
            _ => (self.styles[4], 'T'),
        };
        let mut lines = vec![];
        for (i, text) in evt.msg().split('\n').enumerate() {
            let text = safe(text);
            if i == 0 {
                let first = format!("{} {letter} {text}", evt.timestamp.strftime("%H:%M:%S"));
                wrap(&first, width, style, &mut lines);
            } else {
                wrap(&format!("{:INDENT$}{text}", ""), width, style, &mut lines);
            }
        }
        lines
    }
}

/// `text` cut into lines of `width` characters; lines after the first are
/// indented by [`INDENT`].
fn wrap(text: &str, width: usize, style: Style, out: &mut Vec<Line<'_>>) {
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    let mut room = width.max(1);
    loop {
        let end = (at + room).min(chars.len());
        let piece: String = chars[at..end].iter().collect();
        let indent = if at == 0 { 0 } else { INDENT };
        out.push(Line::styled(format!("{:indent$}{piece}", ""), style));
        at = end;
        if at >= chars.len() {
            break;
        }
        room = width.saturating_sub(INDENT).max(1);
    }
}
