//! The live data files of each manifest: read from the cache, else decoded
//! from the manifest's Avro (then cached). A manifest never changes once
//! written, so its entry stays valid for as long as it is kept.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use iceberg::spec::{DataFile, ManifestFile, PrimitiveLiteral};
use iceberg::table::Table;
use serde::{Deserialize, Serialize};

use super::store;
use crate::catalog::partition::PartitionFields;
use crate::catalog::{CatalogError, stats};

/// Cache files read at once.
const READ_CONCURRENCY: usize = 16;

/// A live data file, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveFile {
    pub path: String,
    pub cell: String,
    /// None for the year-less bucket (items without datetime).
    pub year: Option<i32>,
    pub rows: u64,
    pub bytes: u64,
    /// Bounds of the `datetime` column (µs since the epoch) when the manifest records them.
    pub datetime_min: Option<i64>,
    pub datetime_max: Option<i64>,
    /// Data sequence number: higher = written later.
    pub sequence: i64,
    /// Its partition spec has no grid partition (a spec another tool
    /// evolved): it may hold any cell, so cells never prune it.
    #[serde(default)]
    pub any_cell: bool,
    /// Its partition spec has no year: it may hold any year, so only its
    /// datetime bounds can prune it.
    #[serde(default)]
    pub any_year: bool,
}

/// One manifest's cache entry. It is trusted only for the manifest it names
/// and the `datetime` column id it was decoded with.
#[derive(Debug, Serialize, Deserialize)]
struct ManifestEntry {
    manifest: String,
    datetime_id: Option<i32>,
    files: Vec<LiveFile>,
}

/// Live files of each of `manifests`, in order, and how many manifests had
/// to be decoded (the others came from the cache under `root`).
pub async fn of_manifests(
    root: &Path,
    table: &Table,
    manifests: &[ManifestFile],
) -> Result<(Vec<Vec<LiveFile>>, usize), CatalogError> {
    let datetime_id = datetime_field(table);
    let paths: Vec<String> = manifests.iter().map(|m| m.manifest_path.clone()).collect();
    let mut found = cached(root, &paths, datetime_id).await;
    let missing: Vec<ManifestFile> = manifests
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(m, _)| m.clone())
        .collect();
    if missing.is_empty() {
        return Ok((found.into_iter().flatten().collect(), 0));
    }
    let decoded = decode(table, &missing, datetime_id).await?;
    for (m, files) in missing.iter().zip(&decoded) {
        let entry = ManifestEntry {
            manifest: m.manifest_path.clone(),
            datetime_id,
            files: files.clone(),
        };
        store::write(store::manifest_path(root, &m.manifest_path), &entry).await;
    }
    store::prune(store::manifests(root), store::KEEP_MANIFESTS).await;
    let count = decoded.len();
    let mut decoded = decoded.into_iter();
    for slot in found.iter_mut().filter(|f| f.is_none()) {
        *slot = decoded.next();
    }
    Ok((found.into_iter().flatten().collect(), count))
}

/// Cached live files of the manifests at `paths` (None where there is no
/// valid entry).
pub async fn cached(
    root: &Path,
    paths: &[String],
    datetime_id: Option<i32>,
) -> Vec<Option<Vec<LiveFile>>> {
    futures::stream::iter(paths.iter().cloned())
        .map(|manifest| {
            let at: PathBuf = store::manifest_path(root, &manifest);
            tokio::spawn(async move {
                let entry: ManifestEntry = store::read(at).await?;
                (entry.manifest == manifest && entry.datetime_id == datetime_id)
                    .then_some(entry.files)
            })
        })
        .buffered(READ_CONCURRENCY)
        .map(|joined| joined.ok().flatten())
        .collect()
        .await
}

/// Id of the current schema's `datetime` column (found by name, not by a fixed id).
pub fn datetime_field(table: &Table) -> Option<i32> {
    table
        .metadata()
        .current_schema()
        .field_by_name("datetime")
        .map(|f| f.id)
}

/// Decodes `manifests` from their Avro, in order.
async fn decode(
    table: &Table,
    manifests: &[ManifestFile],
    datetime_id: Option<i32>,
) -> Result<Vec<Vec<LiveFile>>, CatalogError> {
    stats::live_data_files_by_manifest(table, manifests, move |e, fields| {
        live_file(
            e.data_file(),
            e.file_path(),
            e.sequence_number().unwrap_or(0),
            datetime_id,
            fields,
        )
    })
    .await
}

fn live_file(
    data: &DataFile,
    path: &str,
    sequence: i64,
    datetime_id: Option<i32>,
    fields: PartitionFields,
) -> LiveFile {
    let (cell, year) = stats::cell_and_year(data.partition(), fields);
    let bound = |d: Option<&iceberg::spec::Datum>| match d.map(|d| d.literal()) {
        Some(PrimitiveLiteral::Long(v)) => Some(*v),
        _ => None,
    };
    LiveFile {
        path: path.to_string(),
        cell,
        year,
        rows: data.record_count(),
        bytes: data.file_size_in_bytes(),
        datetime_min: bound(datetime_id.and_then(|id| data.lower_bounds().get(&id))),
        datetime_max: bound(datetime_id.and_then(|id| data.upper_bounds().get(&id))),
        sequence,
        any_cell: fields.cell.is_none(),
        any_year: fields.year.is_none(),
    }
}
