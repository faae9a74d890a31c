//! Lease, steal, fencing and watcher rules on the in-memory backend, with
//! injected store faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::memory::{Fault, MemoryBackend};
use super::steal::release_by_on;
use super::*;

fn opts(owner: &str, ttl: Duration) -> LeaseOptions {
    LeaseOptions {
        owner: owner.into(),
        operation: "ingest".into(),
        job_id: None,
        ttl,
    }
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

async fn state(b: &MemoryBackend) -> LockState {
    read_on(b).await.unwrap()
}

fn stored_nonce(s: &LockState) -> Option<String> {
    s.nonce().map(str::to_string)
}

/// Another host's lock with its heartbeat `age` ago (TTL 1 h).
fn foreign(age: chrono::Duration, generation: u64) -> Vec<u8> {
    let beat = (Utc::now() - age).to_rfc3339();
    serde_json::json!({"owner": "other", "pid": 9, "hostname": "far-host", "acquired": beat,
        "ttl_hours": 1.0, "nonce": format!("n{generation}"), "generation": generation,
        "heartbeat": beat, "operation": "compact"})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn acquire_when_held_names_holder_host_pid_operation_age_and_stale_time() {
    let b = Arc::new(MemoryBackend::new());
    let _a = Lease::acquire_on(b.clone(), opts("ingest-a", hour()))
        .await
        .unwrap();
    let err = Lease::acquire_on(b.clone(), opts("ingest-b", hour()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LockError::Held { .. }));
    for needle in [
        "ingest-a",
        record::local_hostname().as_str(),
        &format!("pid {}", std::process::id()),
        "operation ingest",
        "generation 1",
        "last heartbeat 0s ago",
        "becomes stale at",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in {text}");
    }
    assert!(
        Lease::acquire_on(b.clone(), opts("x", Duration::from_millis(10)))
            .await
            .is_err_and(|e| matches!(e, LockError::InvalidTtl { .. }))
    );
}

#[tokio::test]
async fn a_retried_write_that_already_landed_counts_as_ours() {
    let b = Arc::new(MemoryBackend::new());
    // The create landed, but its retry reported "already exists".
    b.inject(Fault::RetriedConflict);
    let lease = Lease::acquire_on(b.clone(), opts("a", hour()))
        .await
        .unwrap();
    assert_eq!(stored_nonce(&state(&b).await), Some(lease.nonce()));

    // A renewal whose reply was lost is recognised on read-back.
    b.inject(Fault::LoseReply);
    lease.renew().await.unwrap();
    assert_eq!(stored_nonce(&state(&b).await), Some(lease.nonce()));

    // A renewal that failed before writing leaves the lease held and renewable.
    let before = lease.nonce();
    b.inject(Fault::FailBefore);
    assert!(matches!(lease.renew().await, Err(LockError::Store { .. })));
    assert_eq!(lease.lost(), None);
    assert_eq!(stored_nonce(&state(&b).await), Some(before));
    lease.renew().await.unwrap();
    lease.check().await.unwrap();

    // A steal and a release whose retries collide with themselves succeed too.
    let observed = state(&b).await;
    b.inject(Fault::RetriedConflict);
    let stolen = steal_on(
        b.clone(),
        None,
        &observed,
        opts("t", hour()),
        Authority::Force(ForceToken(lease.generation().to_string())),
    )
    .await
    .unwrap();
    assert_eq!(stored_nonce(&state(&b).await), Some(stolen.lease.nonce()));
    b.inject(Fault::LoseReply);
    stolen.lease.release().await.unwrap();
    assert!(matches!(
        state(&b).await,
        LockState::Free {
            released: Some(_),
            ..
        }
    ));
}

#[tokio::test]
async fn release_leaves_a_marker_and_generations_only_grow() {
    let b = Arc::new(MemoryBackend::new());
    let mut generations = Vec::new();
    for _ in 0..3 {
        let lease = Lease::acquire_on(b.clone(), opts("a", hour()))
            .await
            .unwrap();
        generations.push(lease.generation());
        let guard = lease.commit_guard();
        lease.release().await.unwrap();
        let err = guard.check().await.unwrap_err();
        assert!(err.contains("released") || err.contains("dropped"), "{err}");
    }
    let observed = state(&b).await;
    assert!(matches!(
        &observed,
        LockState::Free { released: Some(r), .. } if r.generation == Some(3)
    ));
    let lease = Lease::acquire_on(b.clone(), opts("a", hour()))
        .await
        .unwrap();
    generations.push(lease.generation());
    let stolen = steal_on(
        b.clone(),
        None,
        &state(&b).await,
        opts("t", hour()),
        Authority::Force(ForceToken(lease.nonce())),
    )
    .await
    .unwrap();
    generations.push(stolen.lease.generation());
    assert_eq!(generations, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn fencing_accepts_our_renewals_and_refuses_after_a_steal() {
    let b = Arc::new(MemoryBackend::new());
    let lease = Lease::acquire_on(b.clone(), opts("a", hour()))
        .await
        .unwrap();
    let guard = lease.commit_guard();
    guard.check().await.unwrap();
    lease.renew().await.unwrap();
    guard.check().await.unwrap();

    let observed = state(&b).await;
    let thief = steal_on(
        b.clone(),
        None,
        &observed,
        opts("thief", hour()),
        Authority::Force(ForceToken(lease.generation().to_string())),
    )
    .await
    .unwrap();
    let err = guard.check().await.unwrap_err();
    assert!(
        err.contains("no longer ours") && err.contains("thief"),
        "{err}"
    );
    assert!(lease.lost().is_some());
    assert!(matches!(
        lease.clone().release().await,
        Err(LockError::Lost { .. })
    ));
    assert_eq!(stored_nonce(&state(&b).await), Some(thief.lease.nonce()));

    // Someone writing the same generation with another nonce is not us either.
    let other = Arc::new(MemoryBackend::new());
    let lease = Lease::acquire_on(other.clone(), opts("a", hour()))
        .await
        .unwrap();
    let mut forged = lease.record();
    forged.nonce = Some("not-ours".into());
    other.put_raw(&forged.to_bytes());
    assert!(lease.check().await.is_err());
    // A guard outliving its lease refuses.
    let orphan = lease.commit_guard();
    drop(lease);
    assert!(orphan.check().await.unwrap_err().contains("dropped"));
}

#[tokio::test]
async fn a_lease_not_renewed_for_most_of_its_ttl_cannot_commit() {
    let b = Arc::new(MemoryBackend::new());
    let lease = Lease::acquire_on(b.clone(), opts("a", Duration::from_secs(1)))
        .await
        .unwrap();
    lease.check().await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let err = lease.check().await.unwrap_err();
    assert!(err.contains("last renewed"), "{err}");
    lease.renew().await.unwrap();
    lease.check().await.unwrap();
}

#[tokio::test]
async fn heartbeat_renews_writes_progress_and_stops_on_release() {
    let b = Arc::new(MemoryBackend::new());
    let lease = Lease::acquire_on(b.clone(), opts("a", Duration::from_secs(1)))
        .await
        .unwrap();
    let first = lease.nonce();
    lease.set_progress(serde_json::json!({"done": 7}));
    lease.start_heartbeat();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let LockState::Held { record, .. } = state(&b).await else {
        panic!("not held")
    };
    assert_ne!(record.nonce.as_deref(), Some(first.as_str()));
    assert_eq!(record.progress, Some(serde_json::json!({"done": 7})));
    assert_eq!(lease.lost(), None);
    lease.check().await.unwrap();
    lease.release().await.unwrap();
    let after = state(&b).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        state(&b).await.same_object(&after),
        "heartbeat kept writing"
    );
}

#[tokio::test]
async fn heartbeat_gives_up_when_the_store_fails_for_a_whole_ttl() {
    let b = Arc::new(MemoryBackend::new());
    let lease = Lease::acquire_on(b.clone(), opts("a", Duration::from_secs(1)))
        .await
        .unwrap();
    for _ in 0..200 {
        b.inject(Fault::FailBefore);
    }
    lease.start_heartbeat();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reason = lease.lost().expect("lost after a TTL of failures");
    assert!(reason.contains("could not renew"), "{reason}");
    assert!(lease.check().await.is_err());
}

#[tokio::test]
async fn steal_refuses_live_changed_and_unreadable_locks() {
    let b = Arc::new(MemoryBackend::new());
    b.put_raw(&foreign(chrono::Duration::minutes(5), 4));
    let live = state(&b).await;
    let err = steal_on(
        b.clone(),
        None,
        &live,
        opts("t", hour()),
        Authority::IfStale(Default::default()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LockError::NotStale { .. }), "{err}");
    let err = steal_on(
        b.clone(),
        None,
        &live,
        opts("t", hour()),
        Authority::Force(ForceToken("5".into())),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LockError::ForceMismatch { .. }), "{err}");

    // Observed stale, then the holder renewed: the steal aborts and shows it.
    b.put_raw(&foreign(chrono::Duration::hours(3), 4));
    let stale = state(&b).await;
    b.put_raw(&foreign(chrono::Duration::seconds(1), 4));
    let err = steal_on(
        b.clone(),
        None,
        &stale,
        opts("t", hour()),
        Authority::IfStale(Default::default()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LockError::Changed { .. }), "{err}");
    assert_eq!(stored_nonce(&state(&b).await).as_deref(), Some("n4"));

    b.put_raw(b"\x00garbage");
    let garbage = state(&b).await;
    let fingerprint = garbage.fingerprint().unwrap().to_string();
    for authority in [
        Authority::IfStale(Default::default()),
        Authority::Force(ForceToken("1".into())),
    ] {
        assert!(
            steal_on(b.clone(), None, &garbage, opts("t", hour()), authority)
                .await
                .is_err()
        );
    }
    assert!(matches!(
        Lease::acquire_on(b.clone(), opts("a", hour())).await,
        Err(LockError::Unreadable { .. })
    ));
    let stolen = steal_on(
        b.clone(),
        None,
        &garbage,
        opts("t", hour()),
        Authority::Force(ForceToken(fingerprint)),
    )
    .await
    .unwrap();
    assert_eq!(stolen.lease.generation(), 1);
}

#[tokio::test]
async fn release_by_token_only_for_the_holder() {
    let b = Arc::new(MemoryBackend::new());
    b.put_raw(&foreign(chrono::Duration::minutes(1), 6));
    for token in ["", "5", "n5", "other"] {
        let err = release_by_on(b.as_ref(), token).await.unwrap_err();
        assert!(matches!(err, LockError::NotOurs { .. }), "{token}: {err}");
    }
    assert_eq!(stored_nonce(&state(&b).await).as_deref(), Some("n6"));
    release_by_on(b.as_ref(), "6").await.unwrap();
    assert!(matches!(
        release_by_on(b.as_ref(), "6").await,
        Err(LockError::NotHeld { .. })
    ));
    // earthcatalog's locks carry no token: never released, only stolen.
    b.put_raw(
        br#"{"owner":"x","pid":1,"hostname":"h","acquired":"2026-01-01T00:00:00","ttl_hours":1}"#,
    );
    assert!(matches!(
        release_by_on(b.as_ref(), "x").await,
        Err(LockError::NotOurs { .. })
    ));
}

#[test]
fn watcher_sees_a_whole_ttl_unchanged_even_when_the_holders_clock_looks_fresh() {
    // The holder's clock runs 3 h ahead of ours: by its timestamps the lock
    // looks fresh, so only the watch can find it dead.
    let ahead = LockState::classify(
        Some(Versioned {
            bytes: foreign(chrono::Duration::hours(-3), 2).into(),
            version: Version::of_content(b"v1"),
        }),
        Utc::now(),
    );
    assert!(matches!(&ahead, LockState::Held { assessment, .. } if !assessment.stale));
    let mut w = LockWatcher::new();
    let t0 = Instant::now();
    let wall = Utc::now();
    let first = w.observe_at(ahead.clone(), t0, wall);
    assert!(!first.stale);
    assert_eq!(first.stale_at, Some(wall + chrono::Duration::hours(1)));
    assert!(
        !w.observe_at(ahead.clone(), t0 + hour() - Duration::from_secs(1), wall)
            .stale
    );
    let watched = w.observe_at(ahead.clone(), t0 + hour(), wall);
    assert!(watched.stale);
    assert!(matches!(&watched.state, LockState::Held { assessment, .. }
        if assessment.stale_reason == Some(StaleReason::UnchangedUnderWatch)));
    // A renewal (new version) starts the count again.
    let renewed = LockState::classify(
        Some(Versioned {
            bytes: foreign(chrono::Duration::hours(-3), 2).into(),
            version: Version::of_content(b"v2"),
        }),
        Utc::now(),
    );
    assert!(!w.observe_at(renewed, t0 + hour() * 2, wall).stale);
    // A watcher that never saw the object confirms nothing.
    assert!(LockWatcher::new().confirms_stale(&ahead).is_none());
}

#[tokio::test]
async fn watched_steal_takes_a_long_expired_lock_at_once_and_waits_for_a_fresh_one() {
    let b = Arc::new(MemoryBackend::new());
    // Expired 2 h ago by its own clock (TTL 1 h): stale at first sight.
    b.put_raw(&foreign(chrono::Duration::hours(3), 2));
    let mut w = LockWatcher::new();
    let seen = w.observe(state(&b).await);
    assert!(seen.stale);
    steal_on(
        b.clone(),
        None,
        &seen.state,
        opts("t", hour()),
        Authority::IfWatchedStale(&w),
    )
    .await
    .unwrap();
    // One minute old: live, and the refusal says so.
    b.put_raw(&foreign(chrono::Duration::minutes(1), 7));
    let mut w = LockWatcher::new();
    let seen = w.observe(state(&b).await);
    assert!(!seen.stale);
    let err = steal_on(
        b.clone(),
        None,
        &seen.state,
        opts("t", hour()),
        Authority::IfWatchedStale(&w),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LockError::NotStale { .. }), "{err}");
}

#[test]
fn force_tokens_name_generation_nonce_or_fingerprint() {
    let held = LockState::classify(
        Some(Versioned {
            bytes: foreign(chrono::Duration::hours(3), 12).into(),
            version: Version::of_content(b"v"),
        }),
        Utc::now(),
    );
    let fp = held.fingerprint().unwrap().to_string();
    for (token, ok) in [
        ("12", true),
        (" 12 ", true),
        ("n12", true),
        (fp.as_str(), true),
        ("13", false),
        ("", false),
        ("n1", false),
    ] {
        assert_eq!(ForceToken(token.into()).matches(&held), ok, "{token:?}");
    }
}
