//! `ecops init`, `ecops info`, `ecops stats`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use super::{Settings, human_bytes, print_json};
use crate::catalog::schema::GridSpec;
use crate::catalog::stats::{DEFAULT_SMALL_FILE_BYTES, StatsOptions};
use crate::catalog::{EarthCatalog, OpenOptions};

/// Grid kinds `ecops init` can create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GridKind {
    /// H3 cells at --h3-resolution.
    H3,
    /// Named regions of a GeoJSON FeatureCollection (--boundaries, --id-field).
    Geojson,
}

/// Arguments of `ecops init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// How items are partitioned: H3 cells, or the regions of a GeoJSON file.
    #[arg(long, value_enum, default_value = "h3")]
    pub grid: GridKind,
    /// H3 resolution of the grid (0–15).
    #[arg(long, default_value_t = 1)]
    pub h3_resolution: u8,
    /// GeoJSON grid: the boundaries FeatureCollection (a path, file:// or s3:// URL).
    #[arg(long, value_name = "FILE_OR_URL", required_if_eq("grid", "geojson"))]
    pub boundaries: Option<String>,
    /// GeoJSON grid: the feature property that names each region.
    #[arg(long, value_name = "FIELD", default_value = "id")]
    pub id_field: String,
}

impl InitArgs {
    fn spec(&self) -> Result<GridSpec> {
        Ok(match self.grid {
            GridKind::H3 => {
                anyhow::ensure!(
                    self.boundaries.is_none(),
                    "--boundaries needs --grid geojson"
                );
                GridSpec::H3 {
                    resolution: self.h3_resolution,
                }
            }
            GridKind::Geojson => GridSpec::GeoJson {
                boundaries_path: self
                    .boundaries
                    .clone()
                    .context("--grid geojson needs --boundaries FILE")?,
                id_field: self.id_field.clone(),
            },
        })
    }
}

pub async fn init(settings: &Settings, args: &InitArgs) -> Result<ExitCode> {
    let base = settings.require_base()?;
    let spec = args.spec()?;
    let (catalog, created) = EarthCatalog::init_grid(base, &spec, &settings.open).await?;
    let table = catalog.table().await?;
    let grid = catalog.grid(&table).await;
    if settings.json {
        print_json(&json!({
            "created": created,
            "base": catalog.base().location().to_uri(),
            "db": catalog.db_uri(),
            "h3_resolution": matches!(spec, GridSpec::H3 { .. }).then_some(args.h3_resolution),
            "grid": grid,
        }))?;
    } else if created {
        say!(
            "created catalog at {} ({})",
            catalog.base().location(),
            grid.map_or_else(|| spec.to_string(), |g| g.describe())
        );
    } else {
        say!(
            "catalog at {} already exists; nothing changed",
            catalog.base().location()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Read-only commands never open the database for writing (it may be on a
/// read-only mount, or be a reference catalog that must stay byte-identical).
fn reading(settings: &Settings) -> OpenOptions {
    OpenOptions {
        read_only: true,
        ..settings.open.clone()
    }
}

pub async fn info(settings: &Settings) -> Result<ExitCode> {
    let catalog = EarthCatalog::open(settings.require_base()?, &reading(settings)).await?;
    let table = catalog.table().await?;
    let md = table.metadata();
    let grid = catalog.grid(&table).await;
    let index = catalog.hash_index_status(&table).await;
    // A GeoJSON grid: how many regions its boundaries hold (or why they do not load).
    let regions = match &grid {
        Some(g) if g.boundaries_path.is_some() => Some(match catalog.load_grid(&table).await {
            Ok(crate::grid::Grid::Regions(r)) => Ok(r.regions().len()),
            Ok(crate::grid::Grid::H3(_)) => Ok(0),
            Err(e) => Err(e.to_string()),
        }),
        _ => None,
    };
    let value = json!({
        "base": catalog.base().location().to_uri(),
        "db": catalog.db_uri(),
        "db_local": catalog.db_local_path(),
        "table": catalog.ident().to_string(),
        "table_location": md.location(),
        "metadata_location": table.metadata_location(),
        "warehouse": catalog.warehouse_uri(),
        "hash_index": index.uri,
        "hash_index_status": index,
        "catalog_schema": catalog.schema_version(),
        "lock": catalog.lock_uri(),
        "format_version": md.format_version().to_string().trim_start_matches('v').parse::<u8>().ok(),
        "grid": grid,
        "regions": regions.as_ref().and_then(|r| r.as_ref().ok()),
        "regions_error": regions.as_ref().and_then(|r| r.as_ref().err()),
        "current_snapshot_id": md.current_snapshot_id(),
        "snapshots": md.snapshots().count(),
        "read_only": settings.open.read_only,
    });
    if settings.json {
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }

    let grid_text = match &grid {
        Some(g) if g.boundaries_path.is_some() => match &regions {
            Some(Ok(n)) => format!("{}: {n} regions", g.describe()),
            Some(Err(e)) => format!("{}: cannot load ({e})", g.describe()),
            None => g.describe(),
        },
        Some(g) if g.recorded => format!("{} resolution {}", g.kind, g.resolution),
        Some(g) => format!(
            "{} resolution {} (inferred from cell ids; not recorded in table properties)",
            g.kind, g.resolution
        ),
        None => "unknown (no grid properties and no data yet)".to_string(),
    };
    let rows = [
        ("base", catalog.base().location().to_uri()),
        ("database", catalog.db_uri()),
        ("table", catalog.ident().to_string()),
        ("table location", md.location().to_string()),
        (
            "metadata",
            table.metadata_location().unwrap_or("-").to_string(),
        ),
        ("warehouse", catalog.warehouse_uri()),
        ("database layout", schema_text(catalog.schema_version())),
        ("hash index", index.uri.clone()),
        ("  index state", index_text(&index)),
        ("lock", catalog.lock_uri()),
        ("grid", grid_text),
        (
            "snapshot",
            md.current_snapshot_id()
                .map_or("none".to_string(), |s| s.to_string()),
        ),
        ("snapshots", md.snapshots().count().to_string()),
    ];
    for (k, v) in rows {
        say!("{k:>15}  {v}");
    }
    Ok(ExitCode::SUCCESS)
}

fn schema_text(v: crate::catalog::SchemaVersion) -> String {
    match v {
        crate::catalog::SchemaVersion::V1 => "PyIceberg SqlCatalog v1".into(),
        crate::catalog::SchemaVersion::V0 => {
            "PyIceberg SqlCatalog v0 (PyIceberg warns; `ecops upgrade-catalog` moves it to v1)"
                .into()
        }
    }
}

/// One line on the hash index: rows, the snapshot it reflects, and whether it is current.
fn index_text(s: &crate::catalog::hash_index::HashIndexStatus) -> String {
    if let Some(p) = &s.problem {
        return format!("unusable ({p}); `ecops index rebuild` rebuilds it");
    }
    if !s.exists {
        return "none yet (written by the next ingest, or `ecops index rebuild`)".into();
    }
    let snapshot = s
        .snapshot_id
        .map_or("no snapshot recorded".to_string(), |id| {
            format!("snapshot {id}")
        });
    let state = match (&s.stale_reason, s.current) {
        (_, true) => "current".to_string(),
        (Some(why), false) => format!("stale: {why}"),
        (None, false) => "stale".to_string(),
    };
    format!("{} rows, reflects {snapshot}; {state}", s.rows.unwrap_or(0))
}

/// Output of `ecops stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    Text,
    Markdown,
}

/// What `ecops stats` prints.
#[derive(Debug, Clone)]
pub struct StatsArgs {
    pub top: usize,
    pub small_file_mb: Option<u64>,
    pub partitions: bool,
    pub format: StatsFormat,
}

pub async fn stats(settings: &Settings, args: &StatsArgs) -> Result<ExitCode> {
    let (top, small_file_mb, partitions) = (args.top, args.small_file_mb, args.partitions);
    let catalog = EarthCatalog::open(settings.require_base()?, &reading(settings)).await?;
    let small_file_bytes = small_file_mb
        .or(settings.config.small_file_mb)
        .map_or(DEFAULT_SMALL_FILE_BYTES, |mb| mb * 1024 * 1024);
    let mut stats = catalog
        .stats(&StatsOptions {
            top,
            small_file_bytes,
        })
        .await?;
    // Health needs every partition, listed or not.
    let policy = crate::catalog::health::HealthPolicy::new(small_file_bytes);
    let health = crate::catalog::health::catalog_health(&stats, &policy);
    if !partitions {
        stats.partitions_detail.clear();
    }
    if settings.json {
        let mut value = serde_json::to_value(&stats)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("health".into(), serde_json::to_value(&health)?);
        }
        if !partitions && let Some(obj) = value.as_object_mut() {
            obj.remove("partitions_detail");
        }
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == StatsFormat::Markdown {
        print_stats_markdown(&stats, partitions);
        return Ok(ExitCode::SUCCESS);
    }
    say!("catalog    {}", catalog.base().location());
    say!(
        "rows       {}{}",
        stats.rows,
        stats
            .unique_items
            .map_or(String::new(), |u| format!("  ({u} unique items)"))
    );
    say!(
        "files      {}  ({} avg)",
        stats.files,
        human_bytes(stats.avg_file_bytes)
    );
    say!("bytes      {}", human_bytes(stats.bytes));
    if let Some(index) = &stats.hash_index {
        say!("hash index {}", index_text(index));
    }
    say!("partitions {}  in {} cells", stats.partitions, stats.cells);
    say!(
        "small      {} files below {}  ({:.0}%)",
        stats.small_files,
        human_bytes(stats.small_file_bytes),
        if stats.files == 0 {
            0.0
        } else {
            100.0 * stats.small_files as f64 / stats.files as f64
        }
    );
    say!(
        "snapshots  {}  ({} manifests in the current one)",
        stats.snapshots,
        stats.manifests
    );
    say!(
        "health     {}/100{}",
        health.score,
        if health.reasons.is_empty() {
            String::new()
        } else {
            format!("  ({})", health.reasons.join("; "))
        }
    );
    if !health.fix.is_empty() {
        say!("fix        {}", health.fix.join("; "));
    }
    if !stats.top_cells.is_empty() {
        say!("\ntop cells          rows   files");
        for c in &stats.top_cells {
            say!("{:<16} {:>6}  {:>6}", c.cell, c.rows, c.files);
        }
    }
    if partitions {
        say!("\ncell             year     rows   files      bytes");
        for p in &stats.partitions_detail {
            let year = p.year.map_or("-".to_string(), |y| y.to_string());
            say!(
                "{:<16} {:>4} {:>8} {:>7} {:>10}",
                p.cell,
                year,
                p.rows,
                p.files,
                human_bytes(p.bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ecops stats --format markdown`: the totals, top cells and (with
/// `--partitions`) partitions as Markdown tables.
fn print_stats_markdown(stats: &crate::catalog::stats::TableStats, partitions: bool) {
    let mut totals = crate::fmt::TextTable::new(&["metric", "value"]);
    for (k, v) in [
        ("rows", stats.rows.to_string()),
        ("files", stats.files.to_string()),
        ("bytes", stats.bytes.to_string()),
        ("partitions", stats.partitions.to_string()),
        ("cells", stats.cells.to_string()),
        ("small files", stats.small_files.to_string()),
        ("snapshots", stats.snapshots.to_string()),
        ("manifests", stats.manifests.to_string()),
    ] {
        totals.push(vec![k.to_string(), v]);
    }
    say!("{}", totals.markdown());
    if !stats.top_cells.is_empty() {
        say!(
            "### Top cells\n\n{}",
            crate::fmt::top_cells_table(&stats.top_cells).markdown()
        );
    }
    if partitions {
        say!(
            "### Partitions\n\n{}",
            crate::fmt::partitions_table(&stats.partitions_detail).markdown()
        );
    }
}
