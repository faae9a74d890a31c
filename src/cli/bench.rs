//! `ecops bench …`: measured performance on synthetic catalogs. Numbers, not
//! pass/fail: README's performance section quotes what these print.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::{Settings, print_json};
use crate::catalog::stats::StatsOptions;
use crate::catalog::{EarthCatalog, OpenOptions, WriteOptions};

pub use crate::metrics::peak_rss_bytes;

/// p-th percentile (0–100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Builds (or reuses) a local catalog of at least `files` data files, then times `stats`.
pub async fn stats(
    settings: &Settings,
    files: u64,
    dir: Option<PathBuf>,
    runs: usize,
) -> Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(format!("target/ecops-bench/stats-{files}")));
    let base = dir.to_string_lossy().to_string();
    let (catalog, _) = EarthCatalog::init(&base, 3, &OpenOptions::default()).await?;
    let mut have = catalog.stats(&StatsOptions::default()).await?.files;
    let build_start = Instant::now();
    let mut offset = 0;
    while have < files {
        let items = crate::demo::scenes(1_000, offset);
        offset += items.len();
        let report = catalog
            .append_items(&items, &WriteOptions::default(), HashMap::new())
            .await?;
        have += report.files;
        if !settings.json {
            eprintln!("building: {have}/{files} files");
        }
    }
    let build_seconds = build_start.elapsed().as_secs_f64();
    drop(catalog);

    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let catalog = EarthCatalog::open(
            &base,
            &OpenOptions {
                read_only: true,
                ..Default::default()
            },
        )
        .await?;
        let stats = catalog.stats(&StatsOptions::default()).await?;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        last = Some(stats);
    }
    samples.sort_by(f64::total_cmp);
    let stats = last.expect("at least one run");
    let result = json!({
        "bench": "stats",
        "base": base,
        "files": stats.files,
        "rows": stats.rows,
        "partitions": stats.partitions,
        "manifests": stats.manifests,
        "snapshots": stats.snapshots,
        "runs": samples.len(),
        "open_and_stats_ms_p50": percentile(&samples, 50.0),
        "open_and_stats_ms_p95": percentile(&samples, 95.0),
        "build_seconds": build_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    if settings.json {
        print_json(&result)?;
    } else {
        println!(
            "stats on {} files / {} partitions / {} manifests: p50 {:.1} ms, p95 {:.1} ms over {} runs; peak RSS {} MiB",
            stats.files,
            stats.partitions,
            stats.manifests,
            percentile(&samples, 50.0),
            percentile(&samples, 95.0),
            samples.len(),
            peak_rss_bytes().unwrap_or(0) / (1024 * 1024)
        );
    }
    Ok(ExitCode::SUCCESS)
}
