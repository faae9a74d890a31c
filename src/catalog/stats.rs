//! Catalog health from metadata only (manifest lists and manifests, the hash
//! index footer): no data file is read.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{
    DataContentType, Literal, ManifestFile, ManifestList, PrimitiveLiteral, Snapshot, Struct,
};
use iceberg::table::Table;
use serde::Serialize;

use super::partition::{PartitionFields, fields_by_spec};
use super::schema::GridInfo;
use super::summary::SummaryCache;
use super::{CatalogError, EarthCatalog};

/// Files smaller than this are "small" unless the caller says otherwise.
pub const DEFAULT_SMALL_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// One (cell, year) partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStats {
    pub cell: String,
    pub year: Option<i32>,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub small_files: u64,
}

/// Totals of one cell across years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellStats {
    pub cell: String,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// One snapshot of the table's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    pub snapshot_id: i64,
    pub parent_id: Option<i64>,
    pub timestamp_ms: i64,
    pub operation: String,
    pub summary: BTreeMap<String, String>,
}

/// Health of the table at its current snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableStats {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    /// Number of (cell, year) partitions.
    pub partitions: u64,
    /// Distinct cells.
    pub cells: u64,
    pub snapshots: u64,
    pub current_snapshot_id: Option<i64>,
    pub manifests: u64,
    pub small_files: u64,
    pub small_file_bytes: u64,
    pub avg_file_bytes: u64,
    /// Distinct items, from the hash index when it exists and is readable.
    pub unique_items: Option<u64>,
    /// The hash index reflects the current snapshot's ids.
    pub hash_index_current: bool,
    /// The hash index: where, rows, snapshot, why it is stale or unusable.
    pub hash_index: Option<super::hash_index::HashIndexStatus>,
    pub grid: Option<GridInfo>,
    pub top_cells: Vec<CellStats>,
    pub partitions_detail: Vec<PartitionStats>,
    pub history: Vec<SnapshotInfo>,
}

/// Options for [`EarthCatalog::stats`].
#[derive(Debug, Clone)]
pub struct StatsOptions {
    pub top: usize,
    pub small_file_bytes: u64,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            top: 10,
            small_file_bytes: DEFAULT_SMALL_FILE_BYTES,
        }
    }
}

/// A live data file as recorded in a manifest.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub path: String,
    pub cell: String,
    pub year: Option<i32>,
    pub rows: u64,
    pub bytes: u64,
}

/// Reads a snapshot's manifest list.
pub async fn manifest_list(
    table: &Table,
    snapshot: &Snapshot,
) -> Result<ManifestList, CatalogError> {
    let bytes = table
        .file_io()
        .new_input(snapshot.manifest_list())
        .map_err(|e| CatalogError::iceberg("open manifest list", e))?
        .read()
        .await
        .map_err(|e| {
            CatalogError::iceberg(
                &format!("read manifest list {}", snapshot.manifest_list()),
                e,
            )
        })?;
    ManifestList::parse_with_version(&bytes, table.metadata().format_version()).map_err(|e| {
        CatalogError::iceberg(
            &format!("parse manifest list {}", snapshot.manifest_list()),
            e,
        )
    })
}

/// The (cell, year) bucket of a partition tuple written with a spec whose
/// fields are `fields` (`year` is stored as years since 1970; a missing
/// cell is `__none__`).
pub fn cell_and_year(partition: &Struct, fields: PartitionFields) -> (String, Option<i32>) {
    let positions = (fields.cell, fields.year);
    let fields = partition.fields();
    let at = |i: Option<usize>| i.and_then(|i| fields.get(i)).and_then(|f| f.as_ref());
    let cell = match at(positions.0) {
        Some(Literal::Primitive(PrimitiveLiteral::String(s))) => s.clone(),
        _ => super::schema::NO_CELL.to_string(),
    };
    let year = match at(positions.1) {
        Some(Literal::Primitive(PrimitiveLiteral::Int(y))) => Some(1970 + *y),
        _ => None,
    };
    (cell, year)
}

/// Live data files of the current snapshot, manifests read concurrently.
pub async fn live_files(table: &Table) -> Result<Vec<FileEntry>, CatalogError> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(vec![]);
    };
    let list = manifest_list(table, snapshot).await?;
    files_of_manifests(table, list.entries()).await
}

/// Live data files listed by `manifests`.
pub async fn files_of_manifests(
    table: &Table,
    manifests: &[ManifestFile],
) -> Result<Vec<FileEntry>, CatalogError> {
    map_live_data_files(table, manifests, |e, fields| {
        let (cell, year) = cell_and_year(e.data_file().partition(), fields);
        FileEntry {
            path: e.file_path().to_string(),
            cell,
            year,
            rows: e.record_count(),
            bytes: e.file_size_in_bytes(),
        }
    })
    .await
}

/// `describe` applied to every live data-file entry listed by `manifests`,
/// with the partition fields of the spec each manifest was written with
/// (a spec id the table does not know has none).
pub async fn map_live_data_files<T, F>(
    table: &Table,
    manifests: &[ManifestFile],
    describe: F,
) -> Result<Vec<T>, CatalogError>
where
    T: Send + 'static,
    F: Fn(&iceberg::spec::ManifestEntry, PartitionFields) -> T + Copy + Send + 'static,
{
    let per_manifest = live_data_files_by_manifest(table, manifests, describe).await?;
    Ok(per_manifest.into_iter().flatten().collect())
}

/// [`map_live_data_files`], one list per manifest in the order of
/// `manifests`. Each manifest is decoded on its own runtime task: Avro
/// decoding is CPU-bound, so this spreads it over all cores.
pub async fn live_data_files_by_manifest<T, F>(
    table: &Table,
    manifests: &[ManifestFile],
    describe: F,
) -> Result<Vec<Vec<T>>, CatalogError>
where
    T: Send + 'static,
    F: Fn(&iceberg::spec::ManifestEntry, PartitionFields) -> T + Copy + Send + 'static,
{
    let specs = fields_by_spec(table);
    futures::stream::iter(manifests.iter().cloned())
        .map(|m| {
            let file_io = table.file_io().clone();
            let fields = specs.get(&m.partition_spec_id).copied().unwrap_or_default();
            tokio::spawn(async move {
                let manifest = m.load_manifest(&file_io).await.map_err(|e| {
                    CatalogError::iceberg(&format!("read manifest {}", m.manifest_path), e)
                })?;
                Ok::<_, CatalogError>(
                    manifest
                        .entries()
                        .iter()
                        .filter(|e| e.is_alive() && e.content_type() == DataContentType::Data)
                        .map(|e| describe(e, fields))
                        .collect(),
                )
            })
        })
        .buffered(16)
        .map(|joined| {
            joined
                .map_err(|e| CatalogError::Invalid(format!("manifest reader task failed: {e}")))?
        })
        .try_collect()
        .await
}

/// Some cell id of the table (for inferring the grid resolution).
pub(crate) async fn any_cell(table: &Table) -> Option<String> {
    let snapshot = table.metadata().current_snapshot()?;
    let list = manifest_list(table, snapshot).await.ok()?;
    for m in list.entries() {
        let files = files_of_manifests(table, std::slice::from_ref(m))
            .await
            .ok()?;
        if let Some(f) = files.into_iter().find(|f| f.cell != super::schema::NO_CELL) {
            return Some(f.cell);
        }
    }
    None
}

impl EarthCatalog {
    /// Table health at the current snapshot, from metadata only: the
    /// snapshot's per-partition totals come from the summary cache, which
    /// decodes only the manifests that changed since a cached snapshot.
    pub async fn stats(&self, opts: &StatsOptions) -> Result<TableStats, CatalogError> {
        let table = self.table().await?;
        let metadata = table.metadata();
        let (parts, manifests) = match metadata.current_snapshot() {
            Some(snapshot) => {
                let (summary, _) = SummaryCache::default()
                    .summary(&table, snapshot, opts.small_file_bytes)
                    .await?;
                (summary.partitions(), summary.manifests.len() as u64)
            }
            None => (vec![], 0),
        };
        let sample = parts
            .iter()
            .find(|p| p.cell != super::schema::NO_CELL)
            .map(|p| p.cell.clone());
        let mut stats = summarize_partitions(parts, opts);
        stats.manifests = manifests;
        stats.current_snapshot_id = metadata.current_snapshot_id();
        let mut history: Vec<SnapshotInfo> = metadata
            .snapshots()
            .map(|s| SnapshotInfo {
                snapshot_id: s.snapshot_id(),
                parent_id: s.parent_snapshot_id(),
                timestamp_ms: s.timestamp_ms(),
                operation: s.summary().operation.as_str().to_string(),
                summary: s
                    .summary()
                    .additional_properties
                    .clone()
                    .into_iter()
                    .collect(),
            })
            .collect();
        history.sort_by_key(|s| (s.timestamp_ms, s.snapshot_id));
        stats.snapshots = history.len() as u64;
        stats.history = history;
        stats.grid = super::schema::grid_from_properties(metadata.properties(), sample.as_deref());
        let index = self.hash_index_status(&table).await;
        stats.unique_items = index.rows;
        stats.hash_index_current = index.current;
        stats.hash_index = Some(index);
        Ok(stats)
    }
}

/// Aggregates file entries into partition, cell and table totals.
pub fn summarize(files: &[FileEntry], opts: &StatsOptions) -> TableStats {
    let mut parts: HashMap<(&str, Option<i32>), PartitionStats> = HashMap::new();
    for f in files {
        let p = parts
            .entry((f.cell.as_str(), f.year))
            .or_insert_with(|| PartitionStats {
                cell: f.cell.clone(),
                year: f.year,
                rows: 0,
                files: 0,
                bytes: 0,
                small_files: 0,
            });
        p.rows += f.rows;
        p.files += 1;
        p.bytes += f.bytes;
        p.small_files += u64::from(f.bytes < opts.small_file_bytes);
    }
    summarize_partitions(parts.into_values().collect(), opts)
}

/// Aggregates (cell, year) partition totals (small files counted below
/// `opts.small_file_bytes`) into cell and table totals.
pub fn summarize_partitions(mut parts: Vec<PartitionStats>, opts: &StatsOptions) -> TableStats {
    let mut cells: HashMap<&str, CellStats> = HashMap::new();
    let (mut rows, mut files, mut bytes, mut small) = (0u64, 0u64, 0u64, 0u64);
    parts.sort_by(|a, b| (&a.cell, a.year).cmp(&(&b.cell, b.year)));
    for p in &parts {
        rows += p.rows;
        files += p.files;
        bytes += p.bytes;
        small += p.small_files;
        let c = cells.entry(p.cell.as_str()).or_insert_with(|| CellStats {
            cell: p.cell.clone(),
            rows: 0,
            files: 0,
            bytes: 0,
        });
        c.rows += p.rows;
        c.files += p.files;
        c.bytes += p.bytes;
    }
    let mut top_cells: Vec<CellStats> = cells.into_values().collect();
    top_cells.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.cell.cmp(&b.cell)));
    let cell_count = top_cells.len() as u64;
    top_cells.truncate(opts.top);
    TableStats {
        rows,
        files,
        bytes,
        partitions: parts.len() as u64,
        cells: cell_count,
        snapshots: 0,
        current_snapshot_id: None,
        manifests: 0,
        small_files: small,
        small_file_bytes: opts.small_file_bytes,
        avg_file_bytes: bytes.checked_div(files).unwrap_or(0),
        unique_items: None,
        hash_index_current: false,
        hash_index: None,
        grid: None,
        top_cells,
        partitions_detail: parts,
        history: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cell: &str, year: Option<i32>, rows: u64, bytes: u64) -> FileEntry {
        FileEntry {
            path: format!("{cell}/{year:?}/{rows}"),
            cell: cell.into(),
            year,
            rows,
            bytes,
        }
    }

    #[test]
    fn summarizes_partitions_and_cells() {
        let files = vec![
            entry("a", Some(2020), 5, 100),
            entry("a", Some(2021), 3, 50_000),
            entry("b", Some(2020), 9, 10),
            entry("a", Some(2020), 1, 10),
        ];
        let s = summarize(
            &files,
            &StatsOptions {
                top: 1,
                small_file_bytes: 1000,
            },
        );
        assert_eq!(
            (s.rows, s.files, s.bytes, s.partitions, s.cells),
            (18, 4, 50_120, 3, 2)
        );
        assert_eq!(s.small_files, 3);
        assert_eq!(s.top_cells.len(), 1);
        assert_eq!(
            (
                s.top_cells[0].cell.as_str(),
                s.top_cells[0].rows,
                s.top_cells[0].files
            ),
            ("a", 9, 3)
        );
        assert_eq!(s.avg_file_bytes, 50_120 / 4);
    }
}
