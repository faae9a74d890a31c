//! `ecops runs`: every run on the catalog, wherever it runs — list, show,
//! cancel, pause, resume, prune. The headless twin of the console's Jobs view.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Settings, human_bytes, print_json};
use crate::catalog::EarthCatalog;
use crate::fmt::{format_age, rate, thousands};
use crate::runs::view::Snapshot;
use crate::runs::{Ledger, Request, RunKind, RunState, RunView, RunsReader};
use crate::store::{Location, Store, open_location};

/// `ecops runs …`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// List every run in the ledger, not just running and recently ended ones.
    #[arg(long)]
    pub all: bool,
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
}

/// What to do with runs.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: workers, counters, dead letters, summary.
    Show { run: String },
    /// Ask a run to stop at its next commit (it exits 130; rerun to resume).
    Cancel { run: String },
    /// Ask a run to stop at its next commit as paused (`runs resume` continues it).
    Pause { run: String },
    /// Run a paused, cancelled, failed or abandoned ingest or compaction again
    /// from its checkpoint, here, in the foreground.
    Resume {
        run: String,
        /// Wait for the catalog lock if another process holds it.
        #[arg(long)]
        wait: bool,
    },
    /// Remove the oldest finished runs beyond --keep.
    Prune {
        /// Runs to keep (default: keep_runs in the config, else 50).
        #[arg(long)]
        keep: Option<usize>,
    },
}

/// How long an ended run stays in the default listing.
const RECENT_HOURS: i64 = 24;

fn store(settings: &Settings) -> Result<Store> {
    let location = Location::parse(settings.require_base()?)?;
    Ok(open_location(&location, &settings.open.s3)?)
}

pub async fn run(settings: &Settings, args: &RunsArgs) -> Result<ExitCode> {
    match &args.command {
        None => list(settings, args.all).await,
        Some(RunsCommand::Show { run }) => show(settings, run).await,
        Some(RunsCommand::Cancel { run }) => request(settings, run, Request::Cancel).await,
        Some(RunsCommand::Pause { run }) => request(settings, run, Request::Pause).await,
        Some(RunsCommand::Resume { run, wait }) => resume(settings, run, *wait).await,
        Some(RunsCommand::Prune { keep }) => prune(settings, *keep).await,
    }
}

async fn snapshot(settings: &Settings) -> Result<Snapshot> {
    Ok(RunsReader::new(&store(settings)?).refresh().await?)
}

/// Running runs and runs that ended within the last day (all with `all`).
fn shown(snapshot: &Snapshot, all: bool) -> Vec<&RunView> {
    let cutoff = chrono::Utc::now() - chrono::Duration::hours(RECENT_HOURS);
    snapshot
        .runs
        .iter()
        .filter(|r| all || !r.state.is_final() || r.ended.is_none_or(|e| e > cutoff))
        .collect()
}

async fn list(settings: &Settings, all: bool) -> Result<ExitCode> {
    let snapshot = snapshot(settings).await?;
    let runs = shown(&snapshot, all);
    if settings.json {
        print_json(&json!({ "runs": runs, "unreadable": snapshot.unreadable }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        say!(
            "no runs{}",
            if all {
                ""
            } else {
                " running or ended in the last day (--all lists every run)"
            }
        );
    }
    say!(
        "{:<36} {:<16} {:<9} {:>10} {:>10} {:>7} {:>9} {:>7}  WHERE",
        "RUN",
        "KIND",
        "STATE",
        "ITEMS",
        "ROWS",
        "FAILED",
        "ITEMS/S",
        "BEAT"
    );
    for r in &runs {
        say!(
            "{:<36} {:<16} {:<9} {:>10} {:>10} {:>7} {:>9} {:>7}  {}",
            r.id,
            r.kind.label(),
            r.state.label(),
            thousands(r.items),
            thousands(r.rows),
            thousands(r.failed),
            rate(r.items_per_second),
            r.heartbeat_age_seconds.map_or("-".into(), format_age),
            where_it_runs(r)
        );
    }
    for u in &snapshot.unreadable {
        say!("unreadable: {} ({})", u.key, u.reason);
    }
    Ok(ExitCode::SUCCESS)
}

/// "host pid N" or the engine tasks of its workers.
fn where_it_runs(r: &RunView) -> String {
    let tasks: Vec<&str> = r
        .workers
        .iter()
        .filter(|w| !w.engine_task.starts_with("local:"))
        .map(|w| w.engine_task.as_str())
        .collect();
    match tasks.as_slice() {
        [] => format!("{} pid {}", r.host, r.pid),
        [one] => (*one).to_string(),
        many => format!("{} tasks ({} …)", many.len(), many[0]),
    }
}

async fn show(settings: &Settings, id: &str) -> Result<ExitCode> {
    let snapshot = snapshot(settings).await?;
    let Some(run) = snapshot.runs.iter().find(|r| r.id == id) else {
        // The ledger's error lists the recent ids.
        Ledger::new(&store(settings)?).read_run(id).await?;
        bail!("run {id} has no readable record");
    };
    if settings.json {
        let mut value = serde_json::to_value(run)?;
        value["inputs"] = run.record.inputs.clone();
        value["summary"] = run.record.summary.clone().unwrap_or_default();
        value["dead_letters"] = json!(run.failed);
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_run(run);
    Ok(ExitCode::SUCCESS)
}

fn print_run(r: &RunView) {
    say!("run {} — {} {}", r.id, r.kind.label(), r.state.label());
    say!(
        "  started      {} by {}@{} (pid {})",
        r.started.to_rfc3339(),
        r.user,
        r.host,
        r.pid
    );
    if let Some(ended) = r.ended {
        say!(
            "  ended        {} (exit {})",
            ended.to_rfc3339(),
            r.exit_code.unwrap_or_default()
        );
    }
    say!(
        "  counters     {} items, {} rows, {} files ({}), {} commits, {} dead letters",
        thousands(r.items),
        thousands(r.rows),
        thousands(r.files),
        human_bytes(r.bytes),
        r.commits,
        thousands(r.failed)
    );
    say!(
        "  rate         {} items/s, {} rows/s",
        rate(r.items_per_second),
        rate(r.rows_per_second)
    );
    if let Some(stop) = &r.stop_request {
        say!("  stop         {stop}");
    }
    if let Some(e) = &r.error {
        say!("  error        {e}");
    }
    say!("  inputs       {}", r.record.inputs);
    for w in &r.workers {
        say!(
            "  worker {:<28} {:<10} {:<14} beat {:>7} ago · {} items · {} items/s{}",
            w.engine_task,
            w.state.label(),
            w.phase,
            format_age(w.heartbeat_age_seconds),
            thousands(w.counters.items_listed),
            rate(w.items_per_second),
            w.chunk
                .as_deref()
                .map(|c| format!(" · {c}"))
                .unwrap_or_default()
        );
    }
}

async fn request(settings: &Settings, id: &str, request: Request) -> Result<ExitCode> {
    refuse_read_only(settings, request.label())?;
    let store = store(settings)?;
    let snapshot = RunsReader::new(&store).refresh().await?;
    let ledger = Ledger::new(&store);
    let Some(run) = snapshot.runs.iter().find(|r| r.id == id) else {
        ledger.read_run(id).await?;
        bail!("run {id} has no readable record");
    };
    if run.state.is_final() || run.state == RunState::Abandoned {
        bail!(
            "run {id} is {}: there is nothing to {} (`ecops runs resume {id}` runs it again)",
            run.state.label(),
            request.label()
        );
    }
    let control = ledger.request(id, request).await?;
    if settings.json {
        print_json(&json!({"ok": true, "run": id, "request": request.label(), "by": control.by}))?;
    } else {
        say!(
            "asked run {id} to {}: it stops at its next commit (exit 130)",
            request.label()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs an ended ingest or compaction again with its recorded inputs.
async fn resume(settings: &Settings, id: &str, wait: bool) -> Result<ExitCode> {
    refuse_read_only(settings, "resume")?;
    let store = store(settings)?;
    let snapshot = RunsReader::new(&store).refresh().await?;
    let Some(run) = snapshot.runs.iter().find(|r| r.id == id) else {
        Ledger::new(&store).read_run(id).await?;
        bail!("run {id} has no readable record");
    };
    if matches!(run.state, RunState::Running | RunState::Stalled) {
        bail!(
            "run {id} is {} (heartbeat {} ago): it cannot be resumed while it may still be alive",
            run.state.label(),
            run.heartbeat_age_seconds.map_or("-".into(), format_age)
        );
    }
    let catalog = Arc::new(EarthCatalog::open(settings.require_base()?, &settings.open).await?);
    match run.kind {
        RunKind::Ingest => {
            let mut params: crate::ingest::IngestParams =
                serde_json::from_value(run.record.inputs.clone())?;
            // The same job, whatever its inventory is called now.
            if params.job.is_none() {
                params.job = run.record.inputs["job_id"].as_str().map(str::to_string);
            }
            say_err!(
                "ecops: resuming ingest {} (run {id}) from its checkpoint",
                params.label()
            );
            super::ingest_cmds::run_ingest(settings, catalog, &params, 30, wait).await
        }
        RunKind::Compact => {
            let threshold = run.record.inputs["threshold"].as_u64().unwrap_or(2) as usize;
            super::compact_cmds::compact_again(settings, catalog, threshold, wait).await
        }
        other => bail!(
            "a {} run is not resumed: run the command again{}",
            other.label(),
            if other == RunKind::Backfill {
                " (`ecops backfill retry`)"
            } else {
                ""
            }
        ),
    }
}

async fn prune(settings: &Settings, keep: Option<usize>) -> Result<ExitCode> {
    refuse_read_only(settings, "prune")?;
    let keep = keep.unwrap_or(settings.ledger().keep).max(1);
    let removed = Ledger::new(&store(settings)?).prune(keep).await?;
    if settings.json {
        print_json(&json!({"removed": removed, "keep": keep}))?;
    } else {
        say!("removed {} runs (keeping the newest {keep})", removed.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn refuse_read_only(settings: &Settings, what: &str) -> Result<()> {
    if settings.open.read_only {
        bail!("runs {what} refused: read-only (it would write to the run ledger)");
    }
    Ok(())
}
