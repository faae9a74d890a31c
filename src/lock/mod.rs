//! The catalog lock: an object at `<base>/.lock`.
//!
//! - [`record`]: the JSON (earthcatalog's fields plus ours) and staleness by timestamps.
//! - [`backend`]: conditional create/replace on S3, the local filesystem, memory.
//! - [`lease`]: acquire, heartbeat, fencing ([`Lease::commit_guard`]), release.
//! - [`steal`]: taking over a stale (or, with a typed-back token, any) lock; [`release_by`].
//! - [`watch`]: the clock-skew-proof staleness rule for observers (the TUI).
//! - [`audit`]: one object per steal under `<base>/.lock-audit/`.
//!
//! A released lock is not deleted but replaced by a marker record (`released`
//! set, same generation): object stores have no conditional delete, and the
//! marker keeps generations increasing across holders. Readers treat a marker
//! as a free lock; earthcatalog sees an expired lock and overrides it.

pub mod audit;
pub mod backend;
pub mod job;
pub mod lease;
mod local;
pub mod memory;
mod object;
pub mod record;
pub mod stale;
pub mod steal;
#[cfg(test)]
mod tests;
pub mod watch;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use backend::{BackendError, LockBackend, Version, Versioned, Write, backend_for};
pub use lease::{Lease, LeaseOptions};
pub use record::LockRecord;
pub use stale::{Assessment, StalePolicy, StaleReason};
pub use steal::{Authority, ForceToken, Stolen, release_by, steal, steal_on};
pub use watch::{LockWatcher, Watched};

use crate::fmt::format_age;
use crate::store::Store;

/// Errors of the lock: store failures, and every refusal with what was found.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: BackendError,
    },
    /// Acquire found a live (or stale, not yet stolen) lock.
    #[error("catalog lock {uri} is held by {detail}")]
    Held {
        uri: String,
        detail: String,
        state: Box<LockState>,
    },
    #[error(
        "catalog lock {uri} holds something that is not a lock record ({reason}); \
         it can only be replaced by a forced steal with its fingerprint {fingerprint}"
    )]
    Unreadable {
        uri: String,
        reason: String,
        fingerprint: String,
    },
    #[error("catalog lock {uri} is not held")]
    NotHeld { uri: String },
    /// The lock is no longer what the caller observed; nothing was written.
    #[error("catalog lock {uri} changed since it was observed, nothing was done; now: {now}")]
    Changed {
        uri: String,
        now: String,
        state: Box<LockState>,
    },
    #[error(
        "catalog lock {uri} is not stale, nothing was done: held by {detail}; \
         forcing takes its generation or nonce typed back"
    )]
    NotStale {
        uri: String,
        detail: String,
        state: Box<LockState>,
    },
    #[error(
        "'{token}' is not the generation, nonce or fingerprint of the lock at {uri} \
         (see `ecops lock status`); nothing was done"
    )]
    ForceMismatch { uri: String, token: String },
    #[error("catalog lock {uri} is not ours, nothing was done: {detail}")]
    NotOurs { uri: String, detail: String },
    #[error("catalog lock {uri} was lost: {reason}")]
    Lost { uri: String, reason: String },
    #[error("catalog lock {uri}: gave up after {attempts} attempts, the lock kept changing")]
    Contended { uri: String, attempts: u32 },
    #[error("invalid lock TTL {ttl:?}: {reason}")]
    InvalidTtl {
        ttl: std::time::Duration,
        reason: &'static str,
    },
    #[error("lock audit {uri}: {source}")]
    Audit {
        uri: String,
        #[source]
        source: object_store::Error,
    },
}

/// What is at the lock key now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LockState {
    /// Nobody holds the lock: no object, or a release marker (kept for its generation).
    Free {
        released: Option<Box<LockRecord>>,
        /// The marker's version (None when there is no object).
        #[serde(skip)]
        version: Option<Version>,
    },
    /// A readable lock and our judgement of it by its timestamps.
    Held {
        record: Box<LockRecord>,
        assessment: Assessment,
        fingerprint: String,
        #[serde(skip)]
        version: Version,
    },
    /// Something is there that is not a lock record (stealable only with --force).
    Unreadable {
        reason: String,
        preview: String,
        fingerprint: String,
        #[serde(skip)]
        version: Version,
    },
}

impl LockState {
    /// Classifies what a backend read, judging a held lock at `now` with the
    /// default [`StalePolicy`].
    pub fn classify(found: Option<Versioned>, now: DateTime<Utc>) -> Self {
        Self::classify_with(found, now, StalePolicy::default())
    }

    /// [`LockState::classify`] with a given staleness policy.
    pub fn classify_with(
        found: Option<Versioned>,
        now: DateTime<Utc>,
        policy: StalePolicy,
    ) -> Self {
        let Some(found) = found else {
            return LockState::Free {
                released: None,
                version: None,
            };
        };
        let fingerprint = record::fingerprint(&found.bytes);
        match LockRecord::parse(&found.bytes) {
            Ok(r) if r.is_released() => LockState::Free {
                released: Some(Box::new(r)),
                version: Some(found.version),
            },
            Ok(r) => LockState::Held {
                assessment: r.assess(now, policy, &record::local_hostname(), record::pid_alive),
                record: Box::new(r),
                fingerprint,
                version: found.version,
            },
            Err(reason) => LockState::Unreadable {
                reason,
                preview: String::from_utf8_lossy(&found.bytes[..found.bytes.len().min(120)])
                    .into_owned(),
                fingerprint,
                version: found.version,
            },
        }
    }

    /// The object's version (None: no object).
    pub fn version(&self) -> Option<&Version> {
        match self {
            LockState::Free { version, .. } => version.as_ref(),
            LockState::Held { version, .. } | LockState::Unreadable { version, .. } => {
                Some(version)
            }
        }
    }

    /// The content fingerprint of a held or unreadable lock.
    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            LockState::Free { .. } => None,
            LockState::Held { fingerprint, .. } | LockState::Unreadable { fingerprint, .. } => {
                Some(fingerprint)
            }
        }
    }

    /// The record at the key (a held lock or a release marker).
    pub fn any_record(&self) -> Option<&LockRecord> {
        match self {
            LockState::Held { record, .. } => Some(record),
            LockState::Free { released, .. } => released.as_deref(),
            LockState::Unreadable { .. } => None,
        }
    }

    /// The nonce of the record at the key, if any.
    pub fn nonce(&self) -> Option<&str> {
        self.any_record().and_then(|r| r.nonce.as_deref())
    }

    /// True when both name the same object content (nothing was written in between).
    pub fn same_object(&self, other: &LockState) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.version() == other.version()
            && self.nonce() == other.nonce()
            && self.fingerprint() == other.fingerprint()
    }

    /// One line for messages: who holds it and how stale it is.
    pub fn describe(&self) -> String {
        match self {
            LockState::Free { released: None, .. } => "free".to_string(),
            LockState::Free {
                released: Some(r), ..
            } => format!(
                "free (released by {} at {}, generation {})",
                r.owner,
                r.released.as_deref().unwrap_or("?"),
                r.generation.map_or("-".into(), |g| g.to_string())
            ),
            LockState::Held {
                record, assessment, ..
            } => describe_holder(record, assessment),
            LockState::Unreadable {
                reason,
                fingerprint,
                ..
            } => format!("unreadable content ({reason}), fingerprint {fingerprint}"),
        }
    }
}

/// "owner on host (pid N), operation X, generation G, last heartbeat … ago, stale …".
pub fn describe_holder(record: &LockRecord, assessment: &Assessment) -> String {
    let age = assessment
        .age_seconds
        .map_or("unknown".to_string(), format_age);
    let staleness = if assessment.stale {
        format!("STALE: {}", assessment.why)
    } else {
        format!("live: {}", assessment.why)
    };
    format!(
        "{}, last heartbeat {age} ago; {staleness}",
        holder_identity(record)
    )
}

/// "owner on host (pid N), operation X, generation G" (G is "-" for earthcatalog's locks).
pub fn holder_identity(record: &LockRecord) -> String {
    format!(
        "{} on {} (pid {}), operation {}, generation {}",
        record.owner,
        record.hostname,
        record.pid,
        record.operation.as_deref().unwrap_or("-"),
        record
            .generation
            .map_or("- (earthcatalog lock)".to_string(), |g| g.to_string()),
    )
}

/// Reads and judges the lock of the catalog at `base` (default [`StalePolicy`]).
pub async fn read_lock(base: &Store) -> Result<LockState, LockError> {
    read_on(backend_for(base).as_ref()).await
}

/// [`read_lock`] judged with `policy`.
pub async fn read_lock_with(base: &Store, policy: StalePolicy) -> Result<LockState, LockError> {
    read_on_with(backend_for(base).as_ref(), policy).await
}

/// Reads and judges the lock in `backend` (default [`StalePolicy`]).
pub async fn read_on(backend: &dyn LockBackend) -> Result<LockState, LockError> {
    read_on_with(backend, StalePolicy::default()).await
}

/// Reads the lock in `backend` and judges it with `policy`.
pub async fn read_on_with(
    backend: &dyn LockBackend,
    policy: StalePolicy,
) -> Result<LockState, LockError> {
    let found = backend.read().await.map_err(|source| LockError::Store {
        uri: backend.uri().to_string(),
        source,
    })?;
    Ok(LockState::classify_with(found, Utc::now(), policy))
}

/// A conditional write's outcome once doubts are settled by reading back.
#[derive(Debug)]
pub(crate) enum Settled {
    /// Our write is in place (possibly a retried attempt with one of `ours`).
    Ours {
        version: Version,
        record: LockRecord,
    },
    /// The precondition failed and the object is someone else's.
    Theirs(LockState),
    /// The write failed with a store error and the object is not ours: it may
    /// be unchanged (retry) or changed (see the state, when the read-back worked).
    Failed(BackendError, Option<LockState>),
}

/// Settles a conditional write: on a conflict or a store error, reads the lock
/// back and checks whether it carries one of `ours` (nonces we attempted) — a
/// retried request of ours may have succeeded before the one that reported.
pub(crate) async fn settle(
    backend: &dyn LockBackend,
    attempt: Result<Write, BackendError>,
    written: &LockRecord,
    ours: &[String],
) -> Settled {
    let error = match attempt {
        Ok(Write::Written(version)) => {
            return Settled::Ours {
                version,
                record: written.clone(),
            };
        }
        Ok(Write::Conflict) => None,
        Err(e) => Some(e),
    };
    let state = match backend.read().await {
        Ok(found) => LockState::classify(found, Utc::now()),
        Err(read_error) => return Settled::Failed(error.unwrap_or(read_error), None),
    };
    if let (Some(nonce), Some(record), Some(version)) =
        (state.nonce(), state.any_record(), state.version())
        && ours.iter().any(|n| n == nonce)
    {
        return Settled::Ours {
            version: version.clone(),
            record: record.clone(),
        };
    }
    match error {
        Some(e) => Settled::Failed(e, Some(state)),
        None => Settled::Theirs(state),
    }
}

/// A fresh nonce.
pub(crate) fn new_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
