//! Progress of a compaction, published through a `tokio::sync::watch`
//! channel; the final snapshot is the run's summary (`--json`).

use serde::Serialize;

/// The phase a compaction is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactPhase {
    #[default]
    Planning,
    Running,
    Done,
    Cancelled,
    Failed,
}

/// Counters of one compaction run (also its JSON summary).
///
/// `files_*`, `rows_*` and `bytes_*` `_before`/`_after` are table totals at
/// the snapshot the run started from and at the last snapshot it committed
/// (for a dry run: what the plan predicts, rows assuming no duplicates).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompactProgress {
    /// The run ledger's id of this run (set when the run is recorded).
    pub run: Option<String>,
    pub phase: CompactPhase,
    pub dry_run: bool,
    /// (cell, year) buckets in the table.
    pub buckets_scanned: u64,
    /// Buckets the plan selected.
    pub buckets_planned: u64,
    /// Buckets rewritten and committed.
    pub buckets_compacted: u64,
    /// Buckets rewritten whose group is not committed yet (live progress).
    pub buckets_pending_commit: u64,
    pub files_before: u64,
    pub files_after: u64,
    pub rows_before: u64,
    pub rows_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Files read and removed by committed groups.
    pub files_in: u64,
    /// Files written and added by committed groups.
    pub files_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Rows dropped because a newer row with the same id exists in the bucket.
    pub duplicates_removed: u64,
    /// Replace snapshots committed.
    pub commits: u64,
    /// Groups planned again because another writer committed first.
    pub replans: u64,
    pub snapshot_id: Option<i64>,
    pub seconds: f64,
    pub error: Option<String>,
    pub peak_rss_bytes: Option<u64>,
}
