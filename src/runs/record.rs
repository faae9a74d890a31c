//! The ledger's JSON records and where they live:
//!
//! ```text
//! <base>/_ecops/runs/<run-id>/run.json            RunRecord: what, by whom, inputs, state, summary
//! <base>/_ecops/runs/<run-id>/workers/<w>.json    WorkerRecord: one per process, rewritten every heartbeat
//! <base>/_ecops/runs/<run-id>/control.json        ControlRecord: an operator's cancel/pause request
//! ```
//!
//! Run ids sort by creation time (`20261202T031500Z-ingest-3fa2c1`), so the
//! newest runs are the last names of a listing. Records carry a `version`;
//! fields are only ever added.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Folder of the ledger under the catalog base.
pub const RUNS_DIR: &str = "_ecops/runs";
/// Version of the record format written here.
pub const RECORD_VERSION: u32 = 1;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    Ingest,
    Compact,
    ExpireSnapshots,
    RemoveOrphans,
    Backfill,
}

impl RunKind {
    pub fn label(self) -> &'static str {
        match self {
            RunKind::Ingest => "ingest",
            RunKind::Compact => "compact",
            RunKind::ExpireSnapshots => "expire-snapshots",
            RunKind::RemoveOrphans => "remove-orphans",
            RunKind::Backfill => "backfill",
        }
    }
}

/// Where a run or worker stands. The first five are written by the run
/// itself; `stalled` and `abandoned` are what readers conclude from silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Paused,
    Done,
    Failed,
    Cancelled,
    /// No heartbeat for 3 intervals.
    Stalled,
    /// No live worker and no final state.
    Abandoned,
}

impl RunState {
    pub fn label(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Stalled => "stalled",
            RunState::Abandoned => "abandoned",
        }
    }

    /// True once the run has said its last word.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Done | RunState::Failed | RunState::Cancelled | RunState::Paused
        )
    }
}

/// Who did something: a process on a host, run by a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub host: String,
    pub pid: u32,
    pub user: String,
}

impl Actor {
    /// This process.
    pub fn me() -> Self {
        Self {
            host: crate::lock::record::local_hostname(),
            pid: std::process::id(),
            user: current_user(),
        }
    }

    /// "alice@host (pid 42)".
    pub fn describe(&self) -> String {
        format!("{}@{} (pid {})", self.user, self.host, self.pid)
    }
}

/// The user running this process: `$USER`, `$LOGNAME`, else the name of
/// this process's uid in /etc/passwd, else the uid.
pub fn current_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    {
        return u;
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        });
    let Some(uid) = uid else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
            })
        })
        .unwrap_or(format!("uid {uid}"))
}

/// Cumulative counters of a worker (a reader computes rates from two readings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub items_listed: u64,
    pub items_fetched: u64,
    pub items_failed: u64,
    pub rows: u64,
    pub files: u64,
    /// Bytes written (data files).
    pub bytes: u64,
    /// Bytes of item JSON fetched.
    pub bytes_fetched: u64,
    pub commits: u64,
}

impl std::ops::Add for Counters {
    type Output = Counters;
    fn add(self, o: Counters) -> Counters {
        Counters {
            items_listed: self.items_listed + o.items_listed,
            items_fetched: self.items_fetched + o.items_fetched,
            items_failed: self.items_failed + o.items_failed,
            rows: self.rows + o.rows,
            files: self.files + o.files,
            bytes: self.bytes + o.bytes,
            bytes_fetched: self.bytes_fetched + o.bytes_fetched,
            commits: self.commits + o.commits,
        }
    }
}

/// What a worker is doing right now (published with its counters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Activity {
    /// e.g. "fetching", "committing", "planning", "map", "reduce".
    pub phase: String,
    /// The chunk (or group, or bucket range) in progress.
    pub chunk: Option<String>,
    pub counters: Counters,
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    pub id: String,
    pub kind: RunKind,
    pub created: DateTime<Utc>,
    pub by: Actor,
    /// The run's options, redacted (what a rerun needs to resume it).
    #[serde(default)]
    pub inputs: Value,
    pub state: RunState,
    /// Seconds between worker heartbeats.
    pub heartbeat_seconds: f64,
    #[serde(default)]
    pub ended: Option<DateTime<Utc>>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub error: Option<String>,
    /// The run's final summary (its `--json` object).
    #[serde(default)]
    pub summary: Option<Value>,
    /// The operator request that stopped it, if one did.
    #[serde(default)]
    pub stopped_by: Option<ControlRecord>,
    /// The final counters, summed over workers.
    #[serde(default)]
    pub counters: Option<Counters>,
    /// Fields a newer version added, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `workers/<w>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub version: u32,
    pub run: String,
    /// The record's name under `workers/`.
    pub worker: String,
    pub host: String,
    pub pid: u32,
    /// `local:<pid>`, `slurm:<job>_<index>`, `k8s:<pod>`, `batch:<job>:<index>`.
    pub engine_task: String,
    pub state: RunState,
    pub started: DateTime<Utc>,
    /// When this record was written (the writer's clock).
    pub heartbeat: DateTime<Utc>,
    /// Increases with every write: a reader tells a new heartbeat from an old one without clocks.
    pub seq: u64,
    pub heartbeat_seconds: f64,
    #[serde(flatten)]
    pub activity: Activity,
    #[serde(default)]
    pub error: Option<String>,
}

/// What an operator asks of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Stop at the next commit; the rerun resumes from the checkpoint.
    Cancel,
    /// Stop at the next commit as paused (resume = rerun from the checkpoint).
    Pause,
}

impl Request {
    pub fn label(self) -> &'static str {
        match self {
            Request::Cancel => "cancel",
            Request::Pause => "pause",
        }
    }
}

/// `control.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRecord {
    pub request: Request,
    pub by: Actor,
    pub at: DateTime<Utc>,
}

impl ControlRecord {
    /// "cancel asked by alice@jump (pid 42) at 2026-12-02T03:15:00Z".
    pub fn describe(&self) -> String {
        format!(
            "{} asked by {} at {}",
            self.request.label(),
            self.by.describe(),
            self.at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// Key of a run's folder, relative to the base.
pub fn run_dir(id: &str) -> String {
    format!("{RUNS_DIR}/{id}")
}

/// A new run id: creation time, kind, random suffix (sorts by time).
pub fn new_run_id(kind: RunKind, now: DateTime<Utc>) -> String {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    format!("{}-{}-{suffix}", now.format("%Y%m%dT%H%M%SZ"), kind.label())
}

/// True for names we could have made: letters, digits, `-`, `_`, `.`, no leading dot.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A worker record name from an engine task identity and this process
/// (`<host>-<pid>` for a local process).
pub fn worker_name(engine_task: &str, actor: &Actor) -> String {
    let name = if engine_task.starts_with("local:") {
        format!("{}-{}", actor.host, actor.pid)
    } else {
        format!("{engine_task}-{}-{}", actor.host, actor.pid)
    };
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    safe.trim_matches('-').to_string()
}

/// The engine task this process runs as, from the scheduler's environment:
/// Slurm arrays, Kubernetes Indexed Jobs, AWS Batch arrays, else `local:<pid>`.
pub fn engine_task() -> String {
    engine_task_from(|k| std::env::var(k).ok(), std::process::id())
}

/// [`engine_task`] over a given environment.
pub fn engine_task_from(env: impl Fn(&str) -> Option<String>, pid: u32) -> String {
    if let (Some(job), Some(index)) = (env("SLURM_ARRAY_JOB_ID"), env("SLURM_ARRAY_TASK_ID")) {
        return format!("slurm:{job}_{index}");
    }
    if let Some(job) = env("SLURM_JOB_ID") {
        return format!("slurm:{job}");
    }
    if env("JOB_COMPLETION_INDEX").is_some()
        && let Some(pod) = env("HOSTNAME")
    {
        return format!("k8s:{pod}");
    }
    if let (Some(job), Some(index)) = (env("AWS_BATCH_JOB_ID"), env("AWS_BATCH_JOB_ARRAY_INDEX")) {
        // An array child's job id is "<parent>:<index>" already.
        let parent = job.split(':').next().unwrap_or(&job).to_string();
        return format!("batch:{parent}:{index}");
    }
    format!("local:{pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_tasks_come_from_each_schedulers_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            engine_task_from(
                env(&[("SLURM_ARRAY_JOB_ID", "71"), ("SLURM_ARRAY_TASK_ID", "3")]),
                9
            ),
            "slurm:71_3"
        );
        assert_eq!(
            engine_task_from(
                env(&[("JOB_COMPLETION_INDEX", "2"), ("HOSTNAME", "map-2-x7")]),
                9
            ),
            "k8s:map-2-x7"
        );
        assert_eq!(
            engine_task_from(
                env(&[
                    ("AWS_BATCH_JOB_ID", "abc-123:4"),
                    ("AWS_BATCH_JOB_ARRAY_INDEX", "4")
                ]),
                9
            ),
            "batch:abc-123:4"
        );
        assert_eq!(engine_task_from(env(&[]), 9), "local:9");
    }

    #[test]
    fn run_ids_sort_by_time_and_names_are_safe() {
        let a = new_run_id(RunKind::Ingest, "2026-12-02T03:15:00Z".parse().unwrap());
        let b = new_run_id(RunKind::Compact, "2026-12-02T03:15:01Z".parse().unwrap());
        assert!(
            a < b && a.starts_with("20261202T031500Z-ingest-"),
            "{a} {b}"
        );
        assert!(valid_name(&a));
        assert!(!valid_name("../x") && !valid_name(".hidden") && !valid_name(""));
        let actor = Actor {
            host: "node/1".into(),
            pid: 7,
            user: "u".into(),
        };
        let name = worker_name("slurm:71_3", &actor);
        assert_eq!(name, "slurm-71_3-node-1-7");
        assert_eq!(worker_name("local:7", &actor), "node-1-7");
        assert!(valid_name(&name));
        let kind: RunKind = serde_json::from_str("\"expire-snapshots\"").unwrap();
        assert_eq!(kind, RunKind::ExpireSnapshots);
    }
}
