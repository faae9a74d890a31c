//! Handing the phases to a scheduler the operator already has. We write no
//! scheduler: each engine runs `ecops backfill work` and `reduce` as array
//! tasks by index, then one `ecops backfill commit`.
//!
//! - **local**: N worker processes on this machine, then N reducers, then
//!   the commit (in the foreground).
//! - **slurm**: `sbatch --array=0-(N-1)%M` for map and reduce, chained with
//!   `--dependency=afterok`, and a final commit job.
//! - **k8s**: Indexed Job manifests (map, reduce; `completionMode: Indexed`)
//!   and a commit Job, written to a folder and applied with `kubectl` when
//!   asked. Kubernetes has no dependencies between Jobs, so reduce and commit
//!   start with `--wait` and poll the store until their phase may run.
//! - **batch**: an AWS Batch job definition and submit-job requests (array
//!   jobs with `arrayProperties.size`, chained with `dependsOn`), submitted
//!   with the `aws` CLI when asked.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use serde_json::{Value, json};

/// Where the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Local,
    Slurm,
    K8s,
    Batch,
}

impl Engine {
    pub fn label(self) -> &'static str {
        match self {
            Engine::Local => "local",
            Engine::Slurm => "slurm",
            Engine::K8s => "k8s",
            Engine::Batch => "batch",
        }
    }
}

/// What the engines need to start the phases.
#[derive(Debug, Clone)]
pub struct Launch {
    pub engine: Engine,
    /// The catalog base the workers open.
    pub base: String,
    pub run: String,
    pub tasks: u32,
    /// At most this many array tasks at once.
    pub max_parallel: u32,
    /// The `ecops` binary (local and Slurm run this very file).
    pub ecops: PathBuf,
    /// Scripts, manifests and job logs go here.
    pub workdir: PathBuf,
    /// Container image (k8s, batch).
    pub image: String,
    /// AWS Batch job queue.
    pub queue: String,
    /// Apply the manifests / submit the jobs (k8s, batch).
    pub apply: bool,
    /// Map tasks to (re)run: None = all.
    pub map_tasks: Option<Vec<u32>>,
    /// Reduce tasks to (re)run: None = all.
    pub reduce_tasks: Option<Vec<u32>>,
}

/// What was handed to the engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Submission {
    pub engine: String,
    /// Scheduler job ids (Slurm, Batch), or Kubernetes Job names.
    pub jobs: Vec<String>,
    /// Files written (scripts, manifests, requests).
    pub files: Vec<PathBuf>,
    /// Exit codes of local phases: map, reduce, commit.
    pub exit_codes: Vec<i32>,
}

/// Errors handing work to a scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed (exit {code:?}): {stderr}")]
    Command {
        command: String,
        code: Option<i32>,
        stderr: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SchedulerError {
    let what = what.into();
    move |source| SchedulerError::Io { what, source }
}

/// The ecops arguments of a phase for task index `task` (None: from the
/// scheduler's environment).
fn phase_args(l: &Launch, phase: &str, task: Option<u32>, wait: bool) -> Vec<String> {
    let mut args = vec![
        "backfill".to_string(),
        phase.to_string(),
        "--base".into(),
        l.base.clone(),
        "--run".into(),
        l.run.clone(),
    ];
    if phase != "commit" {
        args.extend(["--tasks".into(), l.tasks.to_string()]);
    }
    if let Some(t) = task {
        args.extend(["--task".into(), t.to_string()]);
    }
    if wait {
        args.push("--wait".into());
    }
    args.push("--json".into());
    args
}

/// Runs the phases as local processes: map tasks, reduce tasks, commit,
/// at most `max_parallel` at once; a phase with a failed task stops there.
pub fn run_local(l: &Launch) -> Result<Submission, SchedulerError> {
    std::fs::create_dir_all(&l.workdir).map_err(io(format!("creating {}", l.workdir.display())))?;
    let mut sub = Submission {
        engine: "local".into(),
        ..Submission::default()
    };
    let all: Vec<u32> = (0..l.tasks).collect();
    for (phase, tasks) in [
        ("work", l.map_tasks.clone().unwrap_or_else(|| all.clone())),
        (
            "reduce",
            l.reduce_tasks.clone().unwrap_or_else(|| all.clone()),
        ),
    ] {
        let code = run_local_phase(l, phase, &tasks)?;
        sub.exit_codes.push(code);
        if code != 0 {
            return Ok(sub);
        }
    }
    let log = l.workdir.join("commit.log");
    sub.exit_codes
        .push(run_logged(l, &phase_args(l, "commit", None, false), &log)?);
    Ok(sub)
}

/// One phase's tasks as processes; the worst exit code.
fn run_local_phase(l: &Launch, phase: &str, tasks: &[u32]) -> Result<i32, SchedulerError> {
    let mut worst = 0;
    for wave in tasks.chunks(l.max_parallel.max(1) as usize) {
        let mut children = Vec::new();
        for &t in wave {
            let log = l.workdir.join(format!("{phase}-{t}.log"));
            let file =
                std::fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
            let err = file.try_clone().map_err(io("log file"))?;
            let child = Command::new(&l.ecops)
                .args(phase_args(l, phase, Some(t), false))
                .env_remove("ECOPS_BASE")
                .stdout(file)
                .stderr(err)
                .spawn()
                .map_err(io(format!("starting {}", l.ecops.display())))?;
            children.push(child);
        }
        for mut c in children {
            let status = c.wait().map_err(io("waiting for a task"))?;
            let code = status.code().unwrap_or(1);
            if code != 0 {
                worst = code;
            }
        }
    }
    Ok(worst)
}

fn run_logged(l: &Launch, args: &[String], log: &Path) -> Result<i32, SchedulerError> {
    let file = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let err = file.try_clone().map_err(io("log file"))?;
    let status = Command::new(&l.ecops)
        .args(args)
        .env_remove("ECOPS_BASE")
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(io(format!("starting {}", l.ecops.display())))?;
    Ok(status.code().unwrap_or(1))
}

/// A shell word, quoted when it must be.
fn sh(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Writes the Slurm batch scripts and submits them: map and reduce arrays
/// (`%M` caps tasks at once), chained with `afterok`, and the commit.
pub fn submit_slurm(l: &Launch) -> Result<Submission, SchedulerError> {
    std::fs::create_dir_all(&l.workdir).map_err(io(format!("creating {}", l.workdir.display())))?;
    let mut sub = Submission {
        engine: "slurm".into(),
        ..Submission::default()
    };
    let mut after: Option<String> = None;
    for (phase, tasks) in [
        ("work", &l.map_tasks),
        ("reduce", &l.reduce_tasks),
        ("commit", &None),
    ] {
        if tasks.as_ref().is_some_and(Vec::is_empty) {
            continue; // a retry with nothing left in this phase
        }
        let script = l.workdir.join(format!("{phase}.sbatch"));
        let command: Vec<String> = std::iter::once(l.ecops.display().to_string())
            .chain(phase_args(l, phase, None, false))
            .map(|w| sh(&w))
            .collect();
        let body = format!(
            "#!/bin/bash\n# ecops backfill {phase} of run {} (written by `ecops backfill submit`)\nexec {}\n",
            l.run,
            command.join(" ")
        );
        std::fs::write(&script, body).map_err(io(format!("writing {}", script.display())))?;
        sub.files.push(script.clone());
        let output = if phase == "commit" { "%j" } else { "%A_%a" };
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name=ecops-{phase}"),
            format!("--output={}/{phase}-{output}.out", l.workdir.display()),
        ];
        if phase != "commit" {
            args.push(format!(
                "--array={}%{}",
                array_spec(tasks, l.tasks),
                l.max_parallel.max(1)
            ));
        }
        if let Some(job) = &after {
            args.push(format!("--dependency=afterok:{job}"));
        }
        args.push(script.display().to_string());
        let out = run_command("sbatch", &args)?;
        let job = out.trim().split(';').next().unwrap_or_default().to_string();
        sub.jobs.push(job.clone());
        after = Some(job);
    }
    Ok(sub)
}

/// `0-3` for all tasks, else the listed indices (`1,3`).
fn array_spec(tasks: &Option<Vec<u32>>, n: u32) -> String {
    match tasks {
        None => format!("0-{}", n.saturating_sub(1)),
        Some(list) => list
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn run_command(program: &str, args: &[String]) -> Result<String, SchedulerError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(io(format!(
            "running {program} (is it installed and on PATH?)"
        )))?;
    if !out.status.success() {
        return Err(SchedulerError::Command {
            command: format!("{program} {}", args.join(" ")),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kubernetes manifests: the map and reduce Indexed Jobs and the commit Job.
pub fn k8s_manifests(l: &Launch) -> Vec<(String, Value)> {
    let short = &l.run[l.run.len().saturating_sub(6)..];
    let job = |phase: &str, indexed: bool, wait: bool| {
        let name = format!("ecops-{phase}-{short}");
        let mut command = vec!["ecops".to_string()];
        command.extend(phase_args(l, phase, None, wait));
        let mut spec = json!({
            "backoffLimit": 6,
            "template": {
                "metadata": { "labels": { "app": "ecops-backfill", "ecops-run": l.run, "ecops-phase": phase } },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "ecops",
                        "image": l.image,
                        "command": command,
                    }],
                },
            },
        });
        if indexed {
            spec["completionMode"] = json!("Indexed");
            spec["completions"] = json!(l.tasks);
            spec["parallelism"] = json!(l.max_parallel.min(l.tasks).max(1));
            spec["backoffLimitPerIndex"] = json!(3);
            spec["maxFailedIndexes"] = json!(l.tasks);
            spec.as_object_mut().map(|o| o.remove("backoffLimit"));
        } else {
            spec["completions"] = json!(1);
            spec["parallelism"] = json!(1);
        }
        (
            name.clone(),
            json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": { "name": name, "labels": { "app": "ecops-backfill", "ecops-run": l.run } },
                "spec": spec,
            }),
        )
    };
    vec![
        job("work", true, false),
        job("reduce", true, true),
        job("commit", false, true),
    ]
}

/// Writes the Kubernetes manifests (JSON, which kubectl reads as YAML) and
/// applies them with `kubectl apply -f` when asked.
pub fn submit_k8s(l: &Launch) -> Result<Submission, SchedulerError> {
    std::fs::create_dir_all(&l.workdir).map_err(io(format!("creating {}", l.workdir.display())))?;
    let mut sub = Submission {
        engine: "k8s".into(),
        ..Submission::default()
    };
    for (name, manifest) in k8s_manifests(l) {
        let path = l.workdir.join(format!("{name}.json"));
        write_json(&path, &manifest)?;
        if l.apply {
            run_command(
                "kubectl",
                &["apply".into(), "-f".into(), path.display().to_string()],
            )?;
        }
        sub.files.push(path);
        sub.jobs.push(name);
    }
    Ok(sub)
}

/// AWS Batch: the job definition and the three submit-job requests.
pub fn batch_requests(l: &Launch) -> (Value, Vec<(String, Value)>) {
    let short = &l.run[l.run.len().saturating_sub(6)..];
    let definition_name = format!("ecops-backfill-{short}");
    let definition = json!({
        "jobDefinitionName": definition_name,
        "type": "container",
        "containerProperties": {
            "image": l.image,
            "command": ["ecops", "--help"],
            "resourceRequirements": [
                { "type": "VCPU", "value": "2" },
                { "type": "MEMORY", "value": "4096" },
            ],
        },
        "retryStrategy": { "attempts": 3 },
    });
    let request = |phase: &str, array: bool| {
        let mut command = vec!["ecops".to_string()];
        command.extend(phase_args(l, phase, None, false));
        let mut r = json!({
            "jobName": format!("ecops-{phase}-{short}"),
            "jobQueue": l.queue,
            "jobDefinition": definition_name,
            "containerOverrides": { "command": command },
        });
        if array {
            r["arrayProperties"] = json!({ "size": l.tasks.max(2) });
        }
        (phase.to_string(), r)
    };
    (
        definition,
        vec![
            request("work", true),
            request("reduce", true),
            request("commit", false),
        ],
    )
}

/// Writes the AWS Batch requests; with `apply`, registers the definition and
/// submits the jobs in order, each `dependsOn` the previous (the whole array).
pub fn submit_batch(l: &Launch) -> Result<Submission, SchedulerError> {
    std::fs::create_dir_all(&l.workdir).map_err(io(format!("creating {}", l.workdir.display())))?;
    let mut sub = Submission {
        engine: "batch".into(),
        ..Submission::default()
    };
    let (definition, requests) = batch_requests(l);
    let def_path = l.workdir.join("job-definition.json");
    write_json(&def_path, &definition)?;
    sub.files.push(def_path.clone());
    if l.apply {
        run_command("aws", &aws_args("register-job-definition", &def_path))?;
    }
    let mut previous: Option<String> = None;
    let mut previous_name: Option<String> = None;
    for (phase, mut request) in requests {
        // The whole previous array job must succeed first (no N_TO_N type).
        match (&previous, &previous_name) {
            (Some(id), _) => request["dependsOn"] = json!([{ "jobId": id }]),
            (None, Some(name)) => {
                request["dependsOn"] = json!([{ "jobId": format!("<jobId of {name}>") }])
            }
            (None, None) => {}
        }
        previous_name = request["jobName"].as_str().map(str::to_string);
        let path = l.workdir.join(format!("{phase}-job.json"));
        write_json(&path, &request)?;
        sub.files.push(path.clone());
        if l.apply {
            let out = run_command("aws", &aws_args("submit-job", &path))?;
            let id = serde_json::from_str::<Value>(&out)
                .ok()
                .and_then(|v| v["jobId"].as_str().map(str::to_string))
                .unwrap_or_default();
            sub.jobs.push(id.clone());
            previous = Some(id);
        } else {
            previous = None;
        }
    }
    Ok(sub)
}

fn aws_args(command: &str, path: &Path) -> Vec<String> {
    vec![
        "batch".into(),
        command.into(),
        "--cli-input-json".into(),
        format!("file://{}", path.display()),
    ]
}

fn write_json(path: &Path, value: &Value) -> Result<(), SchedulerError> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(path, text + "\n").map_err(io(format!("writing {}", path.display())))
}

/// Slurm jobs of `ids` still queued or running (`squeue`).
pub fn slurm_alive(ids: &[String]) -> Result<bool, SchedulerError> {
    if ids.is_empty() {
        return Ok(false);
    }
    let out = run_command(
        "squeue",
        &[
            "-h".into(),
            "-o".into(),
            "%i".into(),
            "-j".into(),
            ids.join(","),
        ],
    )
    .unwrap_or_default();
    Ok(!out.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            engine: Engine::K8s,
            base: "s3://bucket/cat".into(),
            run: "20261202T000000Z-backfill-abc123".into(),
            tasks: 8,
            max_parallel: 3,
            ecops: PathBuf::from("/usr/bin/ecops"),
            workdir: PathBuf::from("/tmp/x"),
            image: "ghcr.io/example/ecops:1".into(),
            queue: "spot".into(),
            apply: false,
            map_tasks: None,
            reduce_tasks: None,
        }
    }

    #[test]
    fn indexed_jobs_follow_the_documented_fields() {
        let manifests = k8s_manifests(&launch());
        assert_eq!(manifests.len(), 3);
        let map = &manifests[0].1;
        assert_eq!(map["kind"], "Job");
        assert_eq!(map["spec"]["completionMode"], "Indexed");
        assert_eq!(map["spec"]["completions"], 8);
        assert_eq!(map["spec"]["parallelism"], 3);
        assert_eq!(map["spec"]["backoffLimitPerIndex"], 3);
        let command = map["spec"]["template"]["spec"]["containers"][0]["command"]
            .as_array()
            .unwrap();
        assert!(command.iter().any(|w| w == "work") && command.iter().any(|w| w == "8"));
        assert!(
            manifests[1].1["spec"]["template"]["spec"]["containers"][0]["command"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w == "--wait")
        );
        assert_eq!(manifests[2].1["spec"]["completions"], 1);
    }

    #[test]
    fn batch_requests_are_arrays_chained_by_depends_on() {
        let (def, requests) = batch_requests(&launch());
        assert_eq!(def["type"], "container");
        assert_eq!(requests[0].1["arrayProperties"]["size"], 8);
        assert_eq!(requests[2].1.get("arrayProperties"), None);
        assert_eq!(array_spec(&None, 4), "0-3");
        assert_eq!(array_spec(&Some(vec![1, 3]), 4), "1,3");
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("s3://b/p"), "s3://b/p");
    }
}
