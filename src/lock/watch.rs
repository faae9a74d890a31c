//! Staleness for an observer that keeps looking (the TUI's lock pane): a lock
//! is stale once we have seen the very same object (version, nonce, content)
//! unchanged for its whole TTL on our own monotonic clock, or at once when its
//! holder is a dead process of this host. The holder's timestamps are not
//! used, so a holder whose clock lags ours never looks stale while it renews.
//!
//! A one-shot command has no such history and judges by timestamps
//! ([`super::Authority::IfStale`]).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{LockError, LockState, StaleReason, read_lock};
use crate::store::Store;

/// Remembers when the current lock object was first seen.
#[derive(Debug, Clone, Default)]
pub struct LockWatcher {
    seen: Option<Seen>,
}

#[derive(Debug, Clone)]
struct Seen {
    state: LockState,
    since: Instant,
    since_wall: DateTime<Utc>,
}

/// One observation, judged by the watcher's rule.
#[derive(Debug, Clone, Serialize)]
pub struct Watched {
    pub state: LockState,
    /// When we first saw this exact object (our clock).
    pub observed_since: Option<DateTime<Utc>>,
    pub observed_seconds: f64,
    /// Stale by the observer's rule (see the module docs).
    pub stale: bool,
    /// When it becomes stale by that rule if it stays unchanged.
    pub stale_at: Option<DateTime<Utc>>,
}

impl LockWatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the lock and observes it.
    pub async fn poll(&mut self, store: &Store) -> Result<Watched, LockError> {
        Ok(self.observe(read_lock(store).await?))
    }

    /// Observes a state read just now.
    pub fn observe(&mut self, state: LockState) -> Watched {
        self.observe_at(state, Instant::now(), Utc::now())
    }

    /// Observes `state` at `now` (`wall` is the same instant on the wall clock).
    pub fn observe_at(&mut self, state: LockState, now: Instant, wall: DateTime<Utc>) -> Watched {
        match &mut self.seen {
            Some(seen) if seen.state.same_object(&state) => seen.state = state.clone(),
            _ => {
                self.seen = Some(Seen {
                    state: state.clone(),
                    since: now,
                    since_wall: wall,
                })
            }
        }
        self.judge(state, now)
    }

    /// True if `state` is the object being watched and it is stale by the watcher's rule now.
    pub fn confirms_stale(&self, state: &LockState) -> bool {
        self.seen
            .as_ref()
            .is_some_and(|seen| seen.state.same_object(state))
            && self.judge(state.clone(), Instant::now()).stale
    }

    fn judge(&self, state: LockState, now: Instant) -> Watched {
        let Some(seen) = &self.seen else {
            return Watched {
                state,
                observed_since: None,
                observed_seconds: 0.0,
                stale: false,
                stale_at: None,
            };
        };
        let observed = now.saturating_duration_since(seen.since);
        let (stale, stale_at) = match &state {
            LockState::Held {
                record, assessment, ..
            } => {
                let ttl = record.ttl().to_std().unwrap_or(Duration::ZERO);
                let gone = assessment.stale_reason == Some(StaleReason::HolderGone);
                let at = chrono::Duration::from_std(ttl)
                    .ok()
                    .map(|ttl| seen.since_wall + ttl);
                (gone || observed >= ttl, at)
            }
            LockState::Free { .. } | LockState::Unreadable { .. } => (false, None),
        };
        Watched {
            state,
            observed_since: Some(seen.since_wall),
            observed_seconds: observed.as_secs_f64(),
            stale,
            stale_at,
        }
    }
}
