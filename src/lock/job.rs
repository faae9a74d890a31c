//! Holding the catalog lock for a whole job (ingest, compaction, maintenance):
//! taken before the job reads anything, fenced on every commit, renewed by a
//! heartbeat, given back at the end — also after a failure or an interruption,
//! so the next run need not wait for the TTL.

use std::time::Duration;

use tokio::sync::watch;

use super::{Authority, Lease, LeaseOptions, LockError, LockState, StalePolicy, StaleReason};
use crate::catalog::EarthCatalog;

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
