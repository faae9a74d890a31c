//! `ecops bench compact`: compaction time and peak memory on the shape the
//! issue names — a demo catalog of N items ingested in chunks of M (many
//! small files per bucket). The catalog is built once and kept pristine;
//! every run restores it at the same path (metadata records absolute
//! paths) and runs `ecops compact --json` as a child process, so the peak
//! RSS reported is the compaction's alone.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::bench::{ensure_demo_data, ingest_demo, order_suffix, run_ecops};
use super::{Settings, print_json};
use crate::demo::InventoryOrder;

/// Arguments of `ecops bench compact`.
#[derive(Debug, Clone, Args)]
pub struct BenchCompactArgs {
    /// Demo items in the catalog.
    #[arg(long, default_value_t = 20_000)]
    pub items: u64,
    /// Items per ingest commit (small chunks = many small files).
    #[arg(long, default_value_t = 500)]
    pub chunk_size: u64,
    /// H3 resolution of the catalog.
    #[arg(long, default_value_t = 1)]
    pub h3_resolution: u8,
    /// Inventory order of the ingest that builds the catalog: time (files
    /// grow slower than items: a chunk spans a shorter time) or shuffled (a
    /// file per bucket per chunk: files grow with items, for the
    /// linear-in-files check).
    #[arg(long, default_value_t = InventoryOrder::Time)]
    pub order: InventoryOrder,
    /// Working folder (default target/ecops-bench/compact-ITEMS-CHUNK[-shuffled]); the built catalog is reused.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Timed runs (each on a fresh copy of the catalog).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

pub async fn compact(settings: &Settings, args: &BenchCompactArgs) -> Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        let suffix = order_suffix(args.order);
        PathBuf::from(format!(
            "target/ecops-bench/compact-{}-{}{suffix}",
            args.items, args.chunk_size
        ))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?;
    let pristine = dir.join("catalog.pristine");
    let base = dir.join("catalog");
    if !pristine.join(crate::catalog::DB_FILE).is_file() {
        build(&dir, &base, args).await?;
        let _ = std::fs::remove_dir_all(&pristine);
        copy_dir(&base, &pristine)?;
    }
    let mut runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        let _ = std::fs::remove_dir_all(&base);
        copy_dir(&pristine, &base)?;
        let started = Instant::now();
        let summary = run_ecops(
            &["compact", "--json", "--base", &base.to_string_lossy()],
            &[],
        )?
        .result("ecops compact")?;
        let seconds = started.elapsed().as_secs_f64();
        if !settings.json {
            println!(
                "run {run}: {seconds:.2} s wall ({:.2} s in the engine), {} → {} files, {} buckets compacted of {} scanned, {} → {} rows, {} duplicates, {} commits, peak RSS {:.0} MiB",
                summary["seconds"].as_f64().unwrap_or(0.0),
                summary["files_before"],
                summary["files_after"],
                summary["buckets_compacted"],
                summary["buckets_scanned"],
                summary["rows_before"],
                summary["rows_after"],
                summary["duplicates_removed"],
                summary["commits"],
                summary["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
            );
        }
        runs.push(json!({"wall_seconds": seconds, "summary": summary}));
    }
    if settings.json {
        print_json(&json!({
            "items": args.items,
            "chunk_size": args.chunk_size,
            "order": args.order,
            "catalog": base,
            "runs": runs,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Demo data, then `ecops ingest` in chunks into a fresh catalog at `base`.
async fn build(dir: &Path, base: &Path, args: &BenchCompactArgs) -> Result<()> {
    let data = dir.join("data");
    ensure_demo_data(&data, args.items, args.order).await?;
    eprintln!(
        "bench: ingesting in chunks of {} into {}",
        args.chunk_size,
        base.display()
    );
    let chunk = args.chunk_size.to_string();
    let res = args.h3_resolution.to_string();
    let extra = [
        "--chunk-size",
        chunk.as_str(),
        "--h3-resolution",
        res.as_str(),
    ];
    ingest_demo(base, &data, None, &extra, &[])?
        .result("ecops ingest (building the bench catalog)")?;
    Ok(())
}

/// Copies a folder tree (files and folders only).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("list {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
