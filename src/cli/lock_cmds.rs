//! `ecops lock status | acquire | release | steal`.
//!
//! Refusals (held, not ours, not stale, changed, wrong token, not confirmed)
//! change nothing, print the reason on stderr (and, with `--json`, one object
//! with `"ok": false`, `error` and the lock's status on stdout) and exit 1.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{LockCommand, Settings, print_json};
use crate::catalog::LOCK_FILE;
use crate::lock::{
    Authority, ForceToken, Lease, LeaseOptions, LockError, LockState, read_lock_with, release_by,
    steal as steal_lock,
};
use crate::store::{Location, Store, open_location};

/// Runs one lock subcommand.
pub async fn run(settings: &Settings, cmd: &LockCommand) -> Result<ExitCode> {
    match cmd {
        LockCommand::Status => status(settings).await,
        LockCommand::Acquire { owner, ttl } => acquire(settings, owner, *ttl).await,
        LockCommand::Release { nonce, generation } => {
            let token = nonce.clone().or_else(|| generation.map(|g| g.to_string()));
            release(settings, token.as_deref()).await
        }
        LockCommand::Steal {
            yes,
            force,
            owner,
            ttl,
        } => steal(settings, *yes, force.as_deref(), owner.as_deref(), *ttl).await,
    }
}

fn open(settings: &Settings) -> Result<Store> {
    let location = Location::parse(settings.require_base()?)?;
    Ok(open_location(&location, &settings.open.s3)?)
}

fn ensure_writable(settings: &Settings, what: &str) -> Result<()> {
    if settings.open.read_only {
        bail!("`ecops lock {what}` writes the lock, but the catalog is opened read-only");
    }
    Ok(())
}

/// Who takes the lock when no --owner is given.
fn default_owner() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "ecops".to_string())
}

/// The status object (`lock status --json`); its keys are an interface.
fn state_json(store: &Store, state: &LockState) -> Value {
    let lock = store.uri(LOCK_FILE);
    match state {
        LockState::Free { released, .. } => json!({
            "held": false,
            "lock": lock,
            "released": released.as_ref().map(|r| json!({
                "owner": r.owner, "at": r.released, "generation": r.generation,
            })),
        }),
        LockState::Held {
            record,
            assessment,
            fingerprint,
            ..
        } => json!({
            "held": true,
            "readable": true,
            "lock": lock,
            "owner": record.owner,
            "hostname": record.hostname,
            "pid": record.pid,
            "acquired": record.acquired,
            "held_since": record.held_since,
            "ttl_hours": record.ttl_hours,
            "heartbeat": record.heartbeat,
            "generation": record.generation,
            "nonce": record.nonce,
            "operation": record.operation,
            "job_id": record.job_id,
            "progress": record.progress,
            "fingerprint": fingerprint,
            "age_seconds": assessment.age_seconds,
            "stale_at": assessment.stale_at,
            "stale": assessment.stale,
            "stale_reason": assessment.stale_reason,
            "stale_why": assessment.why,
            "skew_seconds": assessment.skew_seconds,
        }),
        LockState::Unreadable {
            reason,
            preview,
            fingerprint,
            ..
        } => json!({
            "held": true,
            "readable": false,
            "lock": lock,
            "stale": false,
            "reason": reason,
            "preview": preview,
            "fingerprint": fingerprint,
        }),
    }
}

/// Prints a refusal (nothing changed) and returns exit code 1.
fn refuse(settings: &Settings, error: &str, lock: Option<Value>) -> Result<ExitCode> {
    if settings.json {
        print_json(&json!({"ok": false, "error": error, "lock": lock}))?;
    }
    say_err!("ecops: {error}");
    Ok(ExitCode::from(1))
}

/// The state a refusal error carries, else a fresh read (best effort).
async fn state_for(settings: &Settings, store: &Store, error: &LockError) -> Option<Value> {
    let carried = match error {
        LockError::Held { state, .. }
        | LockError::Changed { state, .. }
        | LockError::NotStale { state, .. } => Some(state.as_ref().clone()),
        _ => None,
    };
    let state = match carried {
        Some(s) => s,
        None => read_lock_with(store, settings.stale_policy()).await.ok()?,
    };
    Some(state_json(store, &state))
}

/// True for errors that mean "refused, nothing changed" rather than a failure.
fn is_refusal(error: &LockError) -> bool {
    matches!(
        error,
        LockError::Held { .. }
            | LockError::Unreadable { .. }
            | LockError::NotHeld { .. }
            | LockError::Changed { .. }
            | LockError::NotStale { .. }
            | LockError::ForceMismatch { .. }
            | LockError::NotOurs { .. }
            | LockError::Contended { .. }
    )
}

async fn refuse_with(settings: &Settings, store: &Store, error: LockError) -> Result<ExitCode> {
    if !is_refusal(&error) {
        return Err(error.into());
    }
    let state = state_for(settings, store, &error).await;
    refuse(settings, &error.to_string(), state)
}

pub async fn status(settings: &Settings) -> Result<ExitCode> {
    let store = open(settings)?;
    let state = read_lock_with(&store, settings.stale_policy()).await?;
    if settings.json {
        print_json(&state_json(&store, &state))?;
        return Ok(ExitCode::SUCCESS);
    }
    match &state {
        LockState::Free { .. } => say!("lock {} is {}", store.uri(LOCK_FILE), state.describe()),
        LockState::Held {
            record, assessment, ..
        } => {
            let age = assessment
                .age_seconds
                .map_or("unknown".to_string(), crate::fmt::format_age);
            say!("held by {}", crate::lock::holder_identity(record));
            say!(
                "acquired {}, last heartbeat {age} ago, TTL {} h",
                record.held_since.as_deref().unwrap_or(&record.acquired),
                record.ttl_hours
            );
            if assessment.stale {
                say!("STALE: {}", assessment.why);
            } else {
                say!("live: {}", assessment.why);
            }
        }
        LockState::Unreadable {
            reason,
            preview,
            fingerprint,
            ..
        } => {
            say!("the lock object is not a lock record ({reason}); content starts: {preview:?}");
            say!("fingerprint {fingerprint}: `ecops lock steal --force {fingerprint}` replaces it");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes the lock for a maintenance window: no heartbeat (the command exits),
/// pid 0, so it ends by `lock release` or by its TTL.
pub async fn acquire(settings: &Settings, owner: &str, ttl: Duration) -> Result<ExitCode> {
    ensure_writable(settings, "acquire")?;
    let store = open(settings)?;
    let lease = match Lease::acquire(&store, LeaseOptions::manual(owner, ttl)).await {
        Ok(lease) => lease,
        Err(e) => return refuse_with(settings, &store, e).await,
    };
    print_taken(settings, &store, &lease, "acquired", json!({}))
}

fn print_taken(
    settings: &Settings,
    store: &Store,
    lease: &Lease,
    verb: &str,
    extra: Value,
) -> Result<ExitCode> {
    let record = lease.record();
    let stale_at = chrono::Utc::now()
        + chrono::Duration::from_std(lease.ttl()).unwrap_or(chrono::Duration::zero());
    let release = format!(
        "ecops lock release --base {} --nonce {}",
        settings.base.as_deref().unwrap_or("…"),
        lease.nonce()
    );
    if settings.json {
        let mut out = json!({
            "ok": true,
            "lock": store.uri(LOCK_FILE),
            "owner": record.owner,
            "generation": lease.generation(),
            "nonce": lease.nonce(),
            "ttl_hours": record.ttl_hours,
            "stale_at": stale_at,
            "release": release,
        });
        if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
            out.insert(verb.to_string(), Value::Bool(true));
            out.extend(extra);
        }
        print_json(&out)?;
    } else {
        say!(
            "{verb} the catalog lock {} for {}: generation {}, nonce {}; stale at {} unless released",
            store.uri(LOCK_FILE),
            record.owner,
            lease.generation(),
            lease.nonce(),
            stale_at.to_rfc3339()
        );
        say!("release it with: {release}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Releases a lock taken with `lock acquire` (or a steal): requires the nonce or
/// generation that command printed, so nobody releases a lock by mistake.
pub async fn release(settings: &Settings, token: Option<&str>) -> Result<ExitCode> {
    ensure_writable(settings, "release")?;
    let store = open(settings)?;
    let Some(token) = token else {
        let state = read_lock_with(&store, settings.stale_policy()).await?;
        return refuse(
            settings,
            &format!(
                "`lock release` needs --nonce or --generation of the lock you took \
                 (`ecops lock acquire` printed them); the lock is {}; nothing was done",
                state.describe()
            ),
            Some(state_json(&store, &state)),
        );
    };
    match release_by(&store, token).await {
        Ok(record) => {
            if settings.json {
                print_json(&json!({
                    "ok": true, "released": true, "lock": store.uri(LOCK_FILE),
                    "owner": record.owner, "generation": record.generation,
                }))?;
            } else {
                say!(
                    "released the catalog lock {} (owner {}, generation {})",
                    store.uri(LOCK_FILE),
                    record.owner,
                    record.generation.map_or("-".into(), |g| g.to_string())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refuse_with(settings, &store, e).await,
    }
}

/// Takes over the lock: stale ones (by timestamps, or a dead holder on this
/// host), or any lock whose generation, nonce or fingerprint is typed back with
/// --force. Asks on the terminal unless --yes.
pub async fn steal(
    settings: &Settings,
    yes: bool,
    force: Option<&str>,
    owner: Option<&str>,
    ttl: Duration,
) -> Result<ExitCode> {
    ensure_writable(settings, "steal")?;
    let store = open(settings)?;
    let state = read_lock_with(&store, settings.stale_policy()).await?;
    let authority = match force {
        Some(token) => Authority::Force(ForceToken(token.to_string())),
        None => Authority::IfStale(settings.stale_policy()),
    };
    let uri = store.uri(LOCK_FILE);
    if let Err(e) = crate::lock::steal::authorize(&uri, &state, &authority) {
        let hint = match (&e, &state) {
            (LockError::NotStale { .. }, LockState::Held { record, .. }) => {
                match (record.generation, &state.fingerprint()) {
                    (Some(g), _) => format!(" (e.g. --force {g})"),
                    (None, Some(f)) => format!(" (this lock has no generation: --force {f})"),
                    _ => String::new(),
                }
            }
            _ => String::new(),
        };
        return refuse(
            settings,
            &format!("{e}{hint}"),
            Some(state_json(&store, &state)),
        );
    }
    if !yes && !confirm(&state).await? {
        return refuse(
            settings,
            "not confirmed; nothing was done",
            Some(state_json(&store, &state)),
        );
    }
    let owner = owner.map_or_else(default_owner, str::to_string);
    match steal_lock(&store, &state, LeaseOptions::manual(owner, ttl), authority).await {
        Ok(stolen) => {
            let (audit, audit_error) = match &stolen.audit {
                Ok(uri) => (Some(uri.clone()), None),
                Err(e) => (None, Some(e.clone())),
            };
            if !settings.json {
                say!("took over from {}", stolen.previous.describe());
                match &audit {
                    Some(uri) => say!("recorded in {uri}"),
                    None => say_err!(
                        "ecops: warning: the steal could not be audited: {}",
                        audit_error.as_deref().unwrap_or("?")
                    ),
                }
            }
            let extra = json!({
                "from": state_json(&store, &stolen.previous),
                "audit": audit,
                "audit_error": audit_error,
            });
            print_taken(settings, &store, &stolen.lease, "stolen", extra)
        }
        Err(e) => refuse_with(settings, &store, e).await,
    }
}

/// Asks "steal? [y/N]" on stderr and reads stdin; anything but y/yes is no.
async fn confirm(state: &LockState) -> Result<bool> {
    let next = state
        .any_record()
        .and_then(|r| r.generation)
        .map_or(1, |g| g + 1);
    eprint!(
        "The catalog lock is {}.\nSteal it (new generation {next})? [y/N] ",
        crate::fmt::terminal_safe(&state.describe())
    );
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
