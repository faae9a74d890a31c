//! The modal stack: dialogs and inputs that take the keys while open — the
//! help overlay, the command line, the partition filter, the query form
//! being edited, the steal dialog and confirmations. The top modal gets
//! every key (through the same key table as the views); views see keys
//! only when the stack is empty.
//!
//! Order: help stays on top of everything; confirmations stay above
//! inputs and are answered in the order they were asked.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::dialogs::steal::StealDialog;
use super::keymap::Action;
use crate::jobs::Request;

/// A question whose "yes" sends `yes`. With `typed`, yes means typing
/// that text and confirming (for deletions), not a single key.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub yes: Request,
    pub typed: Option<String>,
    /// What has been typed so far, and why the last confirm did nothing.
    pub input: String,
    pub error: Option<String>,
}

impl Confirm {
    /// A yes/no question.
    pub fn new(title: impl Into<String>, lines: Vec<String>, yes: Request) -> Self {
        Self {
            title: title.into(),
            lines,
            yes,
            typed: None,
            input: String::new(),
            error: None,
        }
    }

    /// A question answered by typing `token`.
    pub fn typed(
        title: impl Into<String>,
        lines: Vec<String>,
        yes: Request,
        token: String,
    ) -> Self {
        Self {
            typed: Some(token),
            ..Self::new(title, lines, yes)
        }
    }

    /// Handles a key; returns Some(answer) when the question is answered.
    pub fn on_key(&mut self, action: Option<Action>, key: &KeyEvent) -> Option<bool> {
        let Some(token) = &self.typed else {
            return match action {
                Some(Action::Yes | Action::Confirm) => Some(true),
                Some(Action::No | Action::Back) => Some(false),
                _ => None,
            };
        };
        match action {
            Some(Action::Back) => Some(false),
            Some(Action::Confirm) if self.input.trim() == token.as_str() => Some(true),
            Some(Action::Confirm) => {
                self.error = Some(format!("type {token} to confirm; nothing was done"));
                None
            }
            _ => {
                edit_text(&mut self.input, action, key);
                None
            }
        }
    }
}

/// One open dialog or input.
#[derive(Debug)]
pub enum Modal {
    /// The `?` overlay.
    Help,
    /// The `:` command line and what is typed so far.
    CommandLine(String),
    /// Typing the partitions filter (the text lives in the partitions view).
    Filter,
    /// Editing the query form's focused field (the form lives in the query view).
    QueryEdit,
    Steal(StealDialog),
    Confirm(Confirm),
}

const HELP: &[Action] = &[Action::Back, Action::Help, Action::Quit];
const TEXT: &[Action] = &[
    Action::Confirm,
    Action::Back,
    Action::Erase,
    Action::ClearInput,
];
const FORM: &[Action] = &[
    Action::Confirm,
    Action::Back,
    Action::FieldUp,
    Action::FieldDown,
    Action::Erase,
    Action::ClearInput,
];
const CONFIRM: &[Action] = &[Action::Yes, Action::No, Action::Confirm, Action::Back];

/// Every modal's action list (for the key-conflict check and the help).
pub const ALL_COMMANDS: [&[Action]; 4] = [HELP, TEXT, FORM, CONFIRM];

impl Modal {
    /// The actions this modal offers.
    pub fn commands(&self) -> &'static [Action] {
        match self {
            Modal::Help => HELP,
            Modal::CommandLine(_) | Modal::Filter | Modal::Steal(_) => TEXT,
            Modal::QueryEdit => FORM,
            Modal::Confirm(c) if c.typed.is_some() => TEXT,
            Modal::Confirm(_) => CONFIRM,
        }
    }

    /// Stacking rank: a modal is pushed below any of a higher rank.
    fn rank(&self) -> u8 {
        match self {
            Modal::Help => 2,
            Modal::Confirm(_) => 1,
            _ => 0,
        }
    }
}

/// Open modals, bottom first.
#[derive(Debug, Default)]
pub struct Modals(Vec<Modal>);

impl Modals {
    /// Opens `m`: above modals of its rank (confirmations: below the earlier
    /// ones, so they are answered in order), below those of a higher rank.
    pub fn push(&mut self, m: Modal) {
        let at = match m {
            Modal::Confirm(_) => self.0.iter().position(|x| x.rank() >= m.rank()),
            _ => self.0.iter().position(|x| x.rank() > m.rank()),
        };
        match at {
            Some(i) => self.0.insert(i, m),
            None => self.0.push(m),
        }
    }

    pub fn top(&self) -> Option<&Modal> {
        self.0.last()
    }

    pub fn top_mut(&mut self) -> Option<&mut Modal> {
        self.0.last_mut()
    }

    pub fn pop(&mut self) -> Option<Modal> {
        self.0.pop()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Open modals, bottom first (the drawing order).
    pub fn iter(&self) -> impl Iterator<Item = &Modal> {
        self.0.iter()
    }

    pub fn is_help_open(&self) -> bool {
        self.0.iter().any(|m| matches!(m, Modal::Help))
    }

    pub fn has_confirm(&self) -> bool {
        self.0.iter().any(|m| matches!(m, Modal::Confirm(_)))
    }

    /// True while `pred` holds for the top modal.
    pub fn top_is(&self, pred: impl Fn(&Modal) -> bool) -> bool {
        self.top().is_some_and(pred)
    }

    pub fn steal(&self) -> Option<&StealDialog> {
        self.0.iter().find_map(|m| match m {
            Modal::Steal(d) => Some(d),
            _ => None,
        })
    }

    pub fn steal_mut(&mut self) -> Option<&mut StealDialog> {
        self.0.iter_mut().find_map(|m| match m {
            Modal::Steal(d) => Some(d),
            _ => None,
        })
    }

    /// The command line's text while it is open.
    pub fn command_line(&self) -> Option<&str> {
        self.0.iter().find_map(|m| match m {
            Modal::CommandLine(t) => Some(t.as_str()),
            _ => None,
        })
    }
}

/// Applies an input key to a one-line text: the table's erase and clear
/// actions, else a typed character.
pub fn edit_text(text: &mut String, action: Option<Action>, key: &KeyEvent) {
    match (action, key.code) {
        (Some(Action::ClearInput), _) => text.clear(),
        (Some(Action::Erase), _) => {
            text.pop();
        }
        (None, KeyCode::Char(c)) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
        _ => {}
    }
}
