//! The console's state and key dispatch. A key goes to the top modal if
//! one is open ([`super::modal`]), else to the current view's actions,
//! else to the global ones — all through the one key table. Views and
//! modals say what should happen as [`Effects`]; requests for background
//! work are queued in [`App::requests`] for the event loop to hand to
//! [`crate::jobs::Jobs`] (so key handling is testable without tasks).
//! Background events are applied in [`super::update`].

use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::command::{BackfillCommand, Command};
use super::equivalent;
use super::export::ExportFormat;
use super::keymap::{self, Action, Keymap};
use super::modal::{Modal, Modals, edit_text};
use super::model::Model;
use super::theme::Theme;
use super::views::{self, Effect, Effects, Views};
use crate::jobs::{JobId, LockCommand, MaintenanceRequest, Request};

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

/// How often relative ages ("unchanged for 12 s") move when nothing else
/// changes: each redraw costs bytes on the link.
pub const AGE_TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// [`AGE_TICK`] of the low-bandwidth preset: an idle console on a slow link
/// moves its ages three times less often.
pub const LOW_BANDWIDTH_AGE_TICK: std::time::Duration = std::time::Duration::from_secs(15);

/// Display preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefs {
    /// The header line is shown (`H` toggles it).
    pub header: bool,
    /// Slow-link preset: no sparkline animation, ages ticked every 5 s.
    pub low_bandwidth: bool,
    /// Mouse clicks and scrolling are handled.
    pub mouse: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            header: true,
            low_bandwidth: false,
            mouse: false,
        }
    }
}

/// Where a list's rows are on screen: the first row's line, how many
/// rows show, and the index of the first one shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHit {
    pub x: u16,
    pub width: u16,
    pub y: u16,
    pub rows: u16,
    pub offset: usize,
}

/// The console's state.
#[derive(Debug)]
pub struct App {
    pub init: AppInit,
    pub theme: Theme,
    pub keys: Keymap,
    pub prefs: Prefs,
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
    /// Raw bytes for the terminal (OSC 52), written by the event loop.
    pub output: Vec<Vec<u8>>,
    /// Where the current view's list was last drawn (for mouse clicks).
    pub list_hit: std::cell::Cell<Option<ListHit>>,
    /// The width of the last frame (for mouse hits on the tabs).
    pub screen_width: std::cell::Cell<u16>,
    /// When relative ages were last redrawn.
    pub aged_at: Instant,
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
            prefs: Prefs::default(),
            view: View::Overview,
            data: Model::default(),
            views: Views::default(),
            modals: Modals::default(),
            status: None,
            requests: vec![],
            output: vec![],
            list_hit: std::cell::Cell::new(None),
            screen_width: std::cell::Cell::new(80),
            aged_at: Instant::now(),
            dirty: true,
            quit: false,
        }
    }

    /// Uses `keys` (the config's `[keys]` applied).
    pub fn with_keys(mut self, keys: Keymap) -> Self {
        self.keys = keys;
        self
    }

    pub fn with_prefs(mut self, prefs: Prefs) -> Self {
        self.prefs = prefs;
        self
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
    /// the id of the job each one started; logs each one's equivalent commands.
    pub fn drain_requests(&mut self, mut submit: impl FnMut(Request) -> Option<JobId>) {
        for request in std::mem::take(&mut self.requests) {
            let query = matches!(request, Request::Query(_));
            let cx = equivalent::Context {
                base: &self.init.base,
                held_generation: self.data.lock.held_generation,
            };
            let mut logged = equivalent::of(&request, &cx);
            let id = submit(request);
            if query {
                self.views.query.started(id);
            }
            if let Some(mut e) = logged.take() {
                e.job = id;
                tracing::info!("equivalent: {}", e.commands[0].1);
                self.data.history.push(e);
            }
        }
    }

    /// Puts `text` on the clipboard through OSC 52 and says so in one line.
    pub fn copy(&mut self, what: &str, text: String) {
        self.output.push(super::term::osc52(&text));
        let shown: String = text.chars().take(60).collect();
        let more = if text.chars().count() > 60 { "…" } else { "" };
        self.set_status(format!("copied {what} (OSC 52): {shown}{more}"), false);
    }

    /// Once a second: sample the throughput. While a job runs the
    /// sparklines move every second (not in the low-bandwidth preset);
    /// otherwise relative ages are redrawn at most every [`AGE_TICK`].
    pub fn on_second(&mut self, now: Instant) {
        let totals = self.data.totals();
        self.data.throughput.observe(now, totals);
        let busy = self.data.running() > 0;
        if busy && !self.prefs.low_bandwidth {
            self.dirty = true;
        } else {
            self.age_tick(now);
        }
    }

    /// Marks the screen for a redraw if ages were last moved [`AGE_TICK`]
    /// ([`LOW_BANDWIDTH_AGE_TICK`] in that preset) ago.
    pub fn age_tick(&mut self, now: Instant) {
        let period = if self.prefs.low_bandwidth {
            LOW_BANDWIDTH_AGE_TICK
        } else {
            AGE_TICK
        };
        if now.duration_since(self.aged_at) >= period {
            self.aged_at = now;
            self.dirty = true;
        }
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

    /// A mouse event (with `--mouse`): a click on a tab switches to it, a
    /// click on a list row selects it, the wheel moves the selection.
    /// Returns true when the screen should be redrawn.
    pub fn on_mouse(&mut self, m: MouseEvent) -> bool {
        if !self.modals.is_empty() {
            return false;
        }
        let tabs_y = u16::from(self.prefs.header);
        match m.kind {
            MouseEventKind::ScrollUp => self.act(Action::Up),
            MouseEventKind::ScrollDown => self.act(Action::Down),
            MouseEventKind::Down(MouseButton::Left) if m.row == tabs_y => {
                let Some(view) = super::ui::tab_at(self.list_width(), m.column) else {
                    return false;
                };
                self.view = view;
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let Some(hit) = self.list_hit.get() else {
                    return false;
                };
                let inside = (hit.x..hit.x + hit.width).contains(&m.column)
                    && (hit.y..hit.y + hit.rows).contains(&m.row);
                if !inside {
                    return false;
                }
                let index = hit.offset + usize::from(m.row - hit.y);
                self.act(Action::First);
                for _ in 0..index {
                    self.act(Action::Down);
                }
            }
            _ => return false,
        }
        self.dirty = true;
        true
    }

    /// The screen width the tabs were laid out for.
    fn list_width(&self) -> u16 {
        self.screen_width.get()
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
            Action::ToggleHeader => self.prefs.header = !self.prefs.header,
            Action::Export => fx.open(Modal::CommandLine("export md ".into())),
            Action::Copy => match super::export::selection(self) {
                Some((what, text)) => return self.copy(what, text),
                None => fx.error("nothing selected to copy here"),
            },
            Action::CopyUri => match super::export::selected_uri(self) {
                Some(uri) => return self.copy("the asset URI", uri),
                None => fx.error("no result selected"),
            },
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
            Command::History => fx.go(View::History),
            Command::Expire(older_than, retain_last) => views::jobs::plan_maintenance(
                MaintenanceRequest::Expire {
                    older_than,
                    retain_last,
                    dry_run: true,
                },
                &mut fx,
            ),
            Command::Orphans(older_than) => views::jobs::plan_maintenance(
                MaintenanceRequest::Orphans {
                    older_than,
                    dry_run: true,
                },
                &mut fx,
            ),
            Command::Export { format, path } => return self.export(format, path),
            Command::Backfill(command) => self.backfill_command(command, &mut fx),
        }
        self.apply(fx);
    }

    /// `:backfill …`: each asks first (start, retry, commit).
    fn backfill_command(&self, command: BackfillCommand, fx: &mut Effects) {
        let view = &self.views.backfill;
        match command {
            BackfillCommand::Start(spec) => views::backfill::start(*spec, &self.data, fx),
            BackfillCommand::Retry(run) => {
                views::backfill::retry(view.run(run.as_deref(), &self.data), fx)
            }
            BackfillCommand::Commit(run) => {
                views::backfill::commit(view.run(run.as_deref(), &self.data), &self.data, fx)
            }
        }
    }

    /// Writes the current view's table to `path` (default
    /// `ecops-<table>-<time>.<ext>` in the working directory).
    fn export(&mut self, format: ExportFormat, path: Option<String>) {
        let Some((name, table)) = super::export::table(self) else {
            return self.set_status(
                "nothing to export here (Partitions, Cells, Query and History have tables)",
                true,
            );
        };
        let path = path.unwrap_or_else(|| {
            format!(
                "ecops-{name}-{}.{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S"),
                format.extension()
            )
        });
        match std::fs::write(&path, format.render(&table)) {
            Ok(()) => self.set_status(
                format!("exported {} rows of {name} to {path}", table.rows.len()),
                false,
            ),
            Err(e) => self.set_status(format!("export to {path}: {e}"), true),
        }
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
            Modal::Confirm(c) => match c.on_key(action, &key) {
                Some(yes) => {
                    if yes {
                        fx.request(c.yes.clone());
                    }
                    true
                }
                None => false,
            },
        };
        if close {
            self.modals.pop();
        }
        self.apply(fx);
    }
}
