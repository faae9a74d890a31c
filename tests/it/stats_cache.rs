//! The snapshot summary cache (stats and the query planner in O(change)):
//! a summary derived from a cached ancestor and the new manifests equals one
//! counted from every manifest, after appends and after compaction (which
//! drops manifests); a corrupt cache entry is rebuilt, not trusted.

use std::collections::HashMap;
use std::sync::Arc;

use ecops::catalog::stats::{self, StatsOptions, TableStats};
use ecops::catalog::summary::{Provenance, SummaryCache};
use ecops::catalog::{EarthCatalog, OpenOptions, WriteOptions};
use iceberg::table::Table;

const SMALL: u64 = 4 * 1024;

async fn catalog(dir: &std::path::Path) -> EarthCatalog {
    let base = dir.join("cat");
    let (catalog, _) = EarthCatalog::init(base.to_str().unwrap(), 1, &OpenOptions::default())
        .await
        .unwrap();
    catalog
}

async fn append(catalog: &EarthCatalog, n: usize, offset: usize) {
    let items = ecops::demo::scenes(n, offset);
    catalog
        .append_items(&items, &WriteOptions::default(), HashMap::new())
        .await
        .unwrap();
}

/// Stats counted from every live file, read straight from the manifests.
async fn from_scratch(table: &Table) -> TableStats {
    let files = stats::live_files(table).await.unwrap();
    stats::summarize(
        &files,
        &StatsOptions {
            top: usize::MAX,
            small_file_bytes: SMALL,
        },
    )
}

/// The current snapshot's summary through `cache`, as stats.
async fn cached(cache: &SummaryCache, table: &Table) -> (TableStats, Provenance) {
    let snapshot = table.metadata().current_snapshot().unwrap();
    let (summary, provenance) = cache.summary(table, snapshot, SMALL).await.unwrap();
    let opts = StatsOptions {
        top: usize::MAX,
        small_file_bytes: SMALL,
    };
    (
        stats::summarize_partitions(summary.partitions(), &opts),
        provenance,
    )
}

fn assert_same(got: &TableStats, want: &TableStats) {
    assert_eq!(got.partitions_detail, want.partitions_detail);
    assert_eq!(got.top_cells, want.top_cells);
    assert_eq!(
        (got.rows, got.files, got.bytes, got.small_files, got.cells),
        (
            want.rows,
            want.files,
            want.bytes,
            want.small_files,
            want.cells
        )
    );
}

#[tokio::test]
async fn a_new_commit_is_added_to_the_cached_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = SummaryCache::at(tmp.path().join("cache"));
    let catalog = catalog(tmp.path()).await;
    append(&catalog, 60, 0).await;
    let first = catalog.table().await.unwrap();
    let (_, cold) = cached(&cache, &first).await;
    assert_eq!((cold.cached, cold.base), (false, None));
    assert_eq!(cold.decoded, cold.manifests);

    append(&catalog, 40, 60).await;
    let table = catalog.table().await.unwrap();
    let (got, provenance) = cached(&cache, &table).await;
    assert_eq!(provenance.base, first.metadata().current_snapshot_id());
    assert!(provenance.manifests > 1);
    assert_eq!(
        provenance.decoded, 1,
        "only the new manifest: {provenance:?}"
    );
    assert_same(&got, &from_scratch(&table).await);
    assert!(got.files > 0);

    // Unchanged: read back, nothing decoded.
    let (again, provenance) = cached(&cache, &table).await;
    assert!(provenance.cached, "{provenance:?}");
    assert_same(&again, &got);
}

#[tokio::test]
async fn catalog_stats_equal_a_count_from_the_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog(tmp.path()).await;
    let opts = StatsOptions {
        top: usize::MAX,
        small_file_bytes: SMALL,
    };
    for (n, offset) in [(30, 0), (30, 30), (30, 10)] {
        append(&catalog, n, offset).await;
        let got = catalog.stats(&opts).await.unwrap();
        let table = catalog.table().await.unwrap();
        assert_same(&got, &from_scratch(&table).await);
        let list = stats::manifest_list(&table, table.metadata().current_snapshot().unwrap())
            .await
            .unwrap();
        assert_eq!(got.manifests, list.entries().len() as u64);
        assert!(got.grid.is_some());
    }
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = SummaryCache::at(tmp.path().join("cache"));
    let catalog = catalog(tmp.path()).await;
    append(&catalog, 50, 0).await;
    append(&catalog, 50, 50).await;
    let table = catalog.table().await.unwrap();
    let snapshot = table.metadata().current_snapshot().unwrap();
    let (want, _) = cached(&cache, &table).await;
    let summary_file = cache.summary_file(&table, snapshot.snapshot_id(), SMALL);
    assert!(summary_file.exists());

    // Garbage in the summary and in every manifest's entry.
    std::fs::write(&summary_file, b"{ not json").unwrap();
    let list = stats::manifest_list(&table, snapshot).await.unwrap();
    for m in list.entries() {
        std::fs::write(cache.manifest_file(&m.manifest_path), b"\x00\x01").unwrap();
    }
    let (got, provenance) = cached(&cache, &table).await;
    assert!(!provenance.cached);
    assert_eq!(provenance.decoded, provenance.manifests, "{provenance:?}");
    assert_same(&got, &want);
    assert_same(&got, &from_scratch(&table).await);
    let (files, provenance) = cache.live_files(&table, snapshot).await.unwrap();
    assert!(provenance.cached, "the entries were rewritten");
    assert_eq!(files.len() as u64, want.files);

    // A well-formed entry of another snapshot is not taken for this one.
    let other = first_snapshot_summary(&cache, &table).await;
    std::fs::write(&summary_file, other).unwrap();
    let (got, provenance) = cached(&cache, &table).await;
    assert!(!provenance.cached, "{provenance:?}");
    assert_same(&got, &want);
}

/// The cache entry of the table's first snapshot, as written.
async fn first_snapshot_summary(cache: &SummaryCache, table: &Table) -> Vec<u8> {
    let first = table
        .metadata()
        .snapshots()
        .min_by_key(|s| s.sequence_number())
        .unwrap();
    cache.summary(table, first, SMALL).await.unwrap();
    std::fs::read(cache.summary_file(table, first.snapshot_id(), SMALL)).unwrap()
}

#[tokio::test]
async fn compaction_drops_manifests_from_the_cached_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = SummaryCache::at(tmp.path().join("cache"));
    let catalog = catalog(tmp.path()).await;
    for offset in [0, 40, 80] {
        append(&catalog, 40, offset).await;
    }
    // Overlapping ids: compaction removes duplicates too.
    append(&catalog, 20, 10).await;
    let before = catalog.table().await.unwrap();
    let (_, cold) = cached(&cache, &before).await;
    assert_eq!(cold.base, None);

    let catalog = Arc::new(catalog);
    let (progress, _) = tokio::sync::watch::channel(Default::default());
    let (_stop, cancel) = tokio::sync::watch::channel(false);
    let done = ecops::compact::run(catalog.clone(), Default::default(), progress, cancel)
        .await
        .unwrap();
    assert!(done.commits > 0, "{done:?}");
    let table = catalog.table().await.unwrap();
    let (got, provenance) = cached(&cache, &table).await;
    assert!(provenance.base.is_some(), "{provenance:?}");
    let want = from_scratch(&table).await;
    assert_same(&got, &want);
    let (was, _) = cached(&cache, &before).await;
    assert!(want.files < was.files, "compaction merged files");
}
