//! Background work of the console: ingest, compaction, lock,
//! query and stats-refresh jobs run as tokio tasks and report through one
//! channel of [`Event`]s. Nothing here touches the terminal; the TUI sends
//! [`Request`]s and renders what the events say.
//!
//! - [`ingest`]: ingest jobs under the catalog lock, with pause (cancel at
//!   a chunk boundary) and resume (the same job spec continues after its
//!   last committed checkpoint).
//! - [`stats`]: table health re-read on a timer and after every commit,
//!   never in the draw path (it reads every manifest).
//! - [`lock`]: one task owns the [`crate::lock::LockWatcher`] and the
//!   console's own lease, so a steal is judged on the watcher's history.
//! - [`query`], [`compact`]: front ends of the query and compaction engines.
//! - [`backfill`]: backfill runs followed from the ledger; start, retry, commit.
//! - [`demo`], [`feed`]: the embedded demo catalog and its throttled item server.
//! - [`throughput`]: rate history for the throughput pane.

pub mod backfill;
pub mod compact;
pub mod demo;
pub mod feed;
pub mod ingest;
pub mod lock;
pub mod maintenance;
pub mod presence;
pub mod query;
pub mod runs;
pub mod stats;
pub mod throughput;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::catalog::EarthCatalog;
use crate::ingest::dead_letter::DeadLetter;
use crate::ingest::{IngestProgress, LockSettings};
use crate::lock::Watched;
use crate::runs::{JobError, LedgerOptions, Stop};

pub use backfill::{BackfillRequest, BackfillSpec};
pub use compact::{CompactOutcome, CompactRequest};
pub use ingest::IngestSpec;
pub use lock::{LockAction, LockCommand, LockOutcome};
pub use maintenance::{MaintenanceOutcome, MaintenanceRequest};
pub use query::{QueryOutcome, QueryRequest};
pub use stats::StatsView;

/// Identifies a job for the life of the console.
pub type JobId = u64;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Ingest,
    Compact,
    Query,
    Maintenance,
}

impl JobKind {
    pub fn label(self) -> &'static str {
        match self {
            JobKind::Ingest => "ingest",
            JobKind::Compact => "compact",
            JobKind::Query => "query",
            JobKind::Maintenance => "maint",
        }
    }
}

/// What the UI asks the background to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// Start an ingest job (or resume a paused one: same spec, same job id).
    Ingest(Box<IngestSpec>),
    /// Stop a job at its next chunk boundary; `pause` keeps it resumable in the list.
    Cancel { id: JobId, pause: bool },
    /// Read a job's dead letters.
    DeadLetters { id: JobId, job_id: String },
    /// Plan (dry run) or run a compaction.
    Compact(CompactRequest),
    /// Run a query.
    Query(QueryRequest),
    /// Plan (dry run) or run expire-snapshots or remove-orphans.
    Maintenance(MaintenanceRequest),
    /// Lock actions.
    Lock(LockCommand),
    /// Re-read the table stats now.
    RefreshStats,
    /// Ask a run in the ledger (the console's or anyone's) to stop or pause.
    RunControl {
        run: String,
        request: crate::runs::Request,
    },
    /// Read the dead letters of a run's ingest job.
    RunDeadLetters { run: String, job_id: String },
    /// Start, retry or commit a backfill.
    Backfill(BackfillRequest),
}

/// What the background reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job was started (resumes reuse the id of the paused job).
    JobStarted {
        id: JobId,
        kind: JobKind,
        label: String,
        spec: Option<IngestSpec>,
    },
    /// A new progress snapshot of an ingest job.
    IngestProgress {
        id: JobId,
        progress: IngestProgress,
    },
    /// An ingest job ended: its summary, or the error that stopped it before it ran.
    IngestFinished {
        id: JobId,
        result: Result<IngestProgress, JobError>,
        paused: bool,
    },
    DeadLetters {
        id: JobId,
        result: Result<Vec<DeadLetter>, JobError>,
    },
    /// A new progress snapshot of a compaction.
    CompactProgress {
        id: JobId,
        progress: crate::compact::CompactProgress,
    },
    Compact {
        id: JobId,
        result: Result<CompactOutcome, JobError>,
    },
    Maintenance {
        id: JobId,
        result: Result<MaintenanceOutcome, JobError>,
    },
    Query {
        id: JobId,
        result: Result<QueryOutcome, JobError>,
    },
    Stats(Result<Arc<StatsView>, JobError>),
    Lock(Result<Box<Watched>, JobError>),
    /// Other consoles and running writers on the catalog.
    Presence(presence::Others),
    LockOutcome(LockOutcome),
    /// Every run in the ledger, as of one refresh.
    Runs(Result<Arc<crate::runs::Snapshot>, JobError>),
    /// Every backfill run's status, newest first, after each ledger refresh.
    Backfills(Vec<crate::backfill::Status>),
    RunDeadLetters {
        run: String,
        result: Result<Vec<DeadLetter>, JobError>,
    },
    /// A line for the status bar (also logged).
    Notice(String),
}

/// Settings of the background work.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Refuse every write (ingest, compaction, lock changes).
    pub read_only: bool,
    /// Stats refresh period (also refreshed after each commit).
    pub stats_every: Duration,
    /// Lock re-read period.
    pub lock_every: Duration,
    pub small_file_bytes: u64,
    /// Who takes the lock for the console's jobs and actions.
    pub lock: LockSettings,
    /// Keep a presence record (writer consoles; never when read-only).
    pub presence: bool,
    /// How often presence is written and read.
    pub presence_every: Duration,
    /// How the console's jobs are recorded in the run ledger (None: not at all).
    pub ledger: Option<LedgerOptions>,
    /// Run ledger re-read period.
    pub runs_every: Duration,
    /// The `ecops` binary backfill workers run (None: this executable).
    pub ecops: Option<std::path::PathBuf>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            read_only: false,
            stats_every: Duration::from_secs(5),
            lock_every: Duration::from_secs(1),
            small_file_bytes: crate::catalog::stats::DEFAULT_SMALL_FILE_BYTES,
            lock: LockSettings::default(),
            ledger: Some(LedgerOptions::default()),
            presence: true,
            presence_every: Duration::from_secs(5),
            runs_every: Duration::from_secs(2),
            ecops: None,
        }
    }
}

/// Handle to the background work of one catalog. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<EarthCatalog>,
    config: JobsConfig,
    events: mpsc::UnboundedSender<Event>,
    next_id: AtomicU64,
    /// Stop switches of running jobs.
    running: Mutex<HashMap<JobId, Stop>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The run ledger reader (runs until shutdown).
    ledger_reader: tokio::task::JoinHandle<()>,
    stats: stats::StatsHandle,
    lock: mpsc::UnboundedSender<LockCommand>,
    presence: mpsc::UnboundedSender<tokio::sync::oneshot::Sender<()>>,
    /// Kept alive while the console runs (the demo's item server).
    keep: Mutex<Vec<Box<dyn std::any::Any + Send>>>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("base", &self.inner.catalog.base().location().to_uri())
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// Starts the stats and lock tasks on the current runtime and returns the
    /// handle and the event stream the UI reads.
    pub fn start(
        catalog: Arc<EarthCatalog>,
        config: JobsConfig,
    ) -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let stats = stats::spawn(
            catalog.clone(),
            events.clone(),
            config.stats_every,
            config.small_file_bytes,
        );
        let lock = lock::spawn(
            catalog.base().clone(),
            events.clone(),
            config.lock_every,
            config.lock.clone(),
            config.read_only,
        );
        let presence = presence::spawn(
            catalog.base().clone(),
            events.clone(),
            presence::PresenceOptions {
                write: config.presence && !config.read_only && !catalog.is_read_only(),
                every: config.presence_every,
            },
        );
        let ledger_reader = runs::spawn(catalog.base().clone(), events.clone(), config.runs_every);
        let jobs = Self {
            inner: Arc::new(Inner {
                catalog,
                config,
                events,
                next_id: AtomicU64::new(1),
                running: Mutex::default(),
                tasks: Mutex::default(),
                ledger_reader,
                stats,
                lock,
                presence,
                keep: Mutex::default(),
            }),
        };
        (jobs, rx)
    }

    /// Carries out a request; results arrive as events. Returns the id of
    /// the job it started (ingest, compaction, query), if any.
    pub fn submit(&self, request: Request) -> Option<JobId> {
        match request {
            Request::Ingest(spec) => {
                let (id, _) = self.start_ingest(*spec);
                return Some(id);
            }
            Request::Cancel { id, pause } => self.cancel(id, pause),
            Request::DeadLetters { id, job_id } => {
                let base = self.inner.catalog.base().clone();
                let events = self.inner.events.clone();
                self.track(tokio::spawn(async move {
                    let result = crate::ingest::dead_letter::read_all(&base, Some(&job_id))
                        .await
                        .map(|(letters, _)| letters)
                        .map_err(JobError::failed);
                    let _ = events.send(Event::DeadLetters { id, result });
                }));
            }
            Request::Compact(req) => {
                if !req.dry_run && self.refuse_write("compaction") {
                    return None;
                }
                return Some(self.start_compaction(req));
            }
            Request::Query(req) => {
                let id = self.new_id();
                let _ = self.inner.events.send(Event::JobStarted {
                    id,
                    kind: JobKind::Query,
                    label: req.summary(),
                    spec: None,
                });
                let (catalog, events) = (self.inner.catalog.clone(), self.inner.events.clone());
                self.track(tokio::spawn(async move {
                    let result = query::run(catalog, req).await;
                    let _ = events.send(Event::Query { id, result });
                }));
                return Some(id);
            }
            Request::Maintenance(req) => {
                if !req.dry_run() && self.refuse_write("maintenance") {
                    return None;
                }
                let id = self.new_id();
                self.track(maintenance::spawn(self, id, req));
                return Some(id);
            }
            Request::Lock(cmd) => {
                let _ = self.inner.lock.send(cmd);
            }
            Request::RefreshStats => self.inner.stats.refresh(),
            Request::RunControl { run, request } => self.request_run(run, request),
            Request::RunDeadLetters { run, job_id } => self.run_dead_letters(run, job_id),
            Request::Backfill(request) => self.backfill(request),
        }
        None
    }

    /// Starts a compaction plan or run; returns its job id.
    fn start_compaction(&self, req: CompactRequest) -> JobId {
        let id = self.new_id();
        self.track(compact::spawn(self, id, req));
        id
    }

    /// Starts an ingest job; returns its id and a receiver of its summary
    /// (dropped without a value when the job could not start).
    pub fn start_ingest(
        &self,
        spec: IngestSpec,
    ) -> (JobId, tokio::sync::oneshot::Receiver<IngestProgress>) {
        let id = spec.resume_id.unwrap_or_else(|| self.new_id());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if !self.refuse_write("ingest") {
            let handle = ingest::spawn(self, id, spec, done_tx);
            self.track(handle);
        }
        (id, done_rx)
    }

    /// Stops job `id` at its next chunk boundary (what is complete is committed).
    pub fn cancel(&self, id: JobId, pause: bool) {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stop) = running.get(&id) {
            let request = if pause {
                crate::runs::Request::Pause
            } else {
                crate::runs::Request::Cancel
            };
            stop.request(request, "this console", None);
        }
    }

    /// Ids of jobs still running.
    pub fn running(&self) -> Vec<JobId> {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        running.keys().copied().collect()
    }

    /// Cancels every running job, waits up to `timeout` for them to commit what
    /// is complete and stop, then releases the console's lease.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.ledger_reader.abort();
        for id in self.running() {
            self.cancel(id, false);
        }
        let tasks: Vec<_> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::time::timeout(timeout, futures::future::join_all(tasks)).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.inner.lock.send(LockCommand::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.inner.presence.send(tx).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }

    /// Keeps `value` alive as long as the jobs (e.g. a server their jobs read from).
    pub fn keep_alive(&self, value: Box<dyn std::any::Any + Send>) {
        self.inner
            .keep
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(value);
    }

    /// Sends a notice to the UI.
    pub fn notice(&self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!("{text}");
        let _ = self.inner.events.send(Event::Notice(text));
    }

    fn new_id(&self) -> JobId {
        self.inner.next_id.fetch_add(1, Ordering::SeqCst)
    }

    fn refuse_write(&self, what: &str) -> bool {
        if self.inner.config.read_only || self.inner.catalog.is_read_only() {
            self.notice(format!("{what} refused: the console is read-only"));
            true
        } else {
            false
        }
    }

    fn track(&self, handle: tokio::task::JoinHandle<()>) {
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }
}
