//! The headless front end: clap commands that drive the engine and print
//! human text or `--json`. Errors become one line on stderr and a non-zero exit.
//!
//! Human text goes out through `say!` and `say_err!`: whatever item data
//! or error text a line carries, nothing in it reaches the terminal as a
//! control character (see [`crate::fmt::terminal_safe`]). JSON goes out as
//! is (it escapes control characters itself).

/// `println!` for human text: control characters in the line are shown
/// escaped (newlines stay), never sent to the terminal.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::fmt::terminal_safe_lines(&format!($($arg)*)))
    };
}

/// `say!` on stderr.
macro_rules! say_err {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::fmt::terminal_safe_lines(&format!($($arg)*)))
    };
}

mod backfill_cmds;
pub mod bench;
mod bench_all;
mod bench_backfill;
mod bench_compact;
mod bench_console;
mod bench_fanout;
mod bench_index;
mod bench_ingest;
mod bench_parts;
mod catalog_cmds;
mod compact_cmds;
mod demo_cmds;
mod index_cmds;
mod ingest_cmds;
mod lock_cmds;

mod bench_query;
mod bench_runs;
pub mod query_cmds;
mod query_output;
mod runs_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::catalog::OpenOptions;
use crate::config::Config;
use crate::store::S3Options;

pub(crate) use crate::fmt::human_bytes;

/// Operations console for EarthCatalog STAC catalogs (H3 cells, GeoParquet, Iceberg on SQLite).
#[derive(Debug, Parser)]
#[command(name = "ecops", version, about, long_about = None)]
pub struct Cli {
    /// Catalog base: a folder, file:// URL or s3://bucket/prefix.
    #[arg(long, global = true, env = "ECOPS_BASE")]
    pub base: Option<String>,
    /// Config file (default: ./ecops.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Refuse every write.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Allowance for other machines' clocks when judging the catalog lock stale (default 5m, or lock_skew in the config).
    #[arg(long, global = true, value_name = "DURATION", value_parser = crate::fmt::parse_duration)]
    pub lock_skew: Option<std::time::Duration>,
    /// Attempts after the first when a commit loses to another writer or may have failed (default 4).
    #[arg(long, global = true, value_name = "N")]
    pub commit_retries: Option<u32>,
    /// Run ledger: publish a running job's heartbeat this often (default 5s, or heartbeat in the config).
    #[arg(long, global = true, value_name = "DURATION", value_parser = crate::fmt::parse_duration)]
    pub heartbeat: Option<std::time::Duration>,
    /// Console only: redraw at most every N ms for background changes (default 250, or refresh_ms in the config).
    #[arg(long, value_name = "N")]
    pub refresh_ms: Option<u64>,
    /// Console only: colours — dark (default), light, ansi (the 16 ANSI colours) or mono (none; also NO_COLOR).
    #[arg(long, value_name = "THEME", value_parser = crate::tui::theme::ThemeName::parse)]
    pub theme: Option<crate::tui::theme::ThemeName>,
    /// Console only: low-bandwidth preset for slow links (refresh 5 s, no animation, ansi theme).
    #[arg(long)]
    pub low_bandwidth: bool,
    /// Console only: mouse support (click a tab or a row, scroll).
    #[arg(long)]
    pub mouse: bool,
    /// Console only: keep no presence record (other consoles will not see this one).
    #[arg(long)]
    pub no_presence: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a catalog (database, namespace, table) at --base.
    Init(catalog_cmds::InitArgs),
    /// Where everything is: base, database, warehouse, table, grid, snapshot, lock.
    Info,
    /// Catalog health from metadata: partitions, files, rows, bytes, small files, snapshots, top cells.
    Stats {
        /// How many top cells to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Files below this many MiB count as small (default 8, or small_file_mb in the config).
        #[arg(long)]
        small_file_mb: Option<u64>,
        /// Include every (cell, year) partition in the output.
        #[arg(long)]
        partitions: bool,
        /// Text (aligned columns) or Markdown tables (for tickets).
        #[arg(long, value_enum, default_value = "text")]
        format: catalog_cmds::StatsFormat,
    },
    /// Ingest STAC items listed by an inventory: fetch, fan out, write, commit (resumable).
    Ingest(ingest_cmds::IngestArgs),
    /// The catalog lock.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Measure performance on synthetic data (numbers for README).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Write N synthetic STAC items plus their inventory in every supported format (deterministic).
    DemoData(demo_cmds::DemoDataArgs),
    /// Rewrite (cell, year) buckets of many small files into few, one row per id (replace snapshots).
    Compact(compact_cmds::CompactArgs),
    /// Drop old snapshots from the table metadata and delete files only they referenced.
    ExpireSnapshots(compact_cmds::ExpireArgs),
    /// Delete data and metadata files no snapshot references, older than a guard (default 3 days).
    RemoveOrphans(compact_cmds::OrphanArgs),
    /// Search items: geometry (point, bbox, GeoJSON/WKT), datetime, property filters; items or (id, href) pairs.
    Query(query_cmds::QueryArgs),
    /// Every run on the catalog (ingest, compaction, maintenance, backfill), wherever it runs; cancel, pause, resume.
    Runs(runs_cmds::RunsArgs),
    /// Backfill across machines: plan, then map/reduce tasks a scheduler runs by index (Slurm, Kubernetes, AWS Batch, local), then commit.
    #[command(subcommand)]
    Backfill(backfill_cmds::BackfillCommand),
    /// The hash index of item ids (unique-item count, `ingest --skip-known`).
    #[command(subcommand)]
    Index(index_cmds::IndexCommand),
    /// Move the catalog database to PyIceberg's current (v1) SqlCatalog layout.
    UpgradeCatalog,
    /// Write every item of the table as one stac-geoparquet file (STAC tools read it as items).
    Export {
        /// The file to write (replaced whole).
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// Lock commands.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the lock, since when, and whether it is stale.
    Status,
    /// Take the lock for a maintenance window (ends by `lock release` or its TTL).
    Acquire {
        /// Who holds it (shown to everyone who finds the catalog locked).
        #[arg(long)]
        owner: String,
        /// Stale after this long: 45s, 30m, 2h, 1d.
        #[arg(long, default_value = "1h", value_parser = crate::fmt::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Release a lock you took: give the nonce or generation `lock acquire` printed.
    Release {
        #[arg(long, conflicts_with = "generation")]
        nonce: Option<String>,
        #[arg(long)]
        generation: Option<u64>,
    },
    /// Take over a stale lock (or, with --force and its generation/nonce/fingerprint, any lock).
    Steal {
        /// Do not ask; refuse (exit 1, nothing changed) unless the lock is stale or forced.
        #[arg(long)]
        yes: bool,
        /// Steal even a live or unreadable lock: type back its generation, nonce or fingerprint.
        #[arg(long, value_name = "GENERATION|NONCE|FINGERPRINT")]
        force: Option<String>,
        /// Who holds it after the steal (default: $USER).
        #[arg(long)]
        owner: Option<String>,
        /// Stale after this long: 45s, 30m, 2h, 1d.
        #[arg(long, default_value = "1h", value_parser = crate::fmt::parse_duration)]
        ttl: std::time::Duration,
    },
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time `stats` (open + metadata scan) on a local catalog of N data files.
    Stats {
        /// Data files the catalog should hold (built once, then reused).
        #[arg(long, default_value_t = 20_000)]
        files: u64,
        /// Where to build the catalog (default target/ecops-bench/stats-N).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Timed runs.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// Ingest throughput and peak memory from local files, loopback HTTP and S3.
    Ingest(bench_ingest::BenchIngestArgs),
    /// CPU time per small part file written (sort, encode, store, describe).
    Parts(bench_parts::BenchPartsArgs),
    /// Every bench at the performance goals' scales (or --scale quick), into one results JSON.
    All(bench_all::BenchAllArgs),
    /// README's performance tables (Markdown) from a `bench all` results JSON.
    Report {
        /// The results JSON.
        #[arg(long, default_value = "assets/bench/results.json")]
        results: PathBuf,
    },
    /// A few seconds of CPU-time figures checked against a committed baseline (fails above 3×).
    Smoke(bench_all::BenchSmokeArgs),
    /// Compaction time and peak memory on a demo catalog ingested in small chunks.
    Compact(bench_compact::BenchCompactArgs),
    /// Query latency (planning, end to end) of seven shapes on a demo catalog, checked by brute force.
    Query(bench_query::BenchQueryArgs),
    /// Bytes the console writes to the terminal per second (idle, live ingest; 80×24, 160×48; default, low-bandwidth).
    Console(bench_console::BenchConsoleArgs),
    /// What the run ledger costs: a console's refresh with 1/10/100 live workers, an ingest's heartbeats.
    Runs(bench_runs::BenchRunsArgs),
    /// A backfill of N demo items through K tasks (local or Slurm), phase by phase, against a single-process ingest.
    Backfill(bench_backfill::BenchBackfillArgs),
    /// Hash index: update per chunk at N indexed ids, and `index rebuild` over M items.
    Index(bench_index::BenchIndexArgs),
    /// Fan-out throughput: a GeoJSON grid of N regions against H3.
    Fanout(bench_fanout::BenchFanoutArgs),
}

/// Settings resolved from flags, environment and config file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base: Option<String>,
    /// `--heartbeat` (overrides the config).
    pub heartbeat: Option<std::time::Duration>,
    /// `--lock-skew` (overrides the config).
    pub lock_skew: Option<std::time::Duration>,
    pub open: OpenOptions,
    pub json: bool,
    pub config: Config,
}

impl Settings {
    fn resolve(cli: &Cli) -> Result<Self> {
        let (config, _) = Config::load(cli.config.as_deref())?;
        config.validate()?;
        let base = cli.base.clone().or_else(|| config.base.clone());
        let open = OpenOptions {
            read_only: cli.read_only || config.read_only,
            s3: S3Options {
                endpoint: config.s3.endpoint.clone(),
                anonymous: config.s3.anonymous,
            },
            commit_retries: cli.commit_retries,
        };
        Ok(Self {
            base,
            heartbeat: cli.heartbeat,
            lock_skew: cli.lock_skew,
            open,
            json: cli.json,
            config,
        })
    }

    /// The lock staleness policy: `lock_skew` from the config (default 5 min).
    pub fn stale_policy(&self) -> crate::lock::StalePolicy {
        match self.lock_skew {
            Some(skew) => crate::lock::StalePolicy { skew },
            None => self.config.stale_policy(),
        }
    }

    /// How runs are recorded in the ledger (`--heartbeat`, `heartbeat`, `keep_runs`).
    pub fn ledger(&self) -> crate::runs::LedgerOptions {
        self.config.ledger_options(self.heartbeat)
    }

    /// The base location, or an error saying how to give one.
    pub fn require_base(&self) -> Result<&str> {
        self.base.as_deref().context(
            "no catalog given: pass --base, set ECOPS_BASE, or put `base = \"…\"` in ecops.toml",
        )
    }
}

/// A headless job's progress bar (stderr) and the task that drives it.
pub(crate) type JobBar = (indicatif::ProgressBar, tokio::task::JoinHandle<()>);

/// Ends a headless job the one way: clears its progress bar, prints its
/// summary (JSON, or `text`) and returns its exit code.
pub(crate) fn finish_job<S, E>(
    settings: &Settings,
    bar: Option<JobBar>,
    result: std::result::Result<S, E>,
    text: impl Fn(&S),
) -> Result<ExitCode>
where
    S: serde::Serialize + crate::runs::JobSummary,
    anyhow::Error: From<E>,
{
    if let Some((bar, task)) = bar {
        task.abort();
        bar.finish_and_clear();
    }
    let summary = result?;
    if settings.json {
        print_json(&summary)?;
    } else {
        text(&summary);
    }
    Ok(ExitCode::from(summary.exit_code() as u8))
}

/// A stop switch that the first Ctrl-C (or SIGTERM) trips, after saying
/// `message` on stderr: jobs stop at their next commit boundary instead of
/// dying mid-write. The run ledger's operator requests trip the same switch.
pub(crate) fn stop_on_ctrl_c(message: &'static str) -> crate::runs::Stop {
    let stop = crate::runs::Stop::new();
    let tripped = stop.clone();
    tokio::spawn(async move {
        let by = wait_for_interrupt().await;
        say_err!("\necops: {message}");
        tripped.request(crate::runs::Request::Cancel, by, None);
    });
    stop
}

/// Waits for Ctrl-C or SIGTERM (a scheduler's stop, a spot reclaim) and says which.
async fn wait_for_interrupt() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => "SIGTERM",
    }
}

/// An error and its causes on one line, each cause once: our errors often
/// quote their source already, and `{:#}` would repeat it.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The console sends logs to its logs pane (tui::init_logging), not stderr.
    if cli.command.is_some() {
        init_tracing();
    }
    // Few blocking threads: parsing, Parquet encoding and local file I/O all
    // run there, and every extra thread keeps its own allocator heap (peak
    // memory grew with the thread count, not with the work).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(4 * cores)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ecops: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let message = crate::store::redact_secrets(&error_chain(&e));
            // Scripts read the last stdout line as JSON: a fatal error is one too.
            if json {
                println!("{}", serde_json::json!({ "error": message }));
            }
            say_err!("ecops: error: {}", message);
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let settings = Settings::resolve(&cli)?;
    match &cli.command {
        None => crate::tui::run(console_options(&cli, &settings)?).await,
        Some(Command::Init(args)) => catalog_cmds::init(&settings, args).await,
        Some(Command::Info) => catalog_cmds::info(&settings).await,
        Some(Command::DemoData(args)) => demo_cmds::demo_data(&settings, args).await,
        Some(Command::Ingest(args)) => ingest_cmds::ingest(&settings, args).await,
        Some(Command::Stats {
            top,
            small_file_mb,
            partitions,
            format,
        }) => {
            let opts = catalog_cmds::StatsArgs {
                top: *top,
                small_file_mb: *small_file_mb,
                partitions: *partitions,
                format: *format,
            };
            catalog_cmds::stats(&settings, &opts).await
        }
        Some(Command::Lock(cmd)) => lock_cmds::run(&settings, cmd).await,
        Some(Command::Compact(args)) => compact_cmds::compact(&settings, args).await,
        Some(Command::ExpireSnapshots(args)) => {
            compact_cmds::expire_snapshots(&settings, args).await
        }
        Some(Command::RemoveOrphans(args)) => compact_cmds::remove_orphans(&settings, args).await,
        Some(Command::Bench(BenchCommand::Compact(args))) => {
            bench_compact::compact(&settings, args).await
        }
        Some(Command::Bench(BenchCommand::Stats { files, dir, runs })) => {
            bench::stats(&settings, *files, dir.clone(), *runs).await
        }
        Some(Command::Bench(BenchCommand::Ingest(args))) => {
            bench_ingest::ingest(&settings, args).await
        }
        Some(Command::Query(args)) => query_cmds::run(&settings, args).await,
        Some(Command::Runs(args)) => runs_cmds::run(&settings, args).await,
        Some(Command::Backfill(cmd)) => backfill_cmds::run(&settings, cmd).await,
        Some(Command::Index(cmd)) => index_cmds::run(&settings, cmd).await,
        Some(Command::UpgradeCatalog) => index_cmds::upgrade_catalog(&settings).await,
        Some(Command::Export { output }) => query_cmds::export_table(&settings, output).await,
        Some(Command::Bench(BenchCommand::Query(args))) => bench_query::run(&settings, args).await,
        Some(Command::Bench(BenchCommand::Parts(args))) => bench_parts::run(&settings, args).await,
        Some(Command::Bench(BenchCommand::All(args))) => bench_all::all(&settings, args).await,
        Some(Command::Bench(BenchCommand::Report { results })) => bench_all::report(results),
        Some(Command::Bench(BenchCommand::Smoke(args))) => bench_all::smoke(&settings, args).await,
        Some(Command::Bench(BenchCommand::Index(args))) => bench_index::run(&settings, args).await,
        Some(Command::Bench(BenchCommand::Fanout(args))) => {
            bench_fanout::run(&settings, args).await
        }
        Some(Command::Bench(BenchCommand::Console(args))) => {
            bench_console::run(&settings, args).await
        }
        Some(Command::Bench(BenchCommand::Runs(args))) => bench_runs::run(&settings, args).await,
        Some(Command::Bench(BenchCommand::Backfill(args))) => {
            bench_backfill::run(&settings, args).await
        }
    }
}

/// The console's options from flags and config (flags win; the
/// low-bandwidth preset sets what is not given).
fn console_options(cli: &Cli, settings: &Settings) -> Result<crate::tui::ConsoleOptions> {
    let config = &settings.config;
    let remaps: Vec<crate::tui::keymap::Remap> = config
        .keys
        .iter()
        .map(|(action, keys)| crate::tui::keymap::Remap {
            action: action.clone(),
            keys: keys
                .get_ref()
                .names()
                .iter()
                .map(|k| k.to_string())
                .collect(),
            at: config
                .key_lines
                .get(action)
                .cloned()
                .unwrap_or_else(|| "config".into()),
        })
        .collect();
    let keys = crate::tui::keymap::Keymap::with_remaps(&remaps)?;
    let low_bandwidth = cli.low_bandwidth || config.low_bandwidth;
    let theme = cli
        .theme
        .or_else(|| {
            config
                .theme
                .as_deref()
                .and_then(|t| crate::tui::theme::ThemeName::parse(t).ok())
        })
        .or(low_bandwidth.then_some(crate::tui::theme::ThemeName::Ansi));
    let refresh = cli.refresh_ms.or(config.refresh_ms).map_or(
        if low_bandwidth {
            crate::tui::LOW_BANDWIDTH_REFRESH
        } else {
            crate::tui::DEFAULT_REFRESH
        },
        std::time::Duration::from_millis,
    );
    Ok(crate::tui::ConsoleOptions {
        base: settings.base.clone(),
        open: settings.open.clone(),
        refresh,
        small_file_bytes: config
            .small_file_mb
            .map_or(crate::catalog::stats::DEFAULT_SMALL_FILE_BYTES, |mb| {
                mb * 1024 * 1024
            }),
        lock_stale: settings.stale_policy(),
        theme: crate::tui::theme::ThemeName::resolve(theme),
        keys,
        low_bandwidth,
        mouse: cli.mouse,
        presence: !cli.no_presence,
    })
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ECOPS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints a serialisable value as one line of JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn each_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading the manifest: {0}")]
        struct Quoting(#[source] std::io::Error);
        let io = || std::io::Error::other("connection reset");
        let quoted = anyhow::Error::new(Quoting(io())).context("ingest failed");
        assert_eq!(
            error_chain(&quoted),
            "ingest failed: reading the manifest: connection reset"
        );
        let plain = anyhow::Error::new(io()).context("ingest failed");
        assert_eq!(error_chain(&plain), "ingest failed: connection reset");
    }
}
