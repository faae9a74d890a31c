//! Health scores from metadata only: pure functions over [`TableStats`]
//! (no I/O), shared by `ecops stats` and the console.
//!
//! A (cell, year) partition loses points for small-file debt (its share of
//! files below the small-file size) and for files beyond what its bytes
//! need at the target file size. The catalog's score is the file-weighted
//! mean of its partitions', less points for snapshots and manifests beyond
//! policy; its fix is what compaction and expiry would remove. The trend
//! comes from the snapshot summaries (the files today's partitions need
//! against the data files each snapshot had), so no data file is read.
//!
//! Duplicates (item versions written for ids the table already held, which
//! compaction drops) are counted for the catalog from the snapshot summaries
//! and the hash index: ecops's appends record the item versions they wrote
//! (`ecops.items-written`), compactions the distinct items before them
//! (`ecops.unique-items`); versions written since the last compaction less
//! the distinct items gained since is what is duplicated. Unknown when the
//! index is not current or a snapshot since then lacks its key (another
//! writer, an older ecops). Per partition, fan-out rows and duplicates
//! cannot be told apart without reading data: compaction's plan counts them.

use serde::Serialize;

use super::stats::{PartitionStats, SnapshotInfo, TableStats};

/// What a healthy table looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Files below this size are small (the stats' threshold).
    pub small_file_bytes: u64,
    /// Compaction's target file size.
    pub target_file_bytes: u64,
    /// Snapshots kept before expiry is due.
    pub max_snapshots: u64,
    /// Manifests in the current snapshot before a rewrite is due.
    pub max_manifests: u64,
}

impl HealthPolicy {
    pub fn new(small_file_bytes: u64) -> Self {
        Self {
            small_file_bytes,
            target_file_bytes: 128 * 1024 * 1024,
            max_snapshots: 100,
            max_manifests: 100,
        }
    }
}

/// A score (0–100, 100 healthy) with its reasons, worst first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub score: u8,
    pub reasons: Vec<String>,
}

/// The catalog's health and what would fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogHealth {
    pub score: u8,
    pub reasons: Vec<String>,
    /// Partitions with more files than their bytes need.
    pub compactable_buckets: u64,
    /// Files compaction of those would remove.
    pub files_saved: u64,
    /// Files the partitions need at the target size (one at least each).
    pub files_needed: u64,
    /// Snapshots beyond policy (expiry would drop them).
    pub excess_snapshots: u64,
    /// Item versions written since the last compaction for items the table
    /// already held (None: unknown, see the module doc).
    pub duplicate_items: Option<u64>,
    /// `duplicate_items` over the distinct items.
    pub duplicate_share: Option<f64>,
    /// E.g. "compact 3 804 buckets: −6 184 files".
    pub fix: Vec<String>,
}

/// Files `bytes` need at the target size (at least one).
fn needed_files(bytes: u64, policy: &HealthPolicy) -> u64 {
    bytes.div_ceil(policy.target_file_bytes.max(1)).max(1)
}

/// The health of one (cell, year) partition.
pub fn partition_health(p: &PartitionStats, policy: &HealthPolicy) -> Health {
    let mut penalty = 0.0;
    let mut reasons = vec![];
    let excess = p.files.saturating_sub(needed_files(p.bytes, policy));
    if excess > 0 {
        let share = excess as f64 / p.files as f64;
        penalty += 50.0 * share;
        reasons.push(format!(
            "{} files where {} would do",
            p.files,
            needed_files(p.bytes, policy)
        ));
    }
    if p.files > 1 && p.small_files > 0 {
        let share = p.small_files as f64 / p.files as f64;
        penalty += 40.0 * share;
        reasons.push(format!("{:.0}% small files", share * 100.0));
    }
    Health {
        score: (100.0 - penalty).round().clamp(0.0, 100.0) as u8,
        reasons,
    }
}

/// The catalog's health: partitions weighted by files, snapshots and
/// manifests beyond policy, and the fix.
pub fn catalog_health(stats: &TableStats, policy: &HealthPolicy) -> CatalogHealth {
    let (mut weighted, mut weight) = (0.0, 0.0);
    let (mut buckets, mut saved, mut needed) = (0u64, 0u64, 0u64);
    for p in &stats.partitions_detail {
        needed += needed_files(p.bytes, policy);
        let h = partition_health(p, policy);
        weighted += f64::from(h.score) * p.files as f64;
        weight += p.files as f64;
        let excess = p.files.saturating_sub(needed_files(p.bytes, policy));
        if excess > 0 {
            buckets += 1;
            saved += excess;
        }
    }
    let mut score = if weight > 0.0 {
        weighted / weight
    } else {
        100.0
    };
    let mut reasons = vec![];
    let mut fix = vec![];
    if saved > 0 {
        reasons.push(format!(
            "{} of {} files are beyond what their partitions need",
            crate::fmt::thousands(saved),
            crate::fmt::thousands(stats.files)
        ));
        fix.push(format!(
            "compact {} buckets: −{} files",
            crate::fmt::thousands(buckets),
            crate::fmt::thousands(saved)
        ));
    }
    if stats.files > 0 && stats.small_files > 0 {
        reasons.push(format!(
            "{:.0}% small files",
            stats.small_files as f64 / stats.files as f64 * 100.0
        ));
    }
    let duplicate_items = duplicate_items(stats);
    let duplicate_share = duplicate_items
        .zip(stats.unique_items)
        .map(|(d, u)| d as f64 / u.max(1) as f64);
    if let (Some(d), Some(share)) = (duplicate_items, duplicate_share)
        && d > 0
    {
        score -= (share * 40.0).min(20.0);
        reasons.push(format!(
            "{} item versions ({:.1}% of items) written again since the last compaction",
            crate::fmt::thousands(d),
            share * 100.0
        ));
        fix.push(format!(
            "compact: drop {} duplicate versions",
            crate::fmt::thousands(d)
        ));
    }
    let excess_snapshots = stats.snapshots.saturating_sub(policy.max_snapshots);
    if excess_snapshots > 0 {
        score -= (excess_snapshots as f64 / policy.max_snapshots as f64 * 15.0).min(15.0);
        reasons.push(format!(
            "{} snapshots (policy {})",
            stats.snapshots, policy.max_snapshots
        ));
        fix.push(format!("expire {excess_snapshots} snapshots"));
    }
    let excess_manifests = stats.manifests.saturating_sub(policy.max_manifests);
    if excess_manifests > 0 {
        score -= (excess_manifests as f64 / policy.max_manifests as f64 * 15.0).min(15.0);
        reasons.push(format!(
            "{} manifests (policy {})",
            stats.manifests, policy.max_manifests
        ));
    }
    CatalogHealth {
        score: score.round().clamp(0.0, 100.0) as u8,
        reasons,
        compactable_buckets: buckets,
        files_saved: saved,
        files_needed: needed,
        excess_snapshots,
        duplicate_items,
        duplicate_share,
        fix,
    }
}

/// Item versions written since the last compaction for ids already in the
/// table: the versions ecops's appends since then wrote, less the distinct
/// items gained since (see the module doc). Walks the history newest first.
pub fn duplicate_items(stats: &TableStats) -> Option<u64> {
    use super::append::{ITEMS_WRITTEN, UNIQUE_ITEMS};
    let unique = stats.unique_items.filter(|_| stats.hash_index_current)?;
    let count = |s: &SnapshotInfo, key: &str| s.summary.get(key)?.parse::<u64>().ok();
    let mut written = 0u64;
    for s in stats.history.iter().rev() {
        match s.operation.as_str() {
            "append" => written += count(s, ITEMS_WRITTEN)?,
            "replace" => {
                let before = count(s, UNIQUE_ITEMS)?;
                return Some(written.saturating_sub(unique.saturating_sub(before)));
            }
            // Overwrites and deletes may drop ids: nothing can be told.
            "overwrite" | "delete" => return None,
            _ => {}
        }
        if s.parent_id.is_none() {
            return Some(written.saturating_sub(unique));
        }
    }
    // The history starts at a snapshot whose parent was expired.
    None
}

/// A score per snapshot, oldest first, from the summaries alone: the files
/// today's partitions need (`files_needed`) against the data files the
/// snapshot had (100 when it had no more than that), so the line shows the
/// small-file debt building up between compactions.
pub fn trend(history: &[SnapshotInfo], files_needed: u64) -> Vec<u8> {
    let mut snapshots: Vec<&SnapshotInfo> = history.iter().collect();
    snapshots.sort_by_key(|s| s.timestamp_ms);
    snapshots
        .iter()
        .filter_map(|s| {
            let files = s.summary.get("total-data-files")?.parse::<f64>().ok()?;
            if files <= 0.0 {
                return Some(100);
            }
            Some(((files_needed as f64 / files).min(1.0) * 100.0).round() as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(files: u64, small: u64, bytes: u64) -> PartitionStats {
        PartitionStats {
            cell: "81a7bffffffffff".into(),
            year: Some(2020),
            rows: files * 10,
            files,
            bytes,
            small_files: small,
        }
    }

    #[test]
    fn a_partition_of_many_small_files_scores_low_and_says_why() {
        let policy = HealthPolicy::new(8 << 20);
        let good = partition_health(&part(1, 1, 1000), &policy);
        assert_eq!(good.score, 100, "one file, even small, is all it needs");
        let bad = partition_health(&part(10, 10, 10_000), &policy);
        assert_eq!(bad.score, 100 - 45 - 40);
        assert_eq!(bad.reasons[0], "10 files where 1 would do");
    }

    fn snapshot(id: i64, operation: &str, props: &[(&str, u64)]) -> SnapshotInfo {
        SnapshotInfo {
            snapshot_id: id,
            parent_id: (id > 1).then_some(id - 1),
            timestamp_ms: id,
            operation: operation.into(),
            summary: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn with_history(unique: u64, history: Vec<SnapshotInfo>) -> TableStats {
        TableStats {
            rows: 0,
            files: 0,
            bytes: 0,
            partitions: 0,
            cells: 0,
            snapshots: history.len() as u64,
            current_snapshot_id: history.last().map(|s| s.snapshot_id),
            manifests: 0,
            small_files: 0,
            small_file_bytes: 0,
            avg_file_bytes: 0,
            unique_items: Some(unique),
            hash_index_current: true,
            hash_index: None,
            grid: None,
            top_cells: vec![],
            partitions_detail: vec![],
            history,
        }
    }

    #[test]
    fn duplicates_are_versions_written_since_the_last_compaction_less_new_items() {
        use crate::catalog::append::{ITEMS_WRITTEN, UNIQUE_ITEMS};
        let appends = |from: i64, n: &[u64]| -> Vec<SnapshotInfo> {
            n.iter()
                .enumerate()
                .map(|(i, n)| snapshot(from + i as i64, "append", &[(ITEMS_WRITTEN, *n)]))
                .collect()
        };
        // 100 new items, then 30 of them again and 20 new: 30 duplicated.
        let h = appends(1, &[100, 50]);
        assert_eq!(duplicate_items(&with_history(120, h.clone())), Some(30));
        // A compaction at 120 items, then 10 again and 5 new: 10.
        let mut after = h.clone();
        after.push(snapshot(3, "replace", &[(UNIQUE_ITEMS, 120)]));
        after.extend(appends(4, &[15]));
        assert_eq!(duplicate_items(&with_history(125, after.clone())), Some(10));
        // An append by another writer (no count), a compaction without the
        // count, an index that is not current, an expired start: unknown.
        let mut other = h.clone();
        other.push(snapshot(3, "append", &[]));
        assert_eq!(duplicate_items(&with_history(120, other)), None);
        after[2] = snapshot(3, "replace", &[]);
        assert_eq!(duplicate_items(&with_history(125, after)), None);
        let mut stale = with_history(120, h.clone());
        stale.hash_index_current = false;
        assert_eq!(duplicate_items(&stale), None);
        assert_eq!(duplicate_items(&with_history(120, h[1..].to_vec())), None);
    }

    #[test]
    fn the_catalog_fix_counts_what_compaction_would_remove() {
        let policy = HealthPolicy::new(8 << 20);
        let stats = TableStats {
            rows: 0,
            files: 13,
            bytes: 0,
            partitions: 3,
            cells: 3,
            snapshots: 120,
            current_snapshot_id: None,
            manifests: 1,
            small_files: 13,
            small_file_bytes: 8 << 20,
            avg_file_bytes: 0,
            unique_items: None,
            hash_index_current: false,
            hash_index: None,
            grid: None,
            top_cells: vec![],
            partitions_detail: vec![part(10, 10, 100), part(2, 2, 100), part(1, 1, 100)],
            history: vec![],
        };
        let h = catalog_health(&stats, &policy);
        assert_eq!((h.compactable_buckets, h.files_saved), (2, 10));
        assert_eq!(
            h.fix,
            ["compact 2 buckets: −10 files", "expire 20 snapshots"]
        );
        assert!(h.score < 50, "{h:?}");
    }
}
