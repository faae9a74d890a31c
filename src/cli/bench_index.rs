//! `ecops bench index`: the hash index's cost. (1) Per chunk: a catalog
//! whose index already holds N ids (10M by default) takes chunks of 20 000
//! synthetic items; each chunk's append (write, commit, index update) is
//! timed, and the index update's share of it reported. The chunk time here
//! has no fetch or parse, so the share is an upper bound of its share in an
//! ingest. An update usually writes a delta file; the chunks whose update
//! merged the deltas into the main file (a threshold passed) are counted,
//! the mean and the total share include them, and the end-of-run merge
//! (`settle`) is timed on its own. (2) `index rebuild` over a catalog of M
//! items (1M by default).

use std::collections::HashMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};

use super::bench::{peak_rss_bytes, percentile};
use super::{Settings, print_json};
use crate::catalog::hash_index::file::{HashWriter, Reflects};
use crate::catalog::stats::StatsOptions;
use crate::catalog::{EarthCatalog, OpenOptions, WriteOptions};

/// Arguments of `ecops bench index`.
#[derive(Debug, Clone, Args)]
pub struct BenchIndexArgs {
    /// Ids the index holds before the timed chunks (synthetic hashes, written once).
    #[arg(long, default_value_t = 10_000_000)]
    pub indexed: u64,
    /// Items per chunk.
    #[arg(long, default_value_t = crate::ingest::DEFAULT_CHUNK_SIZE)]
    pub chunk: usize,
    /// Timed chunks.
    #[arg(long, default_value_t = 5)]
    pub chunks: usize,
    /// Items of the catalog `index rebuild` is timed on (built once, then reused).
    #[arg(long, default_value_t = 1_000_000)]
    pub rebuild_items: u64,
    /// Skip the per-chunk part or the rebuild part.
    #[arg(long, value_enum, default_value_t = IndexParts::Both)]
    pub parts: IndexParts,
    /// Where the catalogs are built (default target/ecops-bench/index).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Which parts of `bench index` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexParts {
    Both,
    Chunks,
    Rebuild,
}

pub async fn run(settings: &Settings, args: &BenchIndexArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/ecops-bench/index"));
    let mut result = json!({"bench": "index", "load_average": crate::metrics::load_average()});
    if args.parts != IndexParts::Rebuild {
        result["chunks"] = chunk_updates(settings, args, &dir).await?;
    }
    if args.parts != IndexParts::Chunks {
        result["rebuild"] = rebuild(settings, args.rebuild_items, args.chunk, &dir).await?;
    }
    result["peak_rss_bytes"] = json!(peak_rss_bytes());
    if settings.json {
        print_json(&result)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh catalog whose index holds `indexed` synthetic ids, then
/// `chunks` appends of `chunk` items, each timed with its index update.
async fn chunk_updates(settings: &Settings, args: &BenchIndexArgs, dir: &Path) -> Result<Value> {
    let base = dir.join(format!("chunks-{}", args.indexed));
    if base.exists() {
        std::fs::remove_dir_all(&base).with_context(|| format!("clearing {}", base.display()))?;
    }
    let base = base.to_string_lossy().into_owned();
    let (catalog, _) = EarthCatalog::init(&base, 1, &OpenOptions::default()).await?;
    // A first small append gives the table a snapshot for the index to reflect.
    let mut offset = 0;
    catalog
        .append_items(
            &crate::demo::scenes(100, offset),
            &WriteOptions::default(),
            HashMap::new(),
        )
        .await?;
    offset += 100;
    // No deltas before the seeded main file: later counts are the chunks' own.
    catalog.settle_hash_index().await?;
    let seeded = Instant::now();
    seed_index(&catalog, args.indexed).await?;
    if !settings.json {
        eprintln!(
            "index seeded with {} ids in {:.1} s",
            args.indexed,
            seeded.elapsed().as_secs_f64()
        );
    }
    let (mut totals, mut shares) = (Vec::new(), Vec::new());
    let mut index_ms = Vec::new();
    let index_uri = catalog.hash_index_uri_of(&catalog.table().await?);
    let mut threshold_merges = 0u64;
    for n in 0..args.chunks.max(1) {
        let deltas_before = delta_files(&index_uri);
        let items = crate::demo::scenes(args.chunk, offset);
        offset += items.len();
        let before = catalog.commit_stats().index_micros.load(Ordering::Relaxed);
        let started = Instant::now();
        catalog
            .append_items(&items, &WriteOptions::default(), HashMap::new())
            .await?;
        let total = started.elapsed().as_secs_f64() * 1000.0;
        let index =
            (catalog.commit_stats().index_micros.load(Ordering::Relaxed) - before) as f64 / 1000.0;
        let merged = delta_files(&index_uri) <= deltas_before && deltas_before > 0;
        threshold_merges += u64::from(merged);
        if !settings.json {
            let how = if merged { " (merged the deltas)" } else { "" };
            eprintln!("chunk {n}: {total:.0} ms, index update {index:.0} ms{how}");
        }
        totals.push(total);
        index_ms.push(index);
        shares.push(index / total);
    }
    let deltas_left = delta_files(&index_uri);
    let settle_started = Instant::now();
    let settled = catalog.settle_hash_index().await?;
    let settle_ms = settle_started.elapsed().as_secs_f64() * 1000.0;
    let status = catalog.hash_index_status(&catalog.table().await?).await;
    let (sum_total, sum_index): (f64, f64) = (totals.iter().sum(), index_ms.iter().sum());
    for v in [&mut totals, &mut index_ms, &mut shares] {
        v.sort_by(f64::total_cmp);
    }
    Ok(json!({
        "indexed_before": args.indexed,
        "index_rows_after": status.rows,
        "index_current": status.current,
        "chunk_items": args.chunk,
        "chunks": totals.len(),
        "chunk_ms_p50": percentile(&totals, 50.0),
        "index_update_ms_p50": percentile(&index_ms, 50.0),
        "index_update_ms_mean": sum_index / totals.len() as f64,
        "index_update_ms_max": index_ms.last(),
        "index_share_p50": percentile(&shares, 50.0),
        "index_share_max": shares.last(),
        "index_share_total": sum_index / sum_total,
        "threshold_merges": threshold_merges,
        "deltas_at_end": deltas_left,
        "end_of_run_merge_ms": settle_ms,
        "end_of_run_merge_mode": settled.mode,
        "index_share_with_end_merge": (sum_index + settle_ms) / (sum_total + settle_ms),
        "note": "chunk = write + commit + index update of synthetic items (no fetch or parse)",
    }))
}

/// Delta files beside the (local) index at `index_uri`.
fn delta_files(index_uri: &str) -> usize {
    let dir = crate::catalog::hash_index::deltas::dir_uri(index_uri);
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            .count()
    })
}

/// Writes an index of `n` distinct, ascending synthetic hashes reflecting
/// the table's current snapshot, so the next commit updates it incrementally.
async fn seed_index(catalog: &EarthCatalog, n: u64) -> Result<()> {
    let table = catalog.table().await?;
    let path = PathBuf::from(catalog.hash_index_uri_of(&table));
    let reflects = Reflects {
        table_uuid: table.metadata().uuid().to_string(),
        snapshot_id: table.metadata().current_snapshot_id(),
    };
    tokio::task::spawn_blocking(move || -> Result<()> {
        let staged = path.with_extension("seeding");
        let file = std::fs::File::create(&staged)?;
        let mut writer = HashWriter::new(BufWriter::with_capacity(1 << 20, file))?;
        // Evenly spread slots, a pseudo-random offset in each: ascending and distinct.
        let step = u128::MAX / u128::from(n.max(1));
        for i in 0..n {
            let jitter = u128::from(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())) % step;
            writer.push(u128::from(i) * step + jitter)?;
        }
        let mut out = writer.finish(&reflects)?;
        std::io::Write::flush(&mut out)?;
        drop(out);
        std::fs::rename(&staged, &path)?;
        Ok(())
    })
    .await??;
    Ok(())
}

/// Builds (or reuses) a catalog of `items` synthetic items, then times `index rebuild`.
async fn rebuild(settings: &Settings, items: u64, chunk: usize, dir: &Path) -> Result<Value> {
    let base = dir.join(format!("rebuild-{items}"));
    let base = base.to_string_lossy().into_owned();
    let (catalog, _) = EarthCatalog::init(&base, 1, &OpenOptions::default()).await?;
    let mut have = catalog.stats(&StatsOptions::default()).await?.rows;
    let build_start = Instant::now();
    // Synthetic scenes fan out to about one cell each: count distinct items by offset.
    let mut offset = catalog
        .hash_index_status(&catalog.table().await?)
        .await
        .rows
        .unwrap_or(0) as usize;
    while (offset as u64) < items {
        let n = chunk.min((items - offset as u64) as usize);
        let report = catalog
            .append_items(
                &crate::demo::scenes(n, offset),
                &WriteOptions::default(),
                HashMap::new(),
            )
            .await?;
        offset += n;
        have += report.rows;
        if !settings.json {
            eprintln!("building: {offset}/{items} items ({have} rows)");
        }
    }
    let build_seconds = build_start.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = catalog.rebuild_hash_index().await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "items": offset,
        "rows": have,
        "files_read": report.files_read,
        "ids_read": report.ids_read,
        "index_rows": report.rows,
        "rebuild_seconds": seconds,
        "ids_per_second": report.ids_read as f64 / seconds.max(1e-9),
        "build_seconds": build_seconds,
    }))
}
