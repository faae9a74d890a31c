//! Concurrent writers, as real processes on one local catalog: a second
//! ingest is refused with the holder named (or waits with `--wait` and runs
//! after the first), and an ingest whose lock is stolen stops before its next
//! commit; a rerun then finishes the job with nothing lost.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ecops, ecops_json};
use ecops::catalog::{EarthCatalog, OpenOptions};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Demo items and two inventories splitting them in halves.
fn inputs(dir: &Path, items: usize) -> (PathBuf, PathBuf, PathBuf) {
    let data = dir.join("data");
    ecops_json(&[
        "demo-data",
        "--json",
        "--items",
        &items.to_string(),
        "--out",
        s(&data),
    ]);
    let text = std::fs::read_to_string(data.join("inventory/inventory.csv")).expect("inventory");
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let (a, b) = (dir.join("first.csv"), dir.join("second.csv"));
    std::fs::write(&a, first.join("\n") + "\n").expect("write");
    std::fs::write(&b, second.join("\n") + "\n").expect("write");
    (data.join("items"), a, b)
}

/// `ecops ingest` as a child, holding each chunk `pause_ms` before its commit.
fn spawn_ingest(
    base: &Path,
    inventory: &Path,
    items: &Path,
    pause_ms: u64,
    extra: &[&str],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args([
            "ingest",
            "--json",
            "--base",
            s(base),
            "--inventory",
            s(inventory),
            "--items-root",
            s(items),
            "--chunk-size",
            "40",
        ])
        .args(extra)
        .env_remove("ECOPS_BASE")
        .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", pause_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ecops ingest")
}

fn ingest_now(base: &Path, inventory: &Path, items: &Path) {
    let out = ecops(&[
        "ingest",
        "--json",
        "--base",
        s(base),
        "--inventory",
        s(inventory),
        "--items-root",
        s(items),
        "--chunk-size",
        "40",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The job id of every snapshot, oldest first (`None` for snapshots without one).
async fn snapshot_jobs(base: &Path) -> Vec<Option<String>> {
    let catalog = EarthCatalog::open(s(base), &OpenOptions::default())
        .await
        .expect("open");
    let table = catalog.table().await.expect("table");
    let mut snapshots: Vec<_> = table.metadata().snapshots().cloned().collect();
    snapshots.sort_by_key(|s| s.sequence_number());
    snapshots
        .iter()
        .map(|s| {
            s.summary()
                .additional_properties
                .get("ecops.job-id")
                .cloned()
        })
        .collect()
}

fn rows(base: &Path) -> u64 {
    ecops_json(&["stats", "--json", "--read-only", "--base", s(base)])["rows"]
        .as_u64()
        .expect("rows")
}

fn lock_status(base: &Path) -> serde_json::Value {
    ecops_json(&["lock", "status", "--json", "--base", s(base)])
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_ingest_is_refused_with_the_holder_named_or_waits_with_wait() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (items, first, second) = inputs(tmp.path(), 240);
    let reference = tmp.path().join("reference");
    ingest_now(&reference, &first, &items);
    ingest_now(&reference, &second, &items);

    let base = tmp.path().join("catalog");
    let holder = spawn_ingest(&base, &first, &items, 400, &[]);
    wait_until(
        "the first ingest to hold the lock",
        Duration::from_secs(60),
        || base.join("earthcatalog.db").exists() && lock_status(&base)["held"] == true,
    );

    // Without --wait: refused at once, naming the holder's operation.
    let refused = ecops(&[
        "ingest",
        "--json",
        "--base",
        s(&base),
        "--inventory",
        s(&second),
        "--items-root",
        s(&items),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{stdout}\n{stderr}");
    // With --json, the refusal is also the last stdout line, as JSON.
    let refusal: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("JSON on stdout");
    let said = refusal["error"].as_str().unwrap_or_default();
    assert!(
        said.contains("lock") && said.contains("operation ingest"),
        "the refusal names the lock and the holder's operation: {said}"
    );
    assert!(
        stderr.contains(said),
        "and says the same on stderr: {stderr}"
    );

    // With --wait: runs once the first has released the lock.
    let waiter = spawn_ingest(&base, &second, &items, 0, &["--wait"]);
    let (code, out, err) = finish(holder);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = finish(waiter);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("waiting for the catalog lock"),
        "the waiter says what it waits for: {err}"
    );

    // The waiter's commits all come after the holder's: it never interleaved.
    let jobs: Vec<String> = snapshot_jobs(&base).await.into_iter().flatten().collect();
    let first_job = jobs.first().cloned().expect("a job id");
    let switch = jobs.iter().position(|j| *j != first_job).expect("two jobs");
    assert!(
        jobs[switch..].iter().all(|j| *j != first_job),
        "commits interleaved: {jobs:?}"
    );
    assert_eq!(rows(&base), rows(&reference));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingest_whose_lock_is_stolen_stops_before_its_next_commit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (items, first, _) = inputs(tmp.path(), 240);
    let reference = tmp.path().join("reference");
    ingest_now(&reference, &first, &items);

    let base = tmp.path().join("catalog");
    let victim = spawn_ingest(&base, &first, &items, 1500, &[]);
    // Steal while a chunk's files are written and it waits to commit.
    wait_until("a first commit", Duration::from_secs(60), || {
        base.join("earthcatalog.db").exists() && lock_status(&base)["held"] == true
    });
    let committed = || {
        let rt = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| rt.block_on(snapshot_jobs(&base)))
            .into_iter()
            .flatten()
            .count()
    };
    wait_until("a first commit", Duration::from_secs(60), || {
        committed() >= 1
    });
    let before = committed();
    let generation = lock_status(&base)["generation"]
        .as_u64()
        .expect("generation");
    let stolen = ecops_json(&[
        "lock",
        "steal",
        "--json",
        "--yes",
        "--owner",
        "operator",
        "--force",
        &generation.to_string(),
        "--base",
        s(&base),
    ]);
    assert_eq!(
        stolen["generation"].as_u64(),
        Some(generation + 1),
        "{stolen}"
    );
    let at_steal = committed();

    let (code, out, err) = finish(victim);
    assert_ne!(code, 0, "the old holder must fail: {out}\n{err}");
    assert!(
        format!("{out}{err}").contains("lock"),
        "it says the lock was lost: {out}\n{err}"
    );
    assert!(at_steal >= before);
    assert_eq!(
        committed(),
        at_steal,
        "the old holder committed after its lock was stolen"
    );
    assert!(rows(&base) < rows(&reference), "the job was cut short");

    // The operator gives the lock back; the same command finishes the job.
    let released = ecops(&[
        "lock",
        "release",
        "--generation",
        &(generation + 1).to_string(),
        "--base",
        s(&base),
    ]);
    assert!(
        released.status.success(),
        "{}",
        String::from_utf8_lossy(&released.stderr)
    );
    ingest_now(&base, &first, &items);
    assert_eq!(rows(&base), rows(&reference));
}
