//! Jobs and checkpoints. A job is identified by what it reads (inventory,
//! items root, filters), so running the same command again after a crash or
//! Ctrl-C finds the job's last commit and continues after it. The checkpoint
//! lives in the snapshot summary of each chunk's commit — atomically with
//! the data it describes.

use std::collections::HashMap;

use iceberg::spec::TableMetadata;
use serde::Serialize;

/// Snapshot summary keys written by ingest.
pub const KEY_JOB_ID: &str = "ecops.job-id";
pub const KEY_POSITION: &str = "ecops.inventory-position";
pub const KEY_LISTED: &str = "ecops.items-listed";
pub const KEY_CHUNK: &str = "ecops.chunk";
pub const KEY_COMPLETE: &str = "ecops.job-complete";
pub const KEY_INVENTORY: &str = "ecops.inventory";
pub const KEY_OPERATION: &str = "ecops.operation";

/// What identifies a job: the same spec resumes the same job.
#[derive(Debug, Clone, Serialize)]
pub struct JobSpec {
    pub inventory: String,
    pub items_root: Option<String>,
    pub suffix: String,
    pub since: Option<String>,
    pub limit: Option<u64>,
    /// URL lists (`--urls`): the URL column. Absent for inventories, so
    /// their job ids stay what they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_column: Option<String>,
}

impl JobSpec {
    /// The spec of an ingest of what `opts` reads (None for dead letters,
    /// whose spec depends on the records found).
    pub fn of_input(opts: &super::IngestOptions) -> Option<Self> {
        let (uri, url_column) = match &opts.inventory {
            super::InventoryInput::File(uri) => (uri, None),
            super::InventoryInput::Urls { lists, column } => (lists, Some(column.clone())),
            super::InventoryInput::DeadLetters => return None,
        };
        Some(JobSpec {
            inventory: crate::store::redact_url(uri),
            items_root: opts.fetch.items_root.clone(),
            suffix: opts.filter.suffix.clone(),
            since: opts.filter.since.map(|d| d.to_rfc3339()),
            limit: opts.filter.limit,
            url_column,
        })
    }

    /// A stable id: `ingest-<16 hex>` of the spec (or the operator's `--job` name).
    pub fn job_id(&self, name: Option<&str>) -> String {
        if let Some(n) = name {
            return n.to_string();
        }
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        format!("ingest-{:016x}", xxhash_rust::xxh3::xxh3_64(&canonical))
    }
}

/// Checks an operator-given job name: it becomes a path segment.
pub fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != ".."
}

/// Where a job stands, read from its newest commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// Inventory position after the last committed row.
    pub position: u64,
    /// Items listed up to `position` (for `--limit`).
    pub listed: u64,
    /// Chunks committed.
    pub chunks: u64,
    pub complete: bool,
    pub snapshot_id: i64,
}

/// The newest checkpoint of `job_id` among the current snapshot's ancestors.
pub fn find_checkpoint(metadata: &TableMetadata, job_id: &str) -> Option<Checkpoint> {
    let mut next = metadata.current_snapshot_id();
    while let Some(id) = next {
        let snapshot = metadata.snapshot_by_id(id)?;
        let props = &snapshot.summary().additional_properties;
        if props.get(KEY_JOB_ID).map(String::as_str) == Some(job_id) {
            let num = |k: &str| {
                props
                    .get(k)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            return Some(Checkpoint {
                position: num(KEY_POSITION),
                listed: num(KEY_LISTED),
                chunks: num(KEY_CHUNK),
                complete: props.get(KEY_COMPLETE).map(String::as_str) == Some("true"),
                snapshot_id: id,
            });
        }
        next = snapshot.parent_snapshot_id();
    }
    None
}

/// The summary properties of one chunk commit.
pub fn chunk_summary(
    job_id: &str,
    inventory: &str,
    checkpoint: &Checkpoint,
) -> HashMap<String, String> {
    HashMap::from([
        (KEY_OPERATION.into(), "ingest".into()),
        (KEY_JOB_ID.into(), job_id.into()),
        (KEY_INVENTORY.into(), inventory.into()),
        (KEY_POSITION.into(), checkpoint.position.to_string()),
        (KEY_LISTED.into(), checkpoint.listed.to_string()),
        (KEY_CHUNK.into(), checkpoint.chunks.to_string()),
        (KEY_COMPLETE.into(), checkpoint.complete.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(since: Option<&str>) -> JobSpec {
        JobSpec {
            inventory: "/inv.csv".into(),
            items_root: None,
            suffix: ".stac.json".into(),
            since: since.map(String::from),
            limit: None,
            url_column: None,
        }
    }

    #[test]
    fn same_spec_same_job_and_filters_change_it() {
        assert_eq!(spec(None).job_id(None), spec(None).job_id(None));
        assert_ne!(
            spec(None).job_id(None),
            spec(Some("2026-01-01")).job_id(None)
        );
        assert_eq!(spec(None).job_id(Some("nightly")), "nightly");
        // The same file read as a URL list is another job.
        let urls = JobSpec {
            url_column: Some("url".into()),
            ..spec(None)
        };
        assert_ne!(urls.job_id(None), spec(None).job_id(None));
    }

    #[test]
    fn job_names_are_path_safe() {
        assert!(valid_job_name("backfill-2026_01.a"));
        for bad in ["", "..", "a/b", "a b", "x\n"] {
            assert!(!valid_job_name(bad), "{bad:?}");
        }
    }
}
