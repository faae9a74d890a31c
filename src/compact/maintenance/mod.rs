//! Table maintenance: expiring old snapshots (`expire-snapshots`) and
//! deleting files no snapshot references (`remove-orphans`). Both run under
//! the catalog lock unless they only report (dry run).

pub mod expire;
pub mod orphans;

pub use super::locked::{expire_snapshots, remove_orphans};
pub use expire::{ExpireOptions, ExpireReport};
pub use orphans::{OrphanOptions, OrphanReport};

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{ManifestFile, Snapshot};
use iceberg::table::Table;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

use super::CompactError;
use crate::catalog::stats;
use crate::store::Store;

/// The manifests a snapshot's manifest list names.
pub(crate) async fn manifests_of(
    table: &Table,
    snapshot: &Snapshot,
) -> Result<Vec<ManifestFile>, CompactError> {
    Ok(stats::manifest_list(table, snapshot)
        .await?
        .consume_entries()
        .into_iter()
        .collect())
}

/// Data files listed by `manifests` (decoded in parallel), path → size in
/// bytes: only live entries with `alive_only`, else every entry (added,
/// existing, deleted).
pub(crate) async fn files_of(
    table: &Table,
    manifests: Vec<ManifestFile>,
    alive_only: bool,
) -> Result<HashMap<String, u64>, CompactError> {
    let lists: Vec<Vec<(String, u64)>> = futures::stream::iter(manifests)
        .map(|m| {
            let file_io = table.file_io().clone();
            tokio::spawn(async move {
                let manifest = m.load_manifest(&file_io).await.map_err(|e| {
                    CompactError::iceberg(format!("read manifest {}", m.manifest_path), e)
                })?;
                Ok::<_, CompactError>(
                    manifest
                        .entries()
                        .iter()
                        .filter(|e| !alive_only || e.is_alive())
                        .map(|e| (e.file_path().to_string(), e.file_size_in_bytes()))
                        .collect(),
                )
            })
        })
        .buffer_unordered(16)
        .map(|j| j.map_err(|e| CompactError::Task(format!("manifest reader failed: {e}")))?)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}

/// Deletes `uris` (16 at a time); a missing object counts as deleted.
/// Returns how many were deleted and the errors, one line each.
pub(crate) async fn delete_all(store: &Store, uris: Vec<String>) -> (u64, Vec<String>) {
    let results: Vec<Result<(), String>> = futures::stream::iter(uris)
        .map(|uri| {
            let store = store.clone();
            async move {
                let key: ObjectPath = store.key_of(&uri).map_err(|e| format!("{uri}: {e}"))?;
                match store.object_store().delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(format!("{uri}: {e}")),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut deleted = 0;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(()) => deleted += 1,
            Err(e) => errors.push(e),
        }
    }
    (deleted, errors)
}

/// Snapshot ids that references (branches, tags) point at. iceberg 0.10
/// has no public accessor for refs, so they are read from the metadata's JSON form.
pub(crate) fn referenced_snapshots(table: &Table) -> HashSet<i64> {
    let mut ids: HashSet<i64> = table.metadata().current_snapshot_id().into_iter().collect();
    if let Ok(json) = serde_json::to_value(table.metadata())
        && let Some(refs) = json.get("refs").and_then(|r| r.as_object())
    {
        ids.extend(
            refs.values()
                .filter_map(|r| r.get("snapshot-id").and_then(|v| v.as_i64())),
        );
    }
    ids
}
