//! The catalog lock: an object at `<base>/.lock` (design.md §4).
//!
//! This module reads and judges the lock. Acquire, renew, release and steal
//! (conditional writes with fencing) are the rest of issue "Lock".

pub mod record;

use chrono::Utc;
use object_store::ObjectStoreExt;
use serde::Serialize;

pub use record::{Assessment, LockRecord, StaleReason};

use crate::catalog::LOCK_FILE;
use crate::store::Store;

/// Errors reading the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },
}

/// What is at the lock key now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LockState {
    /// Nobody holds the lock.
    Free,
    /// A readable lock and our judgement of it.
    Held {
        record: Box<LockRecord>,
        assessment: Assessment,
        /// The object's version, for a later conditional write.
        #[serde(skip)]
        e_tag: Option<String>,
    },
    /// Something is there that is not a lock record (stealable only with --force).
    Unreadable { reason: String, preview: String },
}

/// Reads and judges the lock of the catalog at `base`.
pub async fn read_lock(base: &Store) -> Result<LockState, LockError> {
    let key = base.key(LOCK_FILE);
    let uri = base.uri(LOCK_FILE);
    let got = match base.object_store().get(&key).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(LockState::Free),
        Err(source) => return Err(LockError::Store { uri, source }),
    };
    let e_tag = got.meta.e_tag.clone();
    let bytes = got
        .bytes()
        .await
        .map_err(|source| LockError::Store { uri, source })?;
    Ok(match LockRecord::parse(&bytes) {
        Ok(record) => {
            let assessment =
                record.assess(Utc::now(), &record::local_hostname(), record::pid_alive);
            LockState::Held {
                record: Box::new(record),
                assessment,
                e_tag,
            }
        }
        Err(reason) => LockState::Unreadable {
            reason,
            preview: String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned(),
        },
    })
}
