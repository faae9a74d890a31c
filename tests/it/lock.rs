//! `ecops lock status` on earthcatalog's lock, ours, garbage, and dead holders.

use crate::common;

use common::{earthcatalog_fixture, ecops_json, ecops_json_with, s3_base, s3_endpoint};
use ecops::lock::record::local_hostname;

fn lock_json(owner: &str, pid: u32, acquired: chrono::DateTime<chrono::Utc>) -> String {
    serde_json::json!({
        "owner": owner, "pid": pid, "hostname": local_hostname(),
        "acquired": acquired.to_rfc3339(), "ttl_hours": 1.0,
        "nonce": "n-1", "generation": 3, "heartbeat": acquired.to_rfc3339(), "operation": "ingest",
    })
    .to_string()
}

#[test]
fn earthcatalog_lock_is_shown_and_judged_by_its_ttl() {
    let catalog = earthcatalog_fixture();
    let status = ecops_json(&[
        "lock",
        "status",
        "--base",
        catalog.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(status["held"], true);
    assert_eq!(status["owner"], "backfill");
    assert_eq!(status["hostname"], "ip-10-0-3-17");
    assert_eq!(status["pid"], 4242);
    assert_eq!(status["ttl_hours"], 12.0);
    assert!(
        status["generation"].is_null(),
        "earthcatalog locks have no generation"
    );
    let stale_at =
        chrono::DateTime::parse_from_rfc3339("2026-11-18T15:14:15.926535+00:00").unwrap();
    assert_eq!(status["stale"], chrono::Utc::now() > stale_at);
}

#[test]
fn free_garbage_and_local_holders() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let base_s = base.to_str().unwrap();
    assert_eq!(
        ecops_json(&["lock", "status", "--base", base_s, "--json"])["held"],
        false
    );

    std::fs::write(base.join(".lock"), b"\x00\x01not json at all").unwrap();
    let garbage = ecops_json(&["lock", "status", "--base", base_s, "--json"]);
    assert_eq!(
        (garbage["held"].as_bool(), garbage["readable"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(!garbage["reason"].as_str().unwrap().is_empty());

    // A live holder on this host, heartbeat fresh: not stale.
    let now = chrono::Utc::now();
    std::fs::write(base.join(".lock"), lock_json("me", std::process::id(), now)).unwrap();
    let live = ecops_json(&["lock", "status", "--base", base_s, "--json"]);
    assert_eq!(
        (live["stale"].as_bool(), live["generation"].as_u64()),
        (Some(false), Some(3))
    );
    assert_eq!(live["operation"], "ingest");

    // A holder on this host whose process has exited: stale at once, whatever the TTL.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    std::fs::write(base.join(".lock"), lock_json("crashed", dead_pid, now)).unwrap();
    let dead = ecops_json(&["lock", "status", "--base", base_s, "--json"]);
    assert_eq!(dead["stale"], true);
    assert_eq!(dead["stale_reason"], "holder_gone");
}

#[tokio::test]
async fn status_reads_a_lock_on_s3() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let base = s3_base("lock");
    let location = ecops::store::Location::parse(&base).unwrap();
    let store = ecops::store::open_location(
        &location,
        &ecops::store::S3Options {
            endpoint: Some(endpoint.clone()),
            anonymous: false,
        },
    )
    .unwrap();
    let old = chrono::Utc::now() - chrono::Duration::hours(2);
    let body = lock_json("remote", 1, old).replace(&local_hostname(), "another-host");
    object_store::ObjectStoreExt::put(
        store.object_store().as_ref(),
        &store.key(".lock"),
        body.into_bytes().into(),
    )
    .await
    .unwrap();
    let status = ecops_json_with(
        &["lock", "status", "--base", &base, "--json"],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    );
    assert_eq!(status["owner"], "remote");
    assert_eq!(status["stale"], true, "heartbeat 2 h old with a 1 h TTL");
    assert_eq!(status["stale_reason"], "expired");
}
