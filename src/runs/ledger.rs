//! Writing the ledger: a run's record, its workers' heartbeats, operator
//! requests, and pruning old runs. Publishing never fails a job: a store
//! error is logged and the next heartbeat tries again.

use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::record::{
    Activity, Actor, ControlRecord, Counters, RECORD_VERSION, RUNS_DIR, Request, RunKind,
    RunRecord, RunState, WorkerRecord, engine_task, new_run_id, run_dir, valid_name, worker_name,
};
use super::stop::Stop;
use crate::store::Store;

/// How runs publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Seconds between worker heartbeats (default 5 s).
    pub heartbeat: Duration,
    /// Runs kept in the ledger; older finished ones are pruned when a run starts.
    pub keep: usize,
}

/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// Default number of runs kept.
pub const DEFAULT_KEEP: usize = 50;

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            heartbeat: DEFAULT_HEARTBEAT,
            keep: DEFAULT_KEEP,
        }
    }
}

/// Errors reading or writing the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("run ledger {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("run ledger {uri}: not a record of ours ({reason})")]
    Unreadable { uri: String, reason: String },
    #[error("no run '{id}' in {uri}; recent runs: {recent}")]
    UnknownRun {
        id: String,
        uri: String,
        recent: String,
    },
}

/// The ledger of one catalog.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Store,
}

impl Ledger {
    /// The ledger under `base` (the catalog's store).
    pub fn new(base: &Store) -> Self {
        Self {
            store: base.clone(),
        }
    }

    /// The store it lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where the ledger lives (for messages).
    pub fn uri(&self) -> String {
        self.store.uri(RUNS_DIR)
    }

    pub(crate) async fn put_json(
        &self,
        rel: &str,
        value: &impl Serialize,
    ) -> Result<(), LedgerError> {
        let body = serde_json::to_vec(value).map_err(|e| LedgerError::Unreadable {
            uri: self.store.uri(rel),
            reason: e.to_string(),
        })?;
        self.store
            .object_store()
            .put(&self.store.key(rel), PutPayload::from(body))
            .await
            .map(|_| ())
            .map_err(|source| LedgerError::Store {
                uri: self.store.uri(rel),
                source,
            })
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        rel: &str,
    ) -> Result<Option<T>, LedgerError> {
        let uri = || self.store.uri(rel);
        let bytes = match self.store.object_store().get(&self.store.key(rel)).await {
            Ok(got) => got
                .bytes()
                .await
                .map_err(|source| LedgerError::Store { uri: uri(), source })?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(LedgerError::Store { uri: uri(), source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LedgerError::Unreadable {
                uri: uri(),
                reason: e.to_string(),
            })
    }

    /// Ids of every run folder, oldest first.
    pub async fn run_ids(&self) -> Result<Vec<String>, LedgerError> {
        let listing = self
            .store
            .object_store()
            .list_with_delimiter(Some(&self.store.key(RUNS_DIR)))
            .await;
        let listing = match listing {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(source) => {
                return Err(LedgerError::Store {
                    uri: self.uri(),
                    source,
                });
            }
        };
        let mut ids: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|id| valid_name(id))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// `run.json` of run `id`; an unknown id is an error listing recent ones.
    pub async fn read_run(&self, id: &str) -> Result<RunRecord, LedgerError> {
        let found = if valid_name(id) {
            self.get_json(&format!("{}/run.json", run_dir(id))).await?
        } else {
            None
        };
        match found {
            Some(record) => Ok(record),
            None => {
                let ids = self.run_ids().await.unwrap_or_default();
                let recent: Vec<&str> = ids.iter().rev().take(8).map(String::as_str).collect();
                Err(LedgerError::UnknownRun {
                    id: id.to_string(),
                    uri: self.uri(),
                    recent: if recent.is_empty() {
                        "none".into()
                    } else {
                        recent.join(", ")
                    },
                })
            }
        }
    }

    /// Rewrites `run.json` (the owner of a run, or a backfill phase change).
    pub async fn write_run(&self, record: &RunRecord) -> Result<(), LedgerError> {
        self.put_json(&format!("{}/run.json", run_dir(&record.id)), record)
            .await
    }

    /// The operator request recorded for run `id`, if any.
    pub async fn read_control(&self, id: &str) -> Result<Option<ControlRecord>, LedgerError> {
        self.get_json(&format!("{}/control.json", run_dir(id)))
            .await
    }

    /// Records an operator's request that run `id` stop (or pause) at its
    /// next commit. The run must exist.
    pub async fn request(&self, id: &str, request: Request) -> Result<ControlRecord, LedgerError> {
        self.read_run(id).await?;
        let control = ControlRecord {
            request,
            by: Actor::me(),
            at: Utc::now(),
        };
        self.put_json(&format!("{}/control.json", run_dir(id)), &control)
            .await?;
        Ok(control)
    }

    /// Writes a worker record as given: for tools that publish on behalf of
    /// workers (and the ledger bench); running jobs publish through
    /// [`RunWriter::start`].
    pub async fn write_worker(&self, record: &WorkerRecord) -> Result<(), LedgerError> {
        let rel = format!("{}/workers/{}.json", run_dir(&record.run), record.worker);
        self.put_json(&rel, record).await
    }

    /// Starts a run: writes `run.json` (running) and this process's worker
    /// record, and prunes finished runs beyond `opts.keep`.
    pub async fn begin(
        &self,
        kind: RunKind,
        inputs: Value,
        opts: LedgerOptions,
    ) -> Result<RunWriter, LedgerError> {
        let now = Utc::now();
        let id = new_run_id(kind, now);
        let record = RunRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            kind,
            created: now,
            by: Actor::me(),
            inputs,
            state: RunState::Running,
            heartbeat_seconds: opts.heartbeat.as_secs_f64(),
            ended: None,
            exit_code: None,
            error: None,
            summary: None,
            stopped_by: None,
            counters: None,
            extra: Default::default(),
        };
        self.write_run(&record).await?;
        if let Err(e) = self.prune(opts.keep).await {
            tracing::warn!("pruning old runs: {e}");
        }
        let mut writer = self.join_as_owner(record, opts);
        writer
            .publish(&Activity::default(), RunState::Running)
            .await?;
        Ok(writer)
    }

    /// Joins run `id` (created by someone else, e.g. a backfill plan) as one
    /// more worker; its record is written at once.
    pub async fn join(&self, id: &str, opts: LedgerOptions) -> Result<RunWriter, LedgerError> {
        let run = self.read_run(id).await?;
        let mut writer = self.join_as_owner(run, opts);
        writer.owns_run = false;
        writer
            .publish(&Activity::default(), RunState::Running)
            .await?;
        Ok(writer)
    }

    fn join_as_owner(&self, run: RunRecord, opts: LedgerOptions) -> RunWriter {
        let me = Actor::me();
        let task = engine_task();
        let now = Utc::now();
        RunWriter {
            ledger: self.clone(),
            worker: WorkerRecord {
                version: RECORD_VERSION,
                run: run.id.clone(),
                worker: worker_name(&task, &me),
                host: me.host,
                pid: me.pid,
                engine_task: task,
                state: RunState::Running,
                started: now,
                heartbeat: now,
                seq: 0,
                heartbeat_seconds: opts.heartbeat.as_secs_f64(),
                activity: Activity::default(),
                error: None,
            },
            run,
            owns_run: true,
            opts,
        }
    }

    /// Removes the oldest runs beyond `keep` whose record says they ended
    /// (or that are unreadable); never a running one.
    pub async fn prune(&self, keep: usize) -> Result<Vec<String>, LedgerError> {
        let ids = self.run_ids().await?;
        let excess = ids.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for id in ids.into_iter().take(excess) {
            let ended = match self
                .get_json::<RunRecord>(&format!("{}/run.json", run_dir(&id)))
                .await
            {
                Ok(Some(r)) => r.state.is_final(),
                Ok(None) | Err(LedgerError::Unreadable { .. }) => true,
                Err(e) => return Err(e),
            };
            if ended {
                self.remove_run(&id).await?;
                removed.push(id);
            }
        }
        Ok(removed)
    }

    async fn remove_run(&self, id: &str) -> Result<(), LedgerError> {
        let os = self.store.object_store();
        let prefix = self.store.key(&run_dir(id));
        let err = |source| LedgerError::Store {
            uri: self.store.uri(&run_dir(id)),
            source,
        };
        let objects: Vec<_> = match os.list(Some(&prefix)).try_collect().await {
            Ok(list) => list,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(err(e)),
        };
        for meta in objects {
            match os.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }
}

/// How a run ended, for its final records.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub state: RunState,
    pub exit_code: i32,
    pub error: Option<String>,
    pub summary: Value,
    pub counters: Counters,
    pub stopped_by: Option<ControlRecord>,
}

/// This process's place in a run: its worker record (and the run record,
/// when this process started the run).
#[derive(Debug)]
pub struct RunWriter {
    ledger: Ledger,
    run: RunRecord,
    worker: WorkerRecord,
    owns_run: bool,
    opts: LedgerOptions,
}

impl RunWriter {
    /// The run id.
    pub fn id(&self) -> &str {
        &self.run.id
    }

    /// This worker's record name.
    pub fn worker(&self) -> &str {
        &self.worker.worker
    }

    /// The run outlives this process (a backfill's plan): its end writes only
    /// the worker record, and the run stays open for the workers that join it.
    pub fn leave_run_open(&mut self) {
        self.owns_run = false;
    }

    /// Writes the worker record with `activity` (a new heartbeat).
    async fn publish(&mut self, activity: &Activity, state: RunState) -> Result<(), LedgerError> {
        self.worker.seq += 1;
        self.worker.heartbeat = Utc::now();
        self.worker.activity = activity.clone();
        self.worker.state = state;
        self.ledger.write_worker(&self.worker).await
    }

    /// Starts the heartbeat: every interval the latest `activity` is
    /// published, and an operator request in `control.json` trips `stop`.
    pub fn start(mut self, mut activity: watch::Receiver<Activity>, stop: Stop) -> Heartbeat {
        let (end_tx, mut end_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.opts.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; `begin` has just published
            let mut failing = false;
            let mut seen_control = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut end_rx => break,
                }
                let now = activity.borrow_and_update().clone();
                let state = if stop.is_pause() {
                    RunState::Paused
                } else {
                    RunState::Running
                };
                match self.publish(&now, state).await {
                    Ok(()) if failing => {
                        tracing::info!("run {}: heartbeats are published again", self.run.id);
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        tracing::warn!(
                            "run {}: heartbeat not published (retrying): {e}",
                            self.run.id
                        );
                        failing = true;
                    }
                    Err(_) => {}
                }
                if !seen_control {
                    seen_control = self.poll_control(&stop).await;
                }
            }
            self
        });
        Heartbeat {
            task,
            end: Some(end_tx),
        }
    }

    /// Trips `stop` if an operator asked this run to stop; true once seen.
    async fn poll_control(&self, stop: &Stop) -> bool {
        match self.ledger.read_control(&self.run.id).await {
            Ok(Some(control)) => {
                tracing::warn!("run {}: {}", self.run.id, control.describe());
                stop.request(control.request, control.by.describe(), Some(control));
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::debug!("run {}: reading control: {e}", self.run.id);
                false
            }
        }
    }

    /// Writes the final worker record and, for the run's owner, the final
    /// `run.json` (state, exit code, error, summary, who stopped it).
    async fn finish(mut self, activity: Activity, end: RunEnd) {
        self.worker.error = end.error.clone();
        if let Err(e) = self.publish(&activity, end.state).await {
            tracing::warn!("run {}: final worker record not written: {e}", self.run.id);
        }
        if !self.owns_run {
            return;
        }
        self.run.state = end.state;
        self.run.ended = Some(Utc::now());
        self.run.exit_code = Some(end.exit_code);
        self.run.error = end.error;
        self.run.summary = Some(end.summary);
        self.run.counters = Some(end.counters);
        self.run.stopped_by = end.stopped_by;
        if let Err(e) = self.ledger.write_run(&self.run).await {
            tracing::warn!("run {}: final record not written: {e}", self.run.id);
        }
    }
}

/// A running heartbeat; [`Heartbeat::finish`] ends it with the run's outcome.
#[derive(Debug)]
pub struct Heartbeat {
    task: JoinHandle<RunWriter>,
    end: Option<oneshot::Sender<()>>,
}

impl Heartbeat {
    /// Stops the heartbeat and writes the final records.
    pub async fn finish(mut self, activity: Activity, end: RunEnd) {
        if let Some(tx) = self.end.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(writer) => writer.finish(activity, end).await,
            Err(e) => tracing::warn!("run heartbeat task ended badly: {e}"),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if self.end.is_some() {
            self.task.abort();
        }
    }
}
