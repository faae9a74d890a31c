//! `ecops bench backfill`: a backfill of N demo items through K tasks, phase
//! by phase, against the single-process ingest of the same items in the same
//! run. With `--engine local` the bench runs the phases itself (K map
//! processes at once, then K reduce processes, then the commit) and times
//! each; with `--engine slurm` it submits the run to the cluster in
//! `SLURM_CONF` and times it as a whole.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::bench::{ensure_demo_data, ingest_demo, run_ecops};
use super::{Settings, print_json};
use crate::demo::InventoryOrder;
use crate::testkit::http_server::{Faults, HttpServer};

/// Where the bench's tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchEngine {
    /// Child processes of the bench, phase by phase.
    Local,
    /// Array jobs on the Slurm cluster of `SLURM_CONF`.
    Slurm,
}

/// Arguments of `ecops bench backfill`.
#[derive(Debug, Clone, Args)]
pub struct BenchBackfillArgs {
    /// Demo items (generated once per count and reused).
    #[arg(long, default_value_t = 100_000)]
    pub items: u64,
    /// Map and reduce tasks.
    #[arg(long, default_value_t = 4)]
    pub tasks: u32,
    #[arg(long, value_enum, default_value_t = BenchEngine::Local)]
    pub engine: BenchEngine,
    /// Items per chunk (default: four chunks per task).
    #[arg(long)]
    pub chunk_size: Option<u64>,
    /// Working folder (default target/ecops-bench/backfill-N).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Instead of the whole backfill: the map phase alone, fetching the items
    /// over HTTP from a local server with `--http-latency-ms` per request, at
    /// each of these task counts (e.g. 1,2,4,8): how fetching scales with tasks.
    #[arg(long, value_delimiter = ',')]
    pub http_scaling: Vec<u32>,
    /// Latency the HTTP server adds to every request (with --http-scaling).
    #[arg(long, default_value_t = 20)]
    pub http_latency_ms: u64,
    /// Fetches in flight per task (the plan's --concurrency; with --http-scaling).
    #[arg(long, default_value_t = crate::ingest::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

pub async fn run(settings: &Settings, args: &BenchBackfillArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/ecops-bench/backfill-{}", args.items)));
    let data = dir.join("data");
    ensure_demo_data(&data, args.items, InventoryOrder::Time).await?;
    let inventory = data.join("inventory/inventory.csv");
    let items_root = data.join("items");
    let chunk_size = args
        .chunk_size
        .unwrap_or_else(|| args.items.div_ceil(4 * u64::from(args.tasks.max(1))).max(1));

    if !args.http_scaling.is_empty() {
        let outcome = http_scaling(&dir, &data, args).await?;
        if settings.json {
            print_json(&outcome)?;
        } else {
            print_scaling(&outcome);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ingest = single_process_ingest(&dir, &data)?;
    let base = dir.join("catalog-backfill");
    let _ = std::fs::remove_dir_all(&base);
    ecops(&["init", "--json", "--base", s(&base)])?;
    let source = [
        "--inventory",
        s(&inventory),
        "--items-root",
        s(&items_root),
        "--chunk-size",
        &chunk_size.to_string(),
        "--tasks",
        &args.tasks.to_string(),
    ];
    let backfill = match args.engine {
        BenchEngine::Local => local_phases(&base, &source, args.tasks)?,
        BenchEngine::Slurm => slurm_run(&base, &source, &dir, args.tasks)?,
    };
    let outcome = json!({
        "items": args.items,
        "tasks": args.tasks,
        "engine": format!("{:?}", args.engine).to_lowercase(),
        "chunk_size": chunk_size,
        "ingest": ingest,
        "backfill": backfill,
        "backfill_over_ingest_wall_time": backfill["seconds"].as_f64().unwrap_or(0.0)
            / ingest["seconds"].as_f64().unwrap_or(1.0).max(1e-9),
        "load_average": crate::metrics::load_average(),
    });
    if settings.json {
        print_json(&outcome)?;
    } else {
        print_text(&outcome);
    }
    Ok(ExitCode::SUCCESS)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Runs `ecops ARGS…`; its JSON, or an error with its stderr.
fn ecops(args: &[&str]) -> Result<Value> {
    run_ecops(args, &[])?.result(&format!(
        "ecops {}",
        args.first().copied().unwrap_or_default()
    ))
}

/// Runs one ecops process per task at once; their reports and the wall time.
fn parallel(args: &[&str], tasks: u32) -> Result<(Vec<Value>, f64)> {
    let start = Instant::now();
    let children: Vec<_> = (0..tasks)
        .map(|task| {
            Command::new(std::env::current_exe()?)
                .args(args)
                .args(["--task", &task.to_string(), "--tasks", &tasks.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("starting a task")
        })
        .collect::<Result<_>>()?;
    let mut reports = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or(Value::Null);
        if !out.status.success() {
            bail!(
                "task failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        reports.push(report);
    }
    Ok((reports, start.elapsed().as_secs_f64()))
}

fn sum(reports: &[Value], key: &str) -> u64 {
    reports.iter().filter_map(|r| r[key].as_u64()).sum()
}

fn max_rss_mib(reports: &[Value]) -> f64 {
    reports
        .iter()
        .filter_map(|r| r["peak_rss_bytes"].as_f64())
        .fold(0.0, f64::max)
        / 1_048_576.0
}

/// The single-process ingest of the same items: the baseline.
fn single_process_ingest(dir: &Path, data: &Path) -> Result<Value> {
    let base = dir.join("catalog-ingest");
    let start = Instant::now();
    let summary = ingest_demo(&base, data, None, &[], &[])?.result("the ingest")?;
    let seconds = start.elapsed().as_secs_f64();
    let stats = ecops(&["stats", "--json", "--base", s(&base)])?;
    Ok(json!({
        "seconds": seconds,
        "items_per_second": summary["items"].as_f64().unwrap_or(0.0) / seconds.max(1e-9),
        "files": stats["files"],
        "partitions": stats["partitions"],
        "snapshots": stats["snapshots"],
        "peak_rss_mib": summary["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
    }))
}

/// Plan, K map tasks at once, K reduce tasks at once, commit: each timed.
fn local_phases(base: &Path, source: &[&str], tasks: u32) -> Result<Value> {
    let start = Instant::now();
    let base = s(base);
    let t = Instant::now();
    let mut plan_args = vec!["backfill", "plan", "--json", "--base", base];
    plan_args.extend_from_slice(source);
    let plan = ecops(&plan_args)?;
    let plan_seconds = t.elapsed().as_secs_f64();
    let run = plan["run"]
        .as_str()
        .context("plan printed no run")?
        .to_string();
    let (maps, map_seconds) = parallel(
        &["backfill", "work", "--json", "--base", base, "--run", &run],
        tasks,
    )?;
    let (reduces, reduce_seconds) = parallel(
        &[
            "backfill", "reduce", "--json", "--base", base, "--run", &run,
        ],
        tasks,
    )?;
    let t = Instant::now();
    let commit = ecops(&[
        "backfill", "commit", "--json", "--base", base, "--run", &run,
    ])?;
    let commit_seconds = t.elapsed().as_secs_f64();
    let seconds = start.elapsed().as_secs_f64();
    let stats = ecops(&["stats", "--json", "--base", base])?;
    let items = sum(&maps, "items") as f64;
    Ok(json!({
        "run": run,
        "chunks": plan["chunks"],
        "seconds": seconds,
        "items_per_second": items / seconds.max(1e-9),
        "phases": {
            "plan": {"seconds": plan_seconds},
            "map": {"seconds": map_seconds, "items_per_second": items / map_seconds.max(1e-9),
                    "staged_files": sum(&maps, "staged_files"), "staged_bytes": sum(&maps, "staged_bytes"),
                    "peak_rss_mib_per_worker": max_rss_mib(&maps)},
            "reduce": {"seconds": reduce_seconds, "items_per_second": items / reduce_seconds.max(1e-9),
                       "files": sum(&reduces, "files"), "peak_rss_mib_per_worker": max_rss_mib(&reduces)},
            "commit": {"seconds": commit_seconds, "snapshots_added": commit["snapshots_added"],
                       "peak_rss_mib": commit["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0},
        },
        "items": items,
        "failed_items": sum(&maps, "failed_items"),
        "files": stats["files"],
        "partitions": stats["partitions"],
        "snapshots": stats["snapshots"],
    }))
}

/// The map phase alone over HTTP with per-request latency, once per task
/// count: the items, the wall time and items/s of each, and the speed-up
/// against the first count.
async fn http_scaling(dir: &Path, data: &Path, args: &BenchBackfillArgs) -> Result<Value> {
    let faults = Faults {
        latency: Some(Duration::from_millis(args.http_latency_ms)),
        ..Faults::default()
    };
    let server = HttpServer::start(data.join("items"), faults).await?;
    let (url, concurrency) = (server.url(), args.concurrency.to_string());
    let inventory = data.join("inventory/inventory.csv");
    let mut rows = Vec::new();
    for &tasks in &args.http_scaling {
        let tasks = tasks.max(1);
        let base = dir.join(format!("catalog-http-{tasks}"));
        let _ = std::fs::remove_dir_all(&base);
        ecops(&["init", "--json", "--base", s(&base)])?;
        let chunk_size = args.items.div_ceil(4 * u64::from(tasks)).max(1).to_string();
        let plan = ecops(&[
            "backfill",
            "plan",
            "--json",
            "--base",
            s(&base),
            "--inventory",
            s(&inventory),
            "--items-root",
            &url,
            "--chunk-size",
            &chunk_size,
            "--concurrency",
            &concurrency,
        ])?;
        let run = plan["run"].as_str().context("plan printed no run")?;
        // The server runs on this process's runtime: wait for the tasks off it.
        let work = [
            "backfill",
            "work",
            "--json",
            "--base",
            s(&base),
            "--run",
            run,
        ]
        .map(String::from);
        let (maps, seconds) = tokio::task::spawn_blocking(move || {
            let work: Vec<&str> = work.iter().map(String::as_str).collect();
            parallel(&work, tasks)
        })
        .await??;
        let items = sum(&maps, "items") as f64;
        rows.push(json!({
            "tasks": tasks, "items": items, "failed_items": sum(&maps, "failed_items"),
            "seconds": seconds, "items_per_second": items / seconds.max(1e-9),
            "peak_rss_mib_per_worker": max_rss_mib(&maps),
            "load_average": crate::metrics::load_average(),
        }));
    }
    let first = rows
        .first()
        .and_then(|r| r["items_per_second"].as_f64())
        .unwrap_or(1.0);
    for r in &mut rows {
        r["speedup"] = json!(r["items_per_second"].as_f64().unwrap_or(0.0) / first.max(1e-9));
    }
    Ok(json!({
        "items": args.items, "http_latency_ms": args.http_latency_ms,
        "concurrency_per_task": args.concurrency, "requests": server.total_requests(),
        "map_phase": rows,
    }))
}

fn print_scaling(o: &Value) {
    println!(
        "map phase over HTTP: {} items, {} ms latency per request, {} fetches in flight per task",
        o["items"], o["http_latency_ms"], o["concurrency_per_task"]
    );
    for r in o["map_phase"].as_array().into_iter().flatten() {
        println!(
            "  {:>3} tasks {:>7.1} s {:>8.0} items/s  {:.2}× the first  peak RSS {:.0} MiB per worker  (load {})",
            r["tasks"],
            r["seconds"].as_f64().unwrap_or(0.0),
            r["items_per_second"].as_f64().unwrap_or(0.0),
            r["speedup"].as_f64().unwrap_or(0.0),
            r["peak_rss_mib_per_worker"].as_f64().unwrap_or(0.0),
            r["load_average"].as_str().unwrap_or("?"),
        );
    }
}

/// Submits the whole backfill to Slurm and waits for its commit.
fn slurm_run(base: &Path, source: &[&str], dir: &Path, tasks: u32) -> Result<Value> {
    if std::env::var_os("SLURM_CONF").is_none() {
        bail!("--engine slurm needs SLURM_CONF (scripts/slurm.sh start DIR writes one)");
    }
    let workdir = dir.join("slurm-workdir");
    let max_parallel = tasks.to_string();
    let mut args = vec![
        "backfill",
        "submit",
        "--json",
        "--wait",
        "--engine",
        "slurm",
        "--base",
        s(base),
        "--workdir",
        s(&workdir),
        "--max-parallel",
        &max_parallel,
    ];
    args.extend_from_slice(source);
    let start = Instant::now();
    let status = ecops(&args)?;
    let seconds = start.elapsed().as_secs_f64();
    if status["state"] != "committed" {
        bail!("the backfill ended {}: {status}", status["state"]);
    }
    let stats = ecops(&["stats", "--json", "--base", s(base)])?;
    Ok(json!({
        "run": status["run"],
        "chunks": status["chunks"]["total"],
        "seconds": seconds,
        "items": status["items"],
        "items_per_second": status["items"].as_f64().unwrap_or(0.0) / seconds.max(1e-9),
        "failed_items": status["failed_items"],
        "files": stats["files"],
        "partitions": stats["partitions"],
        "snapshots": stats["snapshots"],
    }))
}

fn print_text(o: &Value) {
    let b = &o["backfill"];
    let i = &o["ingest"];
    println!(
        "single-process ingest: {:.1} s, {:.0} items/s, {} files for {} partitions, {} snapshots, peak RSS {:.0} MiB",
        i["seconds"].as_f64().unwrap_or(0.0),
        i["items_per_second"].as_f64().unwrap_or(0.0),
        i["files"],
        i["partitions"],
        i["snapshots"],
        i["peak_rss_mib"].as_f64().unwrap_or(0.0),
    );
    for name in ["plan", "map", "reduce", "commit"] {
        let p = &b["phases"][name];
        if !p.is_null() {
            println!(
                "  {name:<7} {:>7.1} s{}{}",
                p["seconds"].as_f64().unwrap_or(0.0),
                p["items_per_second"]
                    .as_f64()
                    .map(|r| format!("  {r:>8.0} items/s"))
                    .unwrap_or_default(),
                p["peak_rss_mib_per_worker"]
                    .as_f64()
                    .map(|m| format!("  peak RSS {m:.0} MiB per worker"))
                    .unwrap_or_default(),
            );
        }
    }
    println!(
        "backfill ({} tasks, {}): {:.1} s, {:.0} items/s, {} files for {} partitions, {} snapshots; {:.2}× the ingest's wall time (load average {})",
        o["tasks"],
        o["engine"].as_str().unwrap_or_default(),
        b["seconds"].as_f64().unwrap_or(0.0),
        b["items_per_second"].as_f64().unwrap_or(0.0),
        b["files"],
        b["partitions"],
        b["snapshots"],
        o["backfill_over_ingest_wall_time"].as_f64().unwrap_or(0.0),
        o["load_average"].as_str().unwrap_or("?"),
    );
}
