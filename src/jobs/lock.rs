//! The lock task: re-reads the catalog lock every second through one
//! [`LockWatcher`] (so the console knows how long it has seen the same lock
//! object unchanged, on its own clock), and carries out the console's lock
//! actions. A steal uses [`Authority::IfWatchedStale`] with that watcher:
//! [`crate::lock::steal`] re-reads the lock, requires it to be exactly the
//! object the operator confirmed, and refuses a lock that is not stale by the
//! watcher's rule.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Event;
use crate::ingest::LockSettings;
use crate::lock::{Authority, Lease, LeaseOptions, LockState, LockWatcher};
use crate::store::Store;

/// Lock actions of the console.
#[derive(Debug)]
pub enum LockCommand {
    /// Take the lock for a maintenance window (the console holds and renews it).
    Acquire { ttl: Duration },
    /// Release the lease the console holds.
    Release,
    /// Take over `expected` (what the operator confirmed in the dialog).
    Steal { expected: Box<LockState> },
    /// Re-read now.
    Poll,
    /// Release the console's lease (if any) and stop.
    Shutdown(oneshot::Sender<()>),
}

impl Clone for LockCommand {
    /// `Shutdown` cannot be cloned (its reply channel is single-use); it clones to `Poll`.
    fn clone(&self) -> Self {
        match self {
            LockCommand::Acquire { ttl } => LockCommand::Acquire { ttl: *ttl },
            LockCommand::Release => LockCommand::Release,
            LockCommand::Steal { expected } => LockCommand::Steal {
                expected: expected.clone(),
            },
            LockCommand::Poll | LockCommand::Shutdown(_) => LockCommand::Poll,
        }
    }
}

/// Which lock action an outcome answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    Acquire,
    Release,
    Steal,
}

impl LockAction {
    pub fn label(self) -> &'static str {
        match self {
            LockAction::Acquire => "acquire",
            LockAction::Release => "release",
            LockAction::Steal => "steal",
        }
    }
}

impl LockCommand {
    /// The action of a command that changes the lock (None: poll, shutdown).
    pub fn action(&self) -> Option<LockAction> {
        match self {
            LockCommand::Acquire { .. } => Some(LockAction::Acquire),
            LockCommand::Release => Some(LockAction::Release),
            LockCommand::Steal { .. } => Some(LockAction::Steal),
            LockCommand::Poll | LockCommand::Shutdown(_) => None,
        }
    }
}

/// The outcome of a lock action, for the status bar and the steal dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOutcome {
    pub action: LockAction,
    pub ok: bool,
    pub message: String,
    /// Generation the console holds after the action, if any.
    pub held_generation: Option<u64>,
}

pub(super) fn spawn(
    store: Store,
    events: mpsc::UnboundedSender<Event>,
    every: Duration,
    settings: LockSettings,
    read_only: bool,
) -> mpsc::UnboundedSender<LockCommand> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut watcher = LockWatcher::with_policy(settings.stale);
        let mut lease: Option<Lease> = None;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let command = tokio::select! {
                _ = tick.tick() => LockCommand::Poll,
                c = rx.recv() => match c {
                    Some(c) => c,
                    None => LockCommand::Shutdown(oneshot::channel().0),
                },
            };
            let outcome = match command {
                LockCommand::Poll => None,
                LockCommand::Shutdown(reply) => {
                    if let Some(l) = lease.take()
                        && let Err(e) = l.release().await
                    {
                        tracing::warn!("releasing the console's lock: {e}");
                    }
                    let _ = reply.send(());
                    return;
                }
                ref c if read_only => Some(LockOutcome {
                    action: c.action().unwrap_or(LockAction::Acquire),
                    ok: false,
                    message: "refused: the console is read-only".into(),
                    held_generation: None,
                }),
                LockCommand::Acquire { ttl } => {
                    Some(acquire(&store, &settings, ttl, &mut lease).await)
                }
                LockCommand::Release => Some(release(&mut lease).await),
                LockCommand::Steal { expected } => {
                    Some(steal(&store, &settings, &expected, &watcher, &mut lease).await)
                }
            };
            if let Some(outcome) = outcome {
                if outcome.ok {
                    tracing::info!("lock {}: {}", outcome.action.label(), outcome.message);
                } else {
                    tracing::warn!("lock {}: {}", outcome.action.label(), outcome.message);
                }
                if events.send(Event::LockOutcome(outcome)).is_err() {
                    return;
                }
            }
            let watched = watcher
                .poll(&store)
                .await
                .map(Box::new)
                .map_err(crate::runs::JobError::failed);
            if events.send(Event::Lock(watched)).is_err() {
                return;
            }
            if let Some(l) = &lease
                && let Some(reason) = l.lost()
            {
                tracing::warn!("the console's lock was lost: {reason}");
                lease = None;
            }
        }
    });
    tx
}

/// Who the console's lock actions name as the holder.
pub fn console_owner(settings: &LockSettings) -> String {
    format!("{} (ecops console)", settings.owner)
}

async fn acquire(
    store: &Store,
    settings: &LockSettings,
    ttl: Duration,
    lease: &mut Option<Lease>,
) -> LockOutcome {
    let action = LockAction::Acquire;
    if let Some(l) = lease {
        return LockOutcome {
            action,
            ok: false,
            message: format!(
                "the console already holds the lock (generation {})",
                l.generation()
            ),
            held_generation: Some(l.generation()),
        };
    }
    match Lease::acquire(store, LeaseOptions::manual(console_owner(settings), ttl)).await {
        Ok(l) => {
            l.start_heartbeat();
            let generation = l.generation();
            *lease = Some(l);
            LockOutcome {
                action,
                ok: true,
                message: format!("acquired, generation {generation}"),
                held_generation: Some(generation),
            }
        }
        Err(e) => LockOutcome {
            action,
            ok: false,
            message: e.to_string(),
            held_generation: None,
        },
    }
}

async fn release(lease: &mut Option<Lease>) -> LockOutcome {
    let action = LockAction::Release;
    let Some(l) = lease.take() else {
        return LockOutcome {
            action,
            ok: false,
            message:
                "the console holds no lock (a lock taken elsewhere is released there, or stolen)"
                    .into(),
            held_generation: None,
        };
    };
    let generation = l.generation();
    match l.release().await {
        Ok(()) => LockOutcome {
            action,
            ok: true,
            message: format!("released generation {generation}"),
            held_generation: None,
        },
        Err(e) => LockOutcome {
            action,
            ok: false,
            message: e.to_string(),
            held_generation: None,
        },
    }
}

async fn steal(
    store: &Store,
    settings: &LockSettings,
    expected: &LockState,
    watcher: &LockWatcher,
    lease: &mut Option<Lease>,
) -> LockOutcome {
    let action = LockAction::Steal;
    let opts = LeaseOptions::manual(console_owner(settings), settings.ttl);
    match crate::lock::steal(store, expected, opts, Authority::IfWatchedStale(watcher)).await {
        Ok(stolen) => {
            stolen.lease.start_heartbeat();
            let generation = stolen.lease.generation();
            let audit = match &stolen.audit {
                Ok(uri) => format!("audited at {uri}"),
                Err(e) => format!("NOT audited: {e}"),
            };
            if let Some(old) = lease.replace(stolen.lease) {
                // Cannot happen (we would have stolen our own lease); drop it quietly.
                drop(old);
            }
            LockOutcome {
                action,
                ok: true,
                message: format!(
                    "stolen from {}; the console holds generation {generation}; {audit}",
                    stolen.previous.describe()
                ),
                held_generation: Some(generation),
            }
        }
        Err(e) => LockOutcome {
            action,
            ok: false,
            message: e.to_string(),
            held_generation: lease.as_ref().map(Lease::generation),
        },
    }
}
