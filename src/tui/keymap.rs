//! The one key table. [`BINDINGS`] gives every action its keys, label and
//! texts; who offers an action is said by the action lists of the places
//! that handle it ([`GLOBAL`], each view's `COMMANDS` in
//! [`super::views`], each modal's in [`super::modal`]). The footer hints,
//! the `?` help and the key dispatch all read this table through a
//! [`Keymap`], so what the screen says is what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::views::View;

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
    Yes,
    No,
    Erase,
    ClearInput,
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

/// Actions offered everywhere (unless a modal has the keys).
pub const GLOBAL: &[Action] = &[
    Action::Help,
    Action::CommandLine,
    Action::NextView,
    Action::PrevView,
    Action::GoView(View::Overview),
    Action::GoView(View::Jobs),
    Action::GoView(View::Partitions),
    Action::GoView(View::Cells),
    Action::GoView(View::Lock),
    Action::GoView(View::Query),
    Action::GoView(View::Logs),
    Action::RefreshStats,
    Action::Quit,
];

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

macro_rules! bind {
    ([$($key:expr),+], $label:expr, $action:expr, $hint:expr, $help:expr, $footer:expr) => {
        Binding { keys: &[$($key),+], label: $label, action: $action,
                  hint: $hint, help: $help, footer: $footer }
    };
}

/// Every key of the console.
pub const BINDINGS: &[Binding] = &[
    bind!(
        [k('?')],
        "?",
        Action::Help,
        "help",
        "show or hide this help",
        true
    ),
    bind!(
        [k(':')],
        ":",
        Action::CommandLine,
        "command",
        "command line: ingest PATH [--items-root URL] [--job NAME] · compact · query k=v… · steal · acquire [TTL] · release · refresh · q",
        true
    ),
    bind!(
        [code(KeyCode::Tab), k('l'), code(KeyCode::Right)],
        "Tab/l/→",
        Action::NextView,
        "next",
        "next view",
        true
    ),
    bind!(
        [code(KeyCode::BackTab), k('h'), code(KeyCode::Left)],
        "S-Tab/h/←",
        Action::PrevView,
        "prev",
        "previous view",
        false
    ),
    bind!(
        [k('1')],
        "1",
        Action::GoView(View::Overview),
        "overview",
        "overview: throughput and jobs",
        false
    ),
    bind!(
        [k('2')],
        "2",
        Action::GoView(View::Jobs),
        "jobs",
        "jobs with details and dead letters",
        false
    ),
    bind!(
        [k('3')],
        "3",
        Action::GoView(View::Partitions),
        "partitions",
        "partitions and catalog health",
        false
    ),
    bind!(
        [k('4')],
        "4",
        Action::GoView(View::Cells),
        "cells",
        "top cells and the map",
        false
    ),
    bind!(
        [k('5')],
        "5",
        Action::GoView(View::Lock),
        "lock",
        "the catalog lock",
        false
    ),
    bind!(
        [k('6')],
        "6",
        Action::GoView(View::Query),
        "query",
        "query form and results",
        false
    ),
    bind!(
        [k('7')],
        "7",
        Action::GoView(View::Logs),
        "logs",
        "engine logs",
        false
    ),
    bind!(
        [k('R')],
        "R",
        Action::RefreshStats,
        "refresh",
        "re-read the table stats now",
        false
    ),
    bind!(
        [k('q'), ctrl('c')],
        "q/^C",
        Action::Quit,
        "quit",
        "quit (running jobs stop at their next chunk boundary, committing what is complete)",
        true
    ),
    bind!(
        [k('k'), code(KeyCode::Up)],
        "k/↑",
        Action::Up,
        "up",
        "previous row",
        false
    ),
    bind!(
        [k('j'), code(KeyCode::Down)],
        "j/↓",
        Action::Down,
        "down",
        "next row",
        false
    ),
    bind!(
        [code(KeyCode::PageUp)],
        "PgUp",
        Action::PageUp,
        "page up",
        "one page up",
        false
    ),
    bind!(
        [code(KeyCode::PageDown)],
        "PgDn",
        Action::PageDown,
        "page down",
        "one page down",
        false
    ),
    bind!(
        [k('g'), code(KeyCode::Home)],
        "g",
        Action::First,
        "first",
        "first row",
        false
    ),
    bind!(
        [k('G'), code(KeyCode::End)],
        "G",
        Action::Last,
        "last",
        "last row",
        false
    ),
    bind!(
        [k('n')],
        "n",
        Action::NewIngest,
        "new ingest",
        "start an ingest: opens the command line with `ingest `",
        true
    ),
    bind!(
        [k('C')],
        "C",
        Action::Compact,
        "compact",
        "plan a compaction (dry run), then confirm to run it",
        true
    ),
    bind!(
        [k('p')],
        "p",
        Action::PauseResume,
        "pause/resume",
        "pause the selected ingest at its next chunk boundary, or resume it from its last checkpoint",
        true
    ),
    bind!(
        [k('c')],
        "c",
        Action::CancelJob,
        "cancel",
        "cancel the selected job (asks first)",
        true
    ),
    bind!(
        [k('d')],
        "d",
        Action::DeadLetters,
        "dead letters",
        "show the selected job's dead letters (Jobs view)",
        true
    ),
    bind!(
        [k('/')],
        "/",
        Action::Filter,
        "filter",
        "filter partitions by cell or year",
        true
    ),
    bind!(
        [k('s')],
        "s",
        Action::Sort,
        "sort",
        "sort by the next column",
        true
    ),
    bind!(
        [k('S')],
        "S",
        Action::SortReverse,
        "reverse",
        "reverse the sort order",
        true
    ),
    bind!(
        [k('a')],
        "a",
        Action::Acquire,
        "acquire",
        "take the lock for a maintenance window (1 h; the console renews it)",
        true
    ),
    bind!(
        [k('r')],
        "r",
        Action::Release,
        "release",
        "release the lock the console holds (asks first)",
        true
    ),
    bind!(
        [k('s')],
        "s",
        Action::Steal,
        "steal",
        "steal a stale lock: type its generation (or owner) to confirm; a live lock is refused",
        true
    ),
    bind!(
        [k('e'), k('i')],
        "e/i",
        Action::EditField,
        "edit",
        "edit the selected field",
        true
    ),
    bind!(
        [code(KeyCode::Enter)],
        "Enter",
        Action::RunQuery,
        "run",
        "run the query in the background",
        true
    ),
    bind!(
        [k('y')],
        "y",
        Action::PlainResults,
        "plain",
        "results as plain text (no borders, full width) for copying with the mouse",
        true
    ),
    bind!(
        [k('+'), k('=')],
        "+",
        Action::LogMore,
        "more",
        "show more detail (next log level)",
        true
    ),
    bind!(
        [k('-')],
        "-",
        Action::LogLess,
        "less",
        "show less detail (previous log level)",
        true
    ),
    bind!(
        [code(KeyCode::Enter)],
        "Enter",
        Action::Confirm,
        "confirm",
        "confirm: run the command or query, accept the filter, answer yes",
        true
    ),
    bind!(
        [code(KeyCode::Esc)],
        "Esc",
        Action::Back,
        "cancel",
        "leave the input or close the dialog",
        true
    ),
    bind!(
        [code(KeyCode::Up)],
        "↑",
        Action::FieldUp,
        "prev field",
        "previous query field while editing",
        false
    ),
    bind!(
        [code(KeyCode::Down), code(KeyCode::Tab)],
        "↓/Tab",
        Action::FieldDown,
        "next field",
        "next query field while editing",
        false
    ),
    bind!(
        [k('y'), k('Y')],
        "y",
        Action::Yes,
        "yes",
        "answer yes to a confirmation",
        true
    ),
    bind!(
        [k('n'), k('N')],
        "n",
        Action::No,
        "no",
        "answer no to a confirmation",
        true
    ),
    bind!(
        [code(KeyCode::Backspace)],
        "Bksp",
        Action::Erase,
        "erase",
        "erase the last character of the input",
        false
    ),
    bind!(
        [ctrl('u')],
        "^U",
        Action::ClearInput,
        "clear",
        "clear the input",
        false
    ),
];

/// The binding of `action` in the table.
pub fn binding(action: Action) -> Option<&'static Binding> {
    BINDINGS.iter().find(|b| b.action == action)
}

/// The keys in force: the table's (remapping comes from the config).
#[derive(Debug, Clone)]
pub struct Keymap {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    binding: &'static Binding,
    keys: Vec<Key>,
    label: String,
}

impl Default for Keymap {
    fn default() -> Self {
        Self {
            entries: BINDINGS
                .iter()
                .map(|b| Entry {
                    binding: b,
                    keys: b.keys.to_vec(),
                    label: b.label.to_string(),
                })
                .collect(),
        }
    }
}

/// One footer hint: keys, short text, action.
pub type Hint<'a> = (&'a str, &'static str, Action);

/// One help row: keys, short hint, full description.
pub type HelpRow<'a> = (&'a str, &'static str, &'static str);

impl Keymap {
    fn entry(&self, action: Action) -> Option<&Entry> {
        self.entries.iter().find(|e| e.binding.action == action)
    }

    /// How the keys of `action` are written.
    pub fn label(&self, action: Action) -> &str {
        self.entry(action).map_or("", |e| e.label.as_str())
    }

    /// The action among `commands` that `event` triggers (first listed wins).
    pub fn lookup(&self, commands: &[Action], event: &KeyEvent) -> Option<Action> {
        commands.iter().copied().find(|a| {
            self.entry(*a)
                .is_some_and(|e| e.keys.iter().any(|key| key.matches(event)))
        })
    }

    /// Footer hints of `commands`, in table order.
    pub fn hints(&self, commands: &[Action]) -> Vec<Hint<'_>> {
        self.entries
            .iter()
            .filter(|e| e.binding.footer && commands.contains(&e.binding.action))
            .map(|e| (e.label.as_str(), e.binding.hint, e.binding.action))
            .collect()
    }

    /// Help sections: each action under the names of the places that offer
    /// it (e.g. "Overview, Jobs"), in table order; `keep` filters actions.
    /// The first place is the global one: what it offers is listed there only.
    pub fn help_sections(
        &self,
        places: &[(&str, &[Action])],
        keep: impl Fn(Action) -> bool,
    ) -> Vec<(String, Vec<HelpRow<'_>>)> {
        let mut sections: Vec<(String, Vec<HelpRow>)> = vec![];
        for e in &self.entries {
            let action = e.binding.action;
            if !keep(action) {
                continue;
            }
            let mut names: Vec<&str> = vec![];
            for (name, actions) in places {
                if actions.contains(&action) && !names.contains(name) {
                    names.push(name);
                }
            }
            if names.is_empty() {
                continue;
            }
            if places.first().is_some_and(|(n, _)| names[0] == *n) {
                names.truncate(1);
            }
            let name = names.join(", ");
            let row = (e.label.as_str(), e.binding.hint, e.binding.help);
            match sections.iter_mut().find(|(n, _)| *n == name) {
                Some((_, rows)) => rows.push(row),
                None => sections.push((name, vec![row])),
            }
        }
        sections
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::views;

    fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    /// The action of `event` in `view`: the view's commands first, then global ones.
    fn lookup(view: View, event: &KeyEvent) -> Option<Action> {
        let keys = Keymap::default();
        keys.lookup(views::commands(view), event)
            .or_else(|| keys.lookup(GLOBAL, event))
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
        let mut scopes: Vec<Vec<Action>> = View::ALL
            .iter()
            .map(|v| [views::commands(*v), GLOBAL].concat())
            .collect();
        scopes.extend(crate::tui::modal::ALL_COMMANDS.iter().map(|c| c.to_vec()));
        for scope in scopes {
            for (i, a) in scope.iter().enumerate() {
                for b in &scope[i + 1..] {
                    let (a, b) = (binding(*a).unwrap(), binding(*b).unwrap());
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

    #[test]
    fn every_listed_action_has_a_binding() {
        for v in View::ALL {
            for a in views::commands(v) {
                assert!(binding(*a).is_some(), "{a:?}");
            }
        }
        for a in GLOBAL {
            assert!(binding(*a).is_some(), "{a:?}");
        }
    }
}
