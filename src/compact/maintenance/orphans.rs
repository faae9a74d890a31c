//! `remove-orphans`: delete files under the table's data and metadata
//! folders that nothing references and that are older than a guard.
//!
//! Referenced = the current metadata file and its metadata log, every
//! snapshot's manifest list, every manifest those name, every data file
//! those list (any status), and statistics files. Only two places are
//! listed: `warehouse/grid_partition=…/` (data) and the table's
//! `metadata/` folder, so the catalog database, hash index, lock, lock
//! audit and dead letters (outside them) are never candidates; they are
//! also excluded by name. The age guard (default 3 days) keeps files of a
//! write still in flight: they are new until it commits.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use serde::Serialize;

use super::{delete_all, files_of, manifests_of};
use crate::catalog::EarthCatalog;
use crate::compact::CompactError;

/// Default age guard.
pub const DEFAULT_ORPHAN_AGE: Duration = Duration::from_secs(3 * 24 * 3600);

/// What to remove.
#[derive(Debug, Clone)]
pub struct OrphanOptions {
    /// Only files last modified longer ago than this are removed.
    pub older_than: Duration,
    /// List the orphans, delete nothing.
    pub dry_run: bool,
}

/// What was found and removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrphanReport {
    /// The run ledger's id of this run (set when the run is recorded).
    pub run: Option<String>,
    pub dry_run: bool,
    /// Objects listed under the data and metadata folders.
    pub listed: u64,
    /// Files referenced by the table's metadata.
    pub referenced: u64,
    /// Unreferenced files older than the guard.
    pub orphans: u64,
    pub orphan_bytes: u64,
    /// Unreferenced files newer than the guard (kept).
    pub too_new: u64,
    pub deleted: u64,
    /// The orphans' locations.
    pub paths: Vec<String>,
    pub delete_errors: Vec<String>,
}

/// Every object key the table's metadata references.
pub async fn referenced_keys(catalog: &EarthCatalog) -> Result<HashSet<String>, CompactError> {
    let table = catalog.table().await?;
    let metadata = table.metadata();
    let mut uris: HashSet<String> = HashSet::new();
    uris.extend(table.metadata_location().map(str::to_string));
    uris.extend(
        metadata
            .metadata_log()
            .iter()
            .map(|l| l.metadata_file.clone()),
    );
    uris.extend(
        metadata
            .statistics_iter()
            .map(|s| s.statistics_path.clone()),
    );
    uris.extend(
        metadata
            .partition_statistics_iter()
            .map(|s| s.statistics_path.clone()),
    );
    let mut manifests = Vec::new();
    let mut seen = HashSet::new();
    for snapshot in metadata.snapshots() {
        uris.insert(snapshot.manifest_list().to_string());
        for m in manifests_of(&table, snapshot).await? {
            if seen.insert(m.manifest_path.clone()) {
                uris.insert(m.manifest_path.clone());
                manifests.push(m);
            }
        }
    }
    uris.extend(files_of(&table, manifests, false).await?.into_keys());
    let store = catalog.base();
    Ok(uris
        .iter()
        .filter_map(|u| store.key_of(u).ok())
        .map(|k| k.to_string())
        .collect())
}

/// Finds orphans and, unless a dry run, deletes them (the caller holds the lock).
pub(crate) async fn find_and_remove(
    catalog: &EarthCatalog,
    opts: &OrphanOptions,
) -> Result<OrphanReport, CompactError> {
    let store = catalog.base();
    // References first, listing second: a file a concurrent writer commits
    // in between is listed but not found referenced; it is new, and the age
    // guard keeps it.
    let referenced = referenced_keys(catalog).await?;
    let table = catalog.table().await?;
    let metadata_dir = store
        .key_of(&format!("{}/metadata", table.metadata().location()))
        .map_err(|e| CompactError::Options(e.to_string()))?;
    let warehouse = store.key(crate::catalog::WAREHOUSE_DIR);
    let never: HashSet<String> = [
        store.key(crate::catalog::DB_FILE),
        store.key(crate::catalog::LOCK_FILE),
        store
            .key_of(&catalog.hash_index_uri())
            .unwrap_or_else(|_| store.key("warehouse_id_hashes.parquet")),
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(opts.older_than).unwrap_or(chrono::Duration::MAX);
    let mut report = OrphanReport {
        dry_run: opts.dry_run,
        referenced: referenced.len() as u64,
        ..Default::default()
    };
    let mut doomed = Vec::new();
    let data_prefix = format!("{warehouse}/grid_partition=");
    for prefix in [warehouse.clone(), metadata_dir.clone()] {
        let listing: Vec<object_store::ObjectMeta> = store
            .object_store()
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| CompactError::Store {
                path: prefix.to_string(),
                source,
            })?;
        for object in listing {
            let key = object.location.to_string();
            let in_scope = if prefix == warehouse {
                key.starts_with(&data_prefix)
            } else {
                true
            };
            if !in_scope || referenced.contains(&key) || never.contains(&key) {
                if in_scope {
                    report.listed += 1;
                }
                continue;
            }
            report.listed += 1;
            if object.last_modified >= cutoff {
                report.too_new += 1;
                continue;
            }
            report.orphans += 1;
            report.orphan_bytes += object.size;
            doomed.push(object.location);
        }
    }
    report.paths = doomed.iter().map(|k| uri_of(catalog, k)).collect();
    if !opts.dry_run {
        let (n, errors) = delete_all(store, report.paths.clone()).await;
        report.deleted = n;
        report.delete_errors = errors
            .iter()
            .map(|e| crate::store::redact_secrets(e))
            .collect();
    }
    Ok(report)
}

/// The location string of an object key, in the form metadata records.
fn uri_of(catalog: &EarthCatalog, key: &ObjectPath) -> String {
    match catalog.base().location() {
        crate::store::Location::Local(_) => format!("/{key}"),
        crate::store::Location::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
    }
}
