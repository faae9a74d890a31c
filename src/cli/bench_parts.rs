//! `ecops bench parts`: the CPU cost of writing one small part file, the
//! unit of work that bounds ingest of a shuffled inventory (a chunk writes a
//! file for nearly every (cell, year) bucket its items touch, most holding
//! one to three rows). Rows come from demo items; each part goes through
//! the writer ingest and compaction use (`EarthCatalog::write_bucket`:
//! sort, encode, store, describe) into a local catalog, one at a time, and
//! the process's CPU time (getrusage) is divided by the parts written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use clap::Args;
use serde_json::{Value, json};

use super::bench::ensure_demo_data;
use super::bench_ingest::collect_files;
use super::{Settings, print_json};
use crate::catalog::part_writer::PartCodec;
use crate::catalog::{Bucket, EarthCatalog, OpenOptions, WriteOptions};
use crate::demo::InventoryOrder;

/// Arguments of `ecops bench parts`.
#[derive(Debug, Clone, Args)]
pub struct BenchPartsArgs {
    /// Part files to write.
    #[arg(long, default_value_t = 5_000)]
    pub parts: usize,
    /// Rows per part (a shuffled ingest writes mostly 1–3).
    #[arg(long, default_value_t = 2)]
    pub rows: usize,
    /// Demo items the rows are drawn from (generated once and reused).
    #[arg(long, default_value_t = 2_000)]
    pub items: u64,
    /// Working folder (default target/ecops-bench/parts).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The cell every bench part is filed under (any valid partition value).
const CELL: &str = "8001fffffffffff";

pub async fn run(settings: &Settings, args: &BenchPartsArgs) -> Result<ExitCode> {
    if args.parts == 0 || args.rows == 0 {
        bail!("--parts and --rows must be at least 1");
    }
    let result = measure(args).await?;
    if settings.json {
        print_json(&result)?;
    } else {
        let num = |k: &str| result[k].as_f64().unwrap_or(0.0);
        println!(
            "{} parts of {} rows: {:.3} ms CPU per part ({:.3} ms of it encoding), {:.0} parts/s, {:.0} bytes per part; load {}",
            result["parts"],
            result["rows_per_part"],
            num("cpu_ms_per_part"),
            num("encode_cpu_ms_per_part"),
            num("parts_per_second"),
            num("bytes_per_part"),
            result["load_average"].as_str().unwrap_or("?"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the parts and returns the figures as JSON.
pub async fn measure(args: &BenchPartsArgs) -> Result<Value> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/ecops-bench/parts"));
    let data = dir.join("data");
    ensure_demo_data(&data, args.items, InventoryOrder::Time).await?;
    let batches = part_batches(&data, args.parts, args.rows)?;

    let base = dir.join("catalog");
    let _ = std::fs::remove_dir_all(&base);
    let (catalog, _) =
        EarthCatalog::init(&base.to_string_lossy(), 1, &OpenOptions::default()).await?;
    let table = catalog.table().await?;
    let load_average = crate::metrics::load_average();

    // Encoding alone, on this thread.
    let cpu = || crate::metrics::cpu_seconds().unwrap_or(0.0);
    let before = cpu();
    for batch in &batches {
        crate::catalog::part_writer::encode(batch, PartCodec::BySize)?;
    }
    let encode_cpu = cpu() - before;

    // The whole write, as ingest does it, one part at a time.
    let (before, started) = (cpu(), Instant::now());
    let mut bytes = 0;
    for (n, batch) in batches.iter().enumerate() {
        let bucket = Bucket {
            cell: CELL.to_string(),
            year: Some(2000 + (n % 25) as i32),
        };
        // A new name per part, as ingest's chunks have (overwriting a file
        // costs the file system a flush that ingest never pays).
        let opts = WriteOptions {
            tag: format!("bench{n}"),
            codec: PartCodec::BySize,
            ..WriteOptions::default()
        };
        let files = catalog
            .write_bucket(&table, &bucket, std::slice::from_ref(batch), &opts)
            .await?;
        bytes += files.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
    }
    let (seconds, write_cpu) = (started.elapsed().as_secs_f64(), cpu() - before);
    drop(catalog);
    let _ = std::fs::remove_dir_all(&base);
    let parts = batches.len() as f64;
    Ok(json!({
        "bench": "parts",
        "parts": batches.len(),
        "rows_per_part": args.rows,
        "cpu_ms_per_part": 1000.0 * write_cpu / parts,
        "encode_cpu_ms_per_part": 1000.0 * encode_cpu / parts,
        "parts_per_second": parts / seconds.max(1e-9),
        "bytes_per_part": bytes as f64 / parts,
        "seconds": seconds,
        "load_average": load_average,
        "peak_rss_bytes": crate::metrics::peak_rss_bytes(),
    }))
}

/// `parts` batches of `rows` rows each, drawn in turn from the demo items
/// under `data` (every row filed under [`CELL`]).
fn part_batches(data: &Path, parts: usize, rows: usize) -> Result<Vec<RecordBatch>> {
    let mut files = Vec::new();
    collect_files(&data.join("items"), &mut files)?;
    files.sort();
    let items = files
        .iter()
        .filter_map(|path| {
            let bytes = std::fs::read(path).ok()?;
            crate::stac::parse_item(&bytes).ok()
        })
        .collect::<Vec<_>>();
    if items.is_empty() {
        bail!("no demo items under {}", data.display());
    }
    let schema = crate::stac::batch::arrow_schema().context("table schema")?;
    (0..parts)
        .map(|p| {
            let pairs: Vec<_> = (0..rows)
                .map(|r| (&items[(p * rows + r) % items.len()], CELL))
                .collect();
            Ok(crate::stac::batch::rows_to_batch(&schema, &pairs)?)
        })
        .collect()
}
