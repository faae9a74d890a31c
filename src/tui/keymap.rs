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
    Expire,
    RemoveOrphans,
    RetryDeadLetters,
    /// Start a backfill (opens the command line with `backfill `).
    NewBackfill,
    /// Run again what the selected backfill has not done.
    RetryBackfill,
    /// Commit the selected backfill.
    CommitBackfill,
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
    /// Copy the current view's selection to the clipboard (OSC 52).
    Copy,
    /// Copy the selected query result's asset URI.
    CopyUri,
    /// Export the current table to a Markdown or CSV file.
    Export,
    ToggleHeader,
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
                | Action::Expire
                | Action::RemoveOrphans
                | Action::RetryDeadLetters
                | Action::NewBackfill
                | Action::RetryBackfill
                | Action::CommitBackfill
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
    Action::GoView(View::History),
    Action::GoView(View::Backfill),
    Action::RefreshStats,
    Action::Copy,
    Action::Export,
    Action::ToggleHeader,
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
        "command line: ingest PATH [--items-root URL] [--job NAME] · backfill INVENTORY [--tasks N] [--engine E] | retry | commit · compact · query k=v… · steal · acquire [TTL] · release · refresh · q",
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
        [k('8')],
        "8",
        Action::GoView(View::History),
        "history",
        "what the console did, as equivalent commands",
        false
    ),
    bind!(
        [k('9')],
        "9",
        Action::GoView(View::Backfill),
        "backfill",
        "backfills: phase, chunks, workers and their engine tasks, stragglers, failures",
        false
    ),
    bind!(
        [k('Y')],
        "Y",
        Action::Copy,
        "copy",
        "copy the selection (cell, partition, result id, lock holder, equivalent command) to the clipboard via OSC 52",
        true
    ),
    bind!(
        [k('E')],
        "E",
        Action::Export,
        "export",
        "export the current table (partitions, top cells, query results, history) to a file: :export md|csv [PATH]",
        false
    ),
    bind!(
        [k('H')],
        "H",
        Action::ToggleHeader,
        "header",
        "hide or show the header line",
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
        [k('D')],
        "D",
        Action::RetryDeadLetters,
        "retry",
        "retry the catalog's dead letters (fetch the recorded URIs again; what still fails stays)",
        false
    ),
    bind!(
        [k('X')],
        "X",
        Action::Expire,
        "expire",
        "expire old snapshots: a dry-run plan (:expire AGE --retain-last N), then a typed confirmation",
        false
    ),
    bind!(
        [k('O')],
        "O",
        Action::RemoveOrphans,
        "orphans",
        "remove orphan files: a dry-run plan (:orphans AGE), then a typed confirmation",
        false
    ),
    bind!(
        [k('n')],
        "n",
        Action::NewBackfill,
        "new backfill",
        "start a backfill: opens the command line with `backfill ` (INVENTORY --items-root URL --tasks N --engine local|slurm|k8s|batch)",
        true
    ),
    bind!(
        [k('r')],
        "r",
        Action::RetryBackfill,
        "retry",
        "run again the chunks and partitions the selected backfill has not done, through its engine (asks first)",
        true
    ),
    bind!(
        [k('c')],
        "c",
        Action::CommitBackfill,
        "commit",
        "commit the selected backfill once reduced: one snapshot under the catalog lock (asks first)",
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
        [k('U')],
        "U",
        Action::CopyUri,
        "copy URI",
        "copy the selected result's asset URI to the clipboard via OSC 52",
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

/// A `[keys]` entry of the config: action name, key names, and where it is
/// written (for errors).
#[derive(Debug, Clone)]
pub struct Remap {
    pub action: String,
    pub keys: Vec<String>,
    pub at: String,
}

/// A `[keys]` entry that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeymapError {
    #[error("{at}: [keys] {name}: no such action (actions: {known})")]
    UnknownAction {
        at: String,
        name: String,
        known: String,
    },
    #[error("{at}: [keys] {action} = {key:?}: {reason}")]
    BadKey {
        at: String,
        action: String,
        key: String,
        reason: String,
    },
    #[error("{at}: [keys] key {key} is bound to both {first} and {second} in {place}")]
    Duplicate {
        at: String,
        key: String,
        first: String,
        second: String,
        place: String,
    },
}

impl Action {
    /// The action's name in `[keys]`: `steal`, `pause_resume`, `view_lock`, …
    pub fn name(self) -> String {
        let debug = match self {
            Action::GoView(v) => format!("View{v:?}"),
            other => format!("{other:?}"),
        };
        let mut out = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl Key {
    /// Parses a key name: a character (`S`, `/`), `ctrl-x`, or one of
    /// enter, esc, tab, backtab, backspace, delete, up, down, left, right,
    /// pgup, pgdn, home, end, space, f1–f12.
    pub fn parse(name: &str) -> Result<Key, String> {
        let lower = name.to_ascii_lowercase();
        if let Some(rest) = lower
            .strip_prefix("ctrl-")
            .or_else(|| lower.strip_prefix("c-"))
        {
            let mut chars = rest.chars();
            return match (chars.next(), chars.next()) {
                (Some('c'), None) => Err("ctrl-c always quits; it cannot be bound".into()),
                (Some(c), None) => Ok(ctrl(c)),
                _ => Err("ctrl- takes one character".into()),
            };
        }
        let mut chars = name.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return Ok(k(c));
        }
        let code = match lower.as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" | "s-tab" => KeyCode::BackTab,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "space" => KeyCode::Char(' '),
            f if f.starts_with('f')
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            _ => {
                return Err(
                    "not a key name (a character, ctrl-x, enter, esc, tab, up, f1, …)".into(),
                );
            }
        };
        Ok(code_key(code))
    }

    /// How the key is written in hints and help.
    pub fn label(&self) -> String {
        let base = match self.0 {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Backspace => "Bksp".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.1.contains(KeyModifiers::CONTROL) {
            format!("^{}", base.to_uppercase())
        } else {
            base
        }
    }
}

fn code_key(c: KeyCode) -> Key {
    Key(c, KeyModifiers::NONE)
}

/// The places whose actions are offered together (a key may mean one
/// thing per place): each view with the global keys, and each modal.
pub fn places() -> Vec<(String, Vec<Action>)> {
    let mut out: Vec<(String, Vec<Action>)> = super::views::View::ALL
        .iter()
        .map(|v| {
            (
                format!("the {} view", v.title()),
                [super::views::commands(*v), GLOBAL].concat(),
            )
        })
        .collect();
    out.extend(
        super::modal::ALL_COMMANDS
            .iter()
            .map(|c| ("dialogs and inputs".to_string(), c.to_vec())),
    );
    out
}

/// The keys in force: the table's, with the config's `[keys]` applied.
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
    /// The table's keys with `remaps` applied; refuses unknown actions, bad
    /// key names and a key bound to two actions offered in one place.
    pub fn with_remaps(remaps: &[Remap]) -> Result<Keymap, KeymapError> {
        let mut map = Keymap::default();
        let mut at_of: Vec<(Action, String)> = vec![];
        for r in remaps {
            let Some(entry) = map
                .entries
                .iter_mut()
                .find(|e| e.binding.action.name() == r.action)
            else {
                let known: Vec<String> = BINDINGS.iter().map(|b| b.action.name()).collect();
                return Err(KeymapError::UnknownAction {
                    at: r.at.clone(),
                    name: r.action.clone(),
                    known: known.join(", "),
                });
            };
            let keys = r
                .keys
                .iter()
                .map(|name| {
                    Key::parse(name).map_err(|reason| KeymapError::BadKey {
                        at: r.at.clone(),
                        action: r.action.clone(),
                        key: name.clone(),
                        reason,
                    })
                })
                .collect::<Result<Vec<Key>, _>>()?;
            entry.label = keys.iter().map(Key::label).collect::<Vec<_>>().join("/");
            entry.keys = keys;
            at_of.push((entry.binding.action, r.at.clone()));
        }
        map.check_conflicts(&at_of)?;
        Ok(map)
    }

    /// A key bound to two actions offered in one place is an error, named
    /// at the remapped line that caused it.
    fn check_conflicts(&self, at_of: &[(Action, String)]) -> Result<(), KeymapError> {
        for (place, actions) in places() {
            for (i, a) in actions.iter().enumerate() {
                for b in &actions[i + 1..] {
                    let (Some(ea), Some(eb)) = (self.entry(*a), self.entry(*b)) else {
                        continue;
                    };
                    let Some(key) = ea.keys.iter().find(|k| eb.keys.contains(k)) else {
                        continue;
                    };
                    let at = at_of
                        .iter()
                        .find(|(x, _)| x == b || x == a)
                        .map_or("the key table".to_string(), |(_, at)| at.clone());
                    return Err(KeymapError::Duplicate {
                        at,
                        key: key.label(),
                        first: a.name(),
                        second: b.name(),
                        place,
                    });
                }
            }
        }
        Ok(())
    }

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
    fn remapped_keys_replace_the_tables_and_bad_entries_name_their_line() {
        let remap = |action: &str, keys: &[&str]| Remap {
            action: action.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            at: "ecops.toml line 7".into(),
        };
        let keys = Keymap::with_remaps(&[remap("steal", &["x"])]).unwrap();
        let x = key(KeyCode::Char('x'), KeyModifiers::NONE);
        let s = key(KeyCode::Char('s'), KeyModifiers::NONE);
        assert_eq!(
            keys.lookup(views::commands(View::Lock), &x),
            Some(Action::Steal)
        );
        assert_eq!(keys.lookup(views::commands(View::Lock), &s), None);
        assert_eq!(keys.label(Action::Steal), "x");
        let e = Keymap::with_remaps(&[remap("stael", &["x"])]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ecops.toml line 7: [keys] stael: no such action"),
            "{e}"
        );
        // `a` is acquire in the Lock view: a duplicate there.
        let e = Keymap::with_remaps(&[remap("steal", &["a"])]).unwrap_err();
        assert!(
            matches!(&e, KeymapError::Duplicate { at, .. } if at == "ecops.toml line 7"),
            "{e}"
        );
        assert!(e.to_string().contains("the Lock view"), "{e}");
        // `S` reverses the sort in Partitions, but steal is a Lock action: allowed.
        assert!(Keymap::with_remaps(&[remap("steal", &["S"])]).is_ok());
        assert!(Keymap::with_remaps(&[remap("quit", &["ctrl-c"])]).is_err());
        assert!(Keymap::with_remaps(&[remap("quit", &["hyper-q"])]).is_err());
        assert_eq!(Action::GoView(View::Lock).name(), "view_lock");
        assert_eq!(Action::PauseResume.name(), "pause_resume");
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
