//! `ecops ingest`: the headless twin of the console's ingest job — a
//! progress bar on stderr, a summary (or one JSON line) on stdout.
//!
//! Exit codes: 0 all items ingested, 3 some were dead-lettered, 130
//! interrupted (resume by running the same command), 1 fatal error.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::{Settings, human_bytes};
use crate::catalog::{CatalogError, EarthCatalog};
use crate::ingest::{self, IngestParams, IngestProgress, LockSettings, Mode, Phase};

/// Arguments of `ecops ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Inventory: CSV (S3 Inventory or with a header), CSV.gz, Parquet or manifest.json; a path or s3:// URL.
    #[arg(long, required_unless_present_any = ["retry_dead_letters", "urls"])]
    pub inventory: Option<String>,
    #[command(flatten)]
    pub urls: UrlListArgs,
    /// Re-run only the items in the catalog's dead letters.
    #[arg(long, conflicts_with_all = ["inventory", "urls"])]
    pub retry_dead_letters: bool,
    /// Fetch `<URL>/<key>` instead of s3://<bucket>/<key> (folder, file://, http(s)://, s3://).
    #[arg(long)]
    pub items_root: Option<String>,
    /// Keep rows with last_modified_date ≥ this date or datetime (inventories only).
    #[arg(long, conflicts_with = "urls")]
    pub since: Option<String>,
    /// Only keys ending with this are items ("" for every key; default .stac.json, or every URL of a URL list).
    #[arg(long)]
    pub suffix: Option<String>,
    /// Stop after N items.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Items per commit.
    #[arg(long, default_value_t = ingest::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: usize,
    /// Fetches in flight.
    #[arg(long, default_value_t = ingest::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Attempts per item on 5xx, 429 and timeouts (HTTP; S3 retries in the client).
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// full = new empty table first, delta = append, auto = delta (earthcatalog's modes).
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Name the job (default: derived from inventory, items root and filters; same name = resume).
    #[arg(long)]
    pub job: Option<String>,
    /// Lock TTL in minutes: the lock goes stale this long after the last heartbeat (renewed every TTL/3).
    #[arg(long, default_value_t = 30)]
    pub lock_ttl_minutes: u64,
    /// If another process holds the catalog lock, wait for it (checking every 2 s; Ctrl-C stops) instead of failing.
    #[arg(long)]
    pub wait: bool,
    /// Grid resolution when the catalog does not exist yet and is created.
    #[arg(long, default_value_t = 1)]
    pub h3_resolution: u8,
    /// Skip inventory rows whose item id (the key's file name without .stac.json) the hash index
    /// already holds; every item fetched must then be named after its id.
    #[arg(long)]
    pub skip_known: bool,
}

/// `--urls` and `--url-column`, shared by `ecops ingest` and `ecops backfill plan`.
#[derive(Debug, Clone, Default, Args)]
pub struct UrlListArgs {
    /// Item URL lists instead of an inventory: a text file (one URL or path a line) or CSV, TSV,
    /// Parquet or NDJSON files with a URL column; a path, s3:// URL or glob (s3://b/lists/2020_*.ndjson).
    /// Entries may mix s3://, http(s)://, file:// and paths; with --items-root they must lie below it.
    #[arg(long, conflicts_with = "inventory")]
    pub urls: Option<String>,
    /// The URL column of CSV, TSV, Parquet and NDJSON lists.
    #[arg(long, requires = "urls")]
    pub url_column: Option<String>,
}

impl UrlListArgs {
    /// The suffix a request uses: as given, else `.stac.json` for an
    /// inventory and every entry of a URL list (the builder's default).
    pub fn suffix(&self, given: Option<&String>) -> Option<String> {
        match (given, &self.urls) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(ingest::params::DEFAULT_SUFFIX.to_string()),
        }
    }
}

/// `--mode`, as clap reads it (the engine's [`Mode`] knows no clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// A new, empty table first (unless resuming this job); old data files stay on disk.
    Full,
    /// Append to the table.
    Delta,
    /// Delta when the table has rows, else full — the same thing for an empty table.
    Auto,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Full => Mode::Full,
            ModeArg::Delta => Mode::Delta,
            ModeArg::Auto => Mode::Auto,
        }
    }
}

impl IngestArgs {
    /// The request these flags make (defaults applied by the engine's builder).
    pub fn params(&self) -> IngestParams {
        IngestParams {
            inventory: self.inventory.clone(),
            urls: self.urls.urls.clone(),
            url_column: self.urls.url_column.clone(),
            retry_dead_letters: self.retry_dead_letters,
            items_root: self.items_root.clone(),
            since: self.since.clone(),
            suffix: self.urls.suffix(self.suffix.as_ref()),
            limit: self.limit,
            chunk_size: Some(self.chunk_size),
            concurrency: Some(self.concurrency),
            timeout_seconds: Some(self.timeout),
            attempts: Some(self.attempts),
            mode: Some(self.mode.into()),
            job: self.job.clone(),
            skip_known: self.skip_known,
        }
    }
}

pub async fn ingest(settings: &Settings, args: &IngestArgs) -> Result<ExitCode> {
    let base = settings.require_base()?;
    let params = args.params();
    // Check what is cheap to check before a missing catalog is created.
    params.build(&settings.open.s3)?;
    let listed = args.inventory.as_ref().or(args.urls.urls.as_ref());
    if let Some(listed) = listed
        && !listed.contains(['*', '?', '['])
        && let Ok(crate::store::Location::Local(path)) = crate::store::Location::parse(listed)
        && !path.exists()
    {
        anyhow::bail!("{}: no such file", path.display());
    }
    let catalog = match EarthCatalog::open(base, &settings.open).await {
        Ok(c) => c,
        Err(CatalogError::NoCatalog { .. } | CatalogError::NoTable { .. }) => {
            say_err!(
                "ecops: no catalog at {base}; creating one (H3 resolution {})",
                args.h3_resolution
            );
            EarthCatalog::init(base, args.h3_resolution, &settings.open)
                .await?
                .0
        }
        Err(e) => return Err(e.into()),
    };
    run_ingest(
        settings,
        Arc::new(catalog),
        &params,
        args.lock_ttl_minutes,
        args.wait,
    )
    .await
}

/// Runs an ingest headless with a progress bar (stderr) and its summary
/// (stdout); shared by `ecops ingest` and `ecops runs resume`.
pub async fn run_ingest(
    settings: &Settings,
    catalog: Arc<EarthCatalog>,
    params: &IngestParams,
    lock_ttl_minutes: u64,
    wait: bool,
) -> Result<ExitCode> {
    let (progress_tx, progress_rx) = watch::channel(IngestProgress::default());
    let stop = super::stop_on_ctrl_c(
        "interrupted — committing what is complete; run the same command to resume",
    );
    let bar = (!settings.json).then(|| progress_bar(progress_rx));
    let lock = LockSettings {
        ttl: Duration::from_secs(lock_ttl_minutes.max(1) * 60),
        wait,
        stale: settings.stale_policy(),
        ..Default::default()
    };
    let result = ingest::run_locked(
        catalog,
        params,
        &lock,
        Some(settings.ledger()),
        progress_tx,
        &stop,
    )
    .await;
    super::finish_job(settings, bar, result, print_summary)
}

fn progress_bar(mut rx: watch::Receiver<IngestProgress>) -> super::JobBar {
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let shown = bar.clone();
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            if let Some(f) = p.inventory_fraction {
                shown.set_position((f * 1000.0) as u64);
            }
            shown.set_message(format!(
                "{} items · {} rows · {} failed · {} commits · {:.0} items/s{}",
                p.items,
                p.rows,
                p.failed,
                p.commits,
                p.items_per_second,
                p.eta_seconds
                    .map(|s| format!(" · ETA {s:.0}s"))
                    .unwrap_or_default()
            ));
        }
    });
    (bar, task)
}

fn print_summary(s: &IngestProgress) {
    if s.already_complete {
        say!(
            "job {} already completed (snapshot {}); nothing to do. Use --job NAME to ingest the same inventory again.",
            s.job_id,
            s.snapshot_id.unwrap_or_default()
        );
        return;
    }
    let verb = match s.phase {
        Phase::Done => "done",
        Phase::Cancelled => "interrupted",
        Phase::Failed => "FAILED",
        _ => "stopped",
    };
    say!("ingest {} — job {}", verb, s.job_id);
    if s.resumed_from > 0 {
        say!("  resumed from     inventory position {}", s.resumed_from);
    }
    say!("  items listed     {}", s.items);
    say!(
        "  rows written     {} ({} without geometry in __none__)",
        s.rows,
        s.no_geometry
    );
    say!(
        "  files            {} ({})",
        s.files,
        human_bytes(s.bytes_out)
    );
    say!("  commits          {} (position {})", s.commits, s.position);
    say!(
        "  fetched          {} ({})",
        s.fetched,
        human_bytes(s.bytes_in)
    );
    say!("  failed           {}", s.failed);
    if s.skipped_known > 0 {
        say!(
            "  skipped known    {} (ids already in the hash index)",
            s.skipped_known
        );
    }
    if s.outside_regions > 0 {
        say!(
            "  outside regions  {} items (partition __outside__)",
            s.outside_regions
        );
    }
    if s.skipped_suffix + s.skipped_since > 0 {
        say!(
            "  skipped          {} by suffix, {} by --since",
            s.skipped_suffix,
            s.skipped_since
        );
    }
    if s.since_unknown > 0 {
        say!(
            "  no date          {} rows kept by --since without a last_modified_date",
            s.since_unknown
        );
    }
    say!(
        "  time             {:.1} s ({:.0} items/s)",
        s.seconds,
        if s.seconds > 0.0 {
            s.items as f64 / s.seconds
        } else {
            0.0
        }
    );
    if s.failed > 0
        && let Some(d) = &s.dead_letters
    {
        say!("  dead letters     {d} (retry: ecops ingest --retry-dead-letters)");
    }
    if let Some(e) = &s.error {
        say!("  error            {e}");
    }
}
