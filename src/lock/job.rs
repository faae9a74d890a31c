//! Holding the catalog lock for a whole job (ingest, compaction, maintenance):
//! taken before the job reads anything, fenced on every commit, renewed by a
//! heartbeat, given back at the end — also after a failure or an interruption,
//! so the next run need not wait for the TTL.

use std::time::Duration;

use tokio::sync::watch;

use super::{Authority, Lease, LeaseOptions, LockError, LockState, StalePolicy, StaleReason};
use crate::catalog::EarthCatalog;
use crate::runs::{JobError, JobProgress, JobSummary, RunSpec, RunState, Stop};

/// How often a waiting job (`--wait`) tries the lock again.
pub const WAIT_POLL: Duration = Duration::from_secs(2);

/// Who takes the lock, for how long without renewal, and how others' locks are judged.
#[derive(Debug, Clone)]
pub struct LockSettings {
    pub owner: String,
    pub ttl: Duration,
    /// Wait for another holder to release the lock instead of failing.
    pub wait: bool,
    /// How staleness is judged (the skew allowance for other machines' clocks).
    pub stale: StalePolicy,
}

impl Default for LockSettings {
    fn default() -> Self {
        Self {
            owner: std::env::var("USER").unwrap_or_else(|_| "ecops".into()),
            ttl: Duration::from_secs(30 * 60),
            wait: false,
            stale: StalePolicy::default(),
        }
    }
}

/// Takes the catalog lock (taking over, audited, a lock left by a crashed
/// process of this host: its pid is gone), installs its fencing guard on
/// `catalog` and starts the heartbeat. Any other holder — even an expired
/// one, which is for `ecops lock steal` to judge — makes it fail with
/// [`LockError::Held`], changing nothing.
pub async fn hold(catalog: &EarthCatalog, opts: LeaseOptions) -> Result<Lease, LockError> {
    let lease = match Lease::acquire(catalog.base(), opts.clone()).await {
        Ok(lease) => lease,
        Err(LockError::Held { state, .. })
            if matches!(state.as_ref(), LockState::Held { assessment, .. }
                if assessment.stale_reason == Some(StaleReason::HolderGone)) =>
        {
            let stolen = super::steal(
                catalog.base(),
                &state,
                opts,
                Authority::IfStale(Default::default()),
            )
            .await?;
            tracing::warn!(
                "took over the catalog lock of a crashed local run: {}",
                state.describe()
            );
            stolen.lease
        }
        Err(e) => return Err(e),
    };
    catalog.sql().set_commit_guard(Some(lease.commit_guard()));
    lease.start_heartbeat();
    Ok(lease)
}

/// [`hold`], or — when `wait` is set and someone else holds the lock — try
/// again every `poll` until it is free (released, or left by a crashed
/// process of this host). Logs once (a warning) who it is waiting for. A lock that went
/// stale under a live-looking holder elsewhere is never taken by waiting
/// (that is `ecops lock steal`'s decision), so the wait says so and goes on.
/// Cancelling (`cancel` true) ends the wait with the holder's error.
pub async fn hold_or_wait(
    catalog: &EarthCatalog,
    opts: LeaseOptions,
    wait: bool,
    poll: Duration,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Lease, LockError> {
    let mut announced = false;
    let mut cancel_live = true;
    loop {
        match hold(catalog, opts.clone()).await {
            Err(LockError::Held { state, uri, detail }) if wait && !*cancel.borrow() => {
                if !announced {
                    let hint = match state.as_ref() {
                        LockState::Held { assessment, .. } if assessment.stale => {
                            " (it looks stale: `ecops lock steal` can take it over)"
                        }
                        _ => "",
                    };
                    // A warning, not a print: the engine leaves the terminal to
                    // its front ends (the CLI shows warnings on stderr, the
                    // console in its logs pane).
                    tracing::warn!(
                        lock = %uri,
                        "waiting for the catalog lock: {}{hint}",
                        state.describe()
                    );
                    tracing::debug!("waiting: {detail}");
                    announced = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    // Nobody can cancel any more: just wait out the poll.
                    changed = cancel.changed(), if cancel_live => cancel_live = changed.is_ok(),
                }
                if *cancel.borrow() {
                    return Err(LockError::Held { state, uri, detail });
                }
            }
            other => return other,
        }
    }
}

/// Uninstalls the fencing guard and releases the lease. Returns why the lease
/// was lost, if it was (stolen or gone while the job ran).
pub async fn give_back(catalog: &EarthCatalog, lease: Lease) -> Option<String> {
    catalog.sql().set_commit_guard(None);
    let lost = lease.lost();
    if let Err(e) = lease.release().await {
        tracing::warn!("releasing the catalog lock: {e}");
    }
    lost
}

/// A job to run under the catalog lock.
#[derive(Debug)]
pub struct LockedJob<'a> {
    pub catalog: &'a EarthCatalog,
    /// What the lock record says the holder does ("ingest", "compact", …).
    pub operation: &'static str,
    /// The job id shown in the lock record, when the job has one.
    pub job_id: Option<String>,
    pub lock: &'a LockSettings,
    /// How the run is recorded in the run ledger.
    pub run: RunSpec,
}

/// The one way to run a job that writes the catalog: refuses a read-only
/// catalog before touching anything, takes the lock (or waits for it with
/// `lock.wait`; taking over a crashed local run's lock), mirrors the job's
/// progress into the lock record, records the run in the ledger (operator
/// requests trip `stop`), runs `work`, gives the lock back — also after a
/// failure or a stop, so the next run need not wait for the TTL — and
/// reports a lock lost on the way.
///
/// `Err` means the job could not start (nothing changed) or failed so that
/// it has no summary; a job that started and failed part-way returns its
/// summary with phase failed.
pub async fn run_locked<P, T>(
    job: LockedJob<'_>,
    progress: watch::Receiver<P>,
    stop: &Stop,
    work: impl std::future::Future<Output = Result<T, JobError>>,
) -> Result<T, JobError>
where
    P: JobProgress,
    T: JobSummary,
{
    let catalog = job.catalog;
    catalog.ensure_writable().map_err(JobError::refused)?;
    let opts = LeaseOptions {
        owner: job.lock.owner.clone(),
        operation: job.operation.to_string(),
        job_id: job.job_id,
        ttl: job.lock.ttl,
    };
    let lease = hold_or_wait(
        catalog,
        opts,
        job.lock.wait,
        WAIT_POLL,
        &mut stop.receiver(),
    )
    .await
    .map_err(JobError::refused)?;
    let mirror = {
        let (lease, mut rx) = (lease.clone(), progress.clone());
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let view = rx.borrow_and_update().lock_view();
                lease.set_progress(view);
            }
        })
    };
    crate::runs::track(catalog.base(), job.run, progress, stop, async move {
        let result = work.await;
        mirror.abort();
        let lost = give_back(catalog, lease).await;
        with_lost_lock(result, lost)
    })
    .await
}

/// Says on a failed job's outcome that the lock was lost, if it was.
fn with_lost_lock<T: JobSummary>(
    result: Result<T, JobError>,
    lost: Option<String>,
) -> Result<T, JobError> {
    match (result, lost) {
        (Err(e), Some(reason)) => Err(JobError::lock_lost(e, reason)),
        (Ok(mut summary), Some(reason)) if summary.run_state() == RunState::Failed => {
            summary.note_lock_lost(&reason);
            Ok(summary)
        }
        (result, _) => result,
    }
}
