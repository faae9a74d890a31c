//! Taking over a lock someone else holds, and releasing a lock by its token
//! (the command line's release, where no [`Lease`] object survives).
//!
//! A steal re-reads the lock, requires it to be exactly the object the caller
//! observed (same version, nonce and content), checks the caller's authority
//! (stale, or a typed-back token), and replaces it with a conditional write on
//! the observed version, generation + 1. Anything changed in between aborts
//! with [`LockError::Changed`] carrying the new state. Every steal is recorded
//! in the audit log ([`super::audit`]).

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::backend::{LockBackend, backend_for};
use super::lease::{Lease, LeaseOptions};
use super::stale::StalePolicy;
use super::watch::LockWatcher;
use super::{
    LockError, LockRecord, LockState, Settled, audit, new_nonce, read_on, read_on_with, settle,
};
use crate::store::Store;

/// A token typed back to force a steal: the lock's generation, its nonce, or
/// its content fingerprint (the only token for locks without generation and
/// nonce: earthcatalog's, and unreadable content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForceToken(pub String);

impl ForceToken {
    /// True if the token names exactly this lock.
    pub fn matches(&self, state: &LockState) -> bool {
        let token = self.0.trim();
        if token.is_empty() {
            return false;
        }
        match state {
            LockState::Held {
                record,
                fingerprint,
                ..
            } => {
                record.generation.is_some_and(|g| g.to_string() == token)
                    || record.nonce.as_deref() == Some(token)
                    || fingerprint == token
            }
            LockState::Unreadable { fingerprint, .. } => fingerprint == token,
            LockState::Free { .. } => false,
        }
    }
}

/// What entitles a steal.
#[derive(Debug, Clone)]
pub enum Authority<'a> {
    /// Stale by the one rule ([`super::stale`]) from a one-shot read: its
    /// timestamps are older than TTL + the policy's skew allowance, or its
    /// holder is a dead process of this host.
    IfStale(StalePolicy),
    /// Stale by the one rule with the watcher's history as well: also when
    /// the watcher has seen this exact lock unchanged for a whole TTL on our
    /// clock (clock skew cannot fake that).
    IfWatchedStale(&'a LockWatcher),
    /// Anything, readable or not, stale or not, if the token names it.
    Force(ForceToken),
}

/// A successful steal: the new lease (heartbeat not started), what was taken
/// over, and where the audit record went (or why it could not be written).
#[derive(Debug)]
pub struct Stolen {
    pub lease: Lease,
    pub previous: LockState,
    pub audit: Result<String, String>,
}

/// Takes over the lock of the catalog at `store`, which the caller observed as
/// `expected`, for `opts`. See the module docs.
pub async fn steal(
    store: &Store,
    expected: &LockState,
    opts: LeaseOptions,
    authority: Authority<'_>,
) -> Result<Stolen, LockError> {
    steal_on(backend_for(store), Some(store), expected, opts, authority).await
}

/// [`steal`] on a given backend; the audit record goes to `audit_to` when given.
pub async fn steal_on(
    backend: Arc<dyn LockBackend>,
    audit_to: Option<&Store>,
    expected: &LockState,
    opts: LeaseOptions,
    authority: Authority<'_>,
) -> Result<Stolen, LockError> {
    opts.validate()?;
    let uri = backend.uri().to_string();
    let policy = match &authority {
        Authority::IfStale(policy) => *policy,
        Authority::IfWatchedStale(watcher) => watcher.policy(),
        Authority::Force(_) => StalePolicy::default(),
    };
    let current = read_on_with(backend.as_ref(), policy).await?;
    if !current.same_object(expected) {
        return Err(LockError::Changed {
            uri,
            now: current.describe(),
            state: Box::new(current),
        });
    }
    let why = authorize(&uri, &current, &authority)?;
    let Some(version) = current.version().cloned() else {
        return Err(LockError::NotHeld { uri });
    };
    let old_generation = current.any_record().and_then(|r| r.generation);
    let record = opts.record(old_generation.unwrap_or(0) + 1);
    let nonce = record.nonce.clone().unwrap_or_default();
    let started = Instant::now();
    let result = backend.replace(&version, record.to_bytes()).await;
    match settle(backend.as_ref(), result, &record, &[nonce]).await {
        Settled::Ours { version, record } => {
            let lease = Lease::from_written(backend, opts.ttl, record, version, started);
            let audit = match audit_to {
                Some(store) => audit::record_steal(store, &current, &lease.record(), &why)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("no audit log for this backend".to_string()),
            };
            if let Err(e) = &audit {
                tracing::warn!("lock stolen but not audited: {e}");
            }
            Ok(Stolen {
                lease,
                previous: current,
                audit,
            })
        }
        Settled::Failed(_, Some(state)) | Settled::Theirs(state)
            if state.version() != Some(&version) =>
        {
            Err(LockError::Changed {
                uri,
                now: state.describe(),
                state: Box::new(state),
            })
        }
        Settled::Failed(source, _) => Err(LockError::Store { uri, source }),
        Settled::Theirs(state) => Err(LockError::Changed {
            uri,
            now: state.describe(),
            state: Box::new(state),
        }),
    }
}

/// Checks that `authority` entitles stealing `current` (read just now) and says
/// why, for the audit log; the refusal says what was found. Commands call it
/// before asking for confirmation; [`steal`] calls it again on a fresh read.
pub fn authorize(
    uri: &str,
    current: &LockState,
    authority: &Authority<'_>,
) -> Result<String, LockError> {
    let uri = uri.to_string();
    Ok(match (current, authority) {
        (LockState::Free { .. }, _) => return Err(LockError::NotHeld { uri }),
        (_, Authority::Force(token)) if token.matches(current) => {
            format!("forced with token {}", token.0.trim())
        }
        (_, Authority::Force(token)) => {
            return Err(LockError::ForceMismatch {
                uri,
                token: token.0.clone(),
            });
        }
        (
            LockState::Unreadable {
                reason,
                fingerprint,
                ..
            },
            _,
        ) => {
            return Err(LockError::Unreadable {
                uri,
                reason: reason.clone(),
                fingerprint: fingerprint.clone(),
            });
        }
        (LockState::Held { assessment, .. }, Authority::IfStale(_)) => {
            if !assessment.stale {
                return Err(not_stale(uri, current));
            }
            format!("stale: {}", assessment.why)
        }
        (LockState::Held { .. }, Authority::IfWatchedStale(watcher)) => {
            match watcher.confirms_stale(current) {
                Some(why) => format!("stale: {why}"),
                None => return Err(not_stale(uri, current)),
            }
        }
    })
}

fn not_stale(uri: String, current: &LockState) -> LockError {
    LockError::NotStale {
        uri,
        detail: current.describe(),
        state: Box::new(current.clone()),
    }
}

/// Releases the lock of the catalog at `store` for a holder that proves it is
/// the holder by `token`: the nonce or generation `ecops lock acquire` printed.
/// Refuses anything else (a lock without a matching token, earthcatalog's
/// locks, unreadable content): taking someone else's lock is a steal, with its
/// staleness checks and audit. The release is a conditional replace by a
/// release marker on the version read, so it cannot remove a lock written in between.
pub async fn release_by(store: &Store, token: &str) -> Result<LockRecord, LockError> {
    release_by_on(backend_for(store).as_ref(), token).await
}

/// [`release_by`] on a given backend. Returns the record that was released.
pub async fn release_by_on(
    backend: &dyn LockBackend,
    token: &str,
) -> Result<LockRecord, LockError> {
    let uri = backend.uri().to_string();
    let current = read_on(backend).await?;
    let (record, version) = match &current {
        LockState::Free { .. } => return Err(LockError::NotHeld { uri }),
        LockState::Unreadable { .. } => {
            return Err(LockError::NotOurs {
                uri,
                detail: format!("{}; only a forced steal replaces it", current.describe()),
            });
        }
        LockState::Held {
            record, version, ..
        } => (record, version),
    };
    let token = token.trim();
    let matches = record.nonce.as_deref() == Some(token)
        || record.generation.is_some_and(|g| g.to_string() == token);
    if record.generation.is_none() || !matches {
        return Err(LockError::NotOurs {
            uri,
            detail: format!(
                "held by {}; '{token}' is not its nonce or generation (to take over a lock \
                 that is not yours, use `ecops lock steal`)",
                current.describe()
            ),
        });
    }
    let marker = record.release_marker(new_nonce(), Utc::now());
    let nonce = marker.nonce.clone().unwrap_or_default();
    let result = backend.replace(version, marker.to_bytes()).await;
    match settle(backend, result, &marker, &[nonce]).await {
        Settled::Ours { .. } => Ok(*record.clone()),
        Settled::Failed(source, state)
            if state.as_ref().is_none_or(|s| s.version() == Some(version)) =>
        {
            Err(LockError::Store { uri, source })
        }
        Settled::Failed(_, Some(state)) | Settled::Theirs(state) => Err(LockError::Changed {
            uri,
            now: state.describe(),
            state: Box::new(state),
        }),
        Settled::Failed(source, None) => Err(LockError::Store { uri, source }),
    }
}
