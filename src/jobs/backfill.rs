//! Backfills from the console: every backfill run of the catalog followed
//! through the run ledger and its markers ([`Follower`], driven by the
//! ledger task), and the writer console's actions on one — start (plan,
//! then hand the phases to an engine), retry what is not done, commit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::Jobs;
use crate::backfill::commit::CommitOptions;
use crate::backfill::schedulers::{Engine, Launch};
use crate::backfill::status::{MarkerCache, status_of};
use crate::backfill::{BackfillState, PlanOptions, Status, submit};
use crate::catalog::EarthCatalog;
use crate::runs::{JobError, RunKind, Snapshot, Stop};
use crate::store::Store;

/// A backfill to start: what to plan and where to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillSpec {
    pub plan: PlanOptions,
    pub engine: Engine,
    /// At most this many array tasks at once.
    pub max_parallel: u32,
    /// Scripts, manifests and task logs (None: `./ecops-backfill/<run>`).
    pub workdir: Option<PathBuf>,
}

/// What the console asks of backfills.
#[derive(Debug, Clone, PartialEq)]
pub enum BackfillRequest {
    /// Plan a backfill, then hand its phases to the engine.
    Start(Box<BackfillSpec>),
    /// Run again the tasks owning a chunk or partition not done, through
    /// the engine the run recorded.
    Retry { run: String },
    /// Register the reduced files under the catalog lock.
    Commit { run: String },
}

impl BackfillRequest {
    /// The run it acts on (None: a new one).
    pub fn run(&self) -> Option<&str> {
        match self {
            BackfillRequest::Start(_) => None,
            BackfillRequest::Retry { run } | BackfillRequest::Commit { run } => Some(run),
        }
    }
}

/// Follows the backfill runs in each ledger snapshot. Done markers are read
/// once per run (a [`MarkerCache`] each), and a committed run not again.
#[derive(Debug, Default)]
pub struct Follower {
    caches: HashMap<String, MarkerCache>,
    committed: HashMap<String, Status>,
}

impl Follower {
    /// The status of every backfill run in `snapshot`, newest first. A run
    /// whose markers cannot be read is logged and left out, not fatal.
    pub async fn statuses(&mut self, base: &Store, snapshot: &Snapshot) -> Vec<Status> {
        let mut out = Vec::new();
        for run in snapshot.runs.iter().filter(|r| r.kind == RunKind::Backfill) {
            if let Some(done) = self.committed.get(&run.id) {
                out.push(done.clone());
                continue;
            }
            let cache = self.caches.entry(run.id.clone()).or_default();
            match status_of(base, run.record.clone(), run.workers.clone(), cache).await {
                Ok(status) => {
                    if status.state == BackfillState::Committed {
                        self.caches.remove(&run.id);
                        self.committed.insert(run.id.clone(), status.clone());
                    }
                    out.push(status);
                }
                Err(e) => tracing::warn!("backfill {}: status unreadable: {e}", run.id),
            }
        }
        out
    }
}

impl Jobs {
    /// Carries out a backfill request in the background; its outcome is a notice.
    pub(super) fn backfill(&self, request: BackfillRequest) {
        let what = match &request {
            BackfillRequest::Start(_) => "backfill".to_string(),
            BackfillRequest::Retry { run } => format!("retry of backfill {run}"),
            BackfillRequest::Commit { run } => format!("commit of backfill {run}"),
        };
        if self.refuse_write(&what) {
            return;
        }
        let jobs = self.clone();
        self.track(tokio::spawn(async move {
            let outcome = match request {
                BackfillRequest::Start(spec) => jobs.start_backfill(&spec).await,
                BackfillRequest::Retry { run } => jobs.retry_backfill(&run).await,
                BackfillRequest::Commit { run } => jobs.commit_backfill(&run).await,
            };
            match outcome {
                Ok(message) => jobs.notice(message),
                Err(e) => {
                    tracing::error!("{what}: {e}");
                    jobs.notice(format!("{what} failed: {e}"));
                }
            }
        }));
    }

    fn catalog(&self) -> &Arc<EarthCatalog> {
        &self.inner.catalog
    }

    /// The `ecops` binary the workers run (this one unless configured).
    fn ecops_binary(&self) -> Result<PathBuf, JobError> {
        match &self.inner.config.ecops {
            Some(path) => Ok(path.clone()),
            None => std::env::current_exe()
                .map_err(|e| JobError::failed(format!("finding the ecops binary: {e}"))),
        }
    }

    /// Plans, then hands the phases to the engine (local: returns when they end).
    async fn start_backfill(&self, spec: &BackfillSpec) -> Result<String, JobError> {
        let catalog = self.catalog();
        let ledger = self.inner.config.ledger;
        let plan = crate::backfill::plan(catalog, &spec.plan, ledger).await?;
        let base = catalog.base().location().to_uri();
        let mut launch = Launch::new(
            spec.engine,
            &base,
            &plan.run,
            plan.tasks,
            self.ecops_binary()?,
        );
        launch.max_parallel = spec.max_parallel.max(1);
        if let Some(dir) = &spec.workdir {
            launch.workdir = dir.clone();
        }
        self.notice(format!(
            "backfill {} planned: {} chunks, {} tasks; handing it to {}",
            plan.run,
            plan.chunks,
            plan.tasks,
            spec.engine.label()
        ));
        self.hand_over(&launch).await
    }

    async fn retry_backfill(&self, run: &str) -> Result<String, JobError> {
        let status = crate::backfill::status(self.catalog(), Some(run)).await?;
        if status.state == BackfillState::Committed {
            return Ok(format!("backfill {run} is committed: nothing to retry"));
        }
        let launch = submit::retry_launch(self.catalog(), &status, self.ecops_binary()?).await?;
        self.notice(format!(
            "retrying backfill {run}: map tasks {:?}, reduce tasks {:?} through {}",
            launch.map_tasks.as_deref().unwrap_or_default(),
            launch.reduce_tasks.as_deref().unwrap_or_default(),
            launch.engine.label()
        ));
        self.hand_over(&launch).await
    }

    /// Hands `launch` to its engine and records the engine in the run.
    async fn hand_over(&self, launch: &Launch) -> Result<String, JobError> {
        let submission = submit::hand_over(launch).await.map_err(JobError::failed)?;
        submit::remember(self.catalog(), launch, &submission).await;
        Ok(match launch.engine {
            Engine::Local => format!(
                "backfill {}: local phases ended (exit codes {:?})",
                launch.run, submission.exit_codes
            ),
            _ => format!(
                "backfill {} handed to {}: {}",
                launch.run,
                launch.engine.label(),
                if submission.jobs.is_empty() {
                    format!("{} files written", submission.files.len())
                } else {
                    submission.jobs.join(", ")
                }
            ),
        })
    }

    async fn commit_backfill(&self, run: &str) -> Result<String, JobError> {
        let opts = CommitOptions {
            run: Some(run.to_string()),
            lock: self.inner.config.lock.clone(),
            ledger: self.inner.config.ledger,
            wait: false,
        };
        let report = crate::backfill::commit(self.catalog().clone(), &opts, &Stop::new()).await?;
        Ok(if report.already_committed {
            format!("backfill {run} was committed already: nothing registered again")
        } else {
            format!(
                "backfill {run} committed: {} files, {} rows, {} snapshot(s)",
                report.files, report.rows, report.snapshots_added
            )
        })
    }
}
