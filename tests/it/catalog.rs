//! A local catalog end to end: init, append, stats, info, and bad input.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{ecops, ecops_json, ecops_json_with, ecops_with, scenes};
use ecops::catalog::append::bucket_items;
use ecops::catalog::stats::StatsOptions;
use ecops::catalog::{EarthCatalog, OpenOptions, WriteOptions};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn expected_buckets(items: &[ecops::stac::Item]) -> BTreeMap<(String, Option<i32>), u64> {
    let res = ecops::grid::resolution(1).unwrap();
    bucket_items(items, &ecops::grid::Grid::H3(res))
        .unwrap()
        .into_iter()
        .map(|(b, rows)| ((b.cell, b.year), rows.len() as u64))
        .collect()
}

#[tokio::test]
async fn append_then_stats_match_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("cat");
    let base = base.to_str().unwrap();
    let (catalog, created) = EarthCatalog::init(base, 1, &OpenOptions::default())
        .await
        .unwrap();
    assert!(created);

    let items = scenes(120);
    let (first, second) = items.split_at(70);
    let r1 = catalog
        .append_items(
            first,
            &WriteOptions::default(),
            HashMap::from([("ecops.job-id".into(), "job-a".into())]),
        )
        .await
        .unwrap();
    let r2 = catalog
        .append_items(second, &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    assert_eq!(r1.items + r2.items, 120);

    // Expected numbers come from the inputs, grouped independently of the writer.
    let b1 = expected_buckets(first);
    let b2 = expected_buckets(second);
    let mut all: BTreeMap<(String, Option<i32>), u64> = BTreeMap::new();
    for (k, v) in b1.iter().chain(b2.iter()) {
        *all.entry(k.clone()).or_default() += v;
    }
    let rows: u64 = all.values().sum();
    let cells: BTreeSet<&String> = all.keys().map(|(c, _)| c).collect();
    assert!(rows > 120, "footprints span cells, so rows exceed items");

    let stats = catalog
        .stats(&StatsOptions {
            top: 5,
            small_file_bytes: 1 << 20,
        })
        .await
        .unwrap();
    assert_eq!(stats.rows, rows);
    assert_eq!(
        stats.files,
        (b1.len() + b2.len()) as u64,
        "one file per bucket per commit"
    );
    assert_eq!(stats.partitions, all.len() as u64);
    assert_eq!(stats.cells, cells.len() as u64);
    assert_eq!(stats.snapshots, 2);
    assert_eq!(stats.bytes, r1.bytes + r2.bytes);
    assert_eq!(stats.small_files, stats.files, "all test files are tiny");
    assert_eq!(
        stats.history[0]
            .summary
            .get("ecops.job-id")
            .map(String::as_str),
        Some("job-a")
    );
    let top = &stats.top_cells[0];
    let top_rows: u64 = all
        .iter()
        .filter(|((c, _), _)| *c == top.cell)
        .map(|(_, v)| v)
        .sum();
    assert_eq!(top.rows, top_rows);
    assert!(stats.top_cells.windows(2).all(|w| w[0].rows >= w[1].rows));

    // Every data file is GeoParquet in its bucket's folder, with field ids and a codec.
    let table = catalog.table().await.unwrap();
    let files = ecops::catalog::stats::live_files(&table).await.unwrap();
    assert_eq!(files.len() as u64, stats.files);
    for f in &files {
        let year = f.year.map_or("null".to_string(), |y| y.to_string());
        assert!(
            f.path.contains(&format!(
                "/warehouse/grid_partition={}/year={year}/part_",
                f.cell
            )),
            "{}",
            f.path
        );
        let reader = SerializedFileReader::new(std::fs::File::open(&f.path).unwrap()).unwrap();
        let md = reader.metadata();
        let kv = md.file_metadata().key_value_metadata().unwrap();
        let geo = kv
            .iter()
            .find(|k| k.key == "geo")
            .and_then(|k| k.value.clone())
            .unwrap();
        let geo: serde_json::Value = serde_json::from_str(&geo).unwrap();
        assert_eq!(geo["primary_column"], "geometry");
        assert_eq!(geo["columns"]["geometry"]["encoding"], "WKB");
        assert_eq!(
            geo["columns"]["geometry"]["bbox"].as_array().unwrap().len(),
            4
        );
        let schema = md.file_metadata().schema_descr();
        let geometry = schema
            .columns()
            .iter()
            .position(|c| c.name() == "geometry")
            .unwrap();
        assert_eq!(schema.column(geometry).self_type().get_basic_info().id(), 3);
        // Tiny parts are Snappy (zstd's per-column contexts cost more than
        // the rest of their write); parts over SMALL_PART_BYTES of rows are zstd.
        assert_eq!(
            md.row_group(0).column(0).compression(),
            parquet::basic::Compression::SNAPPY
        );
        assert_eq!(md.file_metadata().num_rows() as u64, f.rows);
    }
}

#[tokio::test]
async fn cli_init_info_stats() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("c");
    let base = base.to_str().unwrap();
    let init = ecops_json(&["init", "--base", base, "--h3-resolution", "2", "--json"]);
    assert_eq!(init["created"], true);
    let again = ecops_json(&["init", "--base", base, "--h3-resolution", "2", "--json"]);
    assert_eq!(again["created"], false);
    let mismatch = ecops(&["init", "--base", base, "--h3-resolution", "3"]);
    assert!(!mismatch.status.success());
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("resolution 2"));

    let info = ecops_json(&["info", "--base", base, "--json"]);
    assert_eq!(info["grid"]["resolution"], 2);
    assert_eq!(info["grid"]["recorded"], true);
    assert!(
        info["table_location"]
            .as_str()
            .unwrap()
            .ends_with("/c/warehouse/earthcatalog/stac_items")
    );
    assert!(info["lock"].as_str().unwrap().ends_with("/c/.lock"));

    let empty = ecops_json(&["stats", "--base", base, "--json"]);
    assert_eq!(
        (
            empty["rows"].as_u64(),
            empty["files"].as_u64(),
            empty["snapshots"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );

    let catalog = EarthCatalog::open(base, &OpenOptions::default())
        .await
        .unwrap();
    let report = catalog
        .append_items(&scenes(30), &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    drop(catalog);
    let stats = ecops_json(&["stats", "--base", base, "--json", "--top", "3"]);
    assert_eq!(stats["rows"].as_u64(), Some(report.rows));
    assert_eq!(stats["files"].as_u64(), Some(report.files));
    assert_eq!(stats["partitions"].as_u64(), Some(report.buckets));
    assert_eq!(stats["snapshots"].as_u64(), Some(1));
    assert_eq!(stats["top_cells"].as_array().unwrap().len(), 3);
    let text = ecops(&["stats", "--base", base]);
    assert!(String::from_utf8_lossy(&text.stdout).contains(&format!("rows       {}", report.rows)));

    // The config file and ECOPS_BASE give the base too.
    let cfg = dir.path().join("ecops.toml");
    std::fs::write(&cfg, format!("base = \"{base}\"\n")).unwrap();
    let via_config = ecops_json(&["stats", "--config", cfg.to_str().unwrap(), "--json"]);
    assert_eq!(via_config["rows"], stats["rows"]);
    let via_env = ecops_json_with(&["stats", "--json"], &[("ECOPS_BASE", base)]);
    assert_eq!(via_env["rows"], stats["rows"]);
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = ecops(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(stderr.trim().lines().count(), 1, "one error line: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: '{n}' not in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_catalogs_give_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    fails_with(
        &["stats", "--base", missing.to_str().unwrap()],
        &["no catalog at", "ecops init"],
    );
    assert!(!missing.exists(), "stats must not create anything");

    let not_db = dir.path().join("notdb");
    std::fs::create_dir_all(&not_db).unwrap();
    std::fs::write(not_db.join("earthcatalog.db"), "this is not sqlite").unwrap();
    fails_with(
        &["stats", "--base", not_db.to_str().unwrap()],
        &["earthcatalog.db"],
    );
    assert_eq!(
        std::fs::read_to_string(not_db.join("earthcatalog.db")).unwrap(),
        "this is not sqlite"
    );

    let no_table = dir.path().join("notable");
    std::fs::create_dir_all(&no_table).unwrap();
    let conn = rusqlite::Connection::open(no_table.join("earthcatalog.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL,
         table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000),
         PRIMARY KEY (catalog_name, table_namespace, table_name))",
    )
    .unwrap();
    drop(conn);
    fails_with(
        &["info", "--base", no_table.to_str().unwrap()],
        &["has no table earthcatalog.stac_items"],
    );

    fails_with(&["stats"], &["no catalog given", "--base"]);
    fails_with(
        &["stats", "--base", "gs://bucket/x"],
        &["unsupported scheme"],
    );
}

#[tokio::test]
async fn missing_or_corrupt_metadata_is_reported_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("c");
    let base_s = base.to_str().unwrap();
    let (catalog, _) = EarthCatalog::init(base_s, 1, &OpenOptions::default())
        .await
        .unwrap();
    catalog
        .append_items(&scenes(5), &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    let location = catalog
        .table()
        .await
        .unwrap()
        .metadata_location()
        .unwrap()
        .to_string();
    drop(catalog);

    let original = std::fs::read(&location).unwrap();
    std::fs::write(&location, b"{\"format-version\": 2, truncated").unwrap();
    fails_with(
        &["stats", "--base", base_s],
        &["cannot read table metadata", &location],
    );
    std::fs::remove_file(&location).unwrap();
    fails_with(
        &["info", "--base", base_s],
        &["cannot read table metadata", &location],
    );
    std::fs::write(&location, original).unwrap();
    assert!(ecops(&["stats", "--base", base_s]).status.success());
}

#[tokio::test]
async fn read_only_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("c");
    let base_s = base.to_str().unwrap();
    EarthCatalog::init(base_s, 1, &OpenOptions::default())
        .await
        .unwrap();
    let ro = OpenOptions {
        read_only: true,
        ..Default::default()
    };
    let catalog = EarthCatalog::open(base_s, &ro).await.unwrap();
    let err = catalog
        .append_items(&scenes(3), &WriteOptions::default(), HashMap::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    // Not even data files are written: nothing appears in the warehouse.
    let table = catalog.table().await.unwrap();
    let bucket = ecops::catalog::Bucket {
        cell: "81017ffffffffff".into(),
        year: Some(2020),
    };
    let err = catalog
        .write_bucket(&table, &bucket, &[], &WriteOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(
        !base
            .join("warehouse/grid_partition=81017ffffffffff")
            .exists()
    );
    assert!(
        catalog
            .table()
            .await
            .unwrap()
            .metadata()
            .current_snapshot()
            .is_none()
    );
    fails_with(&["init", "--base", base_s, "--read-only"], &["read-only"]);
}

#[tokio::test]
async fn concurrent_commit_is_detected_by_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("c");
    let base_s = base.to_str().unwrap();
    let (catalog, _) = EarthCatalog::init(base_s, 1, &OpenOptions::default())
        .await
        .unwrap();
    let table = catalog.table().await.unwrap();
    let before = table.metadata_location().unwrap().to_string();
    catalog
        .append_items(&scenes(2), &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    // A commit prepared against the old pointer must not land.
    let err = catalog
        .sql()
        .commit_metadata(catalog.ident(), &before, table.metadata().clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("concurrent commit"), "{err}");
    let now = catalog.table().await.unwrap();
    assert_eq!(now.metadata().snapshots().count(), 1);
}

#[tokio::test]
async fn a_locked_database_fails_a_writer_clearly_after_the_busy_timeout_and_a_reader_reads_around_it()
 {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("c");
    let base_s = base.to_str().unwrap();
    EarthCatalog::init(base_s, 1, &OpenOptions::default())
        .await
        .unwrap();
    // Another process holds an exclusive lock on the database file.
    let conn = rusqlite::Connection::open(base.join("earthcatalog.db")).unwrap();
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE iceberg_tables SET catalog_name = catalog_name;")
        .unwrap();
    // A reader is not blocked: it reads the last commit from a private copy
    // (the writer's journal rolled back there), and writes nothing here.
    let stats = ecops_with(
        &["stats", "--base", base_s, "--json"],
        &[("ECOPS_SQLITE_BUSY_TIMEOUT_MS", "300")],
    );
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    // A writer waits for the lock no longer than the busy timeout.
    let started = std::time::Instant::now();
    let out = ecops_with(
        &["init", "--base", base_s],
        &[("ECOPS_SQLITE_BUSY_TIMEOUT_MS", "300")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("earthcatalog.db") && stderr.contains("locked"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // The busy timeout (300 ms here) bounds the wait: a clear error, not a hang.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert!(ecops(&["stats", "--base", base_s]).status.success());
}

#[derive(Debug)]
struct Fence(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl ecops::catalog::CommitGuard for Fence {
    async fn check(&self) -> Result<(), String> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err("lock was stolen (generation 7 → 8)".into())
        }
    }
}

#[tokio::test]
async fn a_refusing_commit_guard_stops_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("c");
    let (catalog, _) = EarthCatalog::init(base.to_str().unwrap(), 1, &OpenOptions::default())
        .await
        .unwrap();
    let fence = std::sync::Arc::new(Fence(std::sync::atomic::AtomicBool::new(true)));
    catalog.sql().set_commit_guard(Some(fence.clone()));
    catalog
        .append_items(&scenes(3), &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    fence.0.store(false, std::sync::atomic::Ordering::SeqCst);
    let err = catalog
        .append_items(&scenes(3), &WriteOptions::default(), HashMap::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock was stolen"), "{err}");
    assert_eq!(
        catalog
            .table()
            .await
            .unwrap()
            .metadata()
            .snapshots()
            .count(),
        1
    );
}
