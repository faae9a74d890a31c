//! Compaction and table maintenance end to end: de-duplication (newest
//! `updated`, then latest file), PyIceberg and time travel, dry run, a
//! process killed mid-compaction, a concurrent append, orphan removal,
//! snapshot expiry, the lock, read-only, and a catalog on S3.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use common::{ecops_json_with, ecops_with, python, run_python, s3_base, s3_endpoint};
use ecops::catalog::{EarthCatalog, OpenOptions, WriteOptions};
use ecops::stac::Item;
use iceberg::spec::Snapshot;
use iceberg::table::Table;
use serde_json::Value;

/// One row as compaction sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    id: String,
    cell: String,
    version: i64,
    updated: Option<i64>,
}

fn local() -> OpenOptions {
    OpenOptions::default()
}

fn s3_opts(endpoint: &str) -> OpenOptions {
    OpenOptions {
        read_only: false,
        s3: ecops::store::S3Options {
            endpoint: Some(endpoint.to_string()),
            anonymous: false,
        },
        ..Default::default()
    }
}

/// Scenes `range` as version `version` (stored in percent_valid_pixels) updated at `updated`.
fn versioned(range: std::ops::Range<usize>, version: i64, updated: Option<&str>) -> Vec<Item> {
    ecops::demo::scenes(range.len(), range.start)
        .into_iter()
        .map(|mut item| {
            item.percent_valid_pixels = Some(version);
            item.updated = updated.map(|u| u.parse().unwrap());
            item
        })
        .collect()
}

/// Four appends with overlapping ids: v2 is newer than v1 for 20..40; v3
/// rewrites 30..35 with an *older* `updated` (must lose to v2); v4 rewrites
/// 0..5 with v1's `updated` (a tie: the later file wins); 60..64 have no `updated`.
fn versions() -> Vec<Vec<Item>> {
    vec![
        versioned(0..40, 1, Some("2024-01-01T00:00:00Z")),
        versioned(20..60, 2, Some("2024-06-01T00:00:00Z")),
        versioned(30..35, 3, Some("2023-01-01T00:00:00Z")),
        versioned(0..5, 4, Some("2024-01-01T00:00:00Z")),
        versioned(60..64, 5, None),
        versioned(60..62, 6, None),
    ]
}

async fn build(base: &str, opts: &OpenOptions, appends: &[Vec<Item>]) {
    let (catalog, _) = EarthCatalog::init(base, 1, opts).await.unwrap();
    for items in appends {
        catalog
            .append_items(items, &WriteOptions::default(), HashMap::new())
            .await
            .unwrap();
    }
}

/// Live data files of `snapshot` (or the current one).
async fn files_at(table: &Table, snapshot: Option<&Snapshot>) -> Vec<String> {
    let snapshot = match snapshot {
        Some(s) => s,
        None => match table.metadata().current_snapshot() {
            Some(s) => s.as_ref(),
            None => return vec![],
        },
    };
    let list = ecops::catalog::stats::manifest_list(table, snapshot)
        .await
        .unwrap();
    ecops::catalog::stats::files_of_manifests(table, list.entries())
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

/// Every row of `files`, read through the table's FileIO.
async fn rows_of(table: &Table, files: &[String]) -> Vec<Row> {
    let mut rows = Vec::new();
    for path in files {
        for batch in common::read_data_file(table, path).await {
            let ids = batch.column_by_name("id").unwrap().as_string::<i32>();
            let cells = batch
                .column_by_name("grid_partition")
                .unwrap()
                .as_string::<i32>();
            let version = batch
                .column_by_name("percent_valid_pixels")
                .unwrap()
                .as_primitive::<Int64Type>();
            let updated = batch
                .column_by_name("updated")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            for i in 0..batch.num_rows() {
                rows.push(Row {
                    id: ids.value(i).to_string(),
                    cell: cells.value(i).to_string(),
                    version: version.value(i),
                    updated: updated.is_valid(i).then(|| updated.value(i)),
                });
            }
        }
    }
    rows.sort();
    rows
}

async fn current_rows(base: &str, opts: &OpenOptions) -> Vec<Row> {
    let catalog = EarthCatalog::open(base, opts).await.unwrap();
    let table = catalog.table().await.unwrap();
    let files = files_at(&table, None).await;
    rows_of(&table, &files).await
}

/// What compaction must keep: per (id, cell) the row with the greatest
/// (updated, version) — versions are appended in order, so a higher version
/// is a later file. Nulls sort first (oldest).
fn winners(rows: &[Row]) -> Vec<Row> {
    let mut best: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in rows {
        let key = (r.id.clone(), r.cell.clone());
        match best.get(&key) {
            Some(b) if (b.updated, b.version) >= (r.updated, r.version) => {}
            _ => {
                best.insert(key, r.clone());
            }
        }
    }
    best.into_values().collect()
}

/// Files per (cell, year) bucket, from stats.
async fn bucket_files(base: &str, opts: &OpenOptions) -> BTreeMap<(String, Option<i32>), u64> {
    let catalog = EarthCatalog::open(base, opts).await.unwrap();
    let stats = catalog.stats(&Default::default()).await.unwrap();
    stats
        .partitions_detail
        .into_iter()
        .map(|p| ((p.cell, p.year), p.files))
        .collect()
}

/// Every file any snapshot of the table references exists in the store.
async fn assert_all_referenced_files_exist(base: &str, opts: &OpenOptions) {
    let catalog = EarthCatalog::open(base, opts).await.unwrap();
    let table = catalog.table().await.unwrap();
    let mut checked = 0;
    for snapshot in table.metadata().snapshots() {
        assert!(
            table
                .file_io()
                .exists(snapshot.manifest_list())
                .await
                .unwrap(),
            "manifest list {} is missing",
            snapshot.manifest_list()
        );
        for path in files_at(&table, Some(snapshot)).await {
            assert!(
                table.file_io().exists(&path).await.unwrap(),
                "{path} of snapshot {} is missing",
                snapshot.snapshot_id()
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

fn compact_json(base: &str, extra: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut args = vec!["compact", "--base", base, "--json"];
    args.extend_from_slice(extra);
    ecops_json_with(&args, envs)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn compaction_keeps_the_newest_row_per_id_and_pyiceberg_sees_both_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("cat");
    let base = s(&base);
    build(base, &local(), &versions()).await;
    let before = current_rows(base, &local()).await;
    let expected = winners(&before);
    let buckets_before = bucket_files(base, &local()).await;
    let multi = buckets_before.values().filter(|&&n| n >= 2).count() as u64;
    assert!(
        multi > 0 && expected.len() < before.len(),
        "the fixture must have duplicates"
    );

    let summary = compact_json(base, &[], &[]);
    assert_eq!(summary["phase"], "done");
    assert_eq!(summary["buckets_scanned"], buckets_before.len() as u64);
    assert_eq!(summary["buckets_compacted"], multi);
    assert_eq!(summary["rows_before"], before.len() as u64);
    assert_eq!(summary["rows_after"], expected.len() as u64);
    assert_eq!(
        summary["duplicates_removed"],
        (before.len() - expected.len()) as u64
    );
    assert_eq!(
        summary["files_before"],
        buckets_before.values().sum::<u64>()
    );
    assert_eq!(summary["files_after"], buckets_before.len() as u64);

    // Rows after = distinct (id, cell) pairs before, each the newest version.
    let after = current_rows(base, &local()).await;
    assert_eq!(after, expected);
    // One file per bucket now, every bucket still there.
    let buckets_after = bucket_files(base, &local()).await;
    assert_eq!(
        buckets_after.keys().collect::<Vec<_>>(),
        buckets_before.keys().collect::<Vec<_>>()
    );
    assert!(buckets_after.values().all(|&n| n == 1), "{buckets_after:?}");

    // The replace snapshot's summary totals match the table.
    let catalog = EarthCatalog::open(base, &local()).await.unwrap();
    let table = catalog.table().await.unwrap();
    let current = table.metadata().current_snapshot().unwrap();
    assert_eq!(current.summary().operation.as_str(), "replace");
    let prop = |k: &str| current.summary().additional_properties.get(k).cloned();
    assert_eq!(prop("total-records"), Some(expected.len().to_string()));
    assert_eq!(
        prop("total-data-files"),
        Some(buckets_after.len().to_string())
    );
    assert_eq!(
        prop("deleted-data-files"),
        Some(
            buckets_before
                .values()
                .filter(|&&n| n >= 2)
                .sum::<u64>()
                .to_string()
        )
    );
    // Time travel: the parent still sees the old files and rows.
    let parent = table
        .metadata()
        .snapshot_by_id(current.parent_snapshot_id().unwrap())
        .unwrap();
    assert_eq!(
        rows_of(&table, &files_at(&table, Some(parent)).await).await,
        before
    );
    assert_all_referenced_files_exist(base, &local()).await;

    // Output files are sorted by (platform, datetime).
    for path in files_at(&table, None).await {
        for batch in common::read_data_file(&table, &path).await {
            let p = batch.column_by_name("platform").unwrap().as_string::<i32>();
            let d = batch
                .column_by_name("datetime")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            let keys: Vec<_> = (0..batch.num_rows())
                .map(|i| (p.value(i), d.value(i)))
                .collect();
            assert!(keys.is_sorted(), "{path} is not sorted");
        }
    }

    // A second run finds nothing to do.
    let again = compact_json(base, &[], &[]);
    assert_eq!(again["buckets_compacted"], 0);
    assert_eq!(again["commits"], 0);

    // PyIceberg reads the compacted table and every snapshot.
    let Some(python) = python() else {
        return;
    };
    let seen = run_python(&python, "compact_check.py", &[base]);
    let as_rows = |v: &Value| -> Vec<(String, String, i64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap().to_string(),
                    r[1].as_str().unwrap().to_string(),
                    r[2].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let triples = |rows: &[Row]| -> Vec<(String, String, i64)> {
        let mut t: Vec<_> = rows
            .iter()
            .map(|r| (r.id.clone(), r.cell.clone(), r.version))
            .collect();
        t.sort();
        t
    };
    assert_eq!(as_rows(&seen["rows"]), triples(&expected));
    let snaps = seen["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), versions().len() + 1);
    let last = &snaps[snaps.len() - 1];
    let previous = &snaps[snaps.len() - 2];
    assert_eq!(last["operation"], "replace");
    assert_eq!(previous["operation"], "append");
    assert_eq!(as_rows(&previous["rows"]), triples(&before));
    assert_eq!(
        last["summary_total_records"].as_str(),
        Some(expected.len().to_string().as_str())
    );
}

/// Every byte under `dir`, by relative path. A file or folder removed while
/// it is walked (a writer may be running: temp files renamed, index deltas
/// merged away) is left out, so two walks around a change still differ.
fn snapshot_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if let Ok(bytes) = std::fs::read(entry.path()) {
                out.insert(entry.path().strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Drops SQLite's `-wal`/`-shm` side files: a read-only connection to a WAL
/// database creates them and, being read-only, cannot remove them on close.
/// The database file itself must still be byte-identical.
fn without_sqlite_transients(mut tree: BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<PathBuf, Vec<u8>> {
    tree.retain(|k, _| {
        let name = k.to_string_lossy();
        !(name.ends_with(".db-wal") || name.ends_with(".db-shm"))
    });
    tree
}

/// Fails naming the paths that differ (not their bytes).
fn assert_same_tree(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    let differ: Vec<&PathBuf> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:?}");
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let base_path = tmp.path().join("cat");
    let base = s(&base_path);
    build(base, &local(), &versions()).await;
    let buckets = bucket_files(base, &local()).await;
    let before = snapshot_tree(&base_path);

    let plan = compact_json(base, &["--dry-run"], &[]);
    assert_same_tree(&snapshot_tree(&base_path), &before, "dry run changed files");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["commits"], 0);
    let selected: BTreeSet<(String, Option<i32>)> = buckets
        .iter()
        .filter(|(_, n)| **n >= 2)
        .map(|(k, _)| k.clone())
        .collect();
    let listed: BTreeSet<(String, Option<i32>)> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["cell"].as_str().unwrap().to_string(),
                b["year"].as_i64().map(|y| y as i32),
            )
        })
        .collect();
    assert_eq!(listed, selected);
    for b in plan["plan"].as_array().unwrap() {
        let key = (
            b["cell"].as_str().unwrap().to_string(),
            b["year"].as_i64().map(|y| y as i32),
        );
        assert_eq!(b["files"].as_u64(), buckets.get(&key).copied());
        assert_eq!(b["expected_files"], 1);
    }
    assert_eq!(plan["buckets_planned"], selected.len() as u64);
    assert_eq!(plan["files_after"], buckets.len() as u64);

    // A higher threshold selects only the buckets with that many files.
    let strict = compact_json(base, &["--dry-run", "--threshold", "4"], &[]);
    assert_eq!(
        strict["buckets_planned"],
        buckets.values().filter(|&&n| n >= 4).count() as u64
    );
    assert_same_tree(&snapshot_tree(&base_path), &before, "dry run changed files");
    // The text form too, and read-only is enough for it.
    let out = ecops_with(
        &["compact", "--base", base, "--dry-run", "--read-only"],
        &[],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("compaction plan (dry run)"));
    assert_same_tree(
        &without_sqlite_transients(snapshot_tree(&base_path)),
        &without_sqlite_transients(before),
        "read-only dry run changed files",
    );
}

#[tokio::test]
async fn compaction_refuses_read_only_and_a_held_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("cat");
    let base = s(&base);
    build(base, &local(), &versions()[..2]).await;
    let held = common::ecops_json(&[
        "lock", "acquire", "--base", base, "--owner", "tester", "--json",
    ]);
    let locked = snapshot_tree(Path::new(base));
    let out = ecops_with(&["compact", "--base", base, "--json"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("held by") && err.contains("tester"), "{err}");
    assert_same_tree(
        &snapshot_tree(Path::new(base)),
        &locked,
        "changed under a held lock",
    );
    let generation = held["generation"].as_u64().unwrap().to_string();
    let out = ecops_with(
        &[
            "lock",
            "release",
            "--base",
            base,
            "--generation",
            &generation,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let released = snapshot_tree(Path::new(base));
    let out = ecops_with(&["compact", "--base", base, "--read-only"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    assert_same_tree(
        &without_sqlite_transients(snapshot_tree(Path::new(base))),
        &without_sqlite_transients(released),
        "changed by a read-only run",
    );
    let summary = compact_json(base, &[], &[]);
    assert!(summary["buckets_compacted"].as_u64().unwrap() > 0);
}

/// A demo catalog ingested in small chunks: many buckets of several files.
fn ingested_catalog(dir: &Path, items: &str, chunk: &str) -> String {
    let demo = dir.join("demo");
    let out = ecops_with(&["demo-data", "--items", items, "--out", s(&demo)], &[]);
    assert!(out.status.success());
    let base = dir.join("cat");
    let out = ecops_with(
        &[
            "ingest",
            "--base",
            s(&base),
            "--inventory",
            s(&demo.join("inventory/inventory.csv")),
            "--items-root",
            s(&demo.join("items")),
            "--chunk-size",
            chunk,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    base.to_str().unwrap().to_string()
}

async fn replace_commits(base: &str) -> usize {
    let Ok(catalog) = EarthCatalog::open(
        base,
        &OpenOptions {
            read_only: true,
            ..local()
        },
    )
    .await
    else {
        return 0;
    };
    let Ok(table) = catalog.table().await else {
        return 0;
    };
    table
        .metadata()
        .snapshots()
        .filter(|s| s.summary().operation.as_str() == "replace")
        .count()
}

#[tokio::test]
async fn a_killed_compaction_leaves_a_valid_table_and_a_rerun_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let base = ingested_catalog(tmp.path(), "400", "40");
    let before = current_rows(&base, &local()).await;
    let expected = winners(&before);
    let buckets = bucket_files(&base, &local()).await;
    let multi = buckets.values().filter(|&&n| n >= 2).count();
    assert!(
        multi >= 6,
        "the fixture needs several groups: {multi} buckets"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args(["compact", "--base", &base, "--json", "--group-files", "8"])
        .env_remove("ECOPS_BASE")
        .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", "400")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while replace_commits(&base).await == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no commit within 60 s");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Now in the pause before the second group's commit, its files written.
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let committed = replace_commits(&base).await;
    assert!(committed >= 1);
    assert!(
        bucket_files(&base, &local())
            .await
            .values()
            .any(|&n| n >= 2),
        "the kill came too late to test anything"
    );

    // Valid: every referenced file exists; the rows are the same items.
    assert_all_referenced_files_exist(&base, &local()).await;
    let mid = current_rows(&base, &local()).await;
    assert_eq!(winners(&mid), expected);

    // The rerun takes over the dead run's lock and finishes the job.
    let summary = compact_json(&base, &[], &[]);
    assert_eq!(summary["phase"], "done");
    assert_eq!(current_rows(&base, &local()).await, expected);
    assert!(
        bucket_files(&base, &local())
            .await
            .values()
            .all(|&n| n == 1)
    );
    assert_all_referenced_files_exist(&base, &local()).await;

    // The killed group's files are orphans; remove-orphans deletes only them.
    let dry = ecops_json_with(
        &[
            "remove-orphans",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    let orphans = dry["orphans"].as_u64().unwrap();
    assert!(orphans >= 1, "{dry}");
    for p in dry["paths"].as_array().unwrap() {
        assert!(
            Path::new(p.as_str().unwrap()).is_file(),
            "dry run deleted {p}"
        );
    }
    let done = ecops_json_with(
        &[
            "remove-orphans",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--json",
        ],
        &[],
    );
    assert_eq!(done["deleted"].as_u64(), Some(orphans));
    for p in dry["paths"].as_array().unwrap() {
        assert!(!Path::new(p.as_str().unwrap()).exists(), "{p} survived");
    }
    assert_all_referenced_files_exist(&base, &local()).await;
    assert_eq!(current_rows(&base, &local()).await, expected);
}

#[tokio::test]
async fn a_concurrent_append_during_compaction_is_not_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let base_path = tmp.path().join("cat");
    let base = s(&base_path).to_string();
    build(&base, &local(), &versions()).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args(["compact", "--base", &base, "--json"])
        .env_remove("ECOPS_BASE")
        .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", "3000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the compaction has written files (it is then in its pause).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tree = snapshot_tree(&base_path);
        if tree
            .keys()
            .any(|k| k.to_string_lossy().contains("compact-"))
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "compaction ended early"
        );
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another writer (one that ignores the lock) appends: new versions of
    // compacted ids and brand-new ids, into buckets being compacted.
    let extra = versioned(10..25, 7, Some("2025-01-01T00:00:00Z"));
    let writer = EarthCatalog::open(&base, &local()).await.unwrap();
    writer
        .append_items(&extra, &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    let after_append = current_rows(&base, &local()).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert!(summary["replans"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(summary["phase"], "done");

    // Every appended row is still there, and nothing the compaction read is duplicated.
    let after = current_rows(&base, &local()).await;
    let appended: Vec<&Row> = after_append.iter().filter(|r| r.version == 7).collect();
    assert!(!appended.is_empty());
    for r in &appended {
        assert!(after.contains(r), "appended row {r:?} was lost");
    }
    let expected_old = winners(
        &after_append
            .iter()
            .filter(|r| r.version != 7)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let old_after: Vec<Row> = after.iter().filter(|r| r.version != 7).cloned().collect();
    assert_eq!(old_after, expected_old);
    assert_all_referenced_files_exist(&base, &local()).await;
}

#[tokio::test]
async fn orphans_and_expiry_never_delete_what_a_snapshot_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let base_path = tmp.path().join("cat");
    let base = s(&base_path).to_string();
    build(&base, &local(), &versions()).await;
    let before = current_rows(&base, &local()).await;
    let expected = winners(&before);
    compact_json(&base, &[], &[]);

    // Plant orphans: a data file and a metadata file nobody references.
    let catalog = EarthCatalog::open(&base, &local()).await.unwrap();
    let table = catalog.table().await.unwrap();
    let some_file = files_at(&table, None).await.remove(0);
    let data_orphan = Path::new(&some_file)
        .parent()
        .unwrap()
        .join("part_999999_orphan.parquet");
    std::fs::copy(&some_file, &data_orphan).unwrap();
    let meta_dir = Path::new(table.metadata_location().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let meta_orphan = meta_dir.join("orphan-m0.avro");
    std::fs::write(&meta_orphan, b"not referenced").unwrap();
    let untouchable: Vec<PathBuf> = ["earthcatalog.db", ".lock"]
        .iter()
        .map(|n| base_path.join(n))
        .filter(|p| p.exists())
        .collect();

    // The default guard (3 days) keeps fresh files.
    let guarded = ecops_json_with(&["remove-orphans", "--base", &base, "--json"], &[]);
    assert_eq!(guarded["orphans"], 0);
    assert!(guarded["too_new"].as_u64().unwrap() >= 2);
    assert!(data_orphan.exists() && meta_orphan.exists());

    let removed = ecops_json_with(
        &[
            "remove-orphans",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--json",
        ],
        &[],
    );
    let paths: BTreeSet<String> = removed["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            data_orphan.to_string_lossy().into_owned(),
            meta_orphan.to_string_lossy().into_owned()
        ])
    );
    assert!(!data_orphan.exists() && !meta_orphan.exists());
    for p in &untouchable {
        assert!(p.exists(), "{} was deleted", p.display());
    }
    assert_all_referenced_files_exist(&base, &local()).await;

    // Expire everything but the current snapshot: the old small files go,
    // everything the current snapshot reads stays.
    let old_files: BTreeSet<String> = {
        let mut all = BTreeSet::new();
        for s in table.metadata().snapshots() {
            all.extend(files_at(&table, Some(s)).await);
        }
        all
    };
    let current_files: BTreeSet<String> = files_at(&table, None).await.into_iter().collect();
    let snapshots = table.metadata().snapshots().len() as u64;
    let dry = ecops_json_with(
        &[
            "expire-snapshots",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--retain-last",
            "1",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_eq!(dry["snapshots_expired"], snapshots - 1);
    let gone = old_files.difference(&current_files).count() as u64;
    assert_eq!(dry["data_files_deleted"], gone);
    // The plan says what goes and how big it is, before anything is deleted.
    let gone_files: Vec<&String> = old_files.difference(&current_files).collect();
    let gone_bytes: u64 = gone_files
        .iter()
        .map(|f| {
            std::fs::metadata(Path::new(f.trim_start_matches("file://")))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(dry["data_bytes"], gone_bytes);
    assert!(
        dry["bytes"].as_u64().unwrap() > gone_bytes,
        "manifests and lists count too"
    );
    let planned: BTreeSet<&str> = dry["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(gone_files.iter().all(|f| planned.contains(f.as_str())));
    assert!(current_files.iter().all(|f| !planned.contains(f.as_str())));
    assert!(
        old_files.iter().all(|f| Path::new(f).exists()),
        "dry run deleted"
    );

    let expired = ecops_json_with(
        &[
            "expire-snapshots",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--retain-last",
            "1",
            "--json",
        ],
        &[],
    );
    assert_eq!(expired["snapshots_after"], 1);
    assert_eq!(expired["data_files_deleted"], gone);
    assert_eq!(expired["delete_errors"].as_array().unwrap().len(), 0);
    for f in &old_files {
        assert_eq!(
            Path::new(f).exists(),
            current_files.contains(f),
            "{f}: kept iff the current snapshot reads it"
        );
    }
    assert_all_referenced_files_exist(&base, &local()).await;
    assert_eq!(current_rows(&base, &local()).await, expected);
    // Nothing left for orphan removal to find among referenced files.
    let after = ecops_json_with(
        &[
            "remove-orphans",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--json",
        ],
        &[],
    );
    assert_all_referenced_files_exist(&base, &local()).await;
    assert!(after["delete_errors"].as_array().unwrap().is_empty());

    if let Some(python) = python() {
        let seen = run_python(&python, "compact_check.py", &[&base]);
        assert_eq!(seen["snapshots"].as_array().unwrap().len(), 1);
        assert_eq!(seen["rows"].as_array().unwrap().len(), expected.len());
    }
}

#[tokio::test]
async fn compaction_on_s3() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let base = s3_base("compact");
    let opts = s3_opts(&endpoint);
    build(&base, &opts, &versions()).await;
    let before = current_rows(&base, &opts).await;
    let expected = winners(&before);
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let plan = compact_json(&base, &["--dry-run"], &env);
    assert!(plan["buckets_planned"].as_u64().unwrap() > 0);
    let summary = compact_json(&base, &["--group-files", "10"], &env);
    assert_eq!(summary["phase"], "done");
    assert!(summary["commits"].as_u64().unwrap() >= 2, "{summary}");
    assert_eq!(summary["rows_after"], expected.len() as u64);
    assert_eq!(current_rows(&base, &opts).await, expected);
    assert!(bucket_files(&base, &opts).await.values().all(|&n| n == 1));
    assert_all_referenced_files_exist(&base, &opts).await;
    let orphans = ecops_json_with(
        &[
            "remove-orphans",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--json",
        ],
        &env,
    );
    assert_eq!(orphans["orphans"], 0, "{orphans}");
    let expired = ecops_json_with(
        &[
            "expire-snapshots",
            "--base",
            &base,
            "--older-than",
            "0s",
            "--retain-last",
            "2",
            "--json",
        ],
        &env,
    );
    assert_eq!(expired["snapshots_after"], 2);
    assert_all_referenced_files_exist(&base, &opts).await;
    assert_eq!(current_rows(&base, &opts).await, expected);
}

#[tokio::test]
async fn cancelling_commits_the_buckets_already_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("cat");
    let base = s(&base);
    build(base, &local(), &versions()).await;
    let before = current_rows(base, &local()).await;
    let catalog = std::sync::Arc::new(EarthCatalog::open(base, &local()).await.unwrap());
    let (progress_tx, progress_rx) = tokio::sync::watch::channel(Default::default());
    let stop = ecops::runs::Stop::new();
    // Cancelled before it starts: the one bucket in flight (concurrency 1)
    // still finishes and commits; nothing else is started.
    stop.request(ecops::runs::Request::Cancel, "test", None);
    let opts = ecops::compact::CompactOptions {
        concurrency: 1,
        ..Default::default()
    };
    let summary = ecops::compact::run_locked(
        catalog,
        opts,
        &ecops::ingest::LockSettings::default(),
        None,
        progress_tx,
        &stop,
    )
    .await
    .unwrap();
    assert_eq!(summary.phase, ecops::compact::CompactPhase::Cancelled);
    assert_eq!(summary.buckets_compacted, 1);
    assert_eq!(summary.commits, 1);
    assert!(summary.buckets_planned > 1);
    // The watch channel carries the final summary.
    assert_eq!(*progress_rx.borrow(), summary);
    // Valid, the same items, and a rerun finishes the job.
    assert_all_referenced_files_exist(base, &local()).await;
    assert_eq!(
        winners(&current_rows(base, &local()).await),
        winners(&before)
    );
    let rest = compact_json(base, &[], &[]);
    assert_eq!(
        rest["buckets_compacted"].as_u64().unwrap(),
        summary.buckets_planned - 1
    );
    assert_eq!(current_rows(base, &local()).await, winners(&before));
    // The lock was released: `lock status` finds it free.
    let status = common::ecops_json(&["lock", "status", "--base", base, "--json"]);
    assert_eq!(status["held"], false, "{status}");
}

#[tokio::test]
async fn earthcatalog_files_are_read_by_name_with_millisecond_timestamps() {
    // The fixture is shared by other tests: plan and read only, never write.
    let fixture = common::earthcatalog_fixture();
    let catalog = EarthCatalog::open(
        fixture.to_str().unwrap(),
        &OpenOptions {
            read_only: true,
            ..local()
        },
    )
    .await
    .unwrap();
    let state = ecops::compact::TableState::load(&catalog).await.unwrap();
    let stats = catalog.stats(&Default::default()).await.unwrap();
    let plan = ecops::compact::plan(&state, &Default::default());
    assert_eq!(plan.buckets_scanned, stats.partitions);
    assert_eq!(plan.files_before, stats.files);
    assert_eq!(plan.rows_before, stats.rows);
    let multi = stats
        .partitions_detail
        .iter()
        .filter(|p| p.files >= 2)
        .count();
    assert_eq!(plan.buckets.len(), multi);
    assert!(multi > 0);

    // Every file of the largest planned bucket conforms to the table schema
    // by column name: same ids, timestamps scaled from ms to µs.
    let largest = plan.buckets.iter().max_by_key(|b| b.files).unwrap();
    let files = &state.buckets[&largest.bucket()];
    let schema = ecops::stac::batch::arrow_schema().unwrap();
    let table = catalog.table().await.unwrap();
    let mut conformed = Vec::new();
    for f in files {
        let bytes = table
            .file_io()
            .new_input(&f.path)
            .unwrap()
            .read()
            .await
            .unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for raw in reader {
            let raw = raw.unwrap();
            let ours = ecops::compact::conform(&raw, &schema).unwrap();
            assert_eq!(ours.schema(), schema);
            let raw_ids = raw.column_by_name("id").unwrap().as_string::<i32>();
            let ids = ours.column_by_name("id").unwrap().as_string::<i32>();
            assert_eq!(raw_ids, ids);
            let raw_dt = arrow_cast::cast(
                raw.column_by_name("datetime").unwrap(),
                &arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None),
            )
            .unwrap();
            let raw_dt = raw_dt.as_primitive::<arrow_array::types::TimestampMillisecondType>();
            let dt = ours
                .column_by_name("datetime")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            for i in 0..ours.num_rows() {
                assert_eq!(dt.value(i), raw_dt.value(i) * 1000);
            }
            conformed.push(ours);
        }
    }
    let merged = arrow_select::concat::concat_batches(&schema, &conformed).unwrap();
    assert_eq!(merged.num_rows() as u64, largest.rows);
    let kept = ecops::compact::dedupe(&merged).unwrap();
    let ids = merged.column_by_name("id").unwrap().as_string::<i32>();
    let distinct: BTreeSet<&str> = (0..merged.num_rows()).map(|i| ids.value(i)).collect();
    assert_eq!(kept.num_rows(), distinct.len());
}
