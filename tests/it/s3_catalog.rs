//! A catalog hosted on a real S3-compatible server (started by scripts/test.sh).

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use common::{ecops_json_with, ecops_with, s3_base, s3_endpoint, scenes};
use ecops::catalog::stats::StatsOptions;
use ecops::catalog::{EarthCatalog, OpenOptions, WriteOptions};
use ecops::store::S3Options;

fn opts(endpoint: &str) -> OpenOptions {
    OpenOptions {
        read_only: false,
        s3: S3Options {
            endpoint: Some(endpoint.to_string()),
            anonymous: false,
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn init_append_stats_on_s3() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let base = s3_base("cat");
    let (catalog, created) = EarthCatalog::init(&base, 1, &opts(&endpoint))
        .await
        .unwrap();
    assert!(created);
    let report = catalog
        .append_items(&scenes(40), &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    let table = catalog.table().await.unwrap();
    assert!(table.metadata_location().unwrap().starts_with(&format!(
        "{base}/warehouse/earthcatalog/stac_items/metadata/"
    )));
    drop(catalog);

    // A fresh open downloads the published database and sees the commit.
    let reopened = EarthCatalog::open(&base, &opts(&endpoint)).await.unwrap();
    let stats = reopened.stats(&StatsOptions::default()).await.unwrap();
    assert_eq!(
        (stats.rows, stats.files, stats.snapshots),
        (report.rows, report.files, 1)
    );

    let json = ecops_json_with(
        &["stats", "--base", &base, "--json"],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    );
    assert_eq!(json["rows"].as_u64(), Some(report.rows));
}

#[tokio::test]
async fn concurrent_writers_of_the_s3_database_are_detected() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let base = s3_base("race");
    EarthCatalog::init(&base, 1, &opts(&endpoint))
        .await
        .unwrap();
    let no_retries = OpenOptions {
        commit_retries: Some(0),
        ..opts(&endpoint)
    };
    let a = EarthCatalog::open(&base, &opts(&endpoint)).await.unwrap();
    let b = EarthCatalog::open(&base, &no_retries).await.unwrap();
    let c = EarthCatalog::open(&base, &opts(&endpoint)).await.unwrap();
    let items = scenes(10);
    let first = a
        .append_items(&items[..5], &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    // b and c read the database before a's upload: neither may overwrite a's.
    // b may not retry, so its upload is refused and reported.
    let err = b
        .append_items(&items[5..], &WriteOptions::default(), HashMap::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("changed by another writer"),
        "{err}"
    );
    let stats = EarthCatalog::open(&base, &opts(&endpoint))
        .await
        .unwrap()
        .stats(&StatsOptions::default())
        .await
        .unwrap();
    assert_eq!(
        stats.snapshots, 1,
        "exactly a's commit survives b's refusal"
    );

    // c retries: it takes a's upload, replays its append on top and lands.
    let second = c
        .append_items(&items[5..], &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
    let retries = c.commit_stats().retries.load(Ordering::Relaxed);
    assert!(retries >= 1, "c's commit was replayed, retries {retries}");
    drop((a, b, c));
    let after = EarthCatalog::open(&base, &opts(&endpoint)).await.unwrap();
    let stats = after.stats(&StatsOptions::default()).await.unwrap();
    assert_eq!(stats.snapshots, 2, "a's and c's commits both survive");
    assert_eq!(
        stats.rows,
        first.rows + second.rows,
        "no row lost or doubled"
    );
}

#[test]
fn unreachable_or_missing_s3_catalogs_fail_clearly() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let missing = s3_base("missing");
    let out = ecops_with(
        &["stats", "--base", &missing],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no catalog at s3://") && stderr.contains("ecops init"),
        "{stderr}"
    );

    // Nothing listens on port 9 of loopback: a connection error, one line, no panic.
    let out = ecops_with(
        &["stats", "--base", "s3://nobody/x"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLESECRET1"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret-key-value"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("s3://nobody/x/earthcatalog.db"), "{stderr}");
    assert!(
        !stderr.contains("very-secret-key-value") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
