//! `ecops query`: search the catalog (geometry, datetime, property filters)
//! and stream the items, or (id, href) pairs, in a chosen format.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use futures::TryStreamExt;

use super::query_output::{Format, HitWriter, Record};
use super::{Settings, human_bytes, print_json};
use crate::catalog::{EarthCatalog, OpenOptions};
use crate::query::{self, Plan, Query, QueryText, ScanOptions};

/// Arguments of `ecops query`.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// A point: LON,LAT (degrees).
    #[arg(long, allow_hyphen_values = true, value_name = "LON,LAT")]
    pub point: Option<String>,
    /// A box: W,S,E,N (degrees); W > E crosses the antimeridian.
    #[arg(long, allow_hyphen_values = true, value_name = "W,S,E,N")]
    pub bbox: Option<String>,
    /// A geometry: GeoJSON or WKT, inline or @FILE.
    #[arg(long, allow_hyphen_values = true, value_name = "GEOJSON|WKT|@FILE")]
    pub intersects: Option<String>,
    /// RFC 3339 instant, or interval A/B, ../B, A/.. (a date alone is the whole day).
    #[arg(long, allow_hyphen_values = true)]
    pub datetime: Option<String>,
    /// Comparisons joined by `and`: percent_valid_pixels >= 80 and platform = 'LC08'
    /// (=, !=, <, <=, >, >=, in (…), not in (…), is null, is not null).
    #[arg(long, allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Only these ids (comma-separated).
    #[arg(long)]
    pub ids: Option<String>,
    /// Only these collections (comma-separated).
    #[arg(long)]
    pub collections: Option<String>,
    /// At most N items.
    #[arg(long)]
    pub limit: Option<String>,
    /// datetime (oldest first) or -datetime (newest first).
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Output format (default table; json with --json).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print (id, href) pairs of an asset instead of items, like earthcatalog's search_uris.
    #[arg(long)]
    pub uris: bool,
    /// The asset whose href --uris prints.
    #[arg(long, default_value = "data", requires = "uris")]
    pub asset: String,
    /// Show the plan (cells, files kept / total, bytes, timing) instead of running the scan.
    #[arg(long)]
    pub explain: bool,
    /// Files read at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Write the items to this file (--format stac-geoparquet), replaced whole.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

impl QueryArgs {
    /// The query's text fields, as the console's form would hold them.
    pub fn text(&self) -> QueryText {
        QueryText {
            point: self.point.clone(),
            bbox: self.bbox.clone(),
            intersects: self.intersects.clone(),
            datetime: self.datetime.clone(),
            filter: self.filter.clone(),
            ids: self.ids.clone(),
            collections: self.collections.clone(),
            limit: self.limit.clone(),
            sort: self.sort.clone(),
        }
    }
}

/// Runs `ecops query`.
pub async fn run(settings: &Settings, args: &QueryArgs) -> Result<ExitCode> {
    let query = Query::parse(&args.text())?;
    let base = settings.require_base()?;
    // A query never writes: open read-only whatever the settings say.
    let open = OpenOptions {
        read_only: true,
        ..settings.open.clone()
    };
    let catalog = EarthCatalog::open(base, &open).await?;
    let plan = query::plan(&catalog, &query).await?;
    if args.explain {
        return explain(settings, &plan);
    }
    let format = args.format.unwrap_or(if settings.json {
        Format::Json
    } else {
        Format::Table
    });
    if args.uris && matches!(format, Format::Geojson | Format::StacGeoparquet) {
        anyhow::bail!("--uris prints (id, href) pairs: use --format table, json, ndjson or csv");
    }
    if format == Format::StacGeoparquet {
        let out = args
            .output
            .as_deref()
            .context("--format stac-geoparquet writes a file: give --output FILE")?;
        return export(settings, &catalog, &query, &plan, args.concurrency, out).await;
    }
    if args.output.is_some() {
        anyhow::bail!("--output is for --format stac-geoparquet; other formats go to stdout");
    }
    let record = if args.uris {
        Record::Uri(args.asset.clone())
    } else {
        Record::Item
    };
    let opts = ScanOptions {
        fields: format.fields(args.uris),
        concurrency: args.concurrency.max(1),
    };
    let started = std::time::Instant::now();
    let hits = query::execute(&catalog, &query, &plan, &opts);
    let stdout = std::io::stdout();
    let mut stream = hits.stream;
    let written = (async {
        let mut writer = HitWriter::new(BufWriter::new(stdout.lock()), format, record)?;
        while let Some(hit) = stream.try_next().await? {
            writer.write(&hit)?;
        }
        Ok::<_, anyhow::Error>(writer.finish()?)
    })
    .await;
    let written = match written {
        Ok(n) => n,
        // `ecops query … | head`: the reader left; that is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).context("query"),
    };
    if format == Format::Table {
        let scan = hits.stats.snapshot();
        say_err!(
            "{written} items; read {} of {} files ({} of {} rows), {:.1} ms planning + {:.1} ms scanning",
            scan["files_read"],
            plan.files_total,
            scan["rows_read"],
            plan.rows_kept,
            plan.planning_time.as_secs_f64() * 1000.0,
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    let _ = std::io::stderr().flush();
    Ok(ExitCode::SUCCESS)
}

/// Writes the query's items to `out` as stac-geoparquet.
pub async fn export(
    settings: &Settings,
    catalog: &EarthCatalog,
    query: &Query,
    plan: &Plan,
    concurrency: usize,
    out: &std::path::Path,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let temp = crate::catalog::cache_root().join("tmp");
    let report =
        query::export::export(catalog, query, plan, concurrency.max(1), out, &temp).await?;
    if settings.json {
        print_json(&serde_json::json!({
            "output": out,
            "items": report.items,
            "without_geometry": report.without_geometry,
            "columns": report.columns,
            "bytes": report.bytes,
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
    } else {
        say!(
            "{} items → {} (stac-geoparquet {}, {} columns, {})",
            report.items,
            out.display(),
            crate::stac::stac_geoparquet::SPEC_VERSION,
            report.columns,
            human_bytes(report.bytes)
        );
        if report.without_geometry > 0 {
            say!(
                "{} items without a geometry left out (stac-geoparquet requires one)",
                report.without_geometry
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ecops export --output FILE`: every item of the table as stac-geoparquet.
pub async fn export_table(settings: &Settings, out: &std::path::Path) -> Result<ExitCode> {
    let open = OpenOptions {
        read_only: true,
        ..settings.open.clone()
    };
    let catalog = EarthCatalog::open(settings.require_base()?, &open).await?;
    let query = Query::default();
    let plan = query::plan(&catalog, &query).await?;
    export(settings, &catalog, &query, &plan, 8, out).await
}

fn explain(settings: &Settings, plan: &Plan) -> Result<ExitCode> {
    if settings.json {
        print_json(plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    let cells = match &plan.cells {
        None => "every cell (no geometry)".to_string(),
        Some(c) if c.len() <= 12 => format!("{} ({})", c.len(), c.join(", ")),
        Some(c) => format!("{} ({}, … {})", c.len(), c[..6].join(", "), c[c.len() - 1]),
    };
    let years = match plan.years {
        None => "all".to_string(),
        Some((lo, hi)) => format!(
            "{}..{}",
            if lo == i32::MIN {
                "..".into()
            } else {
                lo.to_string()
            },
            if hi == i32::MAX {
                "..".into()
            } else {
                hi.to_string()
            }
        ),
    };
    say!(
        "snapshot        {}",
        plan.snapshot_id.map_or("none".into(), |s| s.to_string())
    );
    say!("grid            {}", plan.grid);
    say!("cells           {cells}");
    say!("years           {years}");
    say!(
        "files           {} of {} kept (pruned: {} by cell, {} by year, {} by datetime bounds)",
        plan.files.len(),
        plan.files_total,
        plan.pruned_by_cell,
        plan.pruned_by_year,
        plan.pruned_by_stats
    );
    say!(
        "bytes           {} of {}",
        human_bytes(plan.bytes_kept),
        human_bytes(plan.bytes_total)
    );
    say!("rows            {} (before de-duplication)", plan.rows_kept);
    say!(
        "planning        {:.1} ms (cells {:.1} ms; file list {})",
        plan.planning_time.as_secs_f64() * 1000.0,
        plan.cells_time.as_secs_f64() * 1000.0,
        if plan.cached {
            "cached".to_string()
        } else {
            format!(
                "{} of {} manifests decoded",
                plan.manifests_decoded, plan.manifests
            )
        }
    );
    Ok(ExitCode::SUCCESS)
}
