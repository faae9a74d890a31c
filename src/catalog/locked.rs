//! Catalog maintenance that writes outside a table commit (the hash index
//! rebuild, the catalog database upgrade) runs holding the catalog lock, as
//! every other writer does.

use std::future::Future;
use std::time::Duration;

use super::EarthCatalog;
use crate::lock::{LeaseOptions, LockError};

/// Errors of work done under the lock: taking it, the work, or losing it.
#[derive(Debug, thiserror::Error)]
pub enum LockedError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Work(E),
    #[error("the catalog lock was lost while {operation} ran: {reason}")]
    Lost { operation: String, reason: String },
}

/// Runs `work` holding the catalog lock as `owner` for `operation`; fails,
/// changing nothing, if someone else holds it.
pub async fn under_lock<T, E, F, Fut>(
    catalog: &EarthCatalog,
    owner: &str,
    operation: &str,
    ttl: Duration,
    work: F,
) -> Result<T, LockedError<E>>
where
    E: std::error::Error + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let opts = LeaseOptions {
        owner: owner.to_string(),
        operation: operation.to_string(),
        job_id: None,
        ttl,
    };
    let lease = crate::lock::job::hold(catalog, opts).await?;
    let result = work().await;
    let lost = crate::lock::job::give_back(catalog, lease).await;
    match (result, lost) {
        (Err(e), _) => Err(LockedError::Work(e)),
        (Ok(_), Some(reason)) => Err(LockedError::Lost {
            operation: operation.to_string(),
            reason,
        }),
        (Ok(v), None) => Ok(v),
    }
}
