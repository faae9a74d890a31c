//! Running a job under the catalog lock (design.md §4): taken before the
//! first row is read, fenced on every commit, renewed every TTL/3 with the
//! job's progress in it, released at the end — also after a failure or an
//! interruption, so the next run need not wait for the TTL.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use super::{IngestError, IngestOptions, IngestProgress};
use crate::catalog::EarthCatalog;
use crate::lock::LeaseOptions;
use crate::lock::job::{LockSettings, WAIT_POLL};

/// [`super::run`] holding the catalog lock. Fails at once, changing nothing,
/// if someone else holds it; a renewal failure (lock stolen or gone) makes
/// the next commit fail with the reason, so nothing commits after a steal.
pub async fn run_locked(
    catalog: Arc<EarthCatalog>,
    opts: IngestOptions,
    lock: &LockSettings,
    progress: watch::Sender<IngestProgress>,
    mut cancel: watch::Receiver<bool>,
) -> Result<IngestProgress, IngestError> {
    // Refuse before the lock is touched: acquiring it is a write too.
    catalog.ensure_writable()?;
    let lease_opts = LeaseOptions {
        owner: lock.owner.clone(),
        operation: "ingest".into(),
        job_id: opts.job_name.clone(),
        ttl: lock.ttl,
    };
    let lease =
        crate::lock::job::hold_or_wait(&catalog, lease_opts, lock.wait, WAIT_POLL, &mut cancel)
            .await?;
    // Mirror progress into the lock so `lock status` and the console show it.
    let mirror = {
        let (lease, mut rx) = (lease.clone(), progress.subscribe());
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                lease.set_progress(json!({
                    "job_id": p.job_id, "items": p.items, "rows": p.rows,
                    "failed": p.failed, "commits": p.commits, "position": p.position,
                }));
            }
        })
    };
    let result = super::run(catalog.clone(), opts, progress, cancel).await;
    mirror.abort();
    let lost = crate::lock::job::give_back(&catalog, lease).await;
    match (result, lost) {
        (Err(e), Some(reason)) => Err(IngestError::Options(format!(
            "{e} — the catalog lock was lost: {reason}"
        ))),
        (result, _) => result,
    }
}
