//! `ecops compact`, `ecops expire-snapshots`, `ecops remove-orphans`: the
//! headless twins of the console's maintenance jobs — a progress bar on
//! stderr, a summary (or one JSON line, the last on stdout) on stdout.
//!
//! Exit codes: 0 done, 130 interrupted (committed groups stay; rerun to
//! finish), 1 failed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::sync::watch;

use super::{Settings, human_bytes, print_json};
use crate::catalog::EarthCatalog;
use crate::compact::maintenance::{
    self, ExpireOptions, OrphanOptions, orphans::DEFAULT_ORPHAN_AGE,
};
use crate::compact::{self, CompactOptions, CompactPhase, CompactProgress};
use crate::ingest::LockSettings;

/// Arguments of `ecops compact`.
#[derive(Debug, Clone, Args)]
pub struct CompactArgs {
    /// Compact (cell, year) buckets with at least this many files.
    #[arg(long, default_value_t = 2)]
    pub threshold: usize,
    /// Also compact buckets with at least two files smaller than this many MiB.
    #[arg(long)]
    pub small_file_mb: Option<u64>,
    /// Roll output files past this many MiB.
    #[arg(long, default_value_t = 128)]
    pub target_file_size_mb: u64,
    /// Commit a replace snapshot after this many input files (a crash loses at most one group).
    #[arg(long, default_value_t = compact::DEFAULT_GROUP_FILES)]
    pub group_files: usize,
    /// At most this many commits per run: larger groups when the input
    /// files would make more (0 = no cap; each commit rewrites the manifests
    /// listing its group's files).
    #[arg(long, default_value_t = compact::DEFAULT_MAX_COMMITS)]
    pub max_commits: usize,
    /// Buckets rewritten at once (0 = two per core).
    #[arg(long, default_value_t = 0)]
    pub concurrency: usize,
    /// Print the plan; change nothing (no lock is taken).
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: list every selected bucket (text output lists the 20 largest).
    #[arg(long)]
    pub all: bool,
    /// Lock TTL in minutes (renewed every TTL/3).
    #[arg(long, default_value_t = 30)]
    pub lock_ttl_minutes: u64,
    /// If another process holds the catalog lock, wait for it (checking every 2 s; Ctrl-C stops) instead of failing.
    #[arg(long)]
    pub wait: bool,
}

/// Arguments of `ecops expire-snapshots`.
#[derive(Debug, Clone, Args)]
pub struct ExpireArgs {
    /// Snapshots older than this may expire: 45s, 30m, 2h, 7d.
    #[arg(long, value_parser = crate::fmt::parse_duration)]
    pub older_than: Duration,
    /// Always keep the newest N snapshots (at least 1).
    #[arg(long, default_value_t = 1)]
    pub retain_last: usize,
    /// Report what would expire; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Lock TTL in minutes (renewed every TTL/3).
    #[arg(long, default_value_t = 30)]
    pub lock_ttl_minutes: u64,
}

/// Arguments of `ecops remove-orphans`.
#[derive(Debug, Clone, Args)]
pub struct OrphanArgs {
    /// Only files older than this (default 3d) are removed: keeps files of writes in flight.
    #[arg(long, value_parser = crate::fmt::parse_duration)]
    pub older_than: Option<Duration>,
    /// List the orphans; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Lock TTL in minutes (renewed every TTL/3).
    #[arg(long, default_value_t = 30)]
    pub lock_ttl_minutes: u64,
}

fn lock_settings(settings: &Settings, minutes: u64) -> LockSettings {
    LockSettings {
        ttl: Duration::from_secs(minutes.max(1) * 60),
        stale: settings.stale_policy(),
        ..Default::default()
    }
}

/// Opens the catalog. Dry runs use the caller's mode too: they never reach
/// a write path, and a read-write SQLite connection removes its WAL side
/// files on close, so a dry run leaves the catalog folder byte-identical.
async fn open(settings: &Settings) -> Result<EarthCatalog> {
    let base = settings.require_base()?;
    Ok(EarthCatalog::open(base, &settings.open).await?)
}

pub async fn compact(settings: &Settings, args: &CompactArgs) -> Result<ExitCode> {
    let catalog = open(settings).await?;
    if !args.dry_run {
        catalog.ensure_writable()?;
    }
    let defaults = CompactOptions::default();
    let opts = CompactOptions {
        threshold: args.threshold,
        small_file_bytes: args.small_file_mb.map(|mb| mb * 1024 * 1024),
        target_file_size: usize::try_from(args.target_file_size_mb.max(1) * 1024 * 1024)
            .unwrap_or(usize::MAX),
        group_files: args.group_files.max(1),
        max_commits: args.max_commits,
        concurrency: if args.concurrency == 0 {
            defaults.concurrency
        } else {
            args.concurrency
        },
        dry_run: args.dry_run,
        ..defaults
    };
    let catalog = Arc::new(catalog);
    if args.dry_run {
        let state = compact::TableState::load(&catalog).await?;
        let plan = compact::plan(&state, &opts);
        let mut summary = plan.summary();
        summary.peak_rss_bytes = crate::metrics::peak_rss_bytes();
        if settings.json {
            let mut value = serde_json::to_value(&summary)?;
            value["plan"] = serde_json::to_value(&plan.buckets)?;
            print_json(&value)?;
        } else {
            print_plan(&plan, &summary, args.all);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let lock = LockSettings {
        wait: args.wait,
        ..lock_settings(settings, args.lock_ttl_minutes)
    };
    run_compaction(settings, catalog, opts, &lock).await
}

/// `ecops runs resume` of a compaction: the same threshold, default options.
pub async fn compact_again(
    settings: &Settings,
    catalog: Arc<EarthCatalog>,
    threshold: usize,
    wait: bool,
) -> Result<ExitCode> {
    let opts = CompactOptions {
        threshold: threshold.max(2),
        ..CompactOptions::default()
    };
    let lock = LockSettings {
        wait,
        ..lock_settings(settings, 30)
    };
    run_compaction(settings, catalog, opts, &lock).await
}

/// Runs a compaction headless: a progress bar on stderr, the summary on stdout.
async fn run_compaction(
    settings: &Settings,
    catalog: Arc<EarthCatalog>,
    opts: CompactOptions,
    lock: &LockSettings,
) -> Result<ExitCode> {
    let (progress_tx, progress_rx) = watch::channel(CompactProgress::default());
    let stop = super::stop_on_ctrl_c(
        "interrupted — committing the buckets already rewritten; run the same command to finish",
    );
    let bar = (!settings.json).then(|| progress_bar(progress_rx));
    let result = compact::run_locked(
        catalog,
        opts,
        lock,
        Some(settings.ledger()),
        progress_tx,
        &stop,
    )
    .await;
    super::finish_job(settings, bar, result, print_summary)
}

fn progress_bar(mut rx: watch::Receiver<CompactProgress>) -> super::JobBar {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} buckets {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let shown = bar.clone();
    let task = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            shown.set_length(p.buckets_planned.max(1));
            shown.set_position(p.buckets_compacted);
            shown.set_message(format!(
                "· {} → {} files · {} → {} · {} duplicates · {} commits",
                p.files_in,
                p.files_out,
                human_bytes(p.bytes_in),
                human_bytes(p.bytes_out),
                p.duplicates_removed,
                p.commits
            ));
        }
    });
    (bar, task)
}

fn print_plan(plan: &compact::Plan, s: &CompactProgress, all: bool) {
    say!(
        "compaction plan (dry run) — snapshot {}",
        plan.snapshot_id
            .map_or_else(|| "none".to_string(), |id| id.to_string())
    );
    say!("  buckets scanned  {}", s.buckets_scanned);
    say!(
        "  to compact       {} buckets, {} files ({})",
        plan.buckets.len(),
        plan.files_in(),
        human_bytes(plan.buckets.iter().map(|b| b.bytes).sum())
    );
    say!("  table files      {} → {}", s.files_before, s.files_after);
    let mut shown: Vec<&compact::BucketPlan> = plan.buckets.iter().collect();
    shown.sort_by(|a, b| b.files.cmp(&a.files).then(b.bytes.cmp(&a.bytes)));
    if !all {
        shown.truncate(20);
    }
    if !shown.is_empty() {
        say!(
            "  {:<18} {:>6} {:>6} {:>8} {:>10} {:>7}",
            "cell",
            "year",
            "files",
            "rows",
            "bytes",
            "result"
        );
    }
    for b in &shown {
        say!(
            "  {:<18} {:>6} {:>6} {:>8} {:>10} {:>7}",
            b.cell,
            b.year.map_or_else(|| "null".into(), |y| y.to_string()),
            b.files,
            b.rows,
            human_bytes(b.bytes),
            format!(
                "{} file{}",
                b.expected_files,
                if b.expected_files == 1 { "" } else { "s" }
            )
        );
    }
    if shown.len() < plan.buckets.len() {
        say!(
            "  … {} more (--all lists them)",
            plan.buckets.len() - shown.len()
        );
    }
}

fn print_summary(s: &CompactProgress) {
    let verb = match s.phase {
        CompactPhase::Done => "done",
        CompactPhase::Cancelled => "interrupted",
        CompactPhase::Failed => "FAILED",
        _ => "stopped",
    };
    say!("compaction {verb}");
    say!(
        "  buckets          {} compacted of {} planned ({} scanned)",
        s.buckets_compacted,
        s.buckets_planned,
        s.buckets_scanned
    );
    say!("  table files      {} → {}", s.files_before, s.files_after);
    say!("  table rows       {} → {}", s.rows_before, s.rows_after);
    say!(
        "  rewritten        {} files ({}) → {} files ({})",
        s.files_in,
        human_bytes(s.bytes_in),
        s.files_out,
        human_bytes(s.bytes_out)
    );
    say!("  duplicates       {} rows removed", s.duplicates_removed);
    say!(
        "  commits          {} replace snapshot(s){}",
        s.commits,
        if s.replans > 0 {
            format!(", {} re-planned after concurrent commits", s.replans)
        } else {
            String::new()
        }
    );
    say!("  time             {:.1} s", s.seconds);
    if let Some(e) = &s.error {
        say!("  error            {e}");
    }
}

pub async fn expire_snapshots(settings: &Settings, args: &ExpireArgs) -> Result<ExitCode> {
    let catalog = open(settings).await?;
    let opts = ExpireOptions {
        older_than: args.older_than,
        retain_last: args.retain_last.max(1),
        dry_run: args.dry_run,
    };
    let lock = lock_settings(settings, args.lock_ttl_minutes);
    let report =
        maintenance::expire_snapshots(&catalog, &opts, &lock, Some(settings.ledger())).await?;
    if settings.json {
        print_json(&report)?;
    } else {
        let would = if report.dry_run {
            "would expire"
        } else {
            "expired"
        };
        say!(
            "{would} {} of {} snapshots ({} kept)",
            report.snapshots_expired,
            report.snapshots_before,
            report.snapshots_after
        );
        say!(
            "  files {}: {} manifest lists, {} manifests, {} data files; {} ({} of data)",
            if report.dry_run {
                "to delete"
            } else {
                "deleted"
            },
            report.manifest_lists_deleted,
            report.manifests_deleted,
            report.data_files_deleted,
            crate::fmt::human_bytes(report.bytes),
            crate::fmt::human_bytes(report.data_bytes)
        );
        if report.dry_run {
            for path in &report.paths {
                say!("  {}", crate::fmt::terminal_safe(path));
            }
        }
        for e in &report.delete_errors {
            say!("  not deleted: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove_orphans(settings: &Settings, args: &OrphanArgs) -> Result<ExitCode> {
    let catalog = open(settings).await?;
    let older_than = args.older_than.unwrap_or(DEFAULT_ORPHAN_AGE);
    if older_than < Duration::from_secs(3600) && !args.dry_run {
        say_err!(
            "ecops: warning: --older-than below 1h may delete files of a write still in flight by a process that ignores the catalog lock"
        );
    }
    let opts = OrphanOptions {
        older_than,
        dry_run: args.dry_run,
    };
    let lock = lock_settings(settings, args.lock_ttl_minutes);
    let report =
        maintenance::remove_orphans(&catalog, &opts, &lock, Some(settings.ledger())).await?;
    if settings.json {
        print_json(&json!({
            "dry_run": report.dry_run,
            "listed": report.listed,
            "referenced": report.referenced,
            "orphans": report.orphans,
            "orphan_bytes": report.orphan_bytes,
            "too_new": report.too_new,
            "deleted": report.deleted,
            "paths": report.paths,
            "delete_errors": report.delete_errors,
        }))?;
    } else {
        if report.dry_run {
            for p in &report.paths {
                say!("{p}");
            }
        }
        say!(
            "{} orphan file(s) ({}) older than {:?}{}; {} newer kept",
            report.orphans,
            human_bytes(report.orphan_bytes),
            older_than,
            if report.dry_run {
                " (dry run: nothing deleted)".to_string()
            } else {
                format!(", {} deleted", report.deleted)
            },
            report.too_new
        );
        for e in &report.delete_errors {
            say!("  not deleted: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
