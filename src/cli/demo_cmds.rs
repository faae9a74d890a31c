//! `ecops demo-data`: writes a synthetic STAC data set with inventories in
//! every supported format (see [`crate::demo`] for the layout).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use super::{Settings, human_bytes, print_json};
use crate::demo::{DemoOptions, InventoryOrder, generate};

/// Arguments of `ecops demo-data`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoDataArgs {
    /// Valid items to write.
    #[arg(long)]
    pub items: u64,
    /// Output folder (new, empty, or written by an earlier demo-data run).
    #[arg(long)]
    pub out: PathBuf,
    /// PRNG seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Bucket named in the inventory rows and the items' s3:// hrefs.
    #[arg(long, default_value = crate::demo::generate::DEFAULT_BUCKET)]
    pub bucket: String,
    /// Gzip CSV / Parquet parts listed by the manifests.
    #[arg(long, default_value_t = 4)]
    pub parts: usize,
    /// Deliberately bad items to add to the inventory (listed in meta.json).
    #[arg(long, default_value_t = 0)]
    pub invalid: usize,
    /// Worker threads writing item files (0 = one per core); never changes the output.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Inventory row order: time (key order; consecutive rows share a region)
    /// or shuffled (seeded, like an S3 Inventory whose keys follow neither
    /// space nor time).
    #[arg(long, default_value_t = InventoryOrder::Time)]
    pub order: InventoryOrder,
}

/// Generates the data set; prints a short summary, or with `--json` one line
/// `{items, invalid, rows, bytes, out, files, seconds, ...}`.
pub async fn demo_data(settings: &Settings, args: &DemoDataArgs) -> Result<ExitCode> {
    let opts = DemoOptions {
        items: args.items,
        out: args.out.clone(),
        seed: args.seed,
        bucket: args.bucket.clone(),
        parts: args.parts,
        invalid: args.invalid,
        threads: args.threads,
        order: args.order,
    };
    // Blocking file I/O on all cores: keep it off the async workers.
    let summary = tokio::task::spawn_blocking(move || generate(&opts))
        .await
        .context("demo-data generator panicked")?
        .with_context(|| format!("writing demo data to {}", args.out.display()))?;
    let m = &summary.meta;
    let rate = m.items as f64 / summary.seconds.max(1e-9);
    if settings.json {
        print_json(&json!({
            "items": m.items,
            "order": m.order,
            "invalid": m.invalid.len(),
            "rows": m.inventory_rows,
            "bytes": summary.bytes,
            "out": summary.out.display().to_string(),
            "files": summary.files,
            "seconds": summary.seconds,
            "items_per_second": rate,
            "meta": summary.out.join("meta.json").display().to_string(),
        }))?;
    } else {
        say!(
            "wrote {} items ({} invalid) in {} files, {}, to {} in {:.1} s ({:.0} items/s)",
            m.items,
            m.invalid.len(),
            summary.files,
            human_bytes(summary.bytes),
            summary.out.display(),
            summary.seconds,
            rate
        );
        say!(
            "polar {}, pole-covering {}, antimeridian split {} / jump {}, no geometry {}; \
             --since {} keeps {} of {} rows",
            m.polar,
            m.pole_covering,
            m.antimeridian_split,
            m.antimeridian_jump,
            m.no_geometry,
            m.since_cutoff,
            m.rows_at_or_after_since,
            m.inventory_rows
        );
    }
    Ok(ExitCode::SUCCESS)
}
