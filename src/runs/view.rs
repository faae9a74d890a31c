//! Reading the ledger: what every run on the catalog is doing, for the
//! console's Jobs view and `ecops runs`.
//!
//! A refresh costs one LIST of the ledger plus one GET per record whose
//! version changed since the last refresh — in steady state, one GET per
//! live worker. Rates come from two readings of a worker (its own
//! heartbeat timestamps, so the writer's clock cancels out). Ages are
//! measured on the reader's clock from when it saw a record change, like
//! the lock watcher, so skew between machines cannot make a live worker
//! look dead; a record never seen changing is judged by its timestamp.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use super::ledger::{Ledger, LedgerError};
use super::record::{
    ControlRecord, Counters, RUNS_DIR, RunKind, RunRecord, RunState, WorkerRecord,
};
use crate::store::Store;

/// Heartbeat intervals without news before a worker counts as stalled.
pub const STALLED_AFTER: f64 = 3.0;
/// Heartbeat intervals without news before a run with no live worker is abandoned.
pub const ABANDONED_AFTER: f64 = 12.0;

/// One worker as a reader sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerView {
    pub worker: String,
    pub host: String,
    pub pid: u32,
    pub engine_task: String,
    pub state: RunState,
    pub phase: String,
    pub chunk: Option<String>,
    pub heartbeat_age_seconds: f64,
    #[serde(flatten)]
    pub counters: Counters,
    pub items_per_second: f64,
    pub rows_per_second: f64,
    pub error: Option<String>,
}

/// One run as a reader sees it (`ecops runs --json` prints these).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub id: String,
    pub kind: RunKind,
    pub state: RunState,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub host: String,
    pub pid: u32,
    pub user: String,
    pub items: u64,
    pub rows: u64,
    pub failed: u64,
    pub files: u64,
    pub bytes: u64,
    pub bytes_fetched: u64,
    pub commits: u64,
    /// Summed over live workers (the whole run's average once it ended).
    pub items_per_second: f64,
    pub rows_per_second: f64,
    /// Age of the freshest worker heartbeat (None: no worker record).
    pub heartbeat_age_seconds: Option<f64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// Who asked it to stop or pause, if someone did.
    pub stop_request: Option<String>,
    pub workers: Vec<WorkerView>,
    #[serde(skip)]
    pub record: RunRecord,
}

impl RunView {
    /// Counters summed over the run's workers.
    pub fn counters(&self) -> Counters {
        Counters {
            items_listed: self.items,
            items_fetched: 0,
            items_failed: self.failed,
            rows: self.rows,
            files: self.files,
            bytes: self.bytes,
            bytes_fetched: self.bytes_fetched,
            commits: self.commits,
        }
    }

    /// True for states that may still change.
    pub fn is_live(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Stalled)
    }
}

/// A record under the ledger that is not one of ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unreadable {
    pub key: String,
    pub reason: String,
}

/// The ledger as of one refresh.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Newest first.
    pub runs: Vec<RunView>,
    pub unreadable: Vec<Unreadable>,
}

/// Requests a reader has made (the ledger's cost, for the bench).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCount {
    pub lists: u64,
    pub gets: u64,
}

/// One run's records as listed: run.json, workers, control.json.
type Records = (Option<RunRecord>, Vec<WorkerRecord>, Option<ControlRecord>);

#[derive(Debug, Clone)]
enum Parsed {
    Run(Box<RunRecord>),
    Worker(Box<WorkerRecord>),
    Control(ControlRecord),
    Unreadable(String),
}

#[derive(Debug, Clone)]
struct Cached {
    version: String,
    parsed: Parsed,
}

/// What this reader remembers of one worker between refreshes.
#[derive(Debug, Clone)]
struct Seen {
    seq: u64,
    /// When we first saw the current `seq` (our clock).
    since: Instant,
    /// True once we have seen `seq` change: then ages are ours alone.
    changed_under_watch: bool,
    /// The reading of `seq` (writer's heartbeat time, counters).
    reading: (DateTime<Utc>, Counters),
    /// Items/s and rows/s between the last two readings (else the average since start).
    rates: (f64, f64),
}

/// Reads the ledger of one catalog, remembering what it saw between refreshes.
#[derive(Debug)]
pub struct RunsReader {
    ledger: Ledger,
    cache: HashMap<String, Cached>,
    seen: HashMap<String, Seen>,
    requests: RequestCount,
}

impl RunsReader {
    pub fn new(base: &Store) -> Self {
        Self {
            ledger: Ledger::new(base),
            cache: HashMap::new(),
            seen: HashMap::new(),
            requests: RequestCount::default(),
        }
    }

    /// Requests made so far.
    pub fn requests(&self) -> RequestCount {
        self.requests
    }

    /// Lists the ledger, fetches what changed, and judges every run now.
    pub async fn refresh(&mut self) -> Result<Snapshot, LedgerError> {
        let store = self.ledger.store().clone();
        let os = store.object_store();
        let prefix = store.key(RUNS_DIR);
        self.requests.lists += 1;
        let metas: Vec<object_store::ObjectMeta> = match os.list(Some(&prefix)).try_collect().await
        {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(source) => {
                return Err(LedgerError::Store {
                    uri: self.ledger.uri(),
                    source,
                });
            }
        };
        let mut present = Vec::with_capacity(metas.len());
        for meta in metas {
            let rel = relative(prefix.as_ref(), meta.location.as_ref());
            let version = meta.e_tag.clone().unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    meta.size
                )
            });
            present.push(rel.clone());
            if self.cache.get(&rel).is_some_and(|c| c.version == version) {
                continue;
            }
            self.requests.gets += 1;
            let parsed = match os.get(&meta.location).await {
                Ok(got) => match got.bytes().await {
                    Ok(bytes) => parse(&rel, &bytes),
                    Err(e) => Parsed::Unreadable(e.to_string()),
                },
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => Parsed::Unreadable(e.to_string()),
            };
            self.cache.insert(rel, Cached { version, parsed });
        }
        self.cache.retain(|k, _| present.contains(k));
        Ok(self.judge(Instant::now(), Utc::now()))
    }

    /// Builds the views from the cache at `now`.
    fn judge(&mut self, now: Instant, wall: DateTime<Utc>) -> Snapshot {
        let mut runs: BTreeMap<String, Records> = BTreeMap::new();
        let mut unreadable = Vec::new();
        for (key, cached) in &self.cache {
            let id = key.split('/').next().unwrap_or_default().to_string();
            let entry = runs.entry(id).or_default();
            match &cached.parsed {
                Parsed::Run(r) => entry.0 = Some((**r).clone()),
                Parsed::Worker(w) => entry.1.push((**w).clone()),
                Parsed::Control(c) => entry.2 = Some(c.clone()),
                Parsed::Unreadable(reason) => unreadable.push(Unreadable {
                    key: format!("{RUNS_DIR}/{key}"),
                    reason: reason.clone(),
                }),
            }
        }
        let mut views = Vec::new();
        for (id, (run, workers, control)) in runs {
            let Some(run) = run else {
                if !workers.is_empty() || control.is_some() {
                    unreadable.push(Unreadable {
                        key: format!("{RUNS_DIR}/{id}/run.json"),
                        reason: "missing: workers or a request without a run record".into(),
                    });
                }
                continue;
            };
            let workers: Vec<WorkerView> = workers
                .into_iter()
                .map(|w| self.worker_view(&id, w, now, wall))
                .collect();
            views.push(run_view(run, workers, control, wall));
        }
        views.sort_by(|a, b| b.id.cmp(&a.id));
        unreadable.sort_by(|a, b| a.key.cmp(&b.key));
        Snapshot {
            runs: views,
            unreadable,
        }
    }

    fn worker_view(
        &mut self,
        run: &str,
        w: WorkerRecord,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> WorkerView {
        let current = (w.heartbeat, w.activity.counters);
        let seen = self
            .seen
            .entry(format!("{run}/{}", w.worker))
            .or_insert_with(|| Seen {
                seq: w.seq,
                since: now,
                changed_under_watch: false,
                reading: current,
                rates: rate_between((w.started, Counters::default()), current),
            });
        if seen.seq != w.seq {
            seen.rates = rate_between(seen.reading, current);
            seen.seq = w.seq;
            seen.since = now;
            seen.changed_under_watch = true;
            seen.reading = current;
        }
        let watched = now.saturating_duration_since(seen.since).as_secs_f64();
        let age = if seen.changed_under_watch {
            watched
        } else {
            let by_clock = (wall - w.heartbeat).num_milliseconds() as f64 / 1000.0;
            by_clock.max(0.0).max(watched)
        };
        let interval = w.heartbeat_seconds.max(0.1);
        let state = match w.state {
            s if s.is_final() && s != RunState::Paused => s,
            _ if age >= STALLED_AFTER * interval => RunState::Stalled,
            s => s,
        };
        let (items_rate, rows_rate) = if state == RunState::Running {
            seen.rates
        } else {
            (0.0, 0.0)
        };
        WorkerView {
            worker: w.worker,
            host: w.host,
            pid: w.pid,
            engine_task: w.engine_task,
            state,
            phase: w.activity.phase,
            chunk: w.activity.chunk,
            heartbeat_age_seconds: age,
            counters: w.activity.counters,
            items_per_second: items_rate,
            rows_per_second: rows_rate,
            error: w.error,
        }
    }
}

/// Items/s and rows/s between two readings (heartbeat time, counters) of
/// one writer: its clock on both ends, so skew cancels out.
fn rate_between(from: (DateTime<Utc>, Counters), to: (DateTime<Utc>, Counters)) -> (f64, f64) {
    let seconds = (to.0 - from.0).num_milliseconds() as f64 / 1000.0;
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    (
        to.1.items_listed.saturating_sub(from.1.items_listed) as f64 / seconds,
        to.1.rows.saturating_sub(from.1.rows) as f64 / seconds,
    )
}

fn run_view(
    run: RunRecord,
    workers: Vec<WorkerView>,
    control: Option<ControlRecord>,
    wall: DateTime<Utc>,
) -> RunView {
    let sum = workers
        .iter()
        .fold(Counters::default(), |a, w| a + w.counters);
    let counters = match (run.state.is_final(), run.counters) {
        (true, Some(c)) => c,
        _ => sum,
    };
    let freshest = workers
        .iter()
        .map(|w| w.heartbeat_age_seconds)
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.min(b))));
    let state = run_state(&run, &workers, freshest, wall);
    let (items_per_second, rows_per_second) = if state.is_final() {
        let end = run.ended.unwrap_or(wall);
        let seconds = ((end - run.created).num_milliseconds() as f64 / 1000.0).max(0.001);
        (
            counters.items_listed as f64 / seconds,
            counters.rows as f64 / seconds,
        )
    } else {
        workers.iter().fold((0.0, 0.0), |(i, r), w| {
            (i + w.items_per_second, r + w.rows_per_second)
        })
    };
    RunView {
        id: run.id.clone(),
        kind: run.kind,
        state,
        started: run.created,
        ended: run.ended,
        host: run.by.host.clone(),
        pid: run.by.pid,
        user: run.by.user.clone(),
        items: counters.items_listed,
        rows: counters.rows,
        failed: counters.items_failed,
        files: counters.files,
        bytes: counters.bytes,
        bytes_fetched: counters.bytes_fetched,
        commits: counters.commits,
        items_per_second,
        rows_per_second,
        heartbeat_age_seconds: freshest,
        exit_code: run.exit_code,
        error: run.error.clone(),
        stop_request: run
            .stopped_by
            .as_ref()
            .or(control.as_ref())
            .map(ControlRecord::describe),
        workers,
        record: run,
    }
}

/// The run's state: its own final word, else what its workers' silence says.
fn run_state(
    run: &RunRecord,
    workers: &[WorkerView],
    freshest: Option<f64>,
    wall: DateTime<Utc>,
) -> RunState {
    if run.state.is_final() {
        return run.state;
    }
    let live: Vec<&WorkerView> = workers
        .iter()
        .filter(|w| matches!(w.state, RunState::Running | RunState::Paused))
        .collect();
    if !live.is_empty() {
        return if live.iter().all(|w| w.state == RunState::Paused) {
            RunState::Paused
        } else {
            RunState::Running
        };
    }
    // A backfill waits for its scheduler between phases; its own status says more.
    if run.kind == RunKind::Backfill {
        return run.state;
    }
    let interval = run.heartbeat_seconds.max(0.1);
    let silent = freshest
        .unwrap_or_else(|| ((wall - run.created).num_milliseconds() as f64 / 1000.0).max(0.0));
    if silent >= ABANDONED_AFTER * interval {
        RunState::Abandoned
    } else if silent >= STALLED_AFTER * interval {
        RunState::Stalled
    } else {
        run.state
    }
}

/// `rel` of `key` below the ledger prefix ("<id>/run.json").
fn relative(prefix: &str, key: &str) -> String {
    key.strip_prefix(prefix)
        .unwrap_or(key)
        .trim_start_matches('/')
        .to_string()
}

fn parse(rel: &str, bytes: &[u8]) -> Parsed {
    let parts: Vec<&str> = rel.split('/').collect();
    let result = match parts.as_slice() {
        [_, "run.json"] => serde_json::from_slice(bytes).map(|r| Parsed::Run(Box::new(r))),
        [_, "workers", name] if name.ends_with(".json") => {
            serde_json::from_slice(bytes).map(|w| Parsed::Worker(Box::new(w)))
        }
        [_, "control.json"] => serde_json::from_slice(bytes).map(Parsed::Control),
        _ => return Parsed::Unreadable("not a file the run ledger writes".into()),
    };
    result.unwrap_or_else(|e| Parsed::Unreadable(format!("not a run ledger record: {e}")))
}
