//! `ecops bench all`, `ecops bench report` and `ecops bench smoke`: every
//! performance figure README quotes comes from one run of `bench all`
//! (`scripts/bench.sh`), which writes one JSON with the commit, the build
//! profile and the machine's load average beside each result; `bench report`
//! renders README's tables from that JSON; `bench smoke` is the few-second
//! check CI runs, failing only when CPU time per unit of work is more than
//! [`SMOKE_RATIO`] times a committed baseline.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::bench::run_ecops;
use super::bench_parts::{self, BenchPartsArgs};
use super::{Settings, print_json};

/// Arguments of `ecops bench all`.
#[derive(Debug, Clone, Args)]
pub struct BenchAllArgs {
    /// full: the scales the performance goals name (100k shuffled and 1M
    /// time-ordered ingest, 100k/200k-item compaction, 46k- and 1M-file
    /// stats; hours); medium: those that run in minutes; quick: small
    /// versions of the same (minutes).
    #[arg(long, env = "ECOPS_BENCH_SCALE", default_value = "full")]
    pub scale: Scale,
    /// Only these benches (comma-separated names as listed by the run).
    #[arg(long, env = "ECOPS_BENCH_ONLY", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Where to write the results JSON.
    #[arg(long, default_value = "assets/bench/results.json")]
    pub out: PathBuf,
}

/// How big `bench all` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    Full,
    /// The goals' scales where they run in minutes: 100k shuffled and 200k
    /// time-ordered ingest, 20k/100k/200k compaction, stats at 46k files,
    /// the index rebuild over 200k items (about half an hour on 2 cores).
    Medium,
    Quick,
}

/// One bench of the suite: a name and the `ecops bench` arguments.
struct Step {
    name: &'static str,
    args: Vec<String>,
}

fn step(name: &'static str, args: &str) -> Step {
    Step {
        name,
        args: args.split_whitespace().map(str::to_string).collect(),
    }
}

/// The linear-in-files pair: a shuffled inventory writes a file per bucket
/// per chunk, so twice the items in the same chunks make about twice the files.
const COMPACT_1X: &str = "compact --items 50000 --chunk-size 5000 --order shuffled";
const COMPACT_2X: &str = "compact --items 100000 --chunk-size 5000 --order shuffled";

/// The suite at `scale`. Names are stable: `bench report` looks them up.
fn suite(scale: Scale) -> Vec<Step> {
    match scale {
        Scale::Full => vec![
            step("parts", "parts --parts 5000 --rows 2"),
            step(
                "ingest-shuffled",
                "ingest --items 100000 --order shuffled --sources local",
            ),
            step(
                "ingest-time",
                "ingest --items 1000000 --order time --sources local",
            ),
            step("compact-small", "compact --items 20000 --chunk-size 500"),
            step("compact-half", "compact --items 100000 --chunk-size 5000"),
            step("compact", "compact --items 200000 --chunk-size 5000"),
            step("compact-1x", COMPACT_1X),
            step("compact-2x", COMPACT_2X),
            step("stats", "stats --files 46000 --runs 10"),
            step("stats-1m", "stats --files 1000000 --runs 3"),
            step("query", "query --items 20000 --runs 20"),
            step("console", "console --seconds 30"),
            step(
                "runs",
                "runs --workers 1,10,100 --refreshes 10 --items 50000 --runs 5",
            ),
            step("backfill", "backfill --items 100000 --tasks 4"),
            step("backfill-1m", "backfill --items 1000000 --tasks 4"),
            step(
                "backfill-http",
                "backfill --items 40000 --http-scaling 1,2,4,8,16 --http-latency-ms 20",
            ),
            step("index", "index --indexed 10000000 --rebuild-items 1000000"),
            step("fanout", "fanout --items 200000 --regions 5000"),
        ],
        Scale::Medium => vec![
            step("parts", "parts --parts 5000 --rows 2"),
            step(
                "ingest-shuffled",
                "ingest --items 100000 --order shuffled --sources local",
            ),
            step(
                "ingest-time",
                "ingest --items 200000 --order time --sources local",
            ),
            step("compact-small", "compact --items 20000 --chunk-size 500"),
            step("compact-half", "compact --items 100000 --chunk-size 5000"),
            step("compact", "compact --items 200000 --chunk-size 5000"),
            step("compact-1x", COMPACT_1X),
            step("compact-2x", COMPACT_2X),
            step("stats", "stats --files 46000 --runs 10"),
            step("query", "query --items 20000 --runs 20"),
            step("console", "console --seconds 30"),
            step(
                "runs",
                "runs --workers 1,10,100 --refreshes 10 --items 50000 --runs 5",
            ),
            step("backfill", "backfill --items 100000 --tasks 4"),
            step("backfill-1m", "backfill --items 1000000 --tasks 4"),
            step(
                "backfill-http",
                "backfill --items 40000 --http-scaling 1,2,4,8,16 --http-latency-ms 20",
            ),
            step("index", "index --indexed 10000000 --rebuild-items 200000"),
            step("fanout", "fanout --items 200000 --regions 5000"),
        ],
        Scale::Quick => vec![
            step("parts", "parts --parts 1000 --rows 2"),
            step(
                "ingest-shuffled",
                "ingest --items 10000 --order shuffled --sources local",
            ),
            step(
                "ingest-time",
                "ingest --items 20000 --order time --sources local",
            ),
            step("compact-small", "compact --items 4000 --chunk-size 500"),
            step("compact-half", "compact --items 5000 --chunk-size 1000"),
            step("compact", "compact --items 10000 --chunk-size 1000"),
            step("stats", "stats --files 2000 --runs 5"),
            step("query", "query --items 2000 --runs 5"),
            step("console", "console --seconds 3"),
            step(
                "runs",
                "runs --workers 1,10,100 --refreshes 3 --items 3000 --runs 1",
            ),
            step("backfill", "backfill --items 4000 --tasks 2"),
            step(
                "backfill-http",
                "backfill --items 2000 --http-scaling 1,2 --http-latency-ms 20",
            ),
            step(
                "index",
                "index --indexed 200000 --chunks 2 --rebuild-items 20000",
            ),
            step("fanout", "fanout --items 5000 --regions 500"),
        ],
    }
}

/// The three load averages of /proc/loadavg ("1.02 0.87 0.55"), or "?".
fn load_averages() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// The checked-out commit, with `-dirty` when the tree has changes; None outside git.
fn git_commit() -> Option<String> {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// "release" or "debug": figures are comparable only within one profile.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Runs `ecops --json bench <args>` as a child and returns its result.
fn run_child(args: &[String]) -> Result<Value> {
    let mut full = vec!["--json", "bench"];
    full.extend(args.iter().map(String::as_str));
    run_ecops(&full, &[])?.result(&format!("ecops bench {}", args.join(" ")))
}

pub async fn all(settings: &Settings, args: &BenchAllArgs) -> Result<ExitCode> {
    let steps: Vec<Step> = suite(args.scale)
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
        .collect();
    if steps.is_empty() {
        bail!("--only names no bench of this suite");
    }
    let mut results = json!({
        "ecops_bench": 1,
        "commit": git_commit(),
        "profile": build_profile(),
        "scale": format!("{:?}", args.scale).to_lowercase(),
        "started": chrono::Utc::now().to_rfc3339(),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "load_average_start": load_averages(),
        "benches": {},
    });
    for s in &steps {
        eprintln!("bench all: {} (ecops bench {})", s.name, s.args.join(" "));
        let (load_before, started) = (load_averages(), Instant::now());
        let result = run_child(&s.args)?;
        results["benches"][s.name] = json!({
            "command": format!("ecops bench {}", s.args.join(" ")),
            "wall_seconds": started.elapsed().as_secs_f64(),
            "load_average_before": load_before,
            "load_average_after": load_averages(),
            "result": result,
        });
        // Written after every bench: a long run that fails late keeps the rest.
        results["load_average_end"] = json!(load_averages());
        write_json(&args.out, &results)?;
    }
    if settings.json {
        print_json(&results)?;
    } else {
        println!("wrote {}", args.out.display());
        print!("{}", render(&results));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// `ecops bench report`: README's performance tables from a results JSON.
pub fn report(results: &Path) -> Result<ExitCode> {
    print!("{}", render(&read_json(results)?));
    Ok(ExitCode::SUCCESS)
}

/// A number with thin grouping (12 345) and `decimals` places.
fn num(v: &Value, decimals: usize) -> String {
    let Some(x) = v.as_f64() else {
        return "?".into();
    };
    let text = format!("{x:.decimals$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn mib(v: &Value) -> String {
    num(&json!(v.as_f64().map(|b| b / 1048576.0)), 0)
}

/// Markdown tables of every bench present in `results`.
pub fn render(results: &Value) -> String {
    let b = &results["benches"];
    let mut out = format!(
        "Measured by `scripts/bench.sh` ({} scale, {} build) at commit {} on {} CPUs, started {}; load average {} at the start, {} at the end.\n",
        results["scale"].as_str().unwrap_or("?"),
        results["profile"].as_str().unwrap_or("?"),
        results["commit"].as_str().unwrap_or("?"),
        results["cpus"],
        results["started"].as_str().unwrap_or("?"),
        results["load_average_start"].as_str().unwrap_or("?"),
        results["load_average_end"].as_str().unwrap_or("?"),
    );

    out += &render_ingest(b);
    out += &render_compact(b);
    out += &render_stats(b);
    out += &render_query(b);
    out += &render_console(b);
    out += &render_runs(b);
    out += &render_backfill(b);
    out += &render_index_and_fanout(b);
    out
}

/// The load average before a bench, and its command in backticks.
fn load(e: &Value) -> String {
    e["load_average_before"].as_str().unwrap_or("?").to_string()
}

fn command(e: &Value) -> String {
    format!("`{}`", e["command"].as_str().unwrap_or("?"))
}

/// Ingest and part-write rows.
fn render_ingest(b: &Value) -> String {
    let mut out = String::new();
    let ingest: Vec<_> = ["ingest-shuffled", "ingest-time", "parts"]
        .into_iter()
        .filter(|k| b[*k].is_object())
        .collect();
    if !ingest.is_empty() {
        out += "\n### Ingest\n\n| what | items/s | files/s | CPU per file | peak RSS | load | command |\n| --- | --- | --- | --- | --- | --- | --- |\n";
        for key in ingest {
            let e = &b[key];
            let r = &e["result"];
            if key == "parts" {
                out += &format!(
                    "| writing one part of {} rows (sort, encode, store, describe), {} parts | — | {} | **{} ms** ({} ms encoding), {} bytes | {} MiB | {} | {} |\n",
                    r["rows_per_part"],
                    r["parts"],
                    num(&r["parts_per_second"], 0),
                    num(&r["cpu_ms_per_part"], 3),
                    num(&r["encode_cpu_ms_per_part"], 3),
                    num(&r["bytes_per_part"], 0),
                    mib(&r["peak_rss_bytes"]),
                    load(e),
                    command(e),
                );
                continue;
            }
            let Some(run) = r["results"].as_array().and_then(|a| a.first()) else {
                continue;
            };
            out += &format!(
                "| {} items, {} order, chunks of {}, from {} files ({} rows → {} files, {} commits, {} s) | **{}** | {} | {} ms ({} ms per item) | {} MiB | {} | {} |\n",
                num(&r["items"], 0),
                r["order"].as_str().unwrap_or("?"),
                num(&r["chunk_size"], 0),
                run["source"].as_str().unwrap_or("?"),
                num(&run["rows"], 0),
                num(&run["files"], 0),
                run["commits"],
                num(&run["seconds"], 1),
                num(&run["items_per_second"], 0),
                num(&run["files_per_second"], 0),
                num(&run["cpu_ms_per_file"], 3),
                num(&run["cpu_ms_per_item"], 3),
                mib(&run["peak_rss_bytes"]),
                load(e),
                command(e),
            );
        }
    }

    out
}

/// Wall milliseconds of a compaction bench's first run per 1 000 files it read.
fn ms_per_thousand_files(result: &Value) -> Option<f64> {
    let run = result["runs"].as_array()?.first()?;
    let files = run["summary"]["files_in"].as_f64().filter(|f| *f > 0.0)?;
    Some(run["wall_seconds"].as_f64()? * 1e6 / files)
}

/// How the time of `compact-2x` compares with `compact-1x`'s: the ratios of
/// files read and of wall time (linear in files: the second ≈ the first).
fn compaction_scaling(b: &Value) -> Option<String> {
    let first = |key: &str| -> Option<(f64, f64)> {
        let run = b[key]["result"]["runs"].as_array()?.first()?.clone();
        Some((
            run["summary"]["files_in"].as_f64()?,
            run["wall_seconds"].as_f64()?,
        ))
    };
    let (files, secs) = first("compact-1x")?;
    let (files_2x, secs_2x) = first("compact-2x")?;
    Some(format!(
        "\nScaling: `compact-2x` read {:.2}× the files of `compact-1x` and took **{:.2}×** the time (goal: 2× the files in ≤ 2.2× the time).\n",
        files_2x / files,
        secs_2x / secs
    ))
}

/// Compaction rows.
fn render_compact(b: &Value) -> String {
    let mut out = String::new();
    let compact: Vec<_> = [
        "compact-small",
        "compact-half",
        "compact",
        "compact-1x",
        "compact-2x",
    ]
    .into_iter()
    .filter(|k| b[*k].is_object())
    .collect();
    if !compact.is_empty() {
        out += "\n### Compaction\n\n| what | seconds (wall) | files before → after | ms per 1 000 files read | commits | peak RSS | load | command |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
        for key in compact {
            let e = &b[key];
            let r = &e["result"];
            let runs = r["runs"].as_array().cloned().unwrap_or_default();
            let walls: Vec<String> = runs.iter().map(|x| num(&x["wall_seconds"], 1)).collect();
            let s = runs
                .first()
                .map(|x| x["summary"].clone())
                .unwrap_or_default();
            out += &format!(
                "| {} demo items, {} order, ingested in chunks of {} | **{}** | {} → {} | {} | {} | {} MiB | {} | {} |\n",
                num(&r["items"], 0),
                r["order"].as_str().unwrap_or("time"),
                num(&r["chunk_size"], 0),
                walls.join(" / "),
                num(&s["files_before"], 0),
                num(&s["files_after"], 0),
                num(&json!(ms_per_thousand_files(r)), 0),
                s["commits"],
                mib(&s["peak_rss_bytes"]),
                load(e),
                command(e),
            );
        }
        out += &compaction_scaling(b).unwrap_or_default();
    }
    out
}

/// Stats rows.
fn render_stats(b: &Value) -> String {
    let mut out = String::new();
    let stats: Vec<_> = ["stats", "stats-1m"]
        .into_iter()
        .filter(|k| b[*k].is_object())
        .collect();
    if !stats.is_empty() {
        out += "\n### Stats\n\n| data files | partitions | manifests | `ecops stats` as a fresh process p50 / p95 | open + stats in the bench process p50 / p95 | peak RSS | load | command |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
        for key in stats {
            let e = &b[key];
            let r = &e["result"];
            out += &format!(
                "| {} | {} | {} | **{} / {} ms** | {} / {} ms | {} MiB | {} | {} |\n",
                num(&r["files"], 0),
                num(&r["partitions"], 0),
                num(&r["manifests"], 0),
                num(&r["process_ms_p50"], 0),
                num(&r["process_ms_p95"], 0),
                num(&r["open_and_stats_ms_p50"], 0),
                num(&r["open_and_stats_ms_p95"], 0),
                mib(&r["peak_rss_bytes"]),
                load(e),
                command(e),
            );
        }
        for key in ["stats", "stats-1m"] {
            let a = &b[key]["result"]["after_commit"];
            if a.is_object() {
                out += &format!(
                    "\nAfter a commit of {} items at {} files (catalog opened afresh in the bench process, {} rounds): stats p50 **{} ms** (max {}); the first query after another commit (bbox {}) p50 **{} ms** end to end (max {}), {} ms of it planning.\n",
                    a["items_per_commit"],
                    num(&b[key]["result"]["files"], 0),
                    a["rounds"],
                    num(&a["stats_ms_p50"], 0),
                    num(&a["stats_ms_max"], 0),
                    a["query_bbox"].as_str().unwrap_or("?"),
                    num(&a["first_query_ms_p50"], 0),
                    num(&a["first_query_ms_max"], 0),
                    num(&a["first_query_plan_ms_p50"], 0),
                );
            }
        }
    }

    out
}

/// Query shapes.
fn render_query(b: &Value) -> String {
    let mut out = String::new();
    if let Some(e) = b.get("query").filter(|e| e.is_object()) {
        let r = &e["result"];
        out += &format!(
            "\n### Query\n\n{} demo items, {} warm runs per shape; load {}; {}\n\n| shape | items (= brute force) | files kept / total | cold | planning p50 / p95 | end to end p50 / p95 |\n| --- | --- | --- | --- | --- | --- |\n",
            num(&r["items"], 0),
            r["runs"],
            load(e),
            command(e),
        );
        for s in r["shapes"].as_array().into_iter().flatten() {
            out += &format!(
                "| {} | {} (= {}) | {} / {} | {} ms | {} / {} ms | {} / {} ms |\n",
                s["shape"].as_str().unwrap_or("?"),
                num(&s["items"], 0),
                num(&s["expected"], 0),
                num(&s["files_kept"], 0),
                num(&s["files_total"], 0),
                num(&s["cold_ms"], 0),
                num(&s["plan_ms_p50"], 2),
                num(&s["plan_ms_p95"], 2),
                num(&s["total_ms_p50"], 1),
                num(&s["total_ms_p95"], 1),
            );
        }
    }

    out
}

/// Console bandwidth.
fn render_console(b: &Value) -> String {
    let mut out = String::new();
    if let Some(e) = b.get("console").filter(|e| e.is_object()) {
        out += &format!(
            "\n### Console bandwidth\n\n{}\n\n| size | preset | state | bytes/s | load |\n| --- | --- | --- | --- | --- |\n",
            command(e)
        );
        for c in e["result"]["console"].as_array().into_iter().flatten() {
            out += &format!(
                "| {}×{} | {} | {} | {} | {} |\n",
                c["width"],
                c["height"],
                c["preset"].as_str().unwrap_or("?"),
                c["state"].as_str().unwrap_or("?"),
                num(&c["bytes_per_second"], 0),
                c["load_average"].as_str().unwrap_or("?"),
            );
        }
    }
    out
}

/// The run ledger's cost per refresh and an ingest's heartbeats.
fn render_runs(b: &Value) -> String {
    let Some(e) = b.get("runs").filter(|e| e.is_object()) else {
        return String::new();
    };
    let r = &e["result"];
    let mut out = format!(
        "\n### Run ledger\n\nOne console refresh of the ledger with N live workers; load {}; `{}`\n\n| live workers | every worker changed: requests | p50 / p95 | nothing changed: requests | p50 |\n| --- | --- | --- | --- | --- |\n",
        e["load_average_before"].as_str().unwrap_or("?"),
        e["command"].as_str().unwrap_or("?"),
    );
    for w in r["refresh"].as_array().into_iter().flatten() {
        let (c, u) = (&w["changed"], &w["unchanged"]);
        out += &format!(
            "| {} | {} LIST + {} GET | {} / {} ms | {} LIST + {} GET | {} ms |\n",
            w["workers"],
            num(&c["lists_per_refresh"], 0),
            num(&c["gets_per_refresh"], 0),
            num(&c["p50_ms"], 1),
            num(&c["p95_ms"], 1),
            num(&u["lists_per_refresh"], 0),
            num(&u["gets_per_refresh"], 0),
            num(&u["p50_ms"], 1),
        );
    }
    let h = &r["heartbeats"];
    if h.is_object() {
        out += &format!(
            "\nIngest of {} local demo items with a heartbeat every {} against heartbeats off (after a warm-up run, {} runs each, alternating; medians): {} against {} items/s ({} %), {} against {} CPU ms per item (**{} %**).\n",
            num(&h["items"], 0),
            h["heartbeat_on"].as_str().unwrap_or("?"),
            h["runs"],
            num(&h["items_per_second_heartbeat_on"], 0),
            num(&h["items_per_second_heartbeat_off"], 0),
            num(&json!(h["median_cost_percent"].as_f64().map(|c| -c)), 1),
            num(&h["cpu_ms_per_item_heartbeat_on"], 4),
            num(&h["cpu_ms_per_item_heartbeat_off"], 4),
            num(&h["cpu_cost_percent"], 1),
        );
    }
    out
}

/// Backfills phase by phase against the single-process ingest (one pair of
/// rows per size measured), and the map phase over HTTP by task count.
fn render_backfill(b: &Value) -> String {
    let runs: Vec<&Value> = ["backfill", "backfill-1m"]
        .iter()
        .filter_map(|name| b.get(*name).filter(|e| e.is_object()))
        .collect();
    let mut out = String::new();
    if !runs.is_empty() {
        out += "\n### Backfill\n\n| run | wall | items/s | data files (partitions) | snapshots | peak RSS | load | command |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
        for e in runs {
            out += &backfill_rows(e);
        }
    }
    if let Some(e) = b.get("backfill-http").filter(|e| e.is_object()) {
        out += &http_scaling_table(e);
    }
    out
}

/// The single-process ingest and the backfill of one `bench backfill` run.
fn backfill_rows(e: &Value) -> String {
    let r = &e["result"];
    let (i, f, p) = (&r["ingest"], &r["backfill"], &r["backfill"]["phases"]);
    let (load, command) = (
        e["load_average_before"].as_str().unwrap_or("?"),
        e["command"].as_str().unwrap_or("?"),
    );
    format!(
        "| {} items: single-process ingest | {} s | {} | {} ({}) | {} | {} MiB | {load} | `{command}` |\n| {} items: backfill, {} tasks ({}), chunks of {}: plan {} s, map {} s, reduce {} s, commit {} s | **{} s** ({}× the ingest) | {} | {} ({}) | {} | map {} MiB, reduce {} MiB per worker | | |\n",
        num(&r["items"], 0),
        num(&i["seconds"], 1),
        num(&i["items_per_second"], 0),
        num(&i["files"], 0),
        num(&i["partitions"], 0),
        i["snapshots"],
        num(&i["peak_rss_mib"], 0),
        num(&r["items"], 0),
        r["tasks"],
        r["engine"].as_str().unwrap_or("?"),
        num(&r["chunk_size"], 0),
        num(&p["plan"]["seconds"], 1),
        num(&p["map"]["seconds"], 1),
        num(&p["reduce"]["seconds"], 1),
        num(&p["commit"]["seconds"], 1),
        num(&f["seconds"], 1),
        num(&r["backfill_over_ingest_wall_time"], 2),
        num(&f["items_per_second"], 0),
        num(&f["files"], 0),
        num(&f["partitions"], 0),
        f["snapshots"],
        num(&p["map"]["peak_rss_mib_per_worker"], 0),
        num(&p["reduce"]["peak_rss_mib_per_worker"], 0),
    )
}

/// `bench backfill --http-scaling`: the map phase's rate by task count.
fn http_scaling_table(e: &Value) -> String {
    let r = &e["result"];
    let mut out = format!(
        "\nThe map phase alone, fetching {} demo items over HTTP from a local server that adds {} ms to every request, {} fetches in flight per task; `{}`\n\n| tasks | wall | items/s | vs 1 task | peak RSS per worker | load |\n| --- | --- | --- | --- | --- | --- |\n",
        num(&r["items"], 0),
        r["http_latency_ms"],
        r["concurrency_per_task"],
        e["command"].as_str().unwrap_or("?"),
    );
    for row in r["map_phase"].as_array().into_iter().flatten() {
        out += &format!(
            "| {} | {} s | **{}** | {}× | {} MiB | {} |\n",
            row["tasks"],
            num(&row["seconds"], 1),
            num(&row["items_per_second"], 0),
            num(&row["speedup"], 2),
            num(&row["peak_rss_mib_per_worker"], 0),
            row["load_average"].as_str().unwrap_or("?"),
        );
    }
    out
}

/// The hash index's cost per chunk and rebuild; GeoJSON-region fan-out.
fn render_index_and_fanout(b: &Value) -> String {
    let mut out = String::new();
    if let Some(e) = b.get("index").filter(|e| e.is_object()) {
        let (c, r) = (&e["result"]["chunks"], &e["result"]["rebuild"]);
        out += &format!(
            "\n### Hash index\n\nload {}; `{}`\n\n- index update per {}-item chunk at {} indexed ids: p50 {} ms of a {} ms chunk (write + commit + index, no fetch), **{} %** (max {} %)\n- `index rebuild` over {} items ({} ids in {} files): **{} s**, {} ids/s\n",
            e["load_average_before"].as_str().unwrap_or("?"),
            e["command"].as_str().unwrap_or("?"),
            num(&c["chunk_items"], 0),
            num(&c["indexed_before"], 0),
            num(&c["index_update_ms_p50"], 0),
            num(&c["chunk_ms_p50"], 0),
            num(&json!(c["index_share_p50"].as_f64().map(|x| x * 100.0)), 1),
            num(&json!(c["index_share_max"].as_f64().map(|x| x * 100.0)), 1),
            num(&r["items"], 0),
            num(&r["ids_read"], 0),
            num(&r["files_read"], 0),
            num(&r["rebuild_seconds"], 1),
            num(&r["ids_per_second"], 0),
        );
    }
    if let Some(e) = b.get("fanout").filter(|e| e.is_object()) {
        let r = &e["result"];
        out += &format!(
            "\n### Fan-out\n\n{} footprints; load {}; `{}`: H3 (resolution {}) {} footprints/s; a GeoJSON grid of {} regions (built in {} s) {} footprints/s: **{}×** the time of H3 per footprint\n",
            num(&r["footprints"], 0),
            e["load_average_before"].as_str().unwrap_or("?"),
            e["command"].as_str().unwrap_or("?"),
            r["h3"]["resolution"],
            num(&r["h3"]["per_second"], 0),
            num(&r["geojson"]["regions"], 0),
            num(&r["geojson"]["build_seconds"], 2),
            num(&r["geojson"]["per_second"], 0),
            num(&r["geojson_slowdown_vs_h3"], 2),
        );
    }
    out
}

/// A smoke figure may be this many times its baseline before the smoke fails.
pub const SMOKE_RATIO: f64 = 3.0;

/// Arguments of `ecops bench smoke`.
#[derive(Debug, Clone, Args)]
pub struct BenchSmokeArgs {
    /// Baseline figures, per build profile.
    #[arg(long, default_value = "tests/bench/smoke-baseline.json")]
    pub baseline: PathBuf,
    /// Record this run as the baseline of this build profile instead of checking.
    #[arg(long)]
    pub update: bool,
    /// Working folder (default target/ecops-bench/smoke).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `ecops bench smoke`: a few seconds of the benches that guard the hot
/// paths, as CPU time per unit of work (what load changes least). Exits 1
/// when a figure is more than [`SMOKE_RATIO`]× the baseline of this profile.
pub async fn smoke(settings: &Settings, args: &BenchSmokeArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/ecops-bench/smoke"));
    let load = load_averages();
    let parts = bench_parts::measure(&BenchPartsArgs {
        parts: 1000,
        rows: 2,
        items: 500,
        dir: Some(dir.join("parts")),
    })
    .await?;
    let mut ingest_args = step(
        "smoke",
        "ingest --items 1500 --order shuffled --sources local --chunk-size 500 --dir",
    )
    .args;
    ingest_args.push(dir.join("ingest").to_string_lossy().into_owned());
    let ingest = run_child(&ingest_args)?;
    let run = &ingest["results"][0];
    let measured = json!({
        "part_cpu_ms": parts["cpu_ms_per_part"],
        "ingest_cpu_ms_per_item": run["cpu_ms_per_item"],
        "ingest_cpu_ms_per_file": run["cpu_ms_per_file"],
    });
    let profile = build_profile();
    let mut baseline = read_json(&args.baseline).unwrap_or_else(|_| json!({}));
    if args.update {
        baseline[profile] = json!({
            "figures": measured,
            "commit": git_commit(),
            "load_average": load,
            "recorded": chrono::Utc::now().to_rfc3339(),
        });
        write_json(&args.baseline, &baseline)?;
        println!(
            "recorded the {profile} baseline in {}",
            args.baseline.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(base) = baseline[profile]["figures"].as_object() else {
        bail!(
            "{} has no {profile} baseline; record one with `ecops bench smoke --update`",
            args.baseline.display()
        );
    };
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (key, base_value) in base {
        let (Some(b), Some(m)) = (base_value.as_f64(), measured[key].as_f64()) else {
            bail!("smoke figure {key} missing from the run or the baseline");
        };
        let ratio = m / b.max(1e-9);
        if ratio > SMOKE_RATIO {
            failed.push(key.clone());
        }
        rows.push(json!({"figure": key, "baseline": b, "measured": m, "ratio": ratio}));
    }
    if settings.json {
        print_json(
            &json!({"profile": profile, "load_average": load, "figures": rows, "failed": failed}),
        )?;
    } else {
        for r in &rows {
            println!(
                "{:<24} {:>8.3} ms (baseline {:>8.3}, ×{:.2})",
                r["figure"].as_str().unwrap_or("?"),
                r["measured"].as_f64().unwrap_or(0.0),
                r["baseline"].as_f64().unwrap_or(0.0),
                r["ratio"].as_f64().unwrap_or(0.0),
            );
        }
        println!("{profile} build, load average {load}");
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "bench smoke: more than {SMOKE_RATIO}× the baseline CPU time: {}",
            failed.join(", ")
        );
        Ok(ExitCode::from(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_in_threes() {
        assert_eq!(num(&json!(1_234_567.891), 1), "1 234 567.9");
        assert_eq!(num(&json!(-999), 0), "-999");
        assert_eq!(num(&json!(1000), 0), "1 000");
        assert_eq!(num(&Value::Null, 0), "?");
    }

    #[test]
    fn the_report_shows_each_bench_present_with_its_load_and_command() {
        let results = json!({
            "scale": "quick", "profile": "release", "commit": "abc123", "cpus": 2,
            "started": "2026-01-01T00:00:00Z", "load_average_start": "0.10 0.20 0.30",
            "load_average_end": "0.40 0.50 0.60",
            "benches": {
                "ingest-shuffled": {
                    "command": "ecops bench ingest --items 5000 --order shuffled",
                    "load_average_before": "1.25 1.00 0.75",
                    "result": {"items": 5000, "order": "shuffled", "chunk_size": 2000, "results": [{
                        "source": "local", "rows": 7400, "files": 4321, "commits": 3,
                        "seconds": 2.5, "items_per_second": 2000.0, "files_per_second": 1728.4,
                        "cpu_ms_per_file": 0.456, "cpu_ms_per_item": 0.5, "peak_rss_bytes": 104857600
                    }]}
                },
                "stats": {
                    "command": "ecops bench stats --files 2000 --runs 5",
                    "load_average_before": "0.50 0.50 0.50",
                    "result": {"files": 2345, "partitions": 99, "manifests": 7,
                        "open_and_stats_ms_p50": 12.4, "open_and_stats_ms_p95": 15.6,
                        "process_ms_p50": 21.2, "process_ms_p95": 30.7,
                        "peak_rss_bytes": 52428800}
                }
            }
        });
        let text = render(&results);
        for expected in [
            "abc123",
            "0.10 0.20 0.30",
            "| 5 000 items, shuffled order, chunks of 2 000, from local files (7 400 rows → 4 321 files, 3 commits, 2.5 s) | **2 000** | 1 728 | 0.456 ms (0.500 ms per item) | 100 MiB | 1.25 1.00 0.75 | `ecops bench ingest --items 5000 --order shuffled` |",
            "| 2 345 | 99 | 7 | **21 / 31 ms** | 12 / 16 ms | 50 MiB | 0.50 0.50 0.50 | `ecops bench stats --files 2000 --runs 5` |",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(
            !text.contains("### Compaction"),
            "no compaction bench, no table"
        );
    }
}
