//! `index verify`: the index (main file and deltas) against the table's ids.

use super::sorter::{Merge, RunBuilder, SpillDir};
use super::{
    EarthCatalog, HashIndexError, HashIndexStatus, VerifyReport, blocking, collect_runs, source,
    spill_parent,
};

impl EarthCatalog {
    /// Compares the index with the table's ids (reads both whole): the
    /// files' own checks (schema, one row group, no nulls, strictly
    /// ascending, row count), then ids missing from it and hashes it holds
    /// that the table does not. The main file and its chained deltas are
    /// compared as one. Read-only.
    pub async fn verify_hash_index(&self) -> Result<VerifyReport, HashIndexError> {
        let table = self.table().await?;
        let status = self.hash_index_status(&table).await;
        let found = self.find_index(&table).await?;
        let spill = SpillDir::new(&spill_parent())?;
        let files = source::live_files(&table).await?;
        let (runs, _) = collect_runs(self, files, &spill).await?;
        let (main, deltas) = match found.open(&spill).await {
            Ok(r) => r,
            Err(HashIndexError::Existing(e)) => {
                return Ok(verify_failed(&status, e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let exists = main.is_some();
        let mut streams = deltas;
        if let Some(main) = main {
            streams.insert(0, Box::new(main));
        }
        let index = match Merge::new(streams) {
            Ok(m) => m,
            Err(e) => return Ok(verify_failed(&status, e.to_string())),
        };
        let mut report = blocking("verify", move || compare(runs, exists.then_some(index))).await?;
        report.uri = status.uri.clone();
        report.index_rows = status.rows;
        report.snapshot_id = status.snapshot_id;
        report.current = status.current;
        report.problem = report.problem.or(status.problem.clone());
        report.ok =
            report.exists && report.problem.is_none() && report.missing == 0 && report.extra == 0;
        Ok(report)
    }
}

fn verify_failed(status: &HashIndexStatus, problem: String) -> VerifyReport {
    VerifyReport {
        uri: status.uri.clone(),
        ok: false,
        exists: true,
        problem: Some(problem),
        index_rows: status.rows,
        table_distinct: 0,
        missing: 0,
        extra: 0,
        missing_examples: vec![],
        extra_examples: vec![],
        snapshot_id: status.snapshot_id,
        current: false,
    }
}

/// Merge-compares the table's distinct hashes (runs) with the index's.
fn compare(runs: RunBuilder, index: Option<Merge>) -> Result<VerifyReport, HashIndexError> {
    const EXAMPLES: usize = 5;
    let mut table = Merge::new(runs.into_streams()?)?;
    let mut report = VerifyReport {
        uri: String::new(),
        ok: false,
        exists: index.is_some(),
        problem: None,
        index_rows: None,
        table_distinct: 0,
        missing: 0,
        extra: 0,
        missing_examples: vec![],
        extra_examples: vec![],
        snapshot_id: None,
        current: false,
    };
    let mut index = index;
    let mut next_index = |report: &mut VerifyReport| -> Option<u128> {
        let r = index.as_mut()?;
        match r.next_hash() {
            Ok(h) => h.map(|x| x.0),
            Err(e) => {
                report.problem.get_or_insert(e.to_string());
                None
            }
        }
    };
    let mut t = table.next_hash()?.map(|x| x.0);
    let mut i = next_index(&mut report);
    loop {
        let (missing, extra) = match (t, i) {
            (None, None) => break,
            (Some(a), Some(b)) if a == b => (None, None),
            (Some(a), Some(b)) if a < b => (Some(a), None),
            (Some(_), Some(b)) => (None, Some(b)),
            (Some(a), None) => (Some(a), None),
            (None, Some(b)) => (None, Some(b)),
        };
        if let Some(a) = missing {
            report.missing += 1;
            if report.missing_examples.len() < EXAMPLES {
                report.missing_examples.push(format!("{a:032x}"));
            }
        }
        if let Some(b) = extra {
            report.extra += 1;
            if report.extra_examples.len() < EXAMPLES {
                report.extra_examples.push(format!("{b:032x}"));
            }
        }
        if extra.is_none() {
            report.table_distinct += 1;
            t = table.next_hash()?.map(|x| x.0);
        }
        if missing.is_none() {
            i = next_index(&mut report);
        }
    }
    Ok(report)
}
