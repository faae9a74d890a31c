//! Running a compaction under the catalog lock (design.md §4), as ingest
//! does: taken before planning, fenced on every commit, renewed with the
//! run's progress in it, released at the end (also after a failure).

use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use super::{CompactError, CompactOptions, CompactProgress};
use crate::catalog::EarthCatalog;
use crate::ingest::LockSettings;
use crate::lock::{Lease, LeaseOptions};

/// Takes the catalog lock for `operation` (taking over a lock left by a
/// crashed process of this host), installs its fencing guard on the
/// catalog and starts the heartbeat. Fails, changing nothing, if anyone
/// else holds it.
pub async fn take_lock(
    catalog: &EarthCatalog,
    lock: &LockSettings,
    operation: &str,
) -> Result<Lease, CompactError> {
    let opts = LeaseOptions {
        owner: lock.owner.clone(),
        operation: operation.to_string(),
        job_id: None,
        ttl: lock.ttl,
    };
    Ok(crate::lock::job::hold(catalog, opts).await?)
}

pub use crate::lock::job::give_back;

/// [`super::run`] holding the catalog lock (operation `compact`). A dry run
/// takes no lock: it writes nothing, not even the lock object.
pub async fn run_locked(
    catalog: Arc<EarthCatalog>,
    opts: CompactOptions,
    lock: &LockSettings,
    progress: watch::Sender<CompactProgress>,
    mut cancel: watch::Receiver<bool>,
) -> Result<CompactProgress, CompactError> {
    if opts.dry_run {
        return super::run(catalog, opts, progress, cancel).await;
    }
    catalog.ensure_writable()?;
    let opts_lock = LeaseOptions {
        owner: lock.owner.clone(),
        operation: "compact".into(),
        job_id: None,
        ttl: lock.ttl,
    };
    let lease = crate::lock::job::hold_or_wait(
        &catalog,
        opts_lock,
        lock.wait,
        crate::ingest::WAIT_POLL,
        &mut cancel,
    )
    .await?;
    let mirror = {
        let (lease, mut rx) = (lease.clone(), progress.subscribe());
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                lease.set_progress(json!({
                    "buckets_planned": p.buckets_planned,
                    "buckets_compacted": p.buckets_compacted,
                    "files_in": p.files_in, "files_out": p.files_out,
                    "commits": p.commits,
                }));
            }
        })
    };
    let result = super::run(catalog.clone(), opts, progress, cancel).await;
    mirror.abort();
    let lost = give_back(&catalog, lease).await;
    match (result, lost) {
        (Err(e), Some(reason)) => Err(CompactError::Options(format!(
            "{e} — the catalog lock was lost: {reason}"
        ))),
        (Ok(mut p), Some(reason)) if p.error.is_some() => {
            p.error = p
                .error
                .map(|e| format!("{e} — the catalog lock was lost: {reason}"));
            Ok(p)
        }
        (result, _) => result,
    }
}
