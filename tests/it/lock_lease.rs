//! The lease API against the local filesystem and a real S3 server:
//! concurrent acquirers and stealers, fencing a real catalog, renewal.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{LockBase, lock_bases, scenes};
use ecops::catalog::{EarthCatalog, WriteOptions};
use ecops::lock::audit::read_audit;
use ecops::lock::record::local_hostname;
use ecops::lock::{
    Authority, ForceToken, Lease, LeaseOptions, LockError, LockState, read_lock, steal,
};

const RACERS: usize = 8;

fn opts(owner: &str, ttl: Duration) -> LeaseOptions {
    LeaseOptions {
        owner: owner.to_string(),
        operation: "ingest".to_string(),
        job_id: Some(format!("job-{owner}")),
        ttl,
    }
}

/// Our lock format, held by a process of another host, heartbeat `age` old, TTL 1 h.
fn foreign_lock(owner: &str, generation: u64, age: chrono::Duration) -> Vec<u8> {
    let beat = (chrono::Utc::now() - age).to_rfc3339();
    serde_json::json!({
        "owner": owner, "pid": 77, "hostname": "elsewhere-host", "acquired": beat,
        "ttl_hours": 1.0, "nonce": format!("foreign-{generation}"), "generation": generation,
        "heartbeat": beat, "operation": "ingest",
    })
    .to_string()
    .into_bytes()
}

/// The held lock, judged without a skew allowance: these leases have TTLs
/// of seconds, and writer and reader share one clock.
async fn held(b: &LockBase) -> (ecops::lock::LockRecord, ecops::lock::Assessment) {
    let same_clock = ecops::lock::StalePolicy {
        skew: Duration::ZERO,
    };
    match ecops::lock::read_lock_with(&b.store, same_clock)
        .await
        .unwrap()
    {
        LockState::Held {
            record, assessment, ..
        } => (*record, assessment),
        other => panic!("{}: expected a held lock, found {other:?}", b.kind),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_acquirers_exactly_one_wins_every_round() {
    for b in lock_bases("lock-acquire") {
        for round in 0..5u64 {
            let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let (store, barrier) = (b.store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        Lease::acquire(&store, opts(&format!("w{i}"), Duration::from_secs(60)))
                            .await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            let mut refusals = Vec::new();
            for r in futures::future::join_all(racers).await {
                match r.unwrap() {
                    Ok(lease) => winners.push(lease),
                    Err(e) => refusals.push(e),
                }
            }
            assert_eq!(winners.len(), 1, "{} round {round}: {refusals:?}", b.kind);
            let winner = winners.pop().unwrap();
            let owner = winner.record().owner;
            for e in &refusals {
                assert!(
                    matches!(e, LockError::Held { .. }) && e.to_string().contains(&owner),
                    "{}: a loser must be told who holds it: {e}",
                    b.kind
                );
            }
            let (record, _) = held(&b).await;
            assert_eq!(record.nonce.as_deref(), Some(winner.nonce().as_str()));
            // Release leaves a marker, so generations keep increasing across holders.
            assert_eq!(record.generation, Some(round + 1), "{}", b.kind);
            winner.release().await.unwrap();
            assert!(matches!(
                read_lock(&b.store).await.unwrap(),
                LockState::Free {
                    released: Some(_),
                    ..
                }
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_stealers_of_a_stale_lock_exactly_one_wins() {
    for b in lock_bases("lock-steal") {
        for round in 0..4u64 {
            let generation = 10 + round * 10;
            b.put_lock_raw(&foreign_lock(
                "crashed",
                generation,
                chrono::Duration::hours(2),
            ))
            .await;
            let observed = read_lock(&b.store).await.unwrap();
            assert!(matches!(&observed, LockState::Held { assessment, .. } if assessment.stale));
            let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let (store, barrier, observed) =
                        (b.store.clone(), barrier.clone(), observed.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        steal(
                            &store,
                            &observed,
                            opts(&format!("thief{i}"), Duration::from_secs(60)),
                            Authority::IfStale(Default::default()),
                        )
                        .await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            let mut refusals = Vec::new();
            for r in futures::future::join_all(racers).await {
                match r.unwrap() {
                    Ok(s) => winners.push(s),
                    Err(e) => refusals.push(e),
                }
            }
            assert_eq!(winners.len(), 1, "{} round {round}: {refusals:?}", b.kind);
            for e in &refusals {
                assert!(
                    matches!(e, LockError::Changed { .. }),
                    "{}: a losing stealer must see the change: {e}",
                    b.kind
                );
            }
            let stolen = winners.pop().unwrap();
            let (record, assessment) = held(&b).await;
            assert_eq!(record.nonce.as_deref(), Some(stolen.lease.nonce().as_str()));
            assert_eq!(record.generation, Some(generation + 1));
            assert!(!assessment.stale);
            let audit = read_audit(&b.store).await.unwrap();
            assert_eq!(
                audit.len() as u64,
                round + 1,
                "{}: one record per steal",
                b.kind
            );
            let last = audit.last().unwrap();
            assert_eq!(
                stolen.audit.as_ref().ok().map(|u| u.ends_with(".json")),
                Some(true)
            );
            assert_eq!(
                (
                    last.from["owner"].as_str(),
                    last.generation_before,
                    last.generation_after
                ),
                (Some("crashed"), Some(generation), Some(generation + 1))
            );
            assert_eq!(last.by.owner, record.owner);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_whose_lock_was_stolen_cannot_commit() {
    for b in lock_bases("lock-fence") {
        let (catalog, _) = EarthCatalog::init(&b.base, 1, &b.open_options())
            .await
            .unwrap();
        let lease = Lease::acquire(&b.store, opts("ingest-a", Duration::from_secs(120)))
            .await
            .unwrap();
        catalog.sql().set_commit_guard(Some(lease.commit_guard()));
        catalog
            .append_items(&scenes(5), &WriteOptions::default(), HashMap::new())
            .await
            .unwrap();
        // Our own renewals (new nonce each) do not trip the fence.
        lease.renew().await.unwrap();
        catalog
            .append_items(&scenes(3), &WriteOptions::default(), HashMap::new())
            .await
            .unwrap();

        // The holder is "paused" (no heartbeat); an operator forces a steal.
        let observed = read_lock(&b.store).await.unwrap();
        let thief = steal(
            &b.store,
            &observed,
            LeaseOptions::manual("operator", Duration::from_secs(120)),
            Authority::Force(ForceToken(lease.generation().to_string())),
        )
        .await
        .unwrap();

        let err = catalog
            .append_items(&scenes(4), &WriteOptions::default(), HashMap::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("commit refused") && err.contains("no longer ours"),
            "{}: {err}",
            b.kind
        );
        let snapshots = catalog
            .table()
            .await
            .unwrap()
            .metadata()
            .snapshots()
            .count();
        assert_eq!(
            snapshots, 2,
            "{}: nothing committed after the steal",
            b.kind
        );
        assert!(lease.lost().is_some());
        // The old holder can neither renew nor release the thief's lock.
        assert!(matches!(lease.renew().await, Err(LockError::Lost { .. })));
        assert!(matches!(
            lease.clone().release().await,
            Err(LockError::Lost { .. })
        ));
        let (record, _) = held(&b).await;
        assert_eq!(record.nonce.as_deref(), Some(thief.lease.nonce().as_str()));
        assert_eq!(record.owner, "operator");

        // The thief, fencing the same catalog, commits.
        catalog
            .sql()
            .set_commit_guard(Some(thief.lease.commit_guard()));
        catalog
            .append_items(&scenes(2), &WriteOptions::default(), HashMap::new())
            .await
            .unwrap();
        thief.lease.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_released_by_its_holder_is_refused_to_a_stale_view() {
    // Release by a non-holder: a lease that lost the lock cannot release the new one.
    for b in lock_bases("lock-release") {
        let first = Lease::acquire(&b.store, opts("first", Duration::from_secs(60)))
            .await
            .unwrap();
        let observed = read_lock(&b.store).await.unwrap();
        let second = steal(
            &b.store,
            &observed,
            opts("second", Duration::from_secs(60)),
            Authority::Force(ForceToken(first.nonce())),
        )
        .await
        .unwrap();
        let err = first.release().await.unwrap_err();
        assert!(
            matches!(err, LockError::NotOurs { .. }),
            "{}: {err}",
            b.kind
        );
        assert!(err.to_string().contains("second"), "{err}");
        let (record, _) = held(&b).await;
        assert_eq!(record.owner, "second");
        second.lease.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_keeps_a_long_job_fresh_past_its_ttl() {
    let ttl = Duration::from_secs(2);
    for b in lock_bases("lock-renew") {
        let control_base = b.sibling("lock-renew-control");
        let lease = Lease::acquire(&b.store, opts("long-job", ttl))
            .await
            .unwrap();
        let control = Lease::acquire(&control_base.store, opts("no-heartbeat", ttl))
            .await
            .unwrap();
        let first_nonce = lease.nonce();
        lease.start_heartbeat();
        lease.set_progress(serde_json::json!({"items": 42}));
        tokio::time::sleep(Duration::from_secs(5)).await;

        let (record, assessment) = held(&b).await;
        assert!(!assessment.stale, "{}: renewed lock went stale", b.kind);
        assert!(assessment.age_seconds.unwrap() < 2.0);
        assert_eq!(record.generation, Some(lease.generation()));
        assert_ne!(record.nonce.as_deref(), Some(first_nonce.as_str()));
        assert_eq!(record.progress, Some(serde_json::json!({"items": 42})));
        assert_eq!(record.hostname, local_hostname());
        assert!(record.held_since.is_some() && record.held_since != record.heartbeat);
        assert_eq!(lease.lost(), None);
        lease.check().await.unwrap();

        // Without renewals the same TTL has run out: the test can fail.
        let (_, control_assessment) = held(&control_base).await;
        assert!(control_assessment.stale, "{}", b.kind);
        assert!(control.check().await.is_err());

        // The heartbeat notices a takeover within a renewal period.
        let observed = read_lock(&b.store).await.unwrap();
        let thief = steal(
            &b.store,
            &observed,
            opts("thief", Duration::from_secs(60)),
            Authority::Force(ForceToken(lease.generation().to_string())),
        )
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + ttl * 2;
        while lease.lost().is_none() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let reason = lease.lost().expect("the heartbeat must notice the steal");
        assert!(reason.contains("thief"), "{reason}");
        let (record, _) = held(&b).await;
        assert_eq!(record.nonce.as_deref(), Some(thief.lease.nonce().as_str()));
    }
}
