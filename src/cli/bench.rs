//! `ecops bench …`: measured performance on synthetic catalogs. Numbers, not
//! pass/fail: README's performance section quotes what these print.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{Settings, print_json};
use crate::catalog::stats::StatsOptions;
use crate::catalog::{EarthCatalog, OpenOptions, WriteOptions};
use crate::demo::{DemoOptions, InventoryOrder, generate};

pub use crate::metrics::peak_rss_bytes;

/// A finished `ecops` child process of a bench.
#[derive(Debug)]
pub struct Child {
    pub success: bool,
    /// Its last stdout line that is JSON (`--json` puts the result there).
    pub json: Option<Value>,
    pub stderr: String,
}

impl Child {
    /// Its JSON, when it succeeded and printed some; else an error naming
    /// `what` with its stderr.
    pub fn result(self, what: &str) -> Result<Value> {
        match self.json {
            Some(v) if self.success => Ok(v),
            _ => bail!("{what} failed: {}", self.stderr.trim()),
        }
    }
}

/// Runs this very binary as `ecops ARGS…` and waits for it (the caller's
/// `ECOPS_BASE` is not passed on: benches name their catalogs).
pub fn run_ecops(args: &[&str], envs: &[(&str, &str)]) -> Result<Child> {
    let exe = std::env::current_exe().context("locating the ecops binary")?;
    let out = std::process::Command::new(exe)
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("ECOPS_BASE")
        .output()
        .with_context(|| format!("running ecops {}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(Child {
        success: out.status.success(),
        json: stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok()),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `ecops ingest --json` of the demo data set in `data` into `base`
/// (cleared first), items from `items_root` (default: `data/items`), with
/// `extra` arguments.
pub fn ingest_demo(
    base: &Path,
    data: &Path,
    items_root: Option<&str>,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Result<Child> {
    let _ = std::fs::remove_dir_all(base);
    let inventory = data.join("inventory/inventory.csv");
    let local_items = data.join("items");
    let root = items_root.unwrap_or(local_items.to_str().unwrap_or_default());
    let mut args = vec![
        "ingest",
        "--json",
        "--base",
        base.to_str().unwrap_or_default(),
        "--inventory",
        inventory.to_str().unwrap_or_default(),
        "--items-root",
        root,
    ];
    args.extend_from_slice(extra);
    run_ecops(&args, envs)
}

/// Generates `items` demo items in `order` in `data`, unless an earlier run
/// left the same set there.
pub async fn ensure_demo_data(data: &Path, items: u64, order: InventoryOrder) -> Result<()> {
    let meta: Option<Value> = std::fs::read(data.join("meta.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let same = meta.as_ref().is_some_and(|m| {
        m["items"].as_u64() == Some(items) && m["order"].as_str() == Some(&order.to_string())
    });
    if same {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(data);
    eprintln!(
        "bench: generating {items} demo items ({order} order) in {}",
        data.display()
    );
    let opts = DemoOptions {
        order,
        ..DemoOptions::new(items, data)
    };
    tokio::task::spawn_blocking(move || generate(&opts))
        .await?
        .context("generating demo data")?;
    Ok(())
}

/// The suffix a bench's default folder gets for an inventory `order`:
/// none for time order (the default), `-shuffled` and so on otherwise.
pub fn order_suffix(order: InventoryOrder) -> String {
    match order {
        InventoryOrder::Time => String::new(),
        order => format!("-{order}"),
    }
}

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
    let processes = stats_processes(&base, runs.max(1))?;
    // New ids: scene numbers past every row (rows ≥ items ever appended).
    let mut next = stats.rows as usize;
    let after = after_commit(&base, &mut next, runs.clamp(1, 5)).await?;
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
        "process_ms_p50": percentile(&processes, 50.0),
        "process_ms_p95": percentile(&processes, 95.0),
        "build_seconds": build_seconds,
        "after_commit": after.json(),
        "peak_rss_bytes": peak_rss_bytes(),
    });
    if settings.json {
        print_json(&result)?;
    } else {
        println!(
            "stats on {} files / {} partitions / {} manifests: p50 {:.1} ms, p95 {:.1} ms over {} runs ({:.1} ms p50 as a fresh process); peak RSS {} MiB",
            stats.files,
            stats.partitions,
            stats.manifests,
            percentile(&samples, 50.0),
            percentile(&samples, 95.0),
            samples.len(),
            percentile(&processes, 50.0),
            peak_rss_bytes().unwrap_or(0) / (1024 * 1024)
        );
        println!(
            "after a commit of {AFTER_COMMIT_ITEMS} items (fresh open each, {} rounds): stats p50 {:.1} ms; first query ({FIRST_QUERY_BBOX}) plan p50 {:.1} ms, end to end p50 {:.1} ms",
            after.stats_ms.len(),
            percentile(&after.stats_ms, 50.0),
            percentile(&after.plan_ms, 50.0),
            percentile(&after.query_ms, 50.0),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Wall times (ms, sorted) of `ecops stats` on `base` as a fresh process,
/// `runs` times: what an operator's command costs, start-up included.
fn stats_processes(base: &str, runs: usize) -> Result<Vec<f64>> {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        run_ecops(&["--json", "--read-only", "stats", "--base", base], &[])?
            .result("ecops stats")?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

/// Items per commit of the after-commit rounds.
const AFTER_COMMIT_ITEMS: usize = 50;
/// The query timed first after a commit.
const FIRST_QUERY_BBOX: &str = "30,0,40,10";

/// Timings (ms, sorted) of the first stats and the first query after a commit.
struct AfterCommit {
    stats_ms: Vec<f64>,
    plan_ms: Vec<f64>,
    query_ms: Vec<f64>,
}

impl AfterCommit {
    fn json(&self) -> Value {
        json!({
            "items_per_commit": AFTER_COMMIT_ITEMS,
            "rounds": self.stats_ms.len(),
            "query_bbox": FIRST_QUERY_BBOX,
            "stats_ms_p50": percentile(&self.stats_ms, 50.0),
            "stats_ms_max": self.stats_ms.last(),
            "first_query_plan_ms_p50": percentile(&self.plan_ms, 50.0),
            "first_query_ms_p50": percentile(&self.query_ms, 50.0),
            "first_query_ms_max": self.query_ms.last(),
        })
    }
}

/// `rounds` times: a commit, then open + stats; another commit, then open +
/// the first query (each timed on its own commit, so neither finds the
/// other's work in the cache).
async fn after_commit(base: &str, offset: &mut usize, rounds: usize) -> Result<AfterCommit> {
    let mut t = AfterCommit {
        stats_ms: vec![],
        plan_ms: vec![],
        query_ms: vec![],
    };
    let query = crate::query::Query::parse(&crate::query::QueryText {
        bbox: Some(FIRST_QUERY_BBOX.into()),
        ..Default::default()
    })?;
    let read_only = OpenOptions {
        read_only: true,
        ..Default::default()
    };
    for _ in 0..rounds {
        commit_scenes(base, offset).await?;
        let start = Instant::now();
        EarthCatalog::open(base, &read_only)
            .await?
            .stats(&StatsOptions::default())
            .await?;
        t.stats_ms.push(start.elapsed().as_secs_f64() * 1000.0);

        commit_scenes(base, offset).await?;
        let start = Instant::now();
        let catalog = EarthCatalog::open(base, &read_only).await?;
        let opts = crate::query::ScanOptions::default();
        let result = crate::query::search(&catalog, &query, &opts).await?;
        t.query_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        t.plan_ms
            .push(result.plan.planning_time.as_secs_f64() * 1000.0);
    }
    for v in [&mut t.stats_ms, &mut t.plan_ms, &mut t.query_ms] {
        v.sort_by(f64::total_cmp);
    }
    Ok(t)
}

/// One append of [`AFTER_COMMIT_ITEMS`] new demo scenes.
async fn commit_scenes(base: &str, offset: &mut usize) -> Result<()> {
    let catalog = EarthCatalog::open(base, &OpenOptions::default()).await?;
    let items = crate::demo::scenes(AFTER_COMMIT_ITEMS, *offset);
    *offset += items.len();
    catalog
        .append_items(&items, &WriteOptions::default(), HashMap::new())
        .await?;
    Ok(())
}
