//! `ecops bench runs`: what the run ledger costs. A console's refresh with 1,
//! 10 and 100 live workers (requests and milliseconds, when every worker has
//! a new heartbeat and when nothing changed), and an ingest's throughput with
//! heartbeats at the default interval (or `--heartbeat-on`) against heartbeats
//! effectively off.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use chrono::Utc;
use clap::Args;
use serde_json::{Value, json};

use super::bench::percentile;
use super::bench::{ensure_demo_data, ingest_demo};
use super::{Settings, print_json};
use crate::demo::InventoryOrder;
use crate::runs::record::{Activity, Actor, Counters, RunKind, RunState, WorkerRecord};
use crate::runs::{Ledger, LedgerOptions, RunsReader};
use crate::store::{Location, open_location};

/// Arguments of `ecops bench runs`.
#[derive(Debug, Clone, Args)]
pub struct BenchRunsArgs {
    /// Live workers to publish; one measurement per count.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub workers: Vec<usize>,
    /// Timed refreshes per worker count and case.
    #[arg(long, default_value_t = 10)]
    pub refreshes: usize,
    /// Items ingested per run of the heartbeat comparison (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    pub items: u64,
    /// The heartbeat interval compared with heartbeats off (default: the
    /// ledger's default interval).
    #[arg(long, default_value = "5s")]
    pub heartbeat_on: String,
    /// Ingest runs per heartbeat setting, alternating on and off.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Working folder; the ledger is written here unless `--base` names
    /// another store (e.g. s3://bucket/prefix, to measure S3 round trips).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub async fn run(settings: &Settings, args: &BenchRunsArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/ecops-bench/runs"));
    std::fs::create_dir_all(&dir)?;
    let mut refresh = Vec::new();
    for &workers in &args.workers {
        // A fresh ledger per measurement: nothing but these workers in it.
        let name = format!(
            "ledger-{workers}-{}",
            Utc::now().format("%Y%m%dT%H%M%S%.3f")
        );
        let base = match &settings.base {
            Some(b) => format!("{}/{name}", b.trim_end_matches('/')),
            None => {
                let _ = std::fs::remove_dir_all(dir.join("ledgers"));
                dir.join("ledgers").join(name).display().to_string()
            }
        };
        let result = refresh_cost(settings, &base, workers, args.refreshes).await?;
        if !settings.json {
            println!(
                "refresh, {workers:>3} live workers: every worker changed {} LIST + {:.0} GET, p50 {:.1} ms, p95 {:.1} ms; nothing changed {} LIST + {:.0} GET, p50 {:.1} ms",
                result["changed"]["lists_per_refresh"],
                result["changed"]["gets_per_refresh"]
                    .as_f64()
                    .unwrap_or(0.0),
                result["changed"]["p50_ms"].as_f64().unwrap_or(0.0),
                result["changed"]["p95_ms"].as_f64().unwrap_or(0.0),
                result["unchanged"]["lists_per_refresh"],
                result["unchanged"]["gets_per_refresh"]
                    .as_f64()
                    .unwrap_or(0.0),
                result["unchanged"]["p50_ms"].as_f64().unwrap_or(0.0),
            );
        }
        refresh.push(result);
    }
    let heartbeats = if args.items > 0 {
        Some(heartbeat_overhead(settings, &dir, args).await?)
    } else {
        None
    };
    let out = json!({
        "refresh": refresh,
        "heartbeats": heartbeats,
        "load_average": crate::metrics::load_average(),
    });
    if settings.json {
        print_json(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Publishes `workers` live worker records of one run, then times refreshes
/// of a reader that has seen them all: after every worker wrote a new
/// heartbeat, and with nothing changed.
async fn refresh_cost(
    settings: &Settings,
    base: &str,
    workers: usize,
    refreshes: usize,
) -> Result<Value> {
    let store = open_location(&Location::parse(base)?, &settings.open.s3)?;
    let ledger = Ledger::new(&store);
    let run = ledger
        .begin(
            RunKind::Backfill,
            json!({"bench": true}),
            LedgerOptions::default(),
        )
        .await?;
    let mut records: Vec<WorkerRecord> = (0..workers).map(|i| worker(run.id(), i)).collect();
    for r in &records {
        ledger.write_worker(r).await?;
    }
    let mut reader = RunsReader::new(&store);
    reader.refresh().await?;
    let mut changed = Timings::default();
    let mut unchanged = Timings::default();
    for _ in 0..refreshes.max(1) {
        for r in &mut records {
            r.seq += 1;
            r.heartbeat = Utc::now();
            r.activity.counters.items_fetched += 1000;
            ledger.write_worker(r).await?;
        }
        changed.time(&mut reader).await?;
        unchanged.time(&mut reader).await?;
    }
    Ok(json!({
        "workers": workers,
        "changed": changed.summary(),
        "unchanged": unchanged.summary(),
    }))
}

/// A worker record as a backfill task on another machine would write it.
fn worker(run: &str, index: usize) -> WorkerRecord {
    let now = Utc::now();
    let me = Actor::me();
    WorkerRecord {
        version: crate::runs::record::RECORD_VERSION,
        run: run.to_string(),
        worker: format!("bench-task-{index}"),
        host: me.host,
        pid: me.pid,
        engine_task: format!("slurm:1_{index}"),
        state: RunState::Running,
        started: now,
        heartbeat: now,
        seq: 1,
        heartbeat_seconds: 5.0,
        activity: Activity {
            phase: "map".into(),
            chunk: Some(format!("chunk-{index:06}")),
            counters: Counters::default(),
        },
        error: None,
    }
}

/// Refresh samples and the requests they made.
#[derive(Default)]
struct Timings {
    ms: Vec<f64>,
    lists: u64,
    gets: u64,
}

impl Timings {
    async fn time(&mut self, reader: &mut RunsReader) -> Result<()> {
        let before = reader.requests();
        let start = Instant::now();
        reader.refresh().await?;
        self.ms.push(start.elapsed().as_secs_f64() * 1e3);
        let after = reader.requests();
        self.lists += after.lists - before.lists;
        self.gets += after.gets - before.gets;
        Ok(())
    }

    fn summary(&mut self) -> Value {
        self.ms.sort_by(f64::total_cmp);
        let n = self.ms.len().max(1) as f64;
        json!({
            "refreshes": self.ms.len(),
            "lists_per_refresh": self.lists as f64 / n,
            "gets_per_refresh": self.gets as f64 / n,
            "p50_ms": percentile(&self.ms, 50.0),
            "p95_ms": percentile(&self.ms, 95.0),
        })
    }
}

/// Ingests the same demo items with heartbeats every `--heartbeat-on` and (in effect)
/// never, alternating after an untimed warm-up run, and compares the
/// medians of items/s and of CPU time per item (which load moves least).
async fn heartbeat_overhead(
    settings: &Settings,
    dir: &Path,
    args: &BenchRunsArgs,
) -> Result<Value> {
    let data = dir.join(format!("data-{}", args.items));
    ensure_demo_data(&data, args.items, InventoryOrder::Time).await?;
    ingest_once(dir, &data, "24h")?; // page cache and allocator warm
    let (mut on, mut off) = (Samples::default(), Samples::default());
    for run in 0..args.runs.max(1) {
        // Alternate which goes first so drift in the machine's load evens out.
        let on_every = args.heartbeat_on.as_str();
        let order = if run % 2 == 0 {
            [on_every, "24h"]
        } else {
            ["24h", on_every]
        };
        for heartbeat in order {
            let (rate, cpu_ms) = ingest_once(dir, &data, heartbeat)?;
            let samples = if heartbeat == "24h" {
                &mut off
            } else {
                &mut on
            };
            samples.rates.push(rate);
            samples.cpu_ms_per_item.push(cpu_ms);
        }
    }
    let (on, off) = (on.medians(), off.medians());
    let rate_cost = 100.0 * (1.0 - on.0 / off.0.max(1e-9));
    let cpu_cost = 100.0 * (on.1 / off.1.max(1e-9) - 1.0);
    if !settings.json {
        println!(
            "ingest of {} items: heartbeat every {} {:.0} items/s, {:.4} CPU ms/item; heartbeats off {:.0} items/s, {:.4} CPU ms/item (medians of {}): {rate_cost:+.1}% items/s, {cpu_cost:+.1}% CPU",
            args.items, args.heartbeat_on, on.0, on.1, off.0, off.1, args.runs
        );
    }
    Ok(json!({
        "items": args.items,
        "runs": args.runs,
        "heartbeat_on": args.heartbeat_on,
        "items_per_second_heartbeat_on": on.0,
        "items_per_second_heartbeat_off": off.0,
        "cpu_ms_per_item_heartbeat_on": on.1,
        "cpu_ms_per_item_heartbeat_off": off.1,
        "median_cost_percent": rate_cost,
        "cpu_cost_percent": cpu_cost,
    }))
}

/// One setting's runs.
#[derive(Default)]
struct Samples {
    rates: Vec<f64>,
    cpu_ms_per_item: Vec<f64>,
}

impl Samples {
    /// (median items/s, median CPU ms per item).
    fn medians(mut self) -> (f64, f64) {
        self.rates.sort_by(f64::total_cmp);
        self.cpu_ms_per_item.sort_by(f64::total_cmp);
        (
            percentile(&self.rates, 50.0),
            percentile(&self.cpu_ms_per_item, 50.0),
        )
    }
}

/// One `ecops ingest` into a fresh local catalog: its items/s and the CPU
/// milliseconds it spent per item.
fn ingest_once(dir: &Path, data: &Path, heartbeat: &str) -> Result<(f64, f64)> {
    let cpu_before = crate::metrics::children_cpu_seconds();
    let summary = ingest_demo(
        &dir.join("catalog"),
        data,
        None,
        &["--heartbeat", heartbeat],
        &[],
    )?
    .result("the ingest")?;
    let cpu = crate::metrics::children_cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before)
        .unwrap_or(0.0);
    match (summary["items"].as_f64(), summary["seconds"].as_f64()) {
        (Some(items), Some(secs)) if secs > 0.0 && items > 0.0 => {
            Ok((items / secs, cpu * 1e3 / items))
        }
        _ => bail!("the ingest printed no rate: {summary}"),
    }
}
