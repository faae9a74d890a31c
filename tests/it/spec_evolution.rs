//! Partition specs other tools evolved, and the sequence numbers compaction
//! records: a catalog whose spec PyIceberg changed (grid_partition moved
//! behind year) holds files of three specs and still answers every query
//! exactly like a catalog that never changed; ecops writes the new spec's
//! tuples (PyIceberg prunes by them); a compaction's output keeps its
//! inputs' data sequence number, so a version committed while it ran stays
//! the newer one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{ecops, ecops_json, python, run_python};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) -> Vec<u8> {
    let out = ecops(args);
    assert!(
        out.status.success(),
        "ecops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Demo items and their inventory split in parts of the given sizes.
fn demo_parts(dir: &Path, sizes: &[usize]) -> (Vec<PathBuf>, PathBuf, PathBuf) {
    let data = dir.join("demo");
    let total: usize = sizes.iter().sum();
    ok(&[
        "demo-data",
        "--items",
        &total.to_string(),
        "--out",
        s(&data),
    ]);
    let inventory = data.join("inventory/inventory.csv");
    let text = std::fs::read_to_string(&inventory).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for (n, size) in sizes.iter().enumerate() {
        let part = dir.join(format!("part-{n}.csv"));
        std::fs::write(&part, lines[start..start + size].join("\n") + "\n").unwrap();
        parts.push(part);
        start += size;
    }
    (parts, inventory, data.join("items"))
}

fn ingest(base: &Path, inventory: &Path, items: &Path) {
    ok(&[
        "ingest",
        "--base",
        s(base),
        "--inventory",
        s(inventory),
        "--items-root",
        s(items),
        "--chunk-size",
        "40",
        "--json",
    ]);
}

/// The ids `ecops query` answers with `args`.
fn query_ids(base: &Path, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["query", "--base", s(base), "--format", "json"];
    all.extend_from_slice(args);
    let items: Vec<Value> = serde_json::from_slice(&ok(&all)).unwrap();
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Queries of every kind, built around a real item of `reference`.
fn queries(reference: &Path) -> Vec<Vec<String>> {
    let items: Vec<Value> =
        serde_json::from_slice(&ok(&["query", "--base", s(reference), "--format", "json"]))
            .unwrap();
    let mut shapes = vec![vec![]];
    for item in items.iter().step_by(items.len() / 4) {
        // A corner of the footprint: on its boundary, so found; and a
        // window around it.
        let mut corner = &item["geometry"]["coordinates"];
        while corner[0].is_array() {
            corner = &corner[0];
        }
        let (lon, lat) = (corner[0].as_f64().unwrap(), corner[1].as_f64().unwrap());
        let year = &item["datetime"].as_str().unwrap()[..4];
        let window = format!(
            "{},{},{},{}",
            (lon - 8.0).max(-180.0),
            (lat - 8.0).max(-90.0),
            (lon + 8.0).min(180.0),
            (lat + 8.0).min(90.0)
        );
        shapes.push(vec!["--point".into(), format!("{lon},{lat}")]);
        shapes.push(vec!["--bbox".into(), window.clone()]);
        shapes.push(vec![
            "--bbox".into(),
            window,
            "--datetime".into(),
            format!("{year}-01-01T00:00:00Z/{year}-12-31T23:59:59Z"),
        ]);
        shapes.push(vec!["--datetime".into(), format!("{year}-03-01/..")]);
    }
    shapes
}

fn assert_same_answers(evolved: &Path, reference: &Path, stage: &str) {
    for q in queries(reference) {
        let args: Vec<&str> = q.iter().map(String::as_str).collect();
        let want = query_ids(reference, &args);
        assert!(!want.is_empty(), "{args:?} finds nothing");
        let got = query_ids(evolved, &args);
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{stage}: query {args:?}: {} missing {missing:?}, {} extra {extra:?}",
            missing.len(),
            extra.len()
        );
    }
}

#[test]
fn a_spec_evolved_by_pyiceberg_is_read_by_each_files_own_spec() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (parts, _, items) = demo_parts(dir.path(), &[150, 100, 50]);
    let (evolved, source, reference) = (
        dir.path().join("evolved"),
        dir.path().join("source"),
        dir.path().join("reference"),
    );
    ingest(&evolved, &parts[0], &items);
    ingest(&source, &parts[1], &items);
    ingest(&reference, &parts[0], &items);
    ingest(&reference, &parts[1], &items);

    // Spec 0 = [grid_partition, year] (ecops' files), spec 1 = [year],
    // spec 2 = [year, grid_partition] (PyIceberg's appended files).
    let evolution = run_python(&py, "evolve_spec.py", &["evolve", s(&evolved), s(&source)]);
    assert_eq!(evolution["specs"], 3, "{evolution}");
    assert_eq!(
        evolution["fields"],
        serde_json::json!(["year", "grid_partition"])
    );
    assert_same_answers(&evolved, &reference, "after PyIceberg's append");

    // ecops appends under the evolved default spec; PyIceberg prunes by the
    // tuples ecops records, so a wrong order would hide those rows from it.
    ingest(&evolved, &parts[2], &items);
    ingest(&reference, &parts[2], &items);
    assert_same_answers(&evolved, &reference, "after ecops' append");
    let stats = |base: &Path| ecops_json(&["stats", "--base", s(base), "--json"]);
    let (got, want) = (stats(&evolved), stats(&reference));
    for key in ["rows", "partitions", "cells"] {
        assert_eq!(got[key], want[key], "stats {key}");
    }
    let top = want["top_cells"][0]["cell"].as_str().unwrap().to_string();
    let count =
        |base: &Path| run_python(&py, "evolve_spec.py", &["count", s(base), &top])["rows"].clone();
    assert_eq!(
        count(&evolved),
        count(&reference),
        "PyIceberg's rows of cell {top}"
    );

    // Compaction rewrites the default spec's files (and only those).
    let compacted = ecops_json(&[
        "compact",
        "--base",
        s(&evolved),
        "--threshold",
        "2",
        "--json",
    ]);
    assert!(
        compacted["buckets_compacted"].as_u64().unwrap() > 0,
        "{compacted}"
    );
    assert_same_answers(&evolved, &reference, "after compaction");
    assert_eq!(count(&evolved), count(&reference), "after compaction");
}

/// (data sequence number, path) of every live file of a local catalog.
async fn sequences(base: &Path) -> Vec<(i64, String)> {
    let catalog =
        ecops::catalog::EarthCatalog::open(s(base), &ecops::catalog::OpenOptions::default())
            .await
            .unwrap();
    let state = ecops::compact::TableState::load(&catalog).await.unwrap();
    let mut files: Vec<(i64, String)> = state
        .buckets
        .values()
        .flatten()
        .map(|f| (f.sequence_number, f.path.clone()))
        .collect();
    files.sort();
    files
}

/// The platform `ecops query --ids` answers for `id`.
fn platform_of(base: &Path, id: &str) -> String {
    let items: Vec<Value> = serde_json::from_slice(&ok(&[
        "query",
        "--base",
        s(base),
        "--ids",
        id,
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    items[0]["platform"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_committed_while_a_compaction_ran_stays_the_newer_one() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (parts, _, items) = demo_parts(dir.path(), &[60]);
    let base = dir.path().join("cat");
    // Every item twice, with equal `updated`: every bucket is compacted.
    ingest(&base, &parts[0], &items);
    ok(&[
        "ingest",
        "--base",
        s(&base),
        "--inventory",
        s(&parts[0]),
        "--items-root",
        s(&items),
        "--job",
        "again",
        "--json",
    ]);
    let before = sequences(&base).await;
    let inputs_newest = before.iter().map(|(seq, _)| *seq).max().unwrap();
    let listed: Vec<Value> = serde_json::from_slice(&ok(&[
        "query",
        "--base",
        s(&base),
        "--limit",
        "1",
        "--format",
        "json",
    ]))
    .unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let original = platform_of(&base, &id);

    // A compaction held before its commit while a writer that ignores the
    // lock (PyIceberg) appends another version of `id`, equal `updated`:
    // the compaction commits after it, replaying onto the new snapshot.
    let mut compaction = Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args(["compact", "--base", s(&base), "--threshold", "2", "--json"])
        .env_remove("ECOPS_BASE")
        .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", "12000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let files_before = parquet_files(&base.join("warehouse"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet_files(&base.join("warehouse")) == files_before {
        assert!(Instant::now() < deadline, "the compaction wrote nothing");
        assert!(compaction.try_wait().unwrap().is_none(), "it ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    run_python(&py, "append_version.py", &[s(&base), &id, "PYICEBERG"]);
    let out = compaction.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The compacted files are as old as their inputs, older than the append.
    let after = sequences(&base).await;
    let new: Vec<&(i64, String)> = after
        .iter()
        .filter(|(_, path)| !before.iter().any(|(_, p)| p == path))
        .collect();
    let appended = new
        .iter()
        .filter(|(_, path)| !path.contains("/part_"))
        .map(|(seq, _)| *seq)
        .max()
        .expect("the PyIceberg file is live");
    assert!(appended > inputs_newest);
    assert!(
        new.iter().any(|(_, path)| path.contains("/part_")),
        "nothing compacted"
    );
    for (seq, path) in new.iter().filter(|(_, path)| path.contains("/part_")) {
        assert!(
            *seq <= inputs_newest,
            "{path} took sequence {seq}, not its inputs' newest ({inputs_newest}); \
             the append committed while the compaction ran has {appended}"
        );
    }
    // The premise: the compaction's replace was committed after the append.
    let replaced_at = replace_sequence(&base).await;
    assert!(
        replaced_at > appended,
        "replace {replaced_at}, append {appended}"
    );
    // The newer version answers, before and after compacting it in.
    assert_ne!(original, "PYICEBERG");
    assert_eq!(platform_of(&base, &id), "PYICEBERG");
    ok(&["compact", "--base", s(&base), "--threshold", "2", "--json"]);
    assert_eq!(
        platform_of(&base, &id),
        "PYICEBERG",
        "after compacting it in"
    );
    let rows = ecops_json(&["stats", "--base", s(&base), "--json"])["rows"].clone();
    let distinct: BTreeSet<String> = query_ids(&base, &[]);
    assert_eq!(distinct.len(), 60);
    assert!(rows.as_u64().unwrap() >= 60, "{rows}");
}

/// The sequence number of the newest `replace` snapshot.
async fn replace_sequence(base: &Path) -> i64 {
    let catalog =
        ecops::catalog::EarthCatalog::open(s(base), &ecops::catalog::OpenOptions::default())
            .await
            .unwrap();
    let table = catalog.table().await.unwrap();
    table
        .metadata()
        .snapshots()
        .filter(|s| s.summary().operation == iceberg::spec::Operation::Replace)
        .map(|s| s.sequence_number())
        .max()
        .expect("a replace snapshot")
}

fn parquet_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                parquet_files(&path)
            } else {
                usize::from(path.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}
