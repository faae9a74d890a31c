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
