//! The console's state and key dispatch. A key goes to the top modal if
//! one is open ([`super::modal`]), else to the current view's actions,
//! else to the global ones — all through the one key table. Views and
//! modals say what should happen as [`Effects`]; requests for background
//! work are queued in [`App::requests`] for the event loop to hand to
//! [`crate::jobs::Jobs`] (so key handling is testable without tasks).
//! Background events are applied in [`super::update`].

use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::command::Command;
use super::keymap::{self, Action, Keymap};
use super::modal::{Modal, Modals, edit_text};
use super::model::Model;
use super::theme::Theme;
use super::views::{self, Effect, Effects, Views};
use crate::jobs::{JobId, LockCommand, Request};

pub use super::model::{JobState, JobView};
pub use super::views::View;

/// How the console was started.
#[derive(Debug, Clone)]
pub struct AppInit {
    /// The catalog base shown in the header.
    pub base: String,
    /// The demo folder when running the embedded demo.
    pub demo: Option<PathBuf>,
    pub read_only: bool,
    pub theme: Theme,
}

/// The console's state.
#[derive(Debug)]
pub struct App {
    pub init: AppInit,
    pub theme: Theme,
    pub keys: Keymap,
    /// The current view (tab).
    pub view: View,
    /// What the background reports.
    pub data: Model,
    /// Each view's own state.
    pub views: Views,
    pub modals: Modals,
    /// The status line (`true`: an error).
    pub status: Option<(String, bool)>,
    /// Requests for the background, drained by the event loop.
    pub requests: Vec<Request>,
    /// Something changed since the last draw.
    pub dirty: bool,
    pub quit: bool,
}

impl App {
    pub fn new(init: AppInit) -> Self {
        Self {
            theme: init.theme,
            init,
            keys: Keymap::default(),
            view: View::Overview,
            data: Model::default(),
            views: Views::default(),
            modals: Modals::default(),
            status: None,
            requests: vec![],
            dirty: true,
            quit: false,
        }
    }

    /// Sets the status line (`error` colours it).
    pub fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some((text.into(), error));
        self.dirty = true;
    }

    /// The actions the keys reach now: the top modal's, or the view's and the global ones.
    pub fn commands(&self) -> Vec<Action> {
        match self.modals.top() {
            Some(m) => m.commands().to_vec(),
            None => [views::commands(self.view), keymap::GLOBAL].concat(),
        }
    }

    /// Hands the queued requests to `submit` (the jobs), which answers with
    /// the id of the job each one started.
    pub fn drain_requests(&mut self, mut submit: impl FnMut(Request) -> Option<JobId>) {
        for request in std::mem::take(&mut self.requests) {
            let query = matches!(request, Request::Query(_));
            let id = submit(request);
            if query {
                self.views.query.started(id);
            }
        }
    }

    /// Once a second: sample the throughput; time-based displays move on.
    pub fn on_second(&mut self, now: Instant) {
        let totals = self.data.totals();
        self.data.throughput.observe(now, totals);
        self.dirty = true;
    }

    /// Handles a key press.
    pub fn on_key(&mut self, key: KeyEvent) {
        self.dirty = true;
        // Ctrl-C always quits, whatever has the keys.
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return;
        }
        if !self.modals.is_empty() {
            return self.modal_key(key);
        }
        let view_action = self.keys.lookup(views::commands(self.view), &key);
        if let Some(action) = view_action.or_else(|| self.keys.lookup(keymap::GLOBAL, &key)) {
            self.act(action);
        }
    }

    /// Carries out an action of the current view or a global one.
    pub fn act(&mut self, action: Action) {
        if action.writes() && self.init.read_only {
            let what = keymap::binding(action).map_or("this", |b| b.hint);
            return self.set_status(
                format!("{what} is disabled: the console is read-only"),
                true,
            );
        }
        let mut fx = Effects::default();
        match action {
            Action::Quit => self.quit = true,
            Action::Help => fx.open(Modal::Help),
            Action::CommandLine => fx.open(Modal::CommandLine(String::new())),
            Action::NextView => self.view = self.view.step(1),
            Action::PrevView => self.view = self.view.step(-1),
            Action::GoView(v) => self.view = v,
            Action::RefreshStats => {
                fx.request(Request::RefreshStats);
                fx.say("refreshing stats…");
            }
            _ => self.views.act(self.view, action, &mut self.data, &mut fx),
        }
        self.apply(fx);
    }

    /// Runs a command-line command (without the leading `:`).
    pub fn run_command(&mut self, text: &str) {
        match Command::parse(text) {
            Ok(Some(command)) => self.execute(command),
            Ok(None) => {}
            Err(e) => self.set_status(e, true),
        }
    }

    fn execute(&mut self, command: Command) {
        if let Some(what) = command.writes()
            && self.init.read_only
        {
            return self.set_status(
                format!("{what} is disabled: the console is read-only"),
                true,
            );
        }
        let mut fx = Effects::default();
        match command {
            Command::Quit => self.quit = true,
            Command::Help => fx.open(Modal::Help),
            Command::Refresh => return self.act(Action::RefreshStats),
            Command::Ingest(spec) => {
                fx.say(format!("starting ingest of {}", spec.label));
                fx.request(Request::Ingest(spec));
                fx.go(View::Overview);
            }
            Command::Compact { threshold } => views::jobs::plan_compaction(threshold, &mut fx),
            Command::Query(fields) => {
                let q = &mut self.views.query;
                for (field, value) in q.fields.iter_mut().zip(fields) {
                    if let Some(v) = value {
                        *field = v;
                    }
                }
                fx.go(View::Query);
                q.submit(&mut fx);
            }
            Command::Steal => views::lock::steal(&self.data, &mut fx),
            Command::Acquire(ttl) => views::lock::acquire(ttl, &mut fx),
            Command::Release => views::lock::release(&self.data, &mut fx),
        }
        self.apply(fx);
    }

    /// Carries out what a view or modal asked for, in order.
    fn apply(&mut self, fx: Effects) {
        for effect in fx.0 {
            match effect {
                Effect::Request(r) => self.requests.push(r),
                Effect::Status(text, error) => self.set_status(text, error),
                Effect::Open(m) => self.modals.push(m),
                Effect::Go(v) => self.view = v,
            }
        }
    }

    /// A key while a modal is open: the top modal has it.
    fn modal_key(&mut self, key: KeyEvent) {
        let Some(top) = self.modals.top_mut() else {
            return;
        };
        let action = self.keys.lookup(top.commands(), &key);
        let mut fx = Effects::default();
        let close = match top {
            Modal::Help => matches!(action, Some(Action::Back | Action::Help | Action::Quit)),
            Modal::CommandLine(line) => match action {
                Some(Action::Confirm) => {
                    let text = std::mem::take(line);
                    self.modals.pop();
                    return self.run_command(&text);
                }
                Some(Action::Back) => true,
                _ => {
                    edit_text(line, action, &key);
                    false
                }
            },
            Modal::Filter => {
                let p = &mut self.views.partitions;
                p.selected = 0;
                match action {
                    Some(Action::Confirm) => true,
                    Some(Action::Back) => {
                        p.filter.clear();
                        true
                    }
                    _ => {
                        edit_text(&mut p.filter, action, &key);
                        false
                    }
                }
            }
            Modal::QueryEdit => match action {
                Some(Action::Confirm) => {
                    self.views.query.submit(&mut fx);
                    true
                }
                Some(Action::Back) => true,
                _ => {
                    self.views.query.edit(action, &key);
                    false
                }
            },
            Modal::Steal(dialog) => match dialog.on_key(action, &key) {
                super::dialogs::steal::StealKey::Close => true,
                super::dialogs::steal::StealKey::Steal(expected) => {
                    fx.request(Request::Lock(LockCommand::Steal { expected }));
                    false
                }
                super::dialogs::steal::StealKey::None => false,
            },
            Modal::Confirm(c) => match action {
                Some(Action::Yes | Action::Confirm) => {
                    fx.request(c.yes.clone());
                    true
                }
                Some(Action::No | Action::Back) => true,
                _ => false,
            },
        };
        if close {
            self.modals.pop();
        }
        self.apply(fx);
    }
}
