//! Planning: the query geometry's H3 cells at the table's resolution, then
//! the live data files of those cells whose year partition and datetime
//! column bounds can hold a match.
//!
//! The live-file list of a snapshot comes from the summary cache shared
//! with stats ([`crate::catalog::summary`]): each manifest is decoded once
//! and kept on disk, so one-shot `ecops query` runs share it and a commit
//! costs the decoding of its own manifests only. The indexed list is also
//! kept in the process, keyed by metadata location and snapshot id (a commit
//! writes a new metadata file, so a key never goes stale); a warm plan is a
//! hash lookup per cell.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Datelike;
use h3o::CellIndex;
use iceberg::table::Table;
use serde::Serialize;

use super::model::{Query, QueryError, QueryGeometry};
use crate::catalog::EarthCatalog;
use crate::catalog::schema::{self, NO_CELL};
use crate::catalog::summary::SummaryCache;

/// Snapshots whose file lists are kept in memory.
const CACHED_SNAPSHOTS: usize = 8;

/// A live data file, as the manifests describe it.
pub use crate::catalog::summary::LiveFile as PlannedFile;

/// Every live file of one snapshot, indexed by cell.
#[derive(Debug)]
struct FileIndex {
    files: Vec<PlannedFile>,
    by_cell: HashMap<String, Vec<u32>>,
    /// Files that may hold any cell (read whatever the cells).
    any_cell: Vec<u32>,
    bytes: u64,
    /// Manifests of the snapshot, and how many had to be decoded to build this index.
    manifests: usize,
    decoded: usize,
}

type CacheKey = (String, i64);

static CACHE: Mutex<Vec<(CacheKey, Arc<FileIndex>)>> = Mutex::new(Vec::new());

/// What the scan will read, and why (`ecops query --explain`).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// H3 resolution of the table's grid (0 for a GeoJSON grid).
    pub resolution: u8,
    /// The grid, in words (`h3 resolution 1`, `geojson: 12 regions`).
    pub grid: String,
    /// Snapshot planned against (None: empty table).
    pub snapshot_id: Option<i64>,
    /// Cells of the query geometry; None when the query has no geometry (every cell).
    pub cells: Option<Vec<String>>,
    /// Year partitions that can hold a match (inclusive); None when unbounded.
    pub years: Option<(i32, i32)>,
    /// Files to read, in (cell, year, path) order (not serialised: can be long).
    #[serde(skip)]
    pub files: Vec<PlannedFile>,
    /// How many files the scan reads (`files.len()`).
    pub files_kept: usize,
    /// Live files of the snapshot.
    pub files_total: usize,
    /// Files dropped by the cells, by the year partition, and by datetime column bounds.
    pub pruned_by_cell: usize,
    pub pruned_by_year: usize,
    pub pruned_by_stats: usize,
    pub bytes_kept: u64,
    pub bytes_total: u64,
    pub rows_kept: u64,
    /// The file list came from a cache, in the process or on disk (no
    /// manifest was decoded).
    pub cached: bool,
    /// Manifests of the snapshot, and how many were decoded for this plan
    /// (0 when cached; after a commit, only the manifests it added).
    pub manifests: usize,
    pub manifests_decoded: usize,
    /// Time to compute the cells, and to plan in all (table load, file list, cells, pruning).
    #[serde(serialize_with = "millis")]
    pub cells_time: Duration,
    #[serde(serialize_with = "millis")]
    pub planning_time: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// The cells at `res` the query geometry touches (boundary-inclusive, the
/// rule ingest fans out by), as the table's cell strings. None when the
/// query has no geometry.
pub fn query_cells(
    query: &Query,
    res: h3o::Resolution,
) -> Result<Option<Vec<CellIndex>>, QueryError> {
    let Some(g) = &query.geometry else {
        return Ok(None);
    };
    Ok(Some(match g {
        QueryGeometry::Point { lon, lat } => crate::grid::cells_for(
            &geo_types::Geometry::Point(geo_types::Point::new(*lon, *lat)),
            res,
        )?,
        QueryGeometry::BBox {
            west,
            south,
            east,
            north,
        } => crate::grid::cells_for_bbox(*west, *south, *east, *north, res)?,
        QueryGeometry::Shape(shape) => crate::grid::cells_for(shape, res)?,
    }))
}

/// Plans `query` on the catalog's current snapshot.
///
/// Never loses an item the scan's exact test would accept: ingest files an
/// item under every cell its footprint touches and the query's cells are
/// every cell its geometry touches, so a shared point lies in a shared cell.
///
/// # Errors
/// Catalog and manifest read errors, a query geometry the grid refuses (e.g.
/// too many cells), or a table without a known grid.
pub async fn plan(catalog: &EarthCatalog, query: &Query) -> Result<Plan, QueryError> {
    let started = Instant::now();
    let table = catalog.table().await?;
    let regions = super::regions::region_grid(catalog, &table).await?;
    plan_table(&table, query, regions.as_deref(), started).await
}

/// [`plan`] on an already loaded table (`started` is when planning began,
/// for the timing), given the table's regions when its grid is a GeoJSON one.
pub async fn plan_table(
    table: &Table,
    query: &Query,
    regions: Option<&crate::grid::RegionGrid>,
    started: Instant,
) -> Result<Plan, QueryError> {
    let snapshot_id = table.metadata().current_snapshot_id();
    let (index, cached) = file_index(table).await?;
    // The recorded grid, else the resolution of the cell ids (earthcatalog
    // records none); an empty table has no cells to query either way.
    let sample = index
        .files
        .iter()
        .find(|f| f.cell != NO_CELL && !f.any_cell);
    let resolution = match schema::grid_from_properties(
        table.metadata().properties(),
        sample.map(|f| f.cell.as_str()),
    ) {
        Some(g) => g.resolution,
        None if index.files.is_empty() => 0,
        None => return Err(QueryError::NoGrid),
    };
    let cells_started = Instant::now();
    let (cells, grid) = match regions {
        Some(r) => (
            super::regions::query_partitions(r, query),
            format!("geojson: {} regions", r.regions().len()),
        ),
        None => (
            query_cells(query, crate::grid::resolution(resolution)?)?
                .map(|cells| cells.iter().map(ToString::to_string).collect::<Vec<_>>()),
            format!("h3 resolution {resolution}"),
        ),
    };
    let cells_time = cells_started.elapsed();

    let range = query.datetime.map(|r| r.micros());
    let years = query.datetime.and_then(|r| {
        let lo = r.start.map(|t| t.year());
        let hi = r.end.map(|t| t.year());
        (lo.is_some() || hi.is_some()).then(|| (lo.unwrap_or(i32::MIN), hi.unwrap_or(i32::MAX)))
    });

    // Candidate files by cell.
    let candidates: Vec<u32> = match &cells {
        None => (0..index.files.len() as u32).collect(),
        Some(cells) => {
            let mut v: Vec<u32> = cells
                .iter()
                .filter_map(|c| index.by_cell.get(c))
                .flatten()
                .chain(&index.any_cell)
                .copied()
                .collect();
            v.sort_unstable();
            v
        }
    };
    let pruned_by_cell = index.files.len() - candidates.len();
    let (mut pruned_by_year, mut pruned_by_stats) = (0, 0);
    let mut files = Vec::new();
    for i in candidates {
        let f = &index.files[i as usize];
        if let Some((lo, hi)) = years {
            // A datetime query never matches the year-less bucket (no datetime).
            if !f.any_year && !f.year.is_some_and(|y| y >= lo && y <= hi) {
                pruned_by_year += 1;
                continue;
            }
        }
        if let Some((lo, hi)) = range
            && (f.datetime_max.is_some_and(|m| m < lo) || f.datetime_min.is_some_and(|m| m > hi))
        {
            pruned_by_stats += 1;
            continue;
        }
        files.push(f.clone());
    }
    // Newest files first: the scan keeps the first row of each id it meets,
    // so an item written again (re-ingested, updated) is answered with its
    // latest version until compaction removes the old one.
    files.sort_by_key(|f| std::cmp::Reverse(f.sequence));
    Ok(Plan {
        resolution,
        grid,
        snapshot_id,
        cells,
        years,
        files_total: index.files.len(),
        pruned_by_cell,
        pruned_by_year,
        pruned_by_stats,
        files_kept: files.len(),
        bytes_kept: files.iter().map(|f| f.bytes).sum(),
        bytes_total: index.bytes,
        rows_kept: files.iter().map(|f| f.rows).sum(),
        files,
        cached,
        manifests: index.manifests,
        manifests_decoded: if cached { 0 } else { index.decoded },
        cells_time,
        planning_time: started.elapsed(),
    })
}

/// The snapshot's file index: from the process's cache, else built from
/// the summary cache's live files (which decodes only manifests it has not
/// seen). `true` when no manifest was decoded.
async fn file_index(table: &Table) -> Result<(Arc<FileIndex>, bool), QueryError> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok((Arc::new(index_of(vec![], 0, 0)), false));
    };
    let key: CacheKey = (
        table.metadata_location().unwrap_or_default().to_string(),
        snapshot.snapshot_id(),
    );
    if let Some(hit) = lock_cache().iter().find(|(k, _)| *k == key) {
        return Ok((hit.1.clone(), true));
    }
    let (mut files, provenance) = SummaryCache::default().live_files(table, snapshot).await?;
    files.sort_by(|a, b| (&a.cell, a.year, &a.path).cmp(&(&b.cell, b.year, &b.path)));
    let index = Arc::new(index_of(files, provenance.manifests, provenance.decoded));
    let mut cache = lock_cache();
    if cache.len() >= CACHED_SNAPSHOTS {
        cache.remove(0);
    }
    cache.push((key, index.clone()));
    Ok((index, provenance.cached))
}

/// `files` indexed by cell.
fn index_of(files: Vec<PlannedFile>, manifests: usize, decoded: usize) -> FileIndex {
    let mut by_cell: HashMap<String, Vec<u32>> = HashMap::new();
    let mut any_cell = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if f.any_cell {
            any_cell.push(i as u32);
        } else {
            by_cell.entry(f.cell.clone()).or_default().push(i as u32);
        }
    }
    let bytes = files.iter().map(|f| f.bytes).sum();
    FileIndex {
        files,
        by_cell,
        any_cell,
        bytes,
        manifests,
        decoded,
    }
}

fn lock_cache() -> std::sync::MutexGuard<'static, Vec<(CacheKey, Arc<FileIndex>)>> {
    // A panic while holding the lock cannot leave the Vec inconsistent: keep using it.
    CACHE.lock().unwrap_or_else(|p| p.into_inner())
}
