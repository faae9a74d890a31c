//! Interop with PyIceberg (the engine earthcatalog uses), both directions.

use crate::common;

use std::collections::{BTreeSet, HashMap};

use common::{ecops_json, python, run_python, scenes};
use ecops::catalog::schema::COLUMNS;
use ecops::catalog::stats::StatsOptions;
use ecops::catalog::{EarthCatalog, OpenOptions, WriteOptions};

#[tokio::test]
async fn pyiceberg_reads_what_ecops_writes() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("cat");
    let base_s = base.to_str().unwrap();
    let (catalog, _) = EarthCatalog::init(base_s, 1, &OpenOptions::default())
        .await
        .unwrap();
    let items = scenes(60);
    catalog
        .append_items(&items[..25], &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    catalog
        .append_items(&items[25..], &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    let stats = catalog.stats(&StatsOptions::default()).await.unwrap();
    let cell = stats.top_cells[0].cell.clone();
    let table = catalog.table().await.unwrap();
    let in_cell: BTreeSet<String> = ecops::catalog::stats::live_files(&table)
        .await
        .unwrap()
        .iter()
        .filter(|f| f.cell == cell)
        .map(|f| f.path.clone())
        .collect();
    drop(catalog);

    let seen = run_python(&py, "read_catalog.py", &[base_s, &cell]);
    assert_eq!(
        seen["v0_warning"], false,
        "a catalog ecops creates has PyIceberg's v1 layout"
    );
    let schema: Vec<(i64, String)> = seen["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f[0].as_i64().unwrap(), f[1].as_str().unwrap().to_string()))
        .collect();
    let ours: Vec<(i64, String)> = COLUMNS
        .iter()
        .map(|(id, name, _)| (*id as i64, name.to_string()))
        .collect();
    assert_eq!(schema, ours);
    assert_eq!(
        seen["spec"][0],
        serde_json::json!([1000, "grid_partition", 2, "identity"])
    );
    assert_eq!(
        seen["spec"][1],
        serde_json::json!([1001, "year", 4, "year"])
    );
    assert_eq!(seen["properties"]["earthcatalog.grid.resolution"], "1");
    assert_eq!(seen["files"].as_u64(), Some(stats.files));
    assert_eq!(seen["rows"].as_u64(), Some(stats.rows));
    assert_eq!(seen["snapshots"], 2);
    let ids: BTreeSet<String> = items.iter().map(|i| i.id.clone()).collect();
    let seen_ids: BTreeSet<String> = seen["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen_ids, ids);
    // The partition filter prunes to the cell's files and returns its rows.
    assert_eq!(seen["cell_files"].as_u64(), Some(in_cell.len() as u64));
    assert_eq!(seen["cell_rows"].as_u64(), Some(stats.top_cells[0].rows));
    // …and exactly the items whose footprints touch that cell, from the inputs.
    let res = ecops::grid::resolution(1).unwrap();
    let mut expected: Vec<String> =
        ecops::catalog::append::bucket_items(&items, &ecops::grid::Grid::H3(res))
            .unwrap()
            .into_iter()
            .filter(|(bucket, _)| bucket.cell == cell)
            .flat_map(|(_, rows)| rows.into_iter().map(|i| i.id.clone()))
            .collect();
    expected.sort();
    let cell_ids: Vec<String> = seen["cell_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(cell_ids, expected);
}

#[test]
fn ecops_reads_what_pyiceberg_writes() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("py");
    let base_s = base.to_str().unwrap();
    let written = run_python(&py, "write_catalog.py", &[base_s]);
    let stats = ecops_json(&["stats", "--base", base_s, "--json"]);
    for key in ["rows", "files", "bytes", "partitions", "cells", "snapshots"] {
        assert_eq!(stats[key], written[key], "{key}");
    }
    assert_eq!(stats["top_cells"][0]["cell"], written["top_cell"]);
    assert_eq!(stats["top_cells"][0]["rows"], written["top_rows"]);
    let info = ecops_json(&["info", "--base", base_s, "--json"]);
    assert_eq!(
        info["grid"]["resolution"], 1,
        "inferred from PyIceberg's cell ids"
    );
}

/// Other tools copy only `earthcatalog.db`: a copy taken while a long ingest
/// runs must hold every chunk committed by then (no commit left behind in a
/// side file), and PyIceberg must read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_database_file_alone_mid_ingest_holds_every_committed_chunk() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let made = common::ecops_with(
        &[
            "demo-data",
            // Enough items that the ingest (15 ms per fetch, 2 at a time:
            // about 10 s) outlasts the polling of a loaded test machine.
            "--items",
            "1500",
            "--out",
            demo.to_str().unwrap(),
        ],
        &[],
    );
    assert!(made.status.success());
    let server = ecops::testkit::http_server::HttpServer::start(
        demo.join("items"),
        ecops::testkit::http_server::Faults {
            latency: Some(std::time::Duration::from_millis(15)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let base = dir.path().join("cat");
    let base_s = base.to_str().unwrap().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args(["ingest", "--base", &base_s, "--inventory"])
        .arg(demo.join("inventory/inventory.csv"))
        .args(["--items-root", &server.url(), "--chunk-size", "100"])
        .args(["--concurrency", "2", "--heartbeat", "0.3s"])
        .env_remove("ECOPS_BASE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for two commits, then copy the database file alone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let committed = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no two commits in time"
        );
        let runs = common::ecops_json(&["runs", "--base", &base_s, "--json"]);
        let commits = runs["runs"][0]["commits"].as_u64().unwrap_or(0);
        if commits >= 2 {
            break commits;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(base.join("earthcatalog.db"), copy.join("earthcatalog.db")).unwrap();
    let running = child.try_wait().unwrap().is_none();
    let seen = run_python(&py, "read_catalog.py", &[copy.to_str().unwrap()]);
    assert!(
        seen["snapshots"].as_u64().unwrap() >= committed,
        "the copy holds {} snapshots; {committed} were committed before it was taken",
        seen["snapshots"]
    );
    assert!(seen["rows"].as_u64().unwrap() > 0, "{seen}");
    assert!(running, "the copy was taken while the ingest ran");
    assert!(child.wait().unwrap().success());
}
