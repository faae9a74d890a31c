//! A held catalog lock.
//!
//! - [`Lease::acquire`]: conditional create (or, over a release marker, a
//!   conditional replace of the marker with generation + 1).
//! - [`Lease::start_heartbeat`]: every TTL/3 a conditional replace on the
//!   version we last wrote (new nonce, heartbeat = now, same generation, current
//!   progress). A changed or vanished lock marks the lease lost; a store error is
//!   retried until the lease would be stale on our own clock.
//! - [`Lease::commit_guard`]: fencing. Installed on the catalog, it runs right
//!   before every pointer swap and refuses unless the lock object still carries
//!   our generation and one of the nonces we wrote.
//! - [`Lease::release`]: conditional replace of our record by a release marker.
//!
//! Renewals also move `acquired` (earthcatalog judges staleness by it alone);
//! `held_since` keeps the first acquisition time.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use super::backend::{BackendError, LockBackend, Version, backend_for};
use super::record::{LockRecord, iso_utc, local_hostname};
use super::{LockError, LockState, Settled, new_nonce, settle};
use crate::catalog::CommitGuard;
use crate::store::Store;

/// The operation of a maintenance lock taken from the command line.
pub const MANUAL: &str = "manual";

/// What to write into the lock when taking it.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Who holds it, for humans (e.g. "ingest", a user name).
    pub owner: String,
    /// `ingest`, `compact` or `manual`. A `manual` lock outlives the process
    /// that took it (`ecops lock acquire`), so it records pid 0 and is never
    /// judged stale by the dead-local-process rule: it ends by release or TTL.
    pub operation: String,
    pub job_id: Option<String>,
    /// Stale this long after the last renewal (at least 1 s; renewed every TTL/3).
    pub ttl: Duration,
}

impl LeaseOptions {
    /// A maintenance lock for `owner`.
    pub fn manual(owner: impl Into<String>, ttl: Duration) -> Self {
        Self {
            owner: owner.into(),
            operation: MANUAL.to_string(),
            job_id: None,
            ttl,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), LockError> {
        let invalid = |reason| {
            Err(LockError::InvalidTtl {
                ttl: self.ttl,
                reason,
            })
        };
        if self.ttl < Duration::from_secs(1) {
            return invalid("shorter than 1 s");
        }
        if self.ttl > Duration::from_secs(366 * 24 * 3600) {
            return invalid("longer than a year");
        }
        Ok(())
    }

    /// A fresh record of ours with `generation`.
    pub(crate) fn record(&self, generation: u64) -> LockRecord {
        let now = iso_utc(Utc::now());
        LockRecord {
            owner: self.owner.clone(),
            pid: if self.operation == MANUAL {
                0
            } else {
                i64::from(std::process::id())
            },
            hostname: local_hostname(),
            acquired: now.clone(),
            ttl_hours: self.ttl.as_secs_f64() / 3600.0,
            nonce: Some(new_nonce()),
            generation: Some(generation),
            heartbeat: Some(now.clone()),
            operation: Some(self.operation.clone()),
            job_id: self.job_id.clone(),
            progress: None,
            held_since: Some(now),
            released: None,
            extra: Default::default(),
        }
    }
}

/// A held lock. Cheap to clone (shared state); the heartbeat and the commit
/// guard hold only weak references, so dropping every clone stops renewing
/// (the lock then goes stale by TTL, or at once if this process exits).
#[derive(Debug, Clone)]
pub struct Lease {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Arc<dyn LockBackend>,
    ttl: Duration,
    held: Mutex<Held>,
    /// One conditional write at a time (renewal, release).
    writes: tokio::sync::Mutex<()>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug)]
struct Held {
    /// The record as last confirmed in the store, and its version.
    record: LockRecord,
    version: Version,
    /// When the write of `record` started: the lease's age on our clock.
    confirmed_at: Instant,
    /// Writes whose outcome is unknown: nonce and start time.
    attempts: Vec<(String, Instant)>,
    progress: Option<Value>,
    lost: Option<String>,
}

enum Renewal {
    Transient(BackendError),
    Lost(String),
}

const ACQUIRE_ATTEMPTS: u32 = 8;

impl Lease {
    /// Takes the lock of the catalog at `store`; fails with [`LockError::Held`]
    /// (naming holder, host, pid, operation, age and when it becomes stale) if
    /// anyone holds it, stale or not — stealing is [`super::steal()`]'s job.
    pub async fn acquire(store: &Store, opts: LeaseOptions) -> Result<Lease, LockError> {
        Self::acquire_on(backend_for(store), opts).await
    }

    /// [`Lease::acquire`] on a given backend.
    pub async fn acquire_on(
        backend: Arc<dyn LockBackend>,
        opts: LeaseOptions,
    ) -> Result<Lease, LockError> {
        opts.validate()?;
        let uri = backend.uri().to_string();
        let mut generation = 1;
        let mut over: Option<Version> = None;
        for _ in 0..ACQUIRE_ATTEMPTS {
            let record = opts.record(generation);
            let nonce = record.nonce.clone().unwrap_or_default();
            let started = Instant::now();
            let result = match &over {
                None => backend.create(record.to_bytes()).await,
                Some(marker) => backend.replace(marker, record.to_bytes()).await,
            };
            let state = match settle(backend.as_ref(), result, &record, &[nonce]).await {
                Settled::Ours { version, record } => {
                    return Ok(Lease::from_written(
                        backend, opts.ttl, record, version, started,
                    ));
                }
                Settled::Theirs(state) => state,
                Settled::Failed(source, _) => return Err(LockError::Store { uri, source }),
            };
            match state {
                LockState::Free {
                    released: Some(marker),
                    version,
                } => {
                    generation = marker.generation.unwrap_or(0) + 1;
                    over = version;
                }
                LockState::Free { released: None, .. } => over = None,
                LockState::Held {
                    ref record,
                    ref assessment,
                    ..
                } => {
                    return Err(LockError::Held {
                        uri,
                        detail: super::describe_holder(record, assessment),
                        state: Box::new(state),
                    });
                }
                LockState::Unreadable {
                    reason,
                    fingerprint,
                    ..
                } => {
                    return Err(LockError::Unreadable {
                        uri,
                        reason,
                        fingerprint,
                    });
                }
            }
        }
        Err(LockError::Contended {
            uri,
            attempts: ACQUIRE_ATTEMPTS,
        })
    }

    /// A lease on a record we just wrote (acquire, steal).
    pub(crate) fn from_written(
        backend: Arc<dyn LockBackend>,
        ttl: Duration,
        record: LockRecord,
        version: Version,
        started: Instant,
    ) -> Lease {
        let (stop, _) = tokio::sync::watch::channel(false);
        Lease {
            inner: Arc::new(Inner {
                backend,
                ttl,
                held: Mutex::new(Held {
                    record,
                    version,
                    confirmed_at: started,
                    attempts: Vec::new(),
                    progress: None,
                    lost: None,
                }),
                writes: tokio::sync::Mutex::new(()),
                stop,
                task: Mutex::new(None),
            }),
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.inner.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn uri(&self) -> String {
        self.inner.backend.uri().to_string()
    }

    /// The record as last confirmed in the store.
    pub fn record(&self) -> LockRecord {
        self.held().record.clone()
    }

    /// Our generation (fixed for the lease's life).
    pub fn generation(&self) -> u64 {
        self.held().record.generation.unwrap_or(0)
    }

    /// The nonce of our last confirmed write.
    pub fn nonce(&self) -> String {
        self.held().record.nonce.clone().unwrap_or_default()
    }

    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Why the lease is lost (taken over, gone, not renewable, released), or None while held.
    pub fn lost(&self) -> Option<String> {
        self.held().lost.clone()
    }

    /// Progress to write with the next renewal (free-form JSON).
    pub fn set_progress(&self, progress: Value) {
        self.held().progress = Some(progress);
    }

    fn lose(&self, reason: String) -> String {
        let mut held = self.held();
        held.lost.get_or_insert(reason).clone()
    }

    fn confirm(&self, record: LockRecord, version: Version) {
        let mut held = self.held();
        let started = held
            .attempts
            .iter()
            .find(|(n, _)| record.nonce.as_deref() == Some(n.as_str()))
            .map(|(_, at)| *at);
        held.confirmed_at = started.unwrap_or(held.confirmed_at);
        held.attempts.clear();
        held.record = record;
        held.version = version;
    }

    /// Starts renewing every TTL/3 on the current Tokio runtime (idempotent).
    /// Without a runtime the lease is marked lost rather than silently unrenewed.
    pub fn start_heartbeat(&self) {
        let mut task = self.inner.task.lock().unwrap_or_else(|p| p.into_inner());
        if task.is_some() || self.lost().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.lose("no async runtime to renew the lock on".into());
            return;
        };
        let stop = self.inner.stop.subscribe();
        *task = Some(runtime.spawn(heartbeat(Arc::downgrade(&self.inner), stop, self.inner.ttl)));
    }

    /// One renewal now. `Err(Lost)` when the lock is no longer ours; a store
    /// error leaves the lease held (the heartbeat retries those).
    pub async fn renew(&self) -> Result<(), LockError> {
        match self.renew_once().await {
            Ok(()) => Ok(()),
            Err(Renewal::Lost(reason)) => Err(LockError::Lost {
                uri: self.uri(),
                reason,
            }),
            Err(Renewal::Transient(source)) => Err(LockError::Store {
                uri: self.uri(),
                source,
            }),
        }
    }

    async fn renew_once(&self) -> Result<(), Renewal> {
        let _one_writer = self.inner.writes.lock().await;
        let (record, expected, ours) = {
            let mut held = self.held();
            if let Some(reason) = &held.lost {
                return Err(Renewal::Lost(reason.clone()));
            }
            let now = iso_utc(Utc::now());
            let mut record = held.record.clone();
            let nonce = new_nonce();
            record.nonce = Some(nonce.clone());
            record.heartbeat = Some(now.clone());
            record.acquired = now;
            record.progress = held.progress.clone();
            held.attempts.push((nonce, Instant::now()));
            let ours: Vec<String> = held.attempts.iter().map(|(n, _)| n.clone()).collect();
            (record, held.version.clone(), ours)
        };
        let result = self
            .inner
            .backend
            .replace(&expected, record.to_bytes())
            .await;
        match settle(self.inner.backend.as_ref(), result, &record, &ours).await {
            Settled::Ours { version, record } => {
                self.confirm(record, version);
                Ok(())
            }
            Settled::Failed(e, None) => Err(Renewal::Transient(e)),
            Settled::Failed(e, Some(state)) if state.version() == Some(&expected) => {
                Err(Renewal::Transient(e))
            }
            Settled::Failed(_, Some(state)) | Settled::Theirs(state) => {
                Err(Renewal::Lost(self.lose(format!(
                    "the lock changed under us: now {}",
                    state.describe()
                ))))
            }
        }
    }

    /// The fencing check: Ok only if the lease is not lost, was renewed recently
    /// enough on our own clock, and the lock object still carries our generation
    /// and a nonce we wrote. Errors say why; a lock found changed marks the lease lost.
    pub async fn check(&self) -> Result<(), String> {
        let (generation, before) = self.ours_now()?;
        let age = self.held().confirmed_at.elapsed();
        // Leave a sixth of the TTL for the commit that follows the check.
        if age >= self.inner.ttl - self.inner.ttl / 6 {
            return Err(format!(
                "the catalog lock was last renewed {age:.1?} ago (TTL {:?}): another process may already take it for stale",
                self.inner.ttl
            ));
        }
        let found = self
            .inner
            .backend
            .read()
            .await
            .map_err(|e| format!("cannot verify the catalog lock: {e}"))?;
        let state = LockState::classify(found, Utc::now());
        let (_, after) = self.ours_now()?;
        let ours = |n: &str| before.iter().chain(after.iter()).any(|o| o == n);
        if let LockState::Held { record, .. } = &state
            && record.generation == Some(generation)
            && record.nonce.as_deref().is_some_and(ours)
        {
            return Ok(());
        }
        Err(self.lose(format!(
            "the catalog lock is no longer ours (generation {generation}): now {}",
            state.describe()
        )))
    }

    /// Our generation and every nonce the store may show for us now.
    fn ours_now(&self) -> Result<(u64, Vec<String>), String> {
        let held = self.held();
        if let Some(reason) = &held.lost {
            return Err(format!("the catalog lock was lost: {reason}"));
        }
        let mut nonces: Vec<String> = held.attempts.iter().map(|(n, _)| n.clone()).collect();
        nonces.extend(held.record.nonce.clone());
        Ok((held.record.generation.unwrap_or(0), nonces))
    }

    /// The fencing check as a catalog [`CommitGuard`] (see [`Lease::check`]).
    /// It holds a weak reference: once every clone of the lease is gone, it refuses.
    pub fn commit_guard(&self) -> Arc<dyn CommitGuard> {
        Arc::new(Fence(Arc::downgrade(&self.inner)))
    }

    /// Stops the heartbeat and replaces our record by a release marker, only if
    /// the object is still at the version we last wrote (a conditional replace:
    /// no window in which someone else's lock could be removed). Fails with
    /// [`LockError::NotOurs`] if the lock was taken over, [`LockError::Lost`] if
    /// the lease was already lost.
    pub async fn release(self) -> Result<(), LockError> {
        let _ = self.inner.stop.send_replace(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let _one_writer = self.inner.writes.lock().await;
        let uri = self.uri();
        const ATTEMPTS: u32 = 4;
        for attempt in 1..=ATTEMPTS {
            let (marker, expected, ours) = {
                let mut held = self.held();
                if let Some(reason) = &held.lost {
                    return Err(LockError::Lost {
                        uri,
                        reason: reason.clone(),
                    });
                }
                let marker = held.record.release_marker(new_nonce(), Utc::now());
                held.attempts
                    .push((marker.nonce.clone().unwrap_or_default(), Instant::now()));
                let ours: Vec<String> = held.attempts.iter().map(|(n, _)| n.clone()).collect();
                (marker, held.version.clone(), ours)
            };
            let result = self
                .inner
                .backend
                .replace(&expected, marker.to_bytes())
                .await;
            match settle(self.inner.backend.as_ref(), result, &marker, &ours).await {
                Settled::Ours { record, .. } if record.is_released() => {
                    self.lose("released".into());
                    return Ok(());
                }
                // A renewal of ours whose reply was lost is in place: release that.
                Settled::Ours { record, version } => self.confirm(record, version),
                Settled::Failed(source, state)
                    if state
                        .as_ref()
                        .is_none_or(|s| s.version() == Some(&expected)) =>
                {
                    if attempt == ATTEMPTS {
                        return Err(LockError::Store { uri, source });
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Settled::Failed(_, Some(state)) | Settled::Theirs(state) => {
                    let detail = state.describe();
                    self.lose(format!("taken over before release: now {detail}"));
                    return Err(LockError::NotOurs { uri, detail });
                }
                Settled::Failed(source, None) => return Err(LockError::Store { uri, source }),
            }
        }
        Err(LockError::Contended {
            uri,
            attempts: ATTEMPTS,
        })
    }
}

/// Renews every TTL/3 until stopped, lost, or the lease is dropped. A store
/// error is retried quickly until the lease would be stale on our own clock.
async fn heartbeat(
    lease: Weak<Inner>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    ttl: Duration,
) {
    let period = ttl / 3;
    let retry = (ttl / 20).clamp(Duration::from_millis(50), Duration::from_secs(2));
    let mut wait = period;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let Some(inner) = lease.upgrade() else {
            return;
        };
        let lease = Lease { inner };
        match lease.renew_once().await {
            Ok(()) => wait = period,
            Err(Renewal::Lost(reason)) => {
                tracing::warn!("catalog lock lost: {reason}");
                return;
            }
            Err(Renewal::Transient(e)) => {
                let age = lease.held().confirmed_at.elapsed();
                if age + retry >= ttl {
                    let reason =
                        lease.lose(format!("could not renew for {age:.1?} (TTL {ttl:?}): {e}"));
                    tracing::warn!("catalog lock lost: {reason}");
                    return;
                }
                tracing::warn!("catalog lock renewal failed, retrying: {e}");
                wait = retry;
            }
        }
    }
}

/// The lease's fencing check, installed on the catalog.
#[derive(Debug)]
struct Fence(Weak<Inner>);

#[async_trait::async_trait]
impl CommitGuard for Fence {
    async fn check(&self) -> Result<(), String> {
        match self.0.upgrade() {
            Some(inner) => Lease { inner }.check().await,
            None => Err("the catalog lock lease was dropped".into()),
        }
    }
}
