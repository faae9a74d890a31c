//! Stats refresh, on a timer and after commits, never while drawing. An
//! unchanged table (same metadata file) is not read again; after a commit
//! [`EarthCatalog::stats`] decodes only the manifests new since a cached
//! snapshot (see [`crate::catalog::summary`]). The cells' outlines for the
//! map are computed here too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};

use super::Event;
use crate::catalog::EarthCatalog;
use crate::catalog::health::{CatalogHealth, HealthPolicy, catalog_health, trend};
use crate::catalog::stats::{StatsOptions, TableStats};

/// Top cells computed for the bar chart (the pane shows what fits).
pub const TOP_CELLS: usize = 50;

/// One cell on the map: centroid and outline in (lon, lat) degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct CellGeo {
    pub cell: String,
    pub rows: u64,
    pub centroid: (f64, f64),
    pub outline: Vec<(f64, f64)>,
}

/// Stats as the console shows them.
#[derive(Debug, Clone)]
pub struct StatsView {
    pub stats: TableStats,
    /// The catalog's health score, its reasons and fix.
    pub health: CatalogHealth,
    /// Health by snapshot, oldest first (from the snapshot summaries).
    pub trend: Vec<u8>,
    pub policy: HealthPolicy,
    /// Every cell with rows, for the map (cells that are not H3 ids, like
    /// `__none__`, are left out).
    pub cells: Vec<CellGeo>,
    /// How long the refresh took, and when it finished.
    pub took: Duration,
    pub at: DateTime<Utc>,
}

impl StatsView {
    /// Reads the stats of `catalog` (metadata only) and places its cells.
    pub async fn load(
        catalog: &EarthCatalog,
        small_file_bytes: u64,
    ) -> Result<Self, crate::catalog::CatalogError> {
        let started = Instant::now();
        let stats = catalog
            .stats(&StatsOptions {
                top: TOP_CELLS,
                small_file_bytes,
            })
            .await?;
        let cells = cell_geometry(&stats);
        let policy = HealthPolicy::new(small_file_bytes);
        let health = catalog_health(&stats, &policy);
        Ok(Self {
            trend: trend(&stats.history, health.files_needed),
            health,
            policy,
            stats,
            cells,
            took: started.elapsed(),
            at: Utc::now(),
        })
    }
}

/// Centroids and outlines of every H3 cell with rows.
pub fn cell_geometry(stats: &TableStats) -> Vec<CellGeo> {
    let mut rows: std::collections::BTreeMap<&str, u64> = Default::default();
    for p in &stats.partitions_detail {
        *rows.entry(p.cell.as_str()).or_default() += p.rows;
    }
    rows.into_iter()
        .filter_map(|(cell, rows)| {
            let index: h3o::CellIndex = cell.parse().ok()?;
            let center = h3o::LatLng::from(index);
            let outline = index
                .boundary()
                .iter()
                .map(|v| (v.lng(), v.lat()))
                .collect();
            Some(CellGeo {
                cell: cell.to_string(),
                rows,
                centroid: (center.lng(), center.lat()),
                outline,
            })
        })
        .collect()
}

/// Asks the refresh task for a new read.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Notify>);

impl StatsHandle {
    /// Requests a refresh (coalesced with any pending one).
    pub fn refresh(&self) {
        self.0.notify_one();
    }
}

/// Starts the refresh task: one read at once, then every `every` and on request.
pub(super) fn spawn(
    catalog: Arc<EarthCatalog>,
    events: mpsc::UnboundedSender<Event>,
    every: Duration,
    small_file_bytes: u64,
) -> StatsHandle {
    let notify = Arc::new(Notify::new());
    let wake = notify.clone();
    tokio::spawn(async move {
        // The metadata the last good read described: a timed refresh of an
        // unchanged table would re-read every manifest for nothing.
        let mut shown: Option<String> = None;
        let mut requested = true;
        loop {
            let current = catalog
                .table()
                .await
                .ok()
                .and_then(|t| t.metadata_location().map(str::to_string));
            if requested || current.is_none() || current != shown {
                let result = StatsView::load(&catalog, small_file_bytes)
                    .await
                    .map(Arc::new)
                    .map_err(crate::runs::JobError::failed);
                match &result {
                    Ok(_) => shown = current,
                    Err(e) => tracing::warn!("stats refresh failed: {e}"),
                }
                if events.send(Event::Stats(result)).is_err() {
                    return;
                }
            }
            requested = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = wake.notified() => {
                    // Commits come in bursts: let them settle a moment.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    true
                }
            };
        }
    });
    StatsHandle(notify)
}
