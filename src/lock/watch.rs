//! An observer that keeps looking (the console's lock pane): it remembers
//! since when it has seen the very same object (version, nonce, content), so
//! the one staleness rule ([`super::stale`]) can also use its watch — a lock
//! unchanged for a whole TTL on our own monotonic clock is stale whatever
//! its holder's clock says. A lock whose own timestamps expired long ago (or
//! whose holder is a dead local process) is stale at once, as for a one-shot
//! command.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::record::{local_hostname, pid_alive};
use super::stale::{StalePolicy, Watch, judge};
use super::{LockError, LockState, read_lock_with};
use crate::store::Store;

/// Remembers when the current lock object was first seen.
#[derive(Debug, Clone, Default)]
pub struct LockWatcher {
    seen: Option<Seen>,
    policy: StalePolicy,
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
    /// Stale by the one rule, watch included (the state's assessment says why).
    pub stale: bool,
    /// When it becomes stale if it stays unchanged.
    pub stale_at: Option<DateTime<Utc>>,
}

impl LockWatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// A watcher judging with `policy` (the skew allowance of the timestamp rule).
    pub fn with_policy(policy: StalePolicy) -> Self {
        Self { seen: None, policy }
    }

    /// The staleness policy it judges with.
    pub fn policy(&self) -> StalePolicy {
        self.policy
    }

    /// Reads the lock and observes it.
    pub async fn poll(&mut self, store: &Store) -> Result<Watched, LockError> {
        Ok(self.observe(read_lock_with(store, self.policy).await?))
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

    /// Why `state` is stale now, if it is the object being watched and the
    /// one rule (watch included) says it is stale; None otherwise.
    pub fn confirms_stale(&self, state: &LockState) -> Option<String> {
        let seen = self.seen.as_ref()?;
        if !seen.state.same_object(state) {
            return None;
        }
        match self.judge(state.clone(), Instant::now()).state {
            LockState::Held { assessment, .. } if assessment.stale => Some(assessment.why),
            _ => None,
        }
    }

    fn judge(&self, mut state: LockState, now: Instant) -> Watched {
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
        let watch = Watch {
            since: seen.since_wall,
            unchanged_for: observed,
        };
        let wall = seen.since_wall + chrono::Duration::from_std(observed).unwrap_or_default();
        let (stale, stale_at) = match &mut state {
            LockState::Held {
                record, assessment, ..
            } => {
                *assessment = judge(
                    record,
                    wall,
                    self.policy,
                    Some(watch),
                    &local_hostname(),
                    pid_alive,
                );
                (assessment.stale, assessment.stale_at)
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
