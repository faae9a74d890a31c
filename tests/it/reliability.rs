//! Commits that retry safely: an ingest sharing its table with a writer that
//! ignores the lock (PyIceberg appending in a loop) loses compare-and-swaps
//! and replays them; uploads and metadata writes whose acknowledgement is
//! lost, or that time out, are settled by reading back — never registered
//! twice, never lost.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ecops::catalog::OpenOptions;
use serde_json::Value;

use crate::common::{catalog_rows, ecops_with, python, s3_base, s3_endpoint};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn demo(dir: &Path, items: usize) -> (PathBuf, PathBuf) {
    let out = dir.join("demo");
    let made = ecops_with(
        &["demo-data", "--items", &items.to_string(), "--out", s(&out)],
        &[],
    );
    assert!(made.status.success());
    (out.join("inventory/inventory.csv"), out.join("items"))
}

/// `ecops ingest … --json` with `envs`: (exit code, summary).
fn ingest(args: &[&str], envs: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["ingest", "--json"];
    all.extend_from_slice(args);
    let out = ecops_with(&all, envs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), summary)
}

/// Live data files of the table: (paths, any path listed twice?).
async fn live_paths(base: &str, opts: &OpenOptions) -> (usize, BTreeSet<String>) {
    let catalog = ecops::catalog::EarthCatalog::open(base, opts)
        .await
        .unwrap();
    let files = ecops::catalog::stats::live_files(&catalog.table().await.unwrap())
        .await
        .unwrap();
    let n = files.len();
    (n, files.into_iter().map(|f| f.path).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_and_a_lock_ignoring_pyiceberg_writer_both_finish_with_every_row_once() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 400);
    let base = dir.path().join("cat");
    let init = ecops_with(&["init", "--base", s(&base)], &[]);
    assert!(init.status.success());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/append_loop.py");
    let writer = Command::new(&py)
        .arg(&script)
        .args([s(&base), "40", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the other writer get going before ingest starts committing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = crate::common::ecops_json(&["stats", "--base", s(&base), "--json"]);
        if stats["snapshots"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the PyIceberg writer made no commit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, summary) = ingest(
        &[
            "--base",
            s(&base),
            "--inventory",
            s(&inventory),
            "--items-root",
            s(&items),
            "--chunk-size",
            "25",
            "--commit-retries",
            "30",
        ],
        &[("ECOPS_FAULT_PAUSE_BEFORE_SWAP_MS", "150")],
    );
    let out = writer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let appended: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary["commit_retries"].as_u64().unwrap() >= 1,
        "the ingest lost at least one compare-and-swap and replayed it: {summary}"
    );
    let rows = catalog_rows(s(&base), &OpenOptions::default()).await;
    let total: u64 = rows.values().map(|n| u64::from(*n)).sum();
    assert_eq!(
        total,
        summary["rows"].as_u64().unwrap() + appended["rows"].as_u64().unwrap(),
        "rows = the ingest's + the other writer's"
    );
    assert!(rows.values().all(|n| *n == 1), "a row registered twice");
    let (n, distinct) = live_paths(s(&base), &OpenOptions::default()).await;
    assert_eq!(n, distinct.len(), "a data file registered twice");
    eprintln!(
        "reliability: ingest beside a lock-ignoring PyIceberg writer: {} commit retries, {} ambiguous commits settled, rows lost 0, duplicated 0",
        summary["commit_retries"], summary["ambiguous_commits"]
    );
}

/// Every (id, cell) row of a clean ingest of the same inventory.
async fn reference_rows(dir: &Path, inventory: &Path, items: &Path) -> Vec<(String, String)> {
    let base = dir.join("reference");
    let (code, _) = ingest(
        &[
            "--base",
            s(&base),
            "--inventory",
            s(inventory),
            "--items-root",
            s(items),
            "--chunk-size",
            "40",
        ],
        &[],
    );
    assert_eq!(code, 0);
    catalog_rows(s(&base), &OpenOptions::default())
        .await
        .into_keys()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_acks_and_timeouts_of_the_s3_hosted_database_are_settled_not_doubled() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 200);
    let expected = reference_rows(dir.path(), &inventory, &items).await;
    let opts = OpenOptions {
        s3: ecops::store::S3Options {
            endpoint: Some(endpoint.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    for (faults, counter) in [
        (
            "seed=3,ack_loss_rate=0.5,only=**/earthcatalog.db,quiet=1",
            "ambiguous_commits",
        ),
        (
            "seed=4,timeout_rate=0.4,timeout_ms=50,only=**/earthcatalog.db,quiet=1",
            "commit_retries",
        ),
    ] {
        let base = s3_base("reliability-db");
        let (code, summary) = ingest(
            &[
                "--base",
                &base,
                "--inventory",
                s(&inventory),
                "--items-root",
                s(&items),
                "--chunk-size",
                "40",
                "--commit-retries",
                "20",
            ],
            &[("AWS_ENDPOINT_URL", &endpoint), ("ECOPS_FAULTS", faults)],
        );
        assert_eq!(code, 0, "{faults}: {summary}");
        assert!(
            summary[counter].as_u64().unwrap() >= 1,
            "{faults}: {summary}"
        );
        let rows = catalog_rows(&base, &opts).await;
        assert!(
            rows.values().all(|n| *n == 1),
            "{faults}: a row registered twice"
        );
        assert_eq!(
            rows.into_keys().collect::<Vec<_>>(),
            expected,
            "{faults}: rows lost or added"
        );
        let (n, distinct) = live_paths(&base, &opts).await;
        assert_eq!(n, distinct.len(), "{faults}: a data file registered twice");
        eprintln!(
            "reliability: S3-hosted database under {faults}: {} commit retries, {} ambiguous commits settled, rows lost 0, duplicated 0",
            summary["commit_retries"], summary["ambiguous_commits"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_writes_that_lose_their_ack_on_a_local_catalog_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 200);
    let expected = reference_rows(dir.path(), &inventory, &items).await;
    // Lost acknowledgements only: injected timeouts would hit the metadata
    // reads as well (the S3 test above times out the database upload).
    for (n, faults) in [
        "seed=5,ack_loss_rate=0.5,only=**/*.metadata.json,quiet=1",
        "seed=7,ack_loss_rate=0.7,only=**/*.metadata.json,quiet=1",
    ]
    .into_iter()
    .enumerate()
    {
        let base = dir.path().join(format!("cat-{n}"));
        let init = ecops_with(&["init", "--base", s(&base)], &[]);
        assert!(init.status.success());
        let (code, summary) = ingest(
            &[
                "--base",
                s(&base),
                "--inventory",
                s(&inventory),
                "--items-root",
                s(&items),
                "--chunk-size",
                "40",
                "--commit-retries",
                "20",
            ],
            &[("ECOPS_FAULTS", faults)],
        );
        assert_eq!(code, 0, "{faults}: {summary}");
        assert!(
            summary["commit_retries"].as_u64().unwrap() >= 1,
            "{faults}: {summary}"
        );
        let rows = catalog_rows(s(&base), &OpenOptions::default()).await;
        assert!(
            rows.values().all(|n| *n == 1),
            "{faults}: a row registered twice"
        );
        assert_eq!(rows.into_keys().collect::<Vec<_>>(), expected, "{faults}");
        eprintln!(
            "reliability: local catalog under {faults}: {} commit retries, {} ambiguous commits settled, rows lost 0, duplicated 0",
            summary["commit_retries"], summary["ambiguous_commits"]
        );
    }
}
