//! `ecops bench ingest`: end-to-end ingest throughput (parse, fan-out,
//! write, commit) from local files, from a loopback HTTP server, and from
//! S3 when a prefix is given — each run as a separate `ecops ingest`
//! process so its peak RSS is its own. For network sources it also times a
//! bare fetch of the same objects at the same concurrency, the ceiling an
//! ingest can approach.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::bench::{ensure_demo_data, ingest_demo, order_suffix};
use super::{Settings, print_json};
use crate::demo::InventoryOrder;
use crate::testkit::http_server::{Faults, HttpServer};

/// Arguments of `ecops bench ingest`.
#[derive(Debug, Clone, Args)]
pub struct BenchIngestArgs {
    /// Items to generate and ingest.
    #[arg(long, default_value_t = 100_000)]
    pub items: u64,
    /// Working folder (demo data is generated once per item count and order
    /// and reused; default target/ecops-bench/ingest-ITEMS[-shuffled]).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Inventory order: time (consecutive rows share a region, few files per
    /// chunk) or shuffled (what an S3 Inventory gives: a file for nearly
    /// every bucket a chunk's items fall in).
    #[arg(long, default_value_t = InventoryOrder::Time)]
    pub order: InventoryOrder,
    /// Sources to measure: local, http, s3 (needs --s3-prefix).
    #[arg(long, value_delimiter = ',', default_value = "local,http")]
    pub sources: Vec<String>,
    /// s3://bucket/prefix to upload the items to for the s3 source.
    #[arg(long)]
    pub s3_prefix: Option<String>,
    #[arg(long, default_value_t = crate::ingest::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: usize,
    #[arg(long, default_value_t = crate::ingest::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Latency the loopback HTTP server adds to every response, like a remote
    /// store's time to first byte (S3 GETs typically take 10–50 ms). With 0
    /// the server competes with the ingest for the same CPU cores, and the
    /// comparison with a bare fetch measures that contention instead.
    #[arg(long, default_value_t = 20)]
    pub http_latency_ms: u64,
}

pub async fn ingest(settings: &Settings, args: &BenchIngestArgs) -> Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        let suffix = order_suffix(args.order);
        PathBuf::from(format!("target/ecops-bench/ingest-{}{suffix}", args.items))
    });
    let data = dir.join("data");
    ensure_demo_data(&data, args.items, args.order).await?;
    let inventory = data.join("inventory/inventory.csv");
    let mut results = Vec::new();
    for source in &args.sources {
        let result = match source.as_str() {
            "local" => run_ingest(
                &dir,
                "local",
                &data,
                &data.join("items").to_string_lossy(),
                args,
                &[],
            )?,
            "http" => {
                let faults = Faults {
                    latency: (args.http_latency_ms > 0)
                        .then(|| std::time::Duration::from_millis(args.http_latency_ms)),
                    ..Faults::default()
                };
                let server = HttpServer::start(data.join("items"), faults).await?;
                let bare = bare_http_fetch(&server.url(), &inventory, args.concurrency).await?;
                let mut r = run_ingest(&dir, "http", &data, &server.url(), args, &[])?;
                compare_with_bare(&mut r, bare);
                r
            }
            "s3" => {
                let Some(prefix) = &args.s3_prefix else {
                    bail!(
                        "--sources s3 needs --s3-prefix s3://bucket/prefix (and AWS_ENDPOINT_URL for a local server)"
                    );
                };
                upload_items(settings, &data, prefix).await?;
                let items_root = format!("{}/items", prefix.trim_end_matches('/'));
                let bare =
                    bare_s3_fetch(settings, &items_root, &inventory, args.concurrency).await?;
                let mut r = run_ingest(&dir, "s3", &data, &items_root, args, &[])?;
                compare_with_bare(&mut r, bare);
                r
            }
            other => bail!("unknown source '{other}' (local, http, s3)"),
        };
        if !settings.json {
            let num = |k: &str| result[k].as_f64().unwrap_or(0.0);
            println!(
                "{:<6} {:>9.0} items/s {:>8.0} files/s {:>9.0} rows/s {:>7.1} MB/s in  CPU {:.3} ms/file {:.3} ms/item  peak RSS {:>6.0} MiB  ({} items, {} rows, {} files, {} commits, {:.1} s, {:.1} s CPU, load {}){}",
                source,
                num("items_per_second"),
                num("files_per_second"),
                num("rows_per_second"),
                num("mb_per_second_in"),
                num("cpu_ms_per_file"),
                num("cpu_ms_per_item"),
                num("peak_rss_bytes") / 1048576.0,
                result["items"],
                result["rows"],
                result["files"],
                result["commits"],
                num("seconds"),
                num("cpu_seconds"),
                result["load_average"].as_str().unwrap_or("?"),
                result["bare_fetch_items_per_second"]
                    .as_f64()
                    .map(|b| format!(
                        "  bare fetch {b:.0} items/s: {:.0}% over the run, {:.0}% while fetching",
                        100.0 * result["share_of_bare_fetch"].as_f64().unwrap_or(0.0),
                        100.0
                            * result["fetch_phase_share_of_bare_fetch"]
                                .as_f64()
                                .unwrap_or(0.0),
                    ))
                    .unwrap_or_default(),
            );
        }
        results.push(result);
    }
    if settings.json {
        print_json(&json!({
            "items": args.items,
            "order": args.order,
            "chunk_size": args.chunk_size,
            "results": results,
        }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `ecops ingest` into a fresh catalog and returns its summary plus rates.
fn run_ingest(
    dir: &Path,
    name: &str,
    data: &Path,
    items_root: &str,
    args: &BenchIngestArgs,
    envs: &[(&str, &str)],
) -> Result<Value> {
    let base = dir.join(format!("catalog-{name}"));
    let chunk = args.chunk_size.to_string();
    let concurrency = args.concurrency.to_string();
    let extra = [
        "--chunk-size",
        chunk.as_str(),
        "--concurrency",
        concurrency.as_str(),
    ];
    let load_average = crate::metrics::load_average();
    let cpu_before = crate::metrics::children_cpu_seconds();
    // Exit 3 (some items dead-lettered) still has a summary to measure.
    let child = ingest_demo(&base, data, Some(items_root), &extra, envs)?;
    let cpu = crate::metrics::children_cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let mut summary = child
        .json
        .with_context(|| format!("ingest printed no summary: {}", child.stderr))?;
    let secs = summary["seconds"].as_f64().unwrap_or(0.0).max(1e-9);
    let count = |k: &str| summary[k].as_f64().unwrap_or(0.0);
    let (items, rows, files, bytes_in) = (
        count("items"),
        count("rows"),
        count("files"),
        count("bytes_in"),
    );
    summary["source"] = json!(name);
    summary["load_average"] = json!(load_average);
    summary["items_per_second"] = json!(items / secs);
    summary["files_per_second"] = json!(files / secs);
    summary["rows_per_second"] = json!(rows / secs);
    summary["mb_per_second_in"] = json!(bytes_in / 1e6 / secs);
    if let Some(cpu) = cpu {
        let per = |n: f64| (n > 0.0).then(|| 1000.0 * cpu / n);
        summary["cpu_seconds"] = json!(cpu);
        summary["cpu_ms_per_file"] = json!(per(files));
        summary["cpu_ms_per_item"] = json!(per(items));
    }
    if let Some(fetch) = summary["fetch_seconds"].as_f64() {
        summary["fetch_phase_items_per_second"] =
            json!(summary["items"].as_f64().unwrap_or(0.0) / fetch.max(1e-9));
    }
    Ok(summary)
}

/// Adds the bare fetch's rate and the ingest's share of it: over the whole
/// run, and over the fetch phase (until the last item arrived, i.e. without
/// the last chunk's write and commit, which a bare fetch does not have).
fn compare_with_bare(result: &mut Value, bare: f64) {
    let share = |key: &str| result[key].as_f64().map(|r| r / bare.max(1e-9));
    let (whole, fetch_phase) = (
        share("items_per_second"),
        share("fetch_phase_items_per_second"),
    );
    result["bare_fetch_items_per_second"] = json!(bare);
    result["share_of_bare_fetch"] = json!(whole);
    result["fetch_phase_share_of_bare_fetch"] = json!(fetch_phase);
}

/// Items/s of plain GETs of every inventory key at `concurrency` — no parsing.
async fn bare_http_fetch(url: &str, inventory: &Path, concurrency: usize) -> Result<f64> {
    use futures::StreamExt;
    let keys = inventory_keys(inventory)?;
    let client = Arc::new(
        reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()?,
    );
    let start = Instant::now();
    let fetched = futures::stream::iter(keys.iter())
        .map(|k| {
            let client = client.clone();
            let u = format!("{url}/{k}");
            async move {
                let r = client.get(&u).send().await.ok()?;
                r.bytes().await.ok().map(|b| b.len())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|r| async move { r })
        .count()
        .await;
    Ok(fetched as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Items/s of plain GETs of every inventory key below `items_root` on S3 at
/// `concurrency`, through the same object_store client ingest uses.
async fn bare_s3_fetch(
    settings: &Settings,
    items_root: &str,
    inventory: &Path,
    concurrency: usize,
) -> Result<f64> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let store = crate::store::open_location(
        &crate::store::Location::parse(items_root)?,
        &settings.open.s3,
    )?;
    let keys = inventory_keys(inventory)?;
    let start = Instant::now();
    let fetched = futures::stream::iter(keys.iter())
        .map(|k| {
            let (object_store, key) = (store.object_store(), store.key(k));
            async move {
                let r = object_store.get(&key).await.ok()?;
                r.bytes().await.ok().map(|b| b.len())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|r| async move { r })
        .count()
        .await;
    Ok(fetched as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// The keys (second column) of a header-less S3 Inventory CSV.
fn inventory_keys(inventory: &Path) -> Result<Vec<String>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(inventory)?
        .records()
        .filter_map(|r| r.ok().and_then(|r| r.get(1).map(String::from)))
        .collect())
}

async fn upload_items(settings: &Settings, data: &Path, prefix: &str) -> Result<()> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let location = crate::store::Location::parse(prefix)?;
    let store = crate::store::open_location(&location, &settings.open.s3)?;
    let root = data.join("items");
    let mut files = Vec::new();
    collect_files(&root, &mut files)?;
    eprintln!("bench: uploading {} items to {prefix}/items", files.len());
    let store = Arc::new(store);
    let results: Vec<Result<()>> = futures::stream::iter(files)
        .map(|path| {
            let (store, root) = (store.clone(), root.clone());
            async move {
                let rel = path.strip_prefix(&root)?.to_string_lossy().into_owned();
                let body = tokio::fs::read(&path).await?;
                store
                    .object_store()
                    .put(&store.key(&format!("items/{rel}")), body.into())
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Every file below `dir`, recursively.
pub(super) fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
