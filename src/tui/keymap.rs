//! The one key table. The footer's key hints, the `?` help overlay and the
//! key dispatch all read [`BINDINGS`], so what the screen says is what the
//! keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::View;

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    CommandLine,
    NextView,
    PrevView,
    GoView(View),
    RefreshStats,
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    NewIngest,
    Compact,
    PauseResume,
    CancelJob,
    DeadLetters,
    Filter,
    Sort,
    SortReverse,
    Acquire,
    Release,
    Steal,
    EditField,
    RunQuery,
    PlainResults,
    LogMore,
    LogLess,
    // Keys of input fields and dialogs.
    Confirm,
    Back,
    FieldUp,
    FieldDown,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere (unless an input or dialog has the keys).
    Global,
    /// In these views.
    Views(&'static [View]),
    /// While typing in an input field or answering a dialog.
    Input,
}

impl Scope {
    pub fn name(&self) -> String {
        match self {
            Scope::Global => "Everywhere".into(),
            Scope::Input => "Inputs and dialogs".into(),
            Scope::Views(views) => views
                .iter()
                .map(|v| v.title())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn applies(&self, view: View) -> bool {
        match self {
            Scope::Global => true,
            Scope::Views(views) => views.contains(&view),
            Scope::Input => false,
        }
    }
}

/// A key: code plus modifiers (Shift is ignored for characters, which carry their case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub KeyCode, pub KeyModifiers);

const fn k(c: char) -> Key {
    Key(KeyCode::Char(c), KeyModifiers::NONE)
}
const fn code(c: KeyCode) -> Key {
    Key(c, KeyModifiers::NONE)
}
const fn ctrl(c: char) -> Key {
    Key(KeyCode::Char(c), KeyModifiers::CONTROL)
}

impl Key {
    /// True if `event` is this key.
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let mods = match event.code {
            KeyCode::Char(_) | KeyCode::BackTab => event.modifiers - KeyModifiers::SHIFT,
            _ => event.modifiers,
        };
        event.code == self.0 && mods == self.1
    }
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [Key],
    /// How the keys are written in hints and help.
    pub label: &'static str,
    pub action: Action,
    /// Short text for the footer.
    pub hint: &'static str,
    /// Longer text for the help overlay.
    pub help: &'static str,
    /// Shown in the footer (else only in the help overlay).
    pub footer: bool,
}

const JOB_VIEWS: &[View] = &[View::Overview, View::Jobs];
const LIST_VIEWS: &[View] = &[
    View::Overview,
    View::Jobs,
    View::Partitions,
    View::Cells,
    View::Query,
];

macro_rules! bind {
    ($scope:expr, [$($key:expr),+], $label:expr, $action:expr, $hint:expr, $help:expr, $footer:expr) => {
        Binding { scope: $scope, keys: &[$($key),+], label: $label, action: $action,
                  hint: $hint, help: $help, footer: $footer }
    };
}

/// Every key of the console.
pub const BINDINGS: &[Binding] = &[
    bind!(
        Scope::Global,
        [k('?')],
        "?",
        Action::Help,
        "help",
        "show or hide this help",
        true
    ),
    bind!(
        Scope::Global,
        [k(':')],
        ":",
        Action::CommandLine,
        "command",
        "command line: ingest PATH [--items-root URL] [--job NAME] · compact · query k=v… · steal · acquire [TTL] · release · refresh · q",
        true
    ),
    bind!(
        Scope::Global,
        [code(KeyCode::Tab), k('l'), code(KeyCode::Right)],
        "Tab/l/→",
        Action::NextView,
        "next",
        "next view",
        true
    ),
    bind!(
        Scope::Global,
        [code(KeyCode::BackTab), k('h'), code(KeyCode::Left)],
        "S-Tab/h/←",
        Action::PrevView,
        "prev",
        "previous view",
        false
    ),
    bind!(
        Scope::Global,
        [k('1')],
        "1",
        Action::GoView(View::Overview),
        "overview",
        "overview: throughput and jobs",
        false
    ),
    bind!(
        Scope::Global,
        [k('2')],
        "2",
        Action::GoView(View::Jobs),
        "jobs",
        "jobs with details and dead letters",
        false
    ),
    bind!(
        Scope::Global,
        [k('3')],
        "3",
        Action::GoView(View::Partitions),
        "partitions",
        "partitions and catalog health",
        false
    ),
    bind!(
        Scope::Global,
        [k('4')],
        "4",
        Action::GoView(View::Cells),
        "cells",
        "top cells and the map",
        false
    ),
    bind!(
        Scope::Global,
        [k('5')],
        "5",
        Action::GoView(View::Lock),
        "lock",
        "the catalog lock",
        false
    ),
    bind!(
        Scope::Global,
        [k('6')],
        "6",
        Action::GoView(View::Query),
        "query",
        "query form and results",
        false
    ),
    bind!(
        Scope::Global,
        [k('7')],
        "7",
        Action::GoView(View::Logs),
        "logs",
        "engine logs",
        false
    ),
    bind!(
        Scope::Global,
        [k('R')],
        "R",
        Action::RefreshStats,
        "refresh",
        "re-read the table stats now",
        false
    ),
    bind!(
        Scope::Global,
        [k('q'), ctrl('c')],
        "q/^C",
        Action::Quit,
        "quit",
        "quit (running jobs stop at their next chunk boundary, committing what is complete)",
        true
    ),
    bind!(
        Scope::Views(LIST_VIEWS),
        [k('k'), code(KeyCode::Up)],
        "k/↑",
        Action::Up,
        "up",
        "previous row",
        false
    ),
    bind!(
        Scope::Views(LIST_VIEWS),
        [k('j'), code(KeyCode::Down)],
        "j/↓",
        Action::Down,
        "down",
        "next row",
        false
    ),
    bind!(
        Scope::Views(LIST_VIEWS),
        [code(KeyCode::PageUp)],
        "PgUp",
        Action::PageUp,
        "page up",
        "one page up",
        false
    ),
    bind!(
        Scope::Views(LIST_VIEWS),
        [code(KeyCode::PageDown)],
        "PgDn",
        Action::PageDown,
        "page down",
        "one page down",
        false
    ),
    bind!(
        Scope::Views(LIST_VIEWS),
        [k('g'), code(KeyCode::Home)],
        "g",
        Action::First,
        "first",
        "first row",
        false
    ),
    bind!(
        Scope::Views(LIST_VIEWS),
        [k('G'), code(KeyCode::End)],
        "G",
        Action::Last,
        "last",
        "last row",
        false
    ),
    bind!(
        Scope::Views(JOB_VIEWS),
        [k('n')],
        "n",
        Action::NewIngest,
        "new ingest",
        "start an ingest: opens the command line with `ingest `",
        true
    ),
    bind!(
        Scope::Views(JOB_VIEWS),
        [k('C')],
        "C",
        Action::Compact,
        "compact",
        "plan a compaction (dry run), then confirm to run it",
        true
    ),
    bind!(
        Scope::Views(JOB_VIEWS),
        [k('p')],
        "p",
        Action::PauseResume,
        "pause/resume",
        "pause the selected ingest at its next chunk boundary, or resume it from its last checkpoint",
        true
    ),
    bind!(
        Scope::Views(JOB_VIEWS),
        [k('c')],
        "c",
        Action::CancelJob,
        "cancel",
        "cancel the selected job (asks first)",
        true
    ),
    bind!(
        Scope::Views(JOB_VIEWS),
        [k('d')],
        "d",
        Action::DeadLetters,
        "dead letters",
        "show the selected job's dead letters (Jobs view)",
        true
    ),
    bind!(
        Scope::Views(&[View::Partitions]),
        [k('/')],
        "/",
        Action::Filter,
        "filter",
        "filter partitions by cell or year",
        true
    ),
    bind!(
        Scope::Views(&[View::Partitions]),
        [k('s')],
        "s",
        Action::Sort,
        "sort",
        "sort by the next column",
        true
    ),
    bind!(
        Scope::Views(&[View::Partitions]),
        [k('S')],
        "S",
        Action::SortReverse,
        "reverse",
        "reverse the sort order",
        true
    ),
    bind!(
        Scope::Views(&[View::Lock]),
        [k('a')],
        "a",
        Action::Acquire,
        "acquire",
        "take the lock for a maintenance window (1 h; the console renews it)",
        true
    ),
    bind!(
        Scope::Views(&[View::Lock]),
        [k('r')],
        "r",
        Action::Release,
        "release",
        "release the lock the console holds (asks first)",
        true
    ),
    bind!(
        Scope::Views(&[View::Lock]),
        [k('s')],
        "s",
        Action::Steal,
        "steal",
        "steal a stale lock: type its generation (or owner) to confirm; a live lock is refused",
        true
    ),
    bind!(
        Scope::Views(&[View::Query]),
        [k('e'), k('i')],
        "e/i",
        Action::EditField,
        "edit",
        "edit the selected field",
        true
    ),
    bind!(
        Scope::Views(&[View::Query]),
        [code(KeyCode::Enter)],
        "Enter",
        Action::RunQuery,
        "run",
        "run the query in the background",
        true
    ),
    bind!(
        Scope::Views(&[View::Query]),
        [k('y')],
        "y",
        Action::PlainResults,
        "plain",
        "results as plain text (no borders, full width) for copying with the mouse",
        true
    ),
    bind!(
        Scope::Views(&[View::Logs]),
        [k('+'), k('=')],
        "+",
        Action::LogMore,
        "more",
        "show more detail (next log level)",
        true
    ),
    bind!(
        Scope::Views(&[View::Logs]),
        [k('-')],
        "-",
        Action::LogLess,
        "less",
        "show less detail (previous log level)",
        true
    ),
    bind!(
        Scope::Input,
        [code(KeyCode::Enter)],
        "Enter",
        Action::Confirm,
        "confirm",
        "confirm: run the command or query, accept the filter, answer yes",
        true
    ),
    bind!(
        Scope::Input,
        [code(KeyCode::Esc)],
        "Esc",
        Action::Back,
        "cancel",
        "leave the input or close the dialog",
        true
    ),
    bind!(
        Scope::Input,
        [code(KeyCode::Up)],
        "↑",
        Action::FieldUp,
        "prev field",
        "previous query field while editing",
        false
    ),
    bind!(
        Scope::Input,
        [code(KeyCode::Down), code(KeyCode::Tab)],
        "↓/Tab",
        Action::FieldDown,
        "next field",
        "next query field while editing",
        false
    ),
];

/// The action of `event` in `view` (view bindings first, then global ones).
pub fn lookup(view: View, event: &KeyEvent) -> Option<Action> {
    let hit = |b: &&Binding| b.keys.iter().any(|key| key.matches(event));
    BINDINGS
        .iter()
        .filter(|b| matches!(b.scope, Scope::Views(_)) && b.scope.applies(view))
        .find(hit)
        .or_else(|| {
            BINDINGS
                .iter()
                .filter(|b| b.scope == Scope::Global)
                .find(hit)
        })
        .map(|b| b.action)
}

/// The action of `event` in an input field or dialog.
pub fn lookup_input(event: &KeyEvent) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.scope == Scope::Input)
        .find(|b| b.keys.iter().any(|key| key.matches(event)))
        .map(|b| b.action)
}

/// Footer hints: `(label, hint)` of the bindings shown in `view` (or of the
/// input bindings while typing), view bindings first.
pub fn hints(view: View, input: bool) -> Vec<(&'static str, &'static str, Action)> {
    let pick = |b: &&Binding| b.footer;
    if input {
        return BINDINGS
            .iter()
            .filter(|b| b.scope == Scope::Input)
            .filter(pick)
            .map(|b| (b.label, b.hint, b.action))
            .collect();
    }
    let scoped = BINDINGS
        .iter()
        .filter(|b| matches!(b.scope, Scope::Views(_)) && b.scope.applies(view));
    let global = BINDINGS.iter().filter(|b| b.scope == Scope::Global);
    scoped
        .chain(global)
        .filter(pick)
        .map(|b| (b.label, b.hint, b.action))
        .collect()
}

impl Action {
    /// True for actions that write to the catalog or its lock (hidden and
    /// refused in a read-only console).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Action::NewIngest
                | Action::Compact
                | Action::PauseResume
                | Action::CancelJob
                | Action::Acquire
                | Action::Release
                | Action::Steal
        )
    }
}

/// One help row: keys, short hint, full description.
pub type HelpRow = (&'static str, &'static str, &'static str);

/// Help overlay sections: scope name and its rows, in table order.
pub fn help_sections() -> Vec<(String, Vec<HelpRow>)> {
    let mut sections: Vec<(String, Vec<HelpRow>)> = vec![];
    for b in BINDINGS {
        let name = b.scope.name();
        let row = (b.label, b.hint, b.help);
        match sections.iter_mut().find(|(n, _)| *n == name) {
            Some((_, rows)) => rows.push(row),
            None => sections.push((name, vec![row])),
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn view_bindings_win_over_global_ones_and_shift_is_ignored_for_chars() {
        let s = key(KeyCode::Char('s'), KeyModifiers::NONE);
        assert_eq!(lookup(View::Lock, &s), Some(Action::Steal));
        assert_eq!(lookup(View::Partitions, &s), Some(Action::Sort));
        assert_eq!(lookup(View::Logs, &s), None);
        let big_s = key(KeyCode::Char('S'), KeyModifiers::SHIFT);
        assert_eq!(lookup(View::Partitions, &big_s), Some(Action::SortReverse));
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(View::Jobs, &ctrl_c), Some(Action::Quit));
        let c = key(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(lookup(View::Jobs, &c), Some(Action::CancelJob));
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        for (i, a) in BINDINGS.iter().enumerate() {
            for b in &BINDINGS[i + 1..] {
                let overlap = match (a.scope, b.scope) {
                    (Scope::Views(x), Scope::Views(y)) => x.iter().any(|v| y.contains(v)),
                    (x, y) => x == y,
                };
                if overlap {
                    for ka in a.keys {
                        assert!(
                            !b.keys.contains(ka),
                            "{:?} bound to {} and {}",
                            ka,
                            a.help,
                            b.help
                        );
                    }
                }
            }
        }
    }
}
