//! `ecops bench fanout`: footprints placed per second by an H3 grid and by
//! a GeoJSON-region grid of N regions (5 000 by default: a lattice of
//! polygons with many vertices each, like drainage basins), on the same
//! synthetic scenes, one thread each. Building the region grid (parse,
//! validate, R-tree) is timed apart.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use super::bench::peak_rss_bytes;
use super::{Settings, print_json};
use crate::grid::{Grid, RegionGrid};

/// Arguments of `ecops bench fanout`.
#[derive(Debug, Clone, Args)]
pub struct BenchFanoutArgs {
    /// Footprints placed by each grid.
    #[arg(long, default_value_t = 200_000)]
    pub items: usize,
    /// Regions in the boundaries file.
    #[arg(long, default_value_t = 5_000)]
    pub regions: usize,
    /// Vertices along each edge of a region's outline.
    #[arg(long, default_value_t = 16)]
    pub edge_vertices: usize,
    /// Resolution of the H3 grid compared with.
    #[arg(long, default_value_t = 1)]
    pub h3_resolution: u8,
}

pub async fn run(settings: &Settings, args: &BenchFanoutArgs) -> Result<ExitCode> {
    let args = args.clone();
    let result = tokio::task::spawn_blocking(move || measure(&args)).await??;
    if settings.json {
        print_json(&result)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(args: &BenchFanoutArgs) -> Result<Value> {
    let footprints: Vec<geo_types::Geometry<f64>> = crate::demo::scenes(args.items, 0)
        .into_iter()
        .filter_map(|item| item.geometry)
        .collect();
    let boundaries = lattice(args.regions.max(1), args.edge_vertices.max(1));
    let started = Instant::now();
    let regions = RegionGrid::from_geojson(boundaries.as_bytes(), "id")?;
    let build_seconds = started.elapsed().as_secs_f64();
    let h3 = place(
        &Grid::H3(crate::grid::resolution(args.h3_resolution)?),
        &footprints,
    )?;
    let geojson = place(&Grid::Regions(std::sync::Arc::new(regions)), &footprints)?;
    Ok(json!({
        "bench": "fanout",
        "load_average": crate::metrics::load_average(),
        "footprints": footprints.len(),
        "h3": {"resolution": args.h3_resolution, "per_second": h3.0, "partitions_per_footprint": h3.1},
        "geojson": {
            "regions": args.regions,
            "boundaries_bytes": boundaries.len(),
            "build_seconds": build_seconds,
            "per_second": geojson.0,
            "partitions_per_footprint": geojson.1,
        },
        "geojson_slowdown_vs_h3": h3.0 / geojson.0.max(1e-9),
        "peak_rss_bytes": peak_rss_bytes(),
    }))
}

/// Places every footprint; (footprints per second, partitions per footprint).
fn place(grid: &Grid, footprints: &[geo_types::Geometry<f64>]) -> Result<(f64, f64)> {
    let started = Instant::now();
    let mut partitions = 0usize;
    for footprint in footprints {
        partitions += grid.partitions(footprint)?.len();
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let n = footprints.len().max(1) as f64;
    Ok((n / seconds, partitions as f64 / n))
}

/// A FeatureCollection of about `n` regions tiling the globe between
/// ±88° in a lattice twice as wide as tall, each outline with
/// `edge_vertices` points per edge.
fn lattice(n: usize, edge_vertices: usize) -> String {
    let rows = ((n as f64 / 2.0).sqrt().round() as usize).max(1);
    let cols = n.div_ceil(rows);
    let (width, height) = (360.0 / cols as f64, 176.0 / rows as f64);
    let mut features = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let (west, south) = (-180.0 + c as f64 * width, -88.0 + r as f64 * height);
            let east = (-180.0 + (c + 1) as f64 * width).min(180.0);
            let north = (-88.0 + (r + 1) as f64 * height).min(88.0);
            let corners = [(west, south), (east, south), (east, north), (west, north)];
            let mut ring = Vec::with_capacity(4 * edge_vertices + 1);
            for (i, &(x0, y0)) in corners.iter().enumerate() {
                let (x1, y1) = corners[(i + 1) % 4];
                for k in 0..edge_vertices {
                    let t = k as f64 / edge_vertices as f64;
                    ring.push([x0 + (x1 - x0) * t, y0 + (y1 - y0) * t]);
                }
            }
            ring.push(ring[0]);
            features.push(json!({
                "type": "Feature",
                "properties": {"id": format!("region-{r:03}-{c:03}")},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }));
        }
    }
    json!({"type": "FeatureCollection", "features": features}).to_string()
}
