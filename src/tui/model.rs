//! What the background reports, as the views show it: table stats, the
//! lock, the jobs and their throughput. Several views read the same data;
//! none owns it. Events change it ([`super::update`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::ingest::dead_letter::DeadLetter;
use crate::ingest::{IngestProgress, Phase};
use crate::jobs::throughput::{Throughput, Totals};
use crate::jobs::{IngestSpec, JobId, JobKind, LockOutcome, StatsView};
use crate::lock::Watched;
use crate::runs::view::Snapshot;
use crate::runs::{JobError, RunState, RunView};
use crate::tui::equivalent::Equivalent;

/// Shared data of the console.
#[derive(Debug)]
pub struct Model {
    pub stats: Option<Arc<StatsView>>,
    pub stats_error: Option<String>,
    pub lock: LockData,
    pub jobs: Vec<JobView>,
    pub throughput: Throughput,
    /// What the console did, as equivalent commands, oldest first.
    pub history: Vec<Equivalent>,
    /// Other writer consoles and running writers on the catalog.
    pub others: crate::jobs::presence::Others,
    /// Every run on the catalog, from the run ledger.
    pub runs: RunsData,
    /// Every backfill run's status (phase, chunks, workers), newest first.
    pub backfills: Vec<crate::backfill::Status>,
}

/// The run ledger as the console last read it.
#[derive(Debug, Default)]
pub struct RunsData {
    pub snapshot: Option<Arc<Snapshot>>,
    pub error: Option<String>,
    /// External runs seen running: their counters stay in the throughput totals.
    pub seen_live: HashSet<String>,
    /// Dead letters read for external runs, by run id.
    pub dead_letters: HashMap<String, Result<Vec<DeadLetter>, JobError>>,
}

/// A row of the jobs list: one of the console's jobs, or a run someone else
/// started (a headless `ecops`, cron, a cluster), seen through the ledger.
#[derive(Debug, Clone, Copy)]
pub enum JobRow<'a> {
    Own(&'a JobView),
    External(&'a RunView),
}

/// How long an ended external run stays in the jobs list.
const RECENT_HOURS: i64 = 24;

impl Default for Model {
    fn default() -> Self {
        Self {
            stats: None,
            stats_error: None,
            lock: LockData::default(),
            jobs: vec![],
            throughput: Throughput::new(600),
            history: vec![],
            others: Default::default(),
            runs: RunsData::default(),
            backfills: vec![],
        }
    }
}

impl Model {
    pub fn job(&self, id: JobId) -> Option<&JobView> {
        self.jobs.iter().find(|j| j.id == id)
    }

    pub fn job_mut(&mut self, id: JobId) -> Option<&mut JobView> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// The status of backfill run `run`, when it has been read.
    pub fn backfill(&self, run: &str) -> Option<&crate::backfill::Status> {
        self.backfills.iter().find(|b| b.run == run)
    }

    /// The History view's lines, newest entry first: (entry, tool, command).
    pub fn history_lines(&self) -> Vec<(&Equivalent, &'static str, &str)> {
        self.history
            .iter()
            .rev()
            .flat_map(|e| {
                e.commands
                    .iter()
                    .map(move |(tool, c)| (e, *tool, c.as_str()))
            })
            .collect()
    }

    /// A warning line when another writer console is open (for dialogs).
    pub fn others_warning(&self) -> Option<String> {
        let c = &self.others.consoles;
        (!c.is_empty()).then(|| {
            let who: Vec<String> = c.iter().map(|p| p.by.describe()).collect();
            format!(
                "WARNING: {} other writer console{} open on this catalog: {}",
                c.len(),
                if c.len() == 1 { " is" } else { "s are" },
                who.join(", ")
            )
        })
    }

    /// Sums of every ingest job's counters (for the throughput history):
    /// the console's own, and external runs it has seen running.
    pub fn totals(&self) -> Totals {
        let external = self
            .external_runs()
            .into_iter()
            .filter(|r| self.runs.seen_live.contains(&r.id))
            .map(|r| Totals {
                items: r.items,
                rows: r.rows,
                bytes: r.bytes_fetched,
                failed: r.failed,
            });
        self.jobs
            .iter()
            .filter(|j| j.kind == JobKind::Ingest)
            .map(JobView::totals)
            .chain(external)
            .fold(Totals::default(), |a, b| Totals {
                items: a.items + b.items,
                rows: a.rows + b.rows,
                bytes: a.bytes + b.bytes,
                failed: a.failed + b.failed,
            })
    }

    /// Run ids of the console's own jobs (they are in the ledger too).
    fn own_runs(&self) -> HashSet<&str> {
        self.jobs
            .iter()
            .filter_map(|j| {
                j.progress
                    .as_ref()
                    .and_then(|p| p.run.as_deref())
                    .or(j.compact.as_ref().and_then(|c| c.run.as_deref()))
            })
            .collect()
    }

    /// Runs in the ledger that are not this console's jobs: running ones and
    /// those that ended in the last day, newest first.
    pub fn external_runs(&self) -> Vec<&RunView> {
        let Some(snapshot) = &self.runs.snapshot else {
            return vec![];
        };
        let own = self.own_runs();
        let cutoff = chrono::Utc::now() - chrono::Duration::hours(RECENT_HOURS);
        snapshot
            .runs
            .iter()
            .filter(|r| !own.contains(r.id.as_str()))
            .filter(|r| !r.state.is_final() || r.ended.is_none_or(|e| e > cutoff))
            .collect()
    }

    /// The jobs list: the console's jobs, then external runs.
    pub fn rows(&self) -> Vec<JobRow<'_>> {
        self.jobs
            .iter()
            .map(JobRow::Own)
            .chain(self.external_runs().into_iter().map(JobRow::External))
            .collect()
    }

    /// Live runs of the catalog: the console's active jobs and running external runs.
    pub fn running(&self) -> usize {
        self.jobs.iter().filter(|j| j.state.is_active()).count()
            + self
                .external_runs()
                .iter()
                .filter(|r| r.state == RunState::Running)
                .count()
    }
}

/// The lock as the console last read it, and its own part in it.
#[derive(Debug, Default)]
pub struct LockData {
    pub watched: Option<Box<Watched>>,
    pub error: Option<String>,
    /// When the last read arrived (for the countdown between reads).
    pub read_at: Option<Instant>,
    /// The last lock action's outcome.
    pub outcome: Option<LockOutcome>,
    /// The generation the console holds, if it holds the lock.
    pub held_generation: Option<u64>,
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
