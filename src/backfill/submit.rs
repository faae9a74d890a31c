//! Handing a planned run to an engine, and again for a retry: shared by
//! `ecops backfill submit|retry` and the console. The engine used is
//! recorded in the run, so a retry goes through the same one.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::BackfillError;
use super::layout::Layout;
use super::schedulers::{self, Engine, Launch, SchedulerError, Submission};
use super::status::{Status, read_plan};
use crate::catalog::EarthCatalog;
use crate::runs::{JobError, Ledger};

impl Engine {
    /// Parses an engine name (`local`, `slurm`, `k8s`, `batch`).
    pub fn parse(name: &str) -> Option<Engine> {
        match name {
            "local" => Some(Engine::Local),
            "slurm" => Some(Engine::Slurm),
            "k8s" | "kubernetes" => Some(Engine::K8s),
            "batch" | "aws-batch" => Some(Engine::Batch),
            _ => None,
        }
    }
}

impl Launch {
    /// A launch of every task of `run` with the usual defaults: 4 tasks at
    /// once, scripts and logs in `./ecops-backfill/<run>`, image
    /// `ecops:latest`, Batch queue `ecops`, manifests written not applied.
    pub fn new(engine: Engine, base: &str, run: &str, tasks: u32, ecops: PathBuf) -> Self {
        Launch {
            engine,
            base: base.to_string(),
            run: run.to_string(),
            tasks,
            max_parallel: 4,
            ecops,
            workdir: PathBuf::from("ecops-backfill").join(run),
            image: "ecops:latest".into(),
            queue: "ecops".into(),
            apply: false,
            map_tasks: None,
            reduce_tasks: None,
        }
    }
}

/// Hands the phases to the engine, off the async threads (local runs them
/// here and returns when they end; the others return once submitted).
pub async fn hand_over(launch: &Launch) -> Result<Submission, SchedulerError> {
    let launch = launch.clone();
    tokio::task::spawn_blocking(move || match launch.engine {
        Engine::Local => schedulers::run_local(&launch),
        Engine::Slurm => schedulers::submit_slurm(&launch),
        Engine::K8s => schedulers::submit_k8s(&launch),
        Engine::Batch => schedulers::submit_batch(&launch),
    })
    .await
    .unwrap_or_else(|e| {
        Err(SchedulerError::Io {
            what: "the engine hand-over task".into(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

/// Records the engine in the run, so a retry goes through the same one.
pub async fn remember(catalog: &EarthCatalog, launch: &Launch, submission: &Submission) {
    let ledger = Ledger::new(catalog.base());
    let Ok(mut record) = ledger.read_run(&launch.run).await else {
        return;
    };
    record.extra.insert(
        "scheduler".into(),
        json!({
            "engine": launch.engine,
            "workdir": launch.workdir,
            "image": launch.image,
            "queue": launch.queue,
            "max_parallel": launch.max_parallel,
            "jobs": submission.jobs,
        }),
    );
    if let Err(e) = ledger.write_run(&record).await {
        tracing::warn!("backfill {}: scheduler not recorded: {e}", launch.run);
    }
}

/// The launch that runs again exactly the map and reduce tasks owning a
/// chunk or partition not done, through the engine the run recorded
/// (local when none was). `ecops` is the binary the workers run.
pub async fn retry_launch(
    catalog: &EarthCatalog,
    status: &Status,
    ecops: PathBuf,
) -> Result<Launch, JobError> {
    let record = status
        .record
        .as_ref()
        .ok_or_else(|| JobError::failed(format!("backfill {}: no run record", status.run)))?;
    let layout = Layout::new(catalog.base(), &status.run);
    let plan = read_plan(&layout).await?;
    let scheduler = record
        .extra
        .get("scheduler")
        .cloned()
        .unwrap_or(Value::Null);
    let engine = scheduler["engine"]
        .as_str()
        .and_then(Engine::parse)
        .unwrap_or(Engine::Local);
    let base = catalog.base().location().to_uri();
    let mut launch = Launch::new(engine, &base, &status.run, plan.tasks, ecops);
    launch.max_parallel = scheduler["max_parallel"].as_u64().unwrap_or(4).max(1) as u32;
    if let Some(w) = scheduler["workdir"].as_str() {
        launch.workdir = PathBuf::from(w);
    }
    if let Some(i) = scheduler["image"].as_str() {
        launch.image = i.to_string();
    }
    if let Some(q) = scheduler["queue"].as_str() {
        launch.queue = q.to_string();
    }
    launch.apply = !matches!(engine, Engine::Local | Engine::Slurm);
    let failed = |e: BackfillError| JobError::failed(e);
    let mapped = layout.mapped().await.map_err(failed)?;
    let reduced = layout.reduced().await.map_err(failed)?;
    launch.map_tasks = Some(tasks_missing(plan.chunks, plan.tasks, |c| {
        mapped.contains(&c)
    }));
    launch.reduce_tasks = Some(tasks_missing(u64::from(plan.partitions), plan.tasks, |p| {
        reduced.contains(&(p as u32))
    }));
    Ok(launch)
}

/// Task indices (of `tasks`) owning at least one of `0..count` not done.
pub fn tasks_missing(count: u64, tasks: u32, done: impl Fn(u64) -> bool) -> Vec<u32> {
    let mut out: Vec<u32> = (0..count)
        .filter(|i| !done(*i))
        .map(|i| (i % u64::from(tasks.max(1))) as u32)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tasks_owning_undone_work_are_rerun_once_each() {
        let done = [0u64, 1, 2, 4, 6];
        assert_eq!(tasks_missing(8, 3, |c| done.contains(&c)), vec![0, 1, 2]);
        assert_eq!(tasks_missing(8, 4, |c| done.contains(&c)), vec![1, 3]);
        assert!(tasks_missing(3, 2, |_| true).is_empty());
        assert_eq!(Engine::parse("slurm"), Some(Engine::Slurm));
        assert_eq!(Engine::parse("nope"), None);
    }
}
