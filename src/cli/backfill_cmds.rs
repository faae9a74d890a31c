//! `ecops backfill …`: the staged backfill's phases as commands a scheduler
//! runs by index, `submit` to hand them to one, `status` and `retry`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::{Settings, print_json};
use crate::backfill::commit::CommitOptions;
use crate::backfill::map::WorkOptions;
use crate::backfill::reduce::ReduceOptions;
use crate::backfill::schedulers::{self, Engine, Launch, Submission};
use crate::backfill::submit;
use crate::backfill::{BackfillState, PlanOptions, Status};
use crate::catalog::EarthCatalog;
use crate::ingest::{IngestParams, LockSettings, Mode};
use crate::runs::JobSummary;

/// `ecops backfill …`.
#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Stream the inventory into chunk objects under a new backfill run (a rerun reuses the plan).
    Plan(PlanArgs),
    /// Map phase: fetch, validate, fan out and stage the chunks of one task.
    Work(TaskArgs),
    /// Reduce phase: merge each bucket's staged rows into final files, for the partitions of one task.
    Reduce(TaskArgs),
    /// Register the final files under the catalog lock (one snapshot), then delete the staging.
    Commit(CommitArgs),
    /// Plan, then hand map, reduce and commit to a scheduler (or run them here).
    Submit(SubmitArgs),
    /// Where a backfill stands: phase, chunks, partitions, counters, failures, stragglers.
    Status(RunArg),
    /// Run again exactly the chunks and partitions not done, through the same engine.
    Retry(RetryArgs),
}

/// What to plan.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Inventory: CSV (S3 Inventory or with a header), CSV.gz, Parquet or manifest.json; a path or s3:// URL.
    #[arg(long, required_unless_present = "urls")]
    pub inventory: Option<String>,
    #[command(flatten)]
    pub urls: super::ingest_cmds::UrlListArgs,
    /// Fetch `<URL>/<key>` instead of s3://<bucket>/<key>.
    #[arg(long)]
    pub items_root: Option<String>,
    /// Keep rows with last_modified_date ≥ this date or datetime (inventories only).
    #[arg(long, conflicts_with = "urls")]
    pub since: Option<String>,
    /// Only keys ending with this are items (default .stac.json, or every URL of a URL list).
    #[arg(long)]
    pub suffix: Option<String>,
    /// Items per chunk (the unit of map work).
    #[arg(long, default_value_t = crate::ingest::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: usize,
    /// Fetches in flight per map task.
    #[arg(long, default_value_t = crate::ingest::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// full = into an empty table (never dropped), delta = append to the table.
    #[arg(long, value_enum, default_value_t = BackfillMode::Delta)]
    pub mode: BackfillMode,
    /// Tasks the map and reduce phases run as.
    #[arg(long, default_value_t = crate::backfill::plan::DEFAULT_TASKS)]
    pub tasks: u32,
    /// Reduce partitions (default: as many as tasks).
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Final files roll over past this size.
    #[arg(long, default_value_t = crate::backfill::plan::DEFAULT_TARGET_FILE_SIZE_MB)]
    pub target_file_size_mb: usize,
    /// Drop, before fetching, items whose id the hash index already holds.
    #[arg(long)]
    pub skip_known: bool,
}

/// `--mode` of a backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackfillMode {
    Full,
    Delta,
}

/// A task of a phase.
#[derive(Debug, Clone, Args)]
pub struct TaskArgs {
    /// The backfill run (default: the catalog's newest unfinished one).
    #[arg(long)]
    pub run: Option<String>,
    /// This task's index (default: SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX, else 0).
    #[arg(long)]
    pub task: Option<u32>,
    /// How many tasks share the phase (default: as planned).
    #[arg(long)]
    pub tasks: Option<u32>,
    /// Reduce: wait for the map phase to finish instead of refusing.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    #[arg(long)]
    pub run: Option<String>,
    /// Wait for the reduce phase (and for the catalog lock) instead of refusing.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArg {
    #[arg(long)]
    pub run: Option<String>,
}

/// Where the phases run.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// local: processes here; slurm: sbatch arrays; k8s: Indexed Job manifests; batch: AWS Batch arrays.
    #[arg(long, value_enum, default_value_t = EngineArg::Local)]
    pub engine: EngineArg,
    /// At most this many array tasks at once.
    #[arg(long, default_value_t = 4)]
    pub max_parallel: u32,
    /// Scripts, manifests and task logs go here (default ./ecops-backfill/<run>).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Container image of ecops (k8s, batch).
    #[arg(long, default_value = "ecops:latest")]
    pub image: String,
    /// AWS Batch job queue.
    #[arg(long, default_value = "ecops")]
    pub queue: String,
    /// k8s/batch: apply the manifests with kubectl / submit with the aws CLI (else only write them).
    #[arg(long)]
    pub apply: bool,
    /// Follow the run until it is committed or failed.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Local,
    Slurm,
    K8s,
    Batch,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Local => Engine::Local,
            EngineArg::Slurm => Engine::Slurm,
            EngineArg::K8s => Engine::K8s,
            EngineArg::Batch => Engine::Batch,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    #[arg(long)]
    pub run: Option<String>,
    /// Follow the run until it is committed or failed.
    #[arg(long)]
    pub wait: bool,
}

pub async fn run(settings: &Settings, cmd: &BackfillCommand) -> Result<ExitCode> {
    let base = settings.require_base()?;
    let catalog = Arc::new(EarthCatalog::open(base, &settings.open).await?);
    match cmd {
        BackfillCommand::Plan(args) => plan(settings, &catalog, args).await,
        BackfillCommand::Work(args) => work(settings, &catalog, args).await,
        BackfillCommand::Reduce(args) => reduce(settings, &catalog, args).await,
        BackfillCommand::Commit(args) => commit(settings, catalog, args).await,
        BackfillCommand::Submit(args) => submit(settings, &catalog, args).await,
        BackfillCommand::Status(args) => status(settings, &catalog, args.run.as_deref()).await,
        BackfillCommand::Retry(args) => retry(settings, &catalog, args).await,
    }
}

impl PlanArgs {
    fn options(&self) -> PlanOptions {
        PlanOptions {
            params: IngestParams {
                inventory: self.inventory.clone(),
                urls: self.urls.urls.clone(),
                url_column: self.urls.url_column.clone(),
                items_root: self.items_root.clone(),
                since: self.since.clone(),
                suffix: self.urls.suffix(self.suffix.as_ref()),
                chunk_size: Some(self.chunk_size),
                concurrency: Some(self.concurrency),
                mode: Some(match self.mode {
                    BackfillMode::Full => Mode::Full,
                    BackfillMode::Delta => Mode::Delta,
                }),
                skip_known: self.skip_known,
                ..IngestParams::default()
            },
            tasks: self.tasks.max(1),
            partitions: self.partitions.unwrap_or(self.tasks).max(1),
            target_file_size: self.target_file_size_mb.max(1) * 1024 * 1024,
        }
    }
}

async fn plan(settings: &Settings, catalog: &EarthCatalog, args: &PlanArgs) -> Result<ExitCode> {
    let plan = crate::backfill::plan(catalog, &args.options(), Some(settings.ledger())).await?;
    if settings.json {
        print_json(&plan)?;
    } else {
        say!(
            "backfill run {}: {} chunks of {} entries, {} reduce partitions, {} tasks{}",
            plan.run,
            plan.chunks,
            plan.entries,
            plan.partitions,
            plan.tasks,
            if plan.reused {
                " (the plan existed: reused)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The task index: the flag, else the scheduler's environment, else 0.
fn task_index(flag: Option<u32>) -> u32 {
    flag.or_else(|| {
        [
            "SLURM_ARRAY_TASK_ID",
            "JOB_COMPLETION_INDEX",
            "AWS_BATCH_JOB_ARRAY_INDEX",
        ]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
    })
    .unwrap_or(0)
}

async fn work(settings: &Settings, catalog: &EarthCatalog, args: &TaskArgs) -> Result<ExitCode> {
    let stop = super::stop_on_ctrl_c(
        "stopping: the chunk in flight finishes within 8 s or is left for a retry",
    );
    let opts = WorkOptions {
        run: args.run.clone(),
        task: task_index(args.task),
        tasks: args.tasks,
        ledger: Some(settings.ledger()),
        grace: Duration::from_secs(8),
    };
    let report = crate::backfill::work(catalog, &opts, &stop).await?;
    finish(settings, &report, &report.exit_code())
}

async fn reduce(settings: &Settings, catalog: &EarthCatalog, args: &TaskArgs) -> Result<ExitCode> {
    let stop = super::stop_on_ctrl_c("stopping after the partition in flight");
    let opts = ReduceOptions {
        run: args.run.clone(),
        task: task_index(args.task),
        tasks: args.tasks,
        ledger: Some(settings.ledger()),
        wait: args.wait,
    };
    let report = crate::backfill::reduce(catalog, &opts, &stop).await?;
    finish(settings, &report, &report.exit_code())
}

async fn commit(
    settings: &Settings,
    catalog: Arc<EarthCatalog>,
    args: &CommitArgs,
) -> Result<ExitCode> {
    let stop = super::stop_on_ctrl_c("stopping before the commit");
    let opts = CommitOptions {
        run: args.run.clone(),
        lock: LockSettings {
            wait: args.wait,
            stale: settings.stale_policy(),
            ..LockSettings::default()
        },
        ledger: Some(settings.ledger()),
        wait: args.wait,
    };
    let report = crate::backfill::commit(catalog, &opts, &stop).await?;
    finish(settings, &report, &report.exit_code())
}

/// Prints a task's report with this process's peak RSS (what a scheduler's
/// memory request must cover).
fn finish<T: serde::Serialize>(settings: &Settings, report: &T, code: &i32) -> Result<ExitCode> {
    let mut value = serde_json::to_value(report)?;
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            "peak_rss_bytes".into(),
            serde_json::json!(crate::metrics::peak_rss_bytes()),
        );
    }
    if settings.json {
        print_json(&value)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(ExitCode::from(*code as u8))
}

fn launch(settings: &Settings, run: &str, tasks: u32, e: &EngineArgs) -> Result<Launch> {
    Ok(Launch {
        engine: e.engine.into(),
        base: settings.require_base()?.to_string(),
        run: run.to_string(),
        tasks,
        max_parallel: e.max_parallel.max(1),
        ecops: std::env::current_exe().context("finding the ecops binary")?,
        workdir: e
            .workdir
            .clone()
            .unwrap_or_else(|| PathBuf::from("ecops-backfill").join(run)),
        image: e.image.clone(),
        queue: e.queue.clone(),
        apply: e.apply,
        map_tasks: None,
        reduce_tasks: None,
    })
}

async fn submit(
    settings: &Settings,
    catalog: &EarthCatalog,
    args: &SubmitArgs,
) -> Result<ExitCode> {
    let plan =
        crate::backfill::plan(catalog, &args.plan.options(), Some(settings.ledger())).await?;
    let launch = launch(settings, &plan.run, plan.tasks, &args.engine)?;
    say_err!(
        "ecops: backfill run {}: {} chunks, {} tasks, engine {}",
        plan.run,
        plan.chunks,
        plan.tasks,
        launch.engine.label()
    );
    let submission = submit::hand_over(&launch).await?;
    submit::remember(catalog, &launch, &submission).await;
    follow(
        settings,
        catalog,
        &plan.run,
        &launch,
        &submission,
        args.engine.wait,
    )
    .await
}

/// Prints the outcome; with `wait`, follows the run until committed or failed.
async fn follow(
    settings: &Settings,
    catalog: &EarthCatalog,
    run: &str,
    launch: &Launch,
    submission: &Submission,
    wait: bool,
) -> Result<ExitCode> {
    let mut status = crate::backfill::status(catalog, Some(run)).await?;
    let mut last = String::new();
    while wait
        && !matches!(
            status.state,
            BackfillState::Committed | BackfillState::Failed
        )
    {
        let line = progress_line(&status);
        if line != last && !settings.json {
            say_err!("{line}");
            last = line;
        }
        if launch.engine == Engine::Local
            || (launch.engine == Engine::Slurm && !schedulers::slurm_alive(&submission.jobs)?)
        {
            // Nothing runs any more: what we see is final.
            status = crate::backfill::status(catalog, Some(run)).await?;
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        status = crate::backfill::status(catalog, Some(run)).await?;
    }
    print_status(settings, &status, Some(submission))?;
    Ok(match status.state {
        BackfillState::Committed => ExitCode::SUCCESS,
        _ if wait => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

fn progress_line(s: &Status) -> String {
    format!(
        "{} · chunks {}/{} ({} failed) · partitions {}/{} · {} items · {:.0} items/s",
        s.state.label(),
        s.chunks.done,
        s.chunks.total,
        s.chunks.failed,
        s.partitions_reduced,
        s.partitions,
        s.items,
        s.items_per_second
    )
}

fn print_status(settings: &Settings, s: &Status, submission: Option<&Submission>) -> Result<()> {
    let mut value: Value = serde_json::to_value(s)?;
    if let Some(sub) = submission {
        value["submission"] = serde_json::to_value(sub)?;
    }
    if settings.json {
        return print_json(&value);
    }
    say!("backfill run {} — {}", s.run, s.state.label());
    say!(
        "  chunks       {}/{} done, {} running, {} failed",
        s.chunks.done,
        s.chunks.total,
        s.chunks.running,
        s.chunks.failed
    );
    say!(
        "  partitions   {}/{} reduced",
        s.partitions_reduced,
        s.partitions
    );
    say!(
        "  items        {} ({} failed) · rows {} · final files {} · snapshots added {}",
        s.items,
        s.failed_items,
        s.rows,
        s.files,
        s.snapshots_added
    );
    for f in &s.failed_chunks {
        say!(
            "  failed       c{:06} on {}: {}",
            f.chunk,
            f.engine_task,
            f.reason
        );
    }
    for straggler in &s.stragglers {
        say!("  straggler    {straggler}");
    }
    if let Some(sub) = submission {
        for f in &sub.files {
            say!("  wrote        {}", f.display());
        }
        if !sub.jobs.is_empty() {
            say!("  jobs         {}", sub.jobs.join(", "));
        }
    }
    Ok(())
}

async fn status(
    settings: &Settings,
    catalog: &EarthCatalog,
    run: Option<&str>,
) -> Result<ExitCode> {
    let s = crate::backfill::status(catalog, run).await?;
    print_status(settings, &s, None)?;
    Ok(ExitCode::SUCCESS)
}

/// Re-runs the task indices that own a chunk or partition not done.
async fn retry(settings: &Settings, catalog: &EarthCatalog, args: &RetryArgs) -> Result<ExitCode> {
    let s = crate::backfill::status(catalog, args.run.as_deref()).await?;
    if s.state == BackfillState::Committed {
        print_status(settings, &s, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    let ecops = std::env::current_exe().context("finding the ecops binary")?;
    let mut launch = submit::retry_launch(catalog, &s, ecops).await?;
    // The workers open the catalog as the operator named it.
    launch.base = settings.require_base()?.to_string();
    say_err!(
        "ecops: retrying backfill {}: map tasks {:?}, reduce tasks {:?}, engine {}",
        s.run,
        launch.map_tasks.as_deref().unwrap_or_default(),
        launch.reduce_tasks.as_deref().unwrap_or_default(),
        launch.engine.label()
    );
    let submission = submit::hand_over(&launch).await?;
    follow(settings, catalog, &s.run, &launch, &submission, args.wait).await
}
