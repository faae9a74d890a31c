//! `expire-snapshots`: drop snapshots older than a cutoff (keeping the
//! newest N, the current one and any a branch or tag names) from the table
//! metadata in one compare-and-swap, then delete the manifest lists,
//! manifests and data files only expired snapshots reached. Nothing a
//! retained snapshot can read is deleted. Old metadata files beyond
//! `write.metadata.previous-versions-max` leave the metadata log as iceberg
//! builds it; `remove-orphans` deletes them.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use iceberg::spec::TableMetadataBuilder;
use object_store::ObjectStoreExt;
use serde::Serialize;

use super::{delete_all, files_of, manifests_of, referenced_snapshots};
use crate::catalog::EarthCatalog;
use crate::compact::CompactError;
use crate::compact::replace::commit_metadata;

/// What to expire.
#[derive(Debug, Clone)]
pub struct ExpireOptions {
    /// Snapshots older than this may expire.
    pub older_than: Duration,
    /// The newest this many snapshots are always kept (at least 1).
    pub retain_last: usize,
    /// Report what would expire, change nothing.
    pub dry_run: bool,
}

/// What expiring did (or would do, for a dry run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExpireReport {
    /// The run ledger's id of this run (set when the run is recorded).
    pub run: Option<String>,
    pub dry_run: bool,
    pub snapshots_before: u64,
    pub snapshots_expired: u64,
    pub snapshots_after: u64,
    pub expired_snapshot_ids: Vec<i64>,
    pub manifest_lists_deleted: u64,
    pub manifests_deleted: u64,
    pub data_files_deleted: u64,
    /// Bytes of the manifest lists, manifests and data files only expired
    /// snapshots reach (for a dry run: what deleting would free).
    pub bytes: u64,
    /// Bytes of those data files alone.
    pub data_bytes: u64,
    /// Every file that is (or would be) deleted: manifest lists, then
    /// manifests, then data files.
    pub paths: Vec<String>,
    /// Files that could not be deleted (they are orphans now; `remove-orphans` retries).
    pub delete_errors: Vec<String>,
}

/// Expires snapshots (the caller holds the lock, or it is a dry run).
pub(crate) async fn expire(
    catalog: &EarthCatalog,
    opts: &ExpireOptions,
) -> Result<ExpireReport, CompactError> {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let table = catalog.table().await?;
        let metadata = table.metadata();
        let location = table
            .metadata_location()
            .ok_or_else(|| CompactError::Unsupported("table has no metadata location".into()))?
            .to_string();
        let cutoff = chrono::Utc::now().timestamp_millis()
            - i64::try_from(opts.older_than.as_millis()).unwrap_or(i64::MAX);
        let mut snapshots: Vec<_> = metadata.snapshots().cloned().collect();
        snapshots.sort_by_key(|s| std::cmp::Reverse((s.timestamp_ms(), s.sequence_number())));
        let protected = referenced_snapshots(&table);
        let (expired, retained): (Vec<_>, Vec<_>) =
            snapshots.iter().enumerate().partition(|(i, s)| {
                *i >= opts.retain_last.max(1)
                    && s.timestamp_ms() < cutoff
                    && !protected.contains(&s.snapshot_id())
            });
        let mut report = ExpireReport {
            dry_run: opts.dry_run,
            snapshots_before: snapshots.len() as u64,
            snapshots_expired: expired.len() as u64,
            snapshots_after: retained.len() as u64,
            expired_snapshot_ids: expired.iter().map(|(_, s)| s.snapshot_id()).collect(),
            ..Default::default()
        };
        if expired.is_empty() {
            return Ok(report);
        }
        // What retained snapshots reach stays; the rest of what expired ones reach goes.
        let mut kept_manifests = Vec::new();
        for (_, s) in &retained {
            kept_manifests.extend(manifests_of(&table, s).await?);
        }
        let kept_paths: HashSet<String> = kept_manifests
            .iter()
            .map(|m| m.manifest_path.clone())
            .collect();
        let mut gone_manifests = Vec::new();
        let mut seen = HashSet::new();
        for (_, s) in &expired {
            for m in manifests_of(&table, s).await? {
                if !kept_paths.contains(&m.manifest_path) && seen.insert(m.manifest_path.clone()) {
                    gone_manifests.push(m);
                }
            }
        }
        let mut unique_kept = Vec::new();
        let mut seen_kept = HashSet::new();
        for m in kept_manifests {
            if seen_kept.insert(m.manifest_path.clone()) {
                unique_kept.push(m);
            }
        }
        let live = files_of(&table, unique_kept, true).await?;
        let data: Vec<(String, u64)> = files_of(&table, gone_manifests.clone(), false)
            .await?
            .into_iter()
            .filter(|(p, _)| !live.contains_key(p))
            .collect();
        let lists: Vec<String> = expired
            .iter()
            .map(|(_, s)| s.manifest_list().to_string())
            .collect();
        let manifest_bytes: u64 = gone_manifests
            .iter()
            .map(|m| u64::try_from(m.manifest_length).unwrap_or(0))
            .sum();
        let manifests: Vec<String> = gone_manifests
            .into_iter()
            .map(|m| m.manifest_path)
            .collect();
        report.data_bytes = data.iter().map(|(_, n)| n).sum();
        report.bytes = report.data_bytes + manifest_bytes + sizes_of(catalog, &lists).await;
        let data: Vec<String> = data.into_iter().map(|(p, _)| p).collect();
        report.paths = lists
            .iter()
            .chain(&manifests)
            .chain(&data)
            .cloned()
            .collect();
        if opts.dry_run {
            report.manifest_lists_deleted = lists.len() as u64;
            report.manifests_deleted = manifests.len() as u64;
            report.data_files_deleted = data.len() as u64;
            return Ok(report);
        }
        let mut builder =
            TableMetadataBuilder::new_from_metadata(metadata.clone(), Some(location.clone()))
                .remove_snapshots(&report.expired_snapshot_ids);
        for id in &report.expired_snapshot_ids {
            builder = builder
                .remove_statistics(*id)
                .remove_partition_statistics(*id);
        }
        let new_metadata = builder
            .build()
            .map_err(|e| CompactError::iceberg("build the new table metadata", e))?
            .metadata;
        match commit_metadata(catalog, &location, new_metadata).await {
            Ok(_) => {}
            Err(CompactError::Conflict(why)) if attempt < ATTEMPTS => {
                tracing::warn!("{why}; expiring again against the new snapshot");
                continue;
            }
            Err(e) => return Err(e),
        }
        // Only now, with no snapshot naming them any more, delete.
        let store = catalog.base();
        let (n, mut errors) = delete_all(store, data).await;
        report.data_files_deleted = n;
        let (n, e) = delete_all(store, manifests).await;
        report.manifests_deleted = n;
        errors.extend(e);
        let (n, e) = delete_all(store, lists).await;
        report.manifest_lists_deleted = n;
        errors.extend(e);
        report.delete_errors = errors
            .iter()
            .map(|e| crate::store::redact_secrets(e))
            .collect();
        return Ok(report);
    }
    Err(CompactError::Conflict(
        "other writers kept committing first".into(),
    ))
}

/// Total size of `uris` (manifest lists: their size is recorded nowhere
/// else), from one HEAD each; an object that cannot be read counts 0.
fn sizes_of<'a>(catalog: &'a EarthCatalog, uris: &'a [String]) -> BoxFuture<'a, u64> {
    // Boxed: the stream's closures would otherwise make the futures of
    // spawned tasks awaiting this not provably Send.
    let store = catalog.base();
    futures::stream::iter(uris)
        .map(move |uri| async move {
            let key = store.key_of(uri).ok()?;
            store.object_store().head(&key).await.ok().map(|m| m.size)
        })
        .buffer_unordered(16)
        .fold(0, |sum, n| futures::future::ready(sum + n.unwrap_or(0)))
        .boxed()
}
