//! Which (cell, year) buckets to rewrite, from metadata only.

use serde::Serialize;

use super::CompactOptions;
use super::live::{LiveFile, TableState};
use crate::catalog::Bucket;

/// One bucket the plan selected, and what rewriting it should give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketPlan {
    pub cell: String,
    pub year: Option<i32>,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Files the rewrite should produce (by `target_file_size`; at least 1).
    pub expected_files: u64,
    /// Rows after the rewrite are at most `rows` (fewer if ids repeat).
    pub max_rows_after: u64,
}

impl BucketPlan {
    /// The bucket this plan is for.
    pub fn bucket(&self) -> Bucket {
        Bucket {
            cell: self.cell.clone(),
            year: self.year,
        }
    }
}

/// The plan for a table snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub snapshot_id: Option<i64>,
    /// (cell, year) buckets in the table.
    pub buckets_scanned: u64,
    pub buckets: Vec<BucketPlan>,
    pub files_before: u64,
    pub rows_before: u64,
    pub bytes_before: u64,
    /// Table files after the plan is carried out.
    pub files_after: u64,
}

impl Plan {
    /// The run summary a dry run reports: before = now, after = as planned
    /// (rows assume no duplicates; only reading the files can tell).
    pub fn summary(&self) -> super::CompactProgress {
        super::CompactProgress {
            phase: super::CompactPhase::Done,
            dry_run: true,
            buckets_scanned: self.buckets_scanned,
            buckets_planned: self.buckets.len() as u64,
            files_before: self.files_before,
            files_after: self.files_after,
            rows_before: self.rows_before,
            rows_after: self.rows_before,
            bytes_before: self.bytes_before,
            bytes_after: self.bytes_before,
            snapshot_id: self.snapshot_id,
            ..Default::default()
        }
    }

    /// Input files of the selected buckets.
    pub fn files_in(&self) -> u64 {
        self.buckets.iter().map(|b| b.files).sum()
    }
}

/// Whether a bucket's files are worth rewriting under `opts`: at least
/// `threshold` files, or (with `small_file_bytes`) at least two small ones.
/// A single file is never rewritten.
pub fn selects(files: &[LiveFile], opts: &CompactOptions) -> bool {
    if files.len() < 2 {
        return false;
    }
    if files.len() >= opts.threshold.max(2) {
        return true;
    }
    opts.small_file_bytes
        .is_some_and(|limit| files.iter().filter(|f| f.bytes < limit).count() >= 2)
}

/// Output files a bucket of `bytes` should give: compressed input size is a
/// fair estimate of the output's (same rows, same codec, minus duplicates).
pub fn expected_files(bytes: u64, target_file_size: usize) -> u64 {
    bytes.div_ceil(target_file_size.max(1) as u64).max(1)
}

/// The plan for `state`: selected buckets in (cell, year) order.
pub fn plan(state: &TableState, opts: &CompactOptions) -> Plan {
    let mut plan = Plan {
        snapshot_id: state.table.metadata().current_snapshot_id(),
        buckets_scanned: state.buckets.len() as u64,
        files_before: state.totals.files,
        rows_before: state.totals.rows,
        bytes_before: state.totals.bytes,
        files_after: state.totals.files,
        buckets: vec![],
    };
    for (bucket, files) in &state.buckets {
        if !selects(files, opts) {
            continue;
        }
        let bytes = files.iter().map(|f| f.bytes).sum();
        let rows = files.iter().map(|f| f.rows).sum();
        let expected = expected_files(bytes, opts.target_file_size);
        plan.files_after = plan.files_after - files.len() as u64 + expected;
        plan.buckets.push(BucketPlan {
            cell: bucket.cell.clone(),
            year: bucket.year,
            files: files.len() as u64,
            rows,
            bytes,
            expected_files: expected,
            max_rows_after: rows,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: u64) -> LiveFile {
        LiveFile {
            path: format!("f{bytes}"),
            rows: 1,
            bytes,
            sequence_number: 1,
            manifest: 0,
            ordinal: 0,
        }
    }

    #[test]
    fn threshold_and_small_files_select_buckets() {
        let opts = CompactOptions {
            threshold: 3,
            ..Default::default()
        };
        assert!(!selects(&[file(1)], &opts));
        assert!(!selects(&[file(1), file(2)], &opts));
        assert!(selects(&[file(1), file(2), file(3)], &opts));
        let small = CompactOptions {
            small_file_bytes: Some(10),
            ..opts.clone()
        };
        assert!(selects(&[file(1), file(2)], &small));
        assert!(!selects(&[file(1), file(20)], &small));
        // A threshold below 2 still never rewrites a lone file.
        let one = CompactOptions {
            threshold: 1,
            ..Default::default()
        };
        assert!(!selects(&[file(1)], &one));
    }

    #[test]
    fn expected_files_round_up() {
        assert_eq!(expected_files(0, 100), 1);
        assert_eq!(expected_files(100, 100), 1);
        assert_eq!(expected_files(101, 100), 2);
    }
}
