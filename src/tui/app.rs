//! The console's state: what the panes show, which view and row is selected,
//! open inputs and dialogs. Keys and background events change it; requests
//! for background work are queued in [`App::requests`] for the event loop to
//! hand to [`crate::jobs::Jobs`] (so key handling is testable without tasks).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::dialogs::confirm::{Confirm, ConfirmQueue};
use super::dialogs::steal::StealDialog;
use super::keymap::{self, Action};
use super::theme::Theme;
use crate::ingest::dead_letter::DeadLetter;
use crate::ingest::{IngestProgress, Phase};
use crate::jobs::throughput::{Throughput, Totals};
use crate::jobs::{
    CompactOutcome, CompactRequest, Event, IngestSpec, JobId, JobKind, LockCommand, LockOutcome,
    QueryOutcome, QueryRequest, Request, StatsView,
};
use crate::lock::Watched;
use crate::runs::JobError;

/// The views (tabs), in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Jobs,
    Partitions,
    Cells,
    Lock,
    Query,
    Logs,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Overview,
        View::Jobs,
        View::Partitions,
        View::Cells,
        View::Lock,
        View::Query,
        View::Logs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Jobs => "Jobs",
            View::Partitions => "Partitions",
            View::Cells => "Cells",
            View::Lock => "Lock",
            View::Query => "Query",
            View::Logs => "Logs",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Where a job stands, as the jobs pane shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Pausing,
    Paused,
    Done,
    Cancelled,
    Failed,
}

impl JobState {
    pub fn label(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Pausing => "pausing",
            JobState::Paused => "paused",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
            JobState::Failed => "failed",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, JobState::Running | JobState::Pausing)
    }
}

/// One job in the jobs pane.
#[derive(Debug, Clone)]
pub struct JobView {
    pub id: JobId,
    pub kind: JobKind,
    pub label: String,
    pub spec: Option<IngestSpec>,
    pub state: JobState,
    pub progress: Option<IngestProgress>,
    /// Compaction progress (compaction jobs).
    pub compact: Option<crate::compact::CompactProgress>,
    /// Items the job is expected to list, when known (the demo's inventories).
    pub expected_items: Option<u64>,
    /// Counters of earlier runs of a resumed job (so totals never go down).
    pub carried: Totals,
    pub error: Option<String>,
    pub started: Instant,
    pub ended: Option<Instant>,
    pub dead_letters: Option<Result<Vec<DeadLetter>, JobError>>,
    /// Plan or result lines (compaction), summary (query).
    pub lines: Vec<String>,
}

impl JobView {
    /// This job's counters including earlier runs.
    pub fn totals(&self) -> Totals {
        let p = self.progress.as_ref();
        Totals {
            items: self.carried.items + p.map_or(0, |p| p.items),
            // Running: rows as fan-out builds them (written at each commit);
            // ended: what was written.
            rows: self.carried.rows
                + p.map_or(0, |p| match p.phase {
                    Phase::Running => p.rows.max(p.rows_built),
                    _ => p.rows,
                }),
            bytes: self.carried.bytes + p.map_or(0, |p| p.bytes_in),
            failed: self.carried.failed + p.map_or(0, |p| p.failed),
        }
    }

    /// Share done (0..=1) when known: items against the expected count,
    /// buckets compacted against planned, else inventory bytes read; 1 when done.
    pub fn fraction(&self) -> Option<f64> {
        if self.state == JobState::Done {
            return Some(1.0);
        }
        if let Some(c) = &self.compact {
            return (c.buckets_planned > 0)
                .then(|| c.buckets_compacted as f64 / c.buckets_planned as f64);
        }
        match self.expected_items {
            Some(n) if n > 0 => Some((self.totals().items as f64 / n as f64).min(1.0)),
            _ => self.progress.as_ref().and_then(|p| p.inventory_fraction),
        }
    }

    /// Seconds left at the current rate, when the expected count is known
    /// (else the engine's estimate from inventory bytes).
    pub fn eta_seconds(&self) -> Option<f64> {
        let p = self.progress.as_ref()?;
        match self.expected_items {
            Some(n) if p.items_per_second > 0.0 => {
                Some(n.saturating_sub(self.totals().items) as f64 / p.items_per_second)
            }
            _ => p.eta_seconds,
        }
    }
}

/// Sort column of the partitions table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Cell,
    Year,
    Rows,
    Files,
    Bytes,
    Small,
}

impl SortKey {
    const ALL: [SortKey; 6] = [
        SortKey::Cell,
        SortKey::Year,
        SortKey::Rows,
        SortKey::Files,
        SortKey::Bytes,
        SortKey::Small,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Cell => "cell",
            SortKey::Year => "year",
            SortKey::Rows => "rows",
            SortKey::Files => "files",
            SortKey::Bytes => "bytes",
            SortKey::Small => "small",
        }
    }

    fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// The partitions pane's table state.
#[derive(Debug, Clone)]
pub struct PartitionsState {
    pub sort: SortKey,
    pub descending: bool,
    pub filter: String,
    pub filter_editing: bool,
    pub selected: usize,
}

/// The query form.
#[derive(Debug, Clone)]
pub struct QueryForm {
    /// Geometry, datetime, filter, limit — as typed.
    pub fields: [String; 4],
    pub focus: usize,
    pub editing: bool,
    pub running: Option<JobId>,
    pub submitted: Option<QueryRequest>,
    pub result: Option<Result<QueryOutcome, JobError>>,
    pub selected: usize,
    /// Results full-screen without borders, for copying.
    pub plain: bool,
}

impl QueryForm {
    pub const LABELS: [&'static str; 4] = ["Geometry", "Datetime", "Filter", "Limit"];
    pub const PLACEHOLDERS: [&'static str; 4] = [
        "point lon,lat · bbox w,s,e,n · GeoJSON · WKT (empty: everywhere)",
        "start/end, either side may be .. (empty: any time)",
        "e.g. platform = 'S2A' and percent_valid_pixels >= 80",
        "max items",
    ];

    /// The request the form describes, or why it cannot run.
    pub fn request(&self) -> Result<QueryRequest, String> {
        let limit = match self.fields[3].trim() {
            "" => 100,
            t => t
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("limit '{t}' is not a positive number"))?,
        };
        Ok(QueryRequest {
            geometry: self.fields[0].trim().to_string(),
            datetime: self.fields[1].trim().to_string(),
            filter: self.fields[2].trim().to_string(),
            limit,
        })
    }
}

/// The query form's job before its id is known.
const PENDING: JobId = JobId::MAX;

/// Log display level of the logs pane.
pub const LOG_LEVELS: [tui_logger::LevelFilter; 5] = [
    tui_logger::LevelFilter::Error,
    tui_logger::LevelFilter::Warn,
    tui_logger::LevelFilter::Info,
    tui_logger::LevelFilter::Debug,
    tui_logger::LevelFilter::Trace,
];

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
pub struct App {
    pub view: View,
    pub init: AppInit,
    pub theme: Theme,
    pub stats: Option<Arc<StatsView>>,
    pub stats_error: Option<String>,
    pub lock: Option<Box<Watched>>,
    pub lock_error: Option<String>,
    /// When the last lock read arrived (for the countdown between reads).
    pub lock_read_at: Option<Instant>,
    pub lock_outcome: Option<LockOutcome>,
    /// The generation the console holds, if it holds the lock.
    pub held_generation: Option<u64>,
    pub jobs: Vec<JobView>,
    pub job_selected: usize,
    pub throughput: Throughput,
    pub partitions: PartitionsState,
    pub cells_selected: usize,
    pub query: QueryForm,
    pub log_level: usize,
    pub log_state: tui_logger::TuiWidgetState,
    pub cmdline: Option<String>,
    pub help: bool,
    pub steal: Option<StealDialog>,
    pub confirms: ConfirmQueue,
    pub status: Option<(String, bool)>,
    /// Requests for the background, drained by the event loop.
    pub requests: Vec<Request>,
    /// Something changed since the last draw.
    pub dirty: bool,
    pub quit: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("view", &self.view)
            .field("jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn new(init: AppInit) -> Self {
        let log_level = 2;
        Self {
            view: View::Overview,
            theme: init.theme,
            init,
            stats: None,
            stats_error: None,
            lock: None,
            lock_error: None,
            lock_read_at: None,
            lock_outcome: None,
            held_generation: None,
            jobs: vec![],
            job_selected: 0,
            throughput: Throughput::new(600),
            partitions: PartitionsState {
                sort: SortKey::Cell,
                descending: false,
                filter: String::new(),
                filter_editing: false,
                selected: 0,
            },
            cells_selected: 0,
            query: QueryForm {
                fields: [String::new(), String::new(), String::new(), "20".into()],
                focus: 0,
                editing: false,
                running: None,
                submitted: None,
                result: None,
                selected: 0,
                plain: false,
            },
            log_level,
            log_state: tui_logger::TuiWidgetState::new()
                .set_default_display_level(LOG_LEVELS[log_level]),
            cmdline: None,
            help: false,
            steal: None,
            confirms: ConfirmQueue::default(),
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

    /// True while keys go to an input field or dialog.
    pub fn typing(&self) -> bool {
        self.cmdline.is_some()
            || self.partitions.filter_editing
            || self.query.editing
            || self.steal.is_some()
            || !self.confirms.is_empty()
    }

    /// The selected job.
    pub fn selected_job(&self) -> Option<&JobView> {
        self.jobs.get(self.job_selected)
    }

    /// Sums of every ingest job's counters (for the throughput history).
    pub fn totals(&self) -> Totals {
        self.jobs
            .iter()
            .filter(|j| j.kind == JobKind::Ingest)
            .map(JobView::totals)
            .fold(Totals::default(), |a, b| Totals {
                items: a.items + b.items,
                rows: a.rows + b.rows,
                bytes: a.bytes + b.bytes,
                failed: a.failed + b.failed,
            })
    }

    /// Once a second: sample the throughput; time-based displays move on.
    pub fn on_second(&mut self, now: Instant) {
        let totals = self.totals();
        self.throughput.observe(now, totals);
        self.dirty = true;
    }

    /// Applies a background event.
    pub fn on_event(&mut self, event: Event) {
        self.dirty = true;
        match event {
            Event::JobStarted {
                id,
                kind,
                label,
                spec,
            } => {
                // Query jobs start in request order: the pending one is ours.
                if kind == JobKind::Query && self.query.running == Some(PENDING) {
                    self.query.running = Some(id);
                }
                if let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) {
                    // A resumed job: keep its earlier counters.
                    job.carried = job.totals();
                    job.progress = None;
                    job.state = JobState::Running;
                    job.error = None;
                    job.ended = None;
                } else {
                    self.jobs.push(JobView {
                        id,
                        kind,
                        label,
                        expected_items: spec.as_ref().and_then(|s| s.expected_items),
                        spec,
                        state: JobState::Running,
                        progress: None,
                        compact: None,
                        carried: Totals::default(),
                        error: None,
                        started: Instant::now(),
                        ended: None,
                        dead_letters: None,
                        lines: vec![],
                    });
                }
            }
            Event::IngestProgress { id, progress } => {
                if let Some(job) = self.job_mut(id) {
                    job.progress = Some(progress);
                }
            }
            Event::IngestFinished { id, result, paused } => {
                let mut message = None;
                if let Some(job) = self.job_mut(id) {
                    job.ended = Some(Instant::now());
                    match result {
                        Ok(p) => {
                            job.state = match p.phase {
                                Phase::Cancelled if paused => JobState::Paused,
                                Phase::Cancelled => JobState::Cancelled,
                                Phase::Failed => JobState::Failed,
                                _ => JobState::Done,
                            };
                            job.error = p.error.clone();
                            message = Some((
                                format!(
                                    "job {id} {}: {} items, {} rows, {} failed",
                                    job.state.label(),
                                    job.totals().items,
                                    job.totals().rows,
                                    job.totals().failed
                                ),
                                job.state == JobState::Failed,
                            ));
                            job.progress = Some(p);
                        }
                        Err(e) => {
                            job.state = JobState::Failed;
                            message = Some((format!("job {id} failed: {e}"), true));
                            job.error = Some(e.message());
                        }
                    }
                }
                if let Some((m, bad)) = message {
                    self.set_status(m, bad);
                }
            }
            Event::DeadLetters { id, result } => {
                if let Some(job) = self.job_mut(id) {
                    job.dead_letters = Some(result);
                }
            }
            Event::CompactProgress { id, progress } => {
                if let Some(job) = self.job_mut(id) {
                    job.lines = crate::jobs::compact::describe(&progress);
                    job.compact = Some(progress);
                }
            }
            Event::Compact { id, result } => self.on_compact(id, result),
            Event::Query { id, result } => {
                if let Some(job) = self.job_mut(id) {
                    job.ended = Some(Instant::now());
                    match &result {
                        Ok(o) => {
                            job.state = JobState::Done;
                            job.lines = vec![format!(
                                "{} results in {} ms",
                                o.rows.len(),
                                o.took.as_millis()
                            )];
                        }
                        Err(e) => {
                            job.state = JobState::Failed;
                            job.error = Some(e.message());
                        }
                    }
                }
                if self.query.running == Some(id) {
                    self.query.running = None;
                    match &result {
                        Ok(o) => self.set_status(
                            format!(
                                "query: {} results in {} ms",
                                o.rows.len(),
                                o.took.as_millis()
                            ),
                            false,
                        ),
                        Err(e) => self.set_status(format!("query: {e}"), true),
                    }
                    self.query.result = Some(result);
                    self.query.selected = 0;
                }
            }
            Event::Stats(Ok(view)) => {
                self.stats = Some(view);
                self.stats_error = None;
            }
            Event::Stats(Err(e)) => self.stats_error = Some(e.message()),
            Event::Lock(Ok(watched)) => {
                if let Some(dialog) = &mut self.steal {
                    dialog.observe(&watched);
                }
                self.lock = Some(watched);
                self.lock_error = None;
                self.lock_read_at = Some(Instant::now());
            }
            Event::Lock(Err(e)) => self.lock_error = Some(e.message()),
            Event::LockOutcome(outcome) => {
                self.held_generation = outcome.held_generation;
                if let Some(dialog) = &mut self.steal
                    && outcome.action == "steal"
                {
                    dialog.finish(outcome.clone());
                }
                self.set_status(
                    format!("lock {}: {}", outcome.action, outcome.message),
                    !outcome.ok,
                );
                self.lock_outcome = Some(outcome);
            }
            Event::Notice(text) => self.set_status(text, false),
        }
    }

    fn job_mut(&mut self, id: JobId) -> Option<&mut JobView> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    fn on_compact(&mut self, id: JobId, result: Result<CompactOutcome, JobError>) {
        let mut follow = None;
        let mut message = None;
        if let Some(job) = self.job_mut(id) {
            job.ended = Some(Instant::now());
            match result {
                Ok(o) => {
                    job.state = match o.summary.phase {
                        crate::compact::CompactPhase::Failed => JobState::Failed,
                        crate::compact::CompactPhase::Cancelled => JobState::Cancelled,
                        _ => JobState::Done,
                    };
                    job.error = o.summary.error.clone();
                    job.lines = o.lines.clone();
                    message = Some((o.lines.join(" · "), job.state == JobState::Failed));
                    job.compact = Some(o.summary);
                    follow = o.follow_up.map(|f| (f, o.lines));
                }
                Err(e) => {
                    job.state = JobState::Failed;
                    message = Some((format!("compaction: {e}"), true));
                    job.error = Some(e.message());
                }
            }
        }
        if let Some((text, bad)) = message {
            self.set_status(text, bad);
        }
        if let Some((request, lines)) = follow {
            self.confirms.push(Confirm {
                title: "Run this compaction?".into(),
                lines,
                yes: Request::Compact(request),
            });
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
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            ) {
                self.help = false;
            }
            return;
        }
        if !self.confirms.is_empty() {
            if let Some(request) = self.confirms.on_key(&key) {
                self.requests.push(request);
            }
            return;
        }
        if let Some(dialog) = &mut self.steal {
            match dialog.on_key(&key) {
                super::dialogs::steal::StealKey::Close => self.steal = None,
                super::dialogs::steal::StealKey::Steal(expected) => {
                    self.requests
                        .push(Request::Lock(LockCommand::Steal { expected }));
                }
                super::dialogs::steal::StealKey::None => {}
            }
            return;
        }
        if self.cmdline.is_some() {
            self.cmdline_key(key);
            return;
        }
        if self.partitions.filter_editing {
            self.filter_key(key);
            return;
        }
        if self.query.editing {
            self.query_key(key);
            return;
        }
        let Some(action) = keymap::lookup(self.view, &key) else {
            return;
        };
        if action.writes() && self.refuse_read_only(&format!("{action:?}").to_lowercase()) {
            return;
        }
        self.act(action);
    }

    /// Carries out a key-table action.
    pub fn act(&mut self, action: Action) {
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = true,
            Action::CommandLine => self.cmdline = Some(String::new()),
            Action::NextView => self.view = View::ALL[(self.view.index() + 1) % View::ALL.len()],
            Action::PrevView => {
                self.view = View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()]
            }
            Action::GoView(v) => self.view = v,
            Action::RefreshStats => {
                self.requests.push(Request::RefreshStats);
                self.set_status("refreshing stats…", false);
            }
            Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
                let delta: isize = match action {
                    Action::Up => -1,
                    Action::Down => 1,
                    Action::PageUp => -10,
                    _ => 10,
                };
                self.move_selection(delta);
            }
            Action::First => self.move_selection(isize::MIN / 2),
            Action::Last => self.move_selection(isize::MAX / 2),
            Action::NewIngest => {
                if self.refuse_read_only("ingest") {
                    return;
                }
                self.cmdline = Some("ingest ".into());
            }
            Action::Compact => self.run_command("compact"),
            Action::PauseResume => self.pause_resume(),
            Action::CancelJob => {
                if let Some(job) = self.selected_job()
                    && job.state.is_active()
                {
                    let (id, label) = (job.id, job.label.clone());
                    self.confirms.push(Confirm {
                        title: format!("Cancel job {id}?"),
                        lines: vec![
                            label,
                            "It stops at its next chunk boundary; what is complete stays committed."
                                .into(),
                        ],
                        yes: Request::Cancel { id, pause: false },
                    });
                } else {
                    self.set_status("no running job selected", true);
                }
            }
            Action::DeadLetters => {
                let Some(job) = self.selected_job() else {
                    return self.set_status("no job selected", true);
                };
                match job.progress.as_ref().map(|p| p.job_id.clone()) {
                    Some(job_id) if !job_id.is_empty() => {
                        self.requests
                            .push(Request::DeadLetters { id: job.id, job_id });
                        self.view = View::Jobs;
                    }
                    _ => self.set_status(
                        "this job has no dead letters (not an ingest that ran)",
                        true,
                    ),
                }
            }
            Action::Filter => self.partitions.filter_editing = true,
            Action::Sort => {
                self.partitions.sort = self.partitions.sort.next();
                self.partitions.descending =
                    !matches!(self.partitions.sort, SortKey::Cell | SortKey::Year);
            }
            Action::SortReverse => self.partitions.descending = !self.partitions.descending,
            Action::Acquire => self.run_command("acquire"),
            Action::Release => self.run_command("release"),
            Action::Steal => self.run_command("steal"),
            Action::EditField => self.query.editing = true,
            Action::RunQuery => self.submit_query(),
            Action::PlainResults => self.query.plain = !self.query.plain,
            Action::LogMore | Action::LogLess => {
                let n = LOG_LEVELS.len();
                self.log_level = if action == Action::LogMore {
                    (self.log_level + 1).min(n - 1)
                } else {
                    self.log_level.saturating_sub(1)
                };
                self.log_state = tui_logger::TuiWidgetState::new()
                    .set_default_display_level(LOG_LEVELS[self.log_level]);
            }
            Action::Confirm | Action::Back | Action::FieldUp | Action::FieldDown => {}
        }
    }

    fn refuse_read_only(&mut self, what: &str) -> bool {
        if self.init.read_only {
            self.set_status(
                format!("{what} is disabled: the console is read-only"),
                true,
            );
        }
        self.init.read_only
    }

    fn move_selection(&mut self, delta: isize) {
        let (len, selected) = match self.view {
            View::Overview | View::Jobs => (self.jobs.len(), &mut self.job_selected),
            View::Partitions => (
                super::panes::partitions::visible_rows(self).len(),
                &mut self.partitions.selected,
            ),
            View::Cells => (
                self.stats.as_ref().map_or(0, |s| s.stats.top_cells.len()),
                &mut self.cells_selected,
            ),
            View::Query => (
                self.query
                    .result
                    .as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .map_or(0, |o| o.rows.len()),
                &mut self.query.selected,
            ),
            _ => return,
        };
        if len == 0 {
            *selected = 0;
            return;
        }
        let next = (*selected as isize)
            .saturating_add(delta)
            .clamp(0, len as isize - 1);
        *selected = next as usize;
    }

    fn pause_resume(&mut self) {
        if self.refuse_read_only("pause/resume") {
            return;
        }
        let Some(job) = self.selected_job() else {
            return self.set_status("no job selected", true);
        };
        match (job.state, job.kind, &job.spec) {
            (JobState::Running, JobKind::Ingest, _) => {
                let id = job.id;
                self.requests.push(Request::Cancel { id, pause: true });
                if let Some(job) = self.job_mut(id) {
                    job.state = JobState::Pausing;
                }
                self.set_status(
                    format!("pausing job {id} at its next chunk boundary"),
                    false,
                );
            }
            (
                JobState::Paused | JobState::Cancelled | JobState::Failed,
                JobKind::Ingest,
                Some(spec),
            ) => {
                let mut spec = spec.clone();
                spec.resume_id = Some(job.id);
                let id = job.id;
                self.requests.push(Request::Ingest(Box::new(spec)));
                self.set_status(format!("resuming job {id} from its last checkpoint"), false);
            }
            _ => self.set_status(
                "only a running or paused ingest can be paused or resumed",
                true,
            ),
        }
    }

    fn submit_query(&mut self) {
        match self.query.request() {
            Ok(request) => {
                self.query.editing = false;
                self.query.submitted = Some(request.clone());
                self.requests.push(Request::Query(request));
                // The job id is known when the job starts: the next query job is ours.
                self.query.running = Some(PENDING);
                self.query.result = None;
                self.set_status("query running…", false);
            }
            Err(e) => self.set_status(e, true),
        }
    }

    fn cmdline_key(&mut self, key: KeyEvent) {
        let Some(line) = &mut self.cmdline else {
            return;
        };
        match keymap::lookup_input(&key) {
            Some(Action::Confirm) => {
                let text = std::mem::take(line);
                self.cmdline = None;
                self.run_command(&text);
            }
            Some(Action::Back) => self.cmdline = None,
            _ => edit_text(line, &key),
        }
    }

    fn filter_key(&mut self, key: KeyEvent) {
        match keymap::lookup_input(&key) {
            Some(Action::Confirm) => self.partitions.filter_editing = false,
            Some(Action::Back) => {
                self.partitions.filter_editing = false;
                self.partitions.filter.clear();
            }
            _ => edit_text(&mut self.partitions.filter, &key),
        }
        self.partitions.selected = 0;
    }

    fn query_key(&mut self, key: KeyEvent) {
        match keymap::lookup_input(&key) {
            Some(Action::Confirm) => self.submit_query(),
            Some(Action::Back) => self.query.editing = false,
            Some(Action::FieldUp) => self.query.focus = (self.query.focus + 3) % 4,
            Some(Action::FieldDown) => self.query.focus = (self.query.focus + 1) % 4,
            _ => edit_text(&mut self.query.fields[self.query.focus], &key),
        }
    }

    /// Runs a command-line command (without the leading `:`).
    pub fn run_command(&mut self, text: &str) {
        let text = text.trim();
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        match word {
            "" => {}
            "q" | "quit" | "exit" => self.quit = true,
            "help" => self.help = true,
            "refresh" => self.act(Action::RefreshStats),
            "ingest" => {
                if self.refuse_read_only("ingest") {
                    return;
                }
                match parse_ingest(rest) {
                    Ok(spec) => {
                        self.set_status(format!("starting ingest of {}", spec.label), false);
                        self.requests.push(Request::Ingest(Box::new(spec)));
                        self.view = View::Overview;
                    }
                    Err(e) => self.set_status(e, true),
                }
            }
            "compact" => {
                if self.refuse_read_only("compaction") {
                    return;
                }
                let threshold = match rest {
                    "" => None,
                    t => match t.trim_start_matches("--threshold").trim().parse() {
                        Ok(n) => Some(n),
                        Err(_) => {
                            return self
                                .set_status(format!("compact: '{t}' is not --threshold N"), true);
                        }
                    },
                };
                self.requests.push(Request::Compact(CompactRequest {
                    dry_run: true,
                    threshold,
                }));
                self.set_status("planning compaction (dry run)…", false);
                self.view = View::Jobs;
            }
            "query" => {
                if !rest.is_empty() {
                    match parse_query_args(rest) {
                        Ok(fields) => {
                            for (i, v) in fields.into_iter().enumerate() {
                                if let Some(v) = v {
                                    self.query.fields[i] = v;
                                }
                            }
                        }
                        Err(e) => return self.set_status(e, true),
                    }
                }
                self.view = View::Query;
                self.submit_query();
            }
            "steal" => {
                self.view = View::Lock;
                if self.refuse_read_only("steal") {
                    return;
                }
                match &self.lock {
                    Some(watched) => self.steal = Some(StealDialog::open(watched)),
                    None => self.set_status("the lock has not been read yet", true),
                }
            }
            "acquire" => {
                if self.refuse_read_only("acquire") {
                    return;
                }
                let ttl = match rest {
                    "" => Duration::from_secs(3600),
                    t => match crate::fmt::parse_duration(t) {
                        Ok(d) => d,
                        Err(e) => return self.set_status(format!("acquire: {e}"), true),
                    },
                };
                self.requests.push(Request::Lock(LockCommand::Acquire { ttl }));
                self.view = View::Lock;
            }
            "release" => {
                if self.refuse_read_only("release") {
                    return;
                }
                self.view = View::Lock;
                match self.held_generation {
                    Some(g) => self.confirms.push(Confirm {
                        title: "Release the lock?".into(),
                        lines: vec![format!(
                            "The console holds generation {g}; it is replaced by a release marker."
                        )],
                        yes: Request::Lock(LockCommand::Release),
                    }),
                    None => self.set_status(
                        "the console holds no lock (a lock taken elsewhere is released there, or stolen when stale)",
                        true,
                    ),
                }
            }
            other => self.set_status(
                format!("unknown command '{other}' (try ingest, compact, query, steal, acquire, release, refresh, q)"),
                true,
            ),
        }
    }
}

/// Applies an editing key to a one-line text field.
fn edit_text(text: &mut String, key: &KeyEvent) {
    match key.code {
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
        KeyCode::Backspace => {
            text.pop();
        }
        _ => {}
    }
}

/// `PATH [ITEMS_ROOT] [--items-root URL] [--job NAME] [--chunk-size N] [--concurrency N]`:
/// the same request `ecops ingest` makes (unset options take the same defaults).
pub fn parse_ingest(args: &str) -> Result<IngestSpec, String> {
    let mut words = args.split_whitespace();
    let mut params = crate::ingest::IngestParams::default();
    let number = |name: &str, v: String| {
        v.parse::<usize>()
            .map_err(|_| format!("ingest: {name} takes a number"))
    };
    while let Some(w) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .map(str::to_string)
                .ok_or_else(|| format!("ingest: {name} needs a value"))
        };
        match w {
            "--items-root" => params.items_root = Some(value(w)?),
            "--job" => params.job = Some(value(w)?),
            "--chunk-size" => params.chunk_size = Some(number(w, value(w)?)?),
            "--concurrency" => params.concurrency = Some(number(w, value(w)?)?),
            flag if flag.starts_with("--") => return Err(format!("ingest: unknown option {flag}")),
            path if params.inventory.is_none() => params.inventory = Some(path.to_string()),
            path if params.items_root.is_none() => params.items_root = Some(path.to_string()),
            extra => return Err(format!("ingest: unexpected '{extra}'")),
        }
    }
    if params.inventory.is_none() {
        return Err(
            "usage: ingest INVENTORY [--items-root URL] [--job NAME] [--chunk-size N]".into(),
        );
    }
    // The engine's builder checks the rest (job name, numbers) as the CLI's does.
    params
        .build(&Default::default())
        .map_err(|e| format!("ingest: {e}"))?;
    Ok(IngestSpec::new(params))
}

/// `key=value …` for `:query`: geometry (also bbox, point, g), datetime (dt,
/// d), filter (f), limit (n). A value runs up to the next `key=`.
pub fn parse_query_args(args: &str) -> Result<[Option<String>; 4], String> {
    let mut fields: [Option<String>; 4] = Default::default();
    let mut current: Option<usize> = None;
    for word in args.split_whitespace() {
        let field = word.split_once('=').and_then(|(k, v)| {
            let i = match k {
                "geometry" | "geom" | "g" | "bbox" | "point" | "wkt" => 0,
                "datetime" | "dt" | "d" => 1,
                "filter" | "f" | "where" => 2,
                "limit" | "n" => 3,
                _ => return None,
            };
            Some((i, v))
        });
        match (field, current) {
            (Some((i, v)), _) => {
                fields[i] = Some(v.to_string());
                current = Some(i);
            }
            (None, Some(i)) => {
                let f = fields[i].get_or_insert_with(String::new);
                if !f.is_empty() {
                    f.push(' ');
                }
                f.push_str(word);
            }
            (None, None) => {
                return Err(format!(
                    "query: '{word}' is not key=value (geometry=, datetime=, filter=, limit=)"
                ));
            }
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_args_run_to_the_next_key() {
        let f = parse_query_args("bbox=-10,40,10,60 filter=platform = 'S2A' limit=5").unwrap();
        assert_eq!(f[0].as_deref(), Some("-10,40,10,60"));
        assert_eq!(f[2].as_deref(), Some("platform = 'S2A'"));
        assert_eq!(f[3].as_deref(), Some("5"));
        assert!(f[1].is_none());
        assert!(parse_query_args("oops").is_err());
    }

    #[test]
    fn ingest_args_take_path_root_and_flags() {
        let s =
            parse_ingest("/inv.csv --items-root http://h --job nightly --chunk-size 50").unwrap();
        assert_eq!(s.params.items_root.as_deref(), Some("http://h"));
        assert_eq!(s.params.job.as_deref(), Some("nightly"));
        assert_eq!(s.params.chunk_size, Some(50));
        assert!(parse_ingest("").is_err());
        assert!(parse_ingest("/inv.csv --job a/b").is_err());
        assert!(parse_ingest("/inv.csv --bogus 1").is_err());
    }
}
