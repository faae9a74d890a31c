//! Backfill across machines, with a real scheduler: a single-node Slurm
//! cluster (scripts/slurm.sh, started by scripts/test.sh) runs the map and
//! reduce array tasks and the commit; tasks SIGKILLed mid-chunk plus
//! `backfill retry` converge on the same table; a chunk mapped by two tasks
//! at once counts once; a delta backfill keeps the table's old files; a
//! commit before reduce is done is refused, naming what is missing; the
//! Kubernetes and AWS Batch outputs follow their documented schemas; and a
//! backfill under seeded faults (map and reduce tasks SIGKILLed, a task run
//! twice with one copy paused past the other's results, SIGTERM with its
//! grace period, the committer killed holding the lock) converges after
//! `backfill retry` on the uninterrupted table (seed printed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecops::catalog::OpenOptions;
use ecops::testkit::http_server::{Faults, HttpServer};
use serde_json::Value;

use crate::common::{catalog_rows, ecops_with, python, run_python, slurm_conf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Demo items in a folder: (inventory, items root).
fn demo(dir: &Path, items: usize) -> (PathBuf, PathBuf) {
    let out = dir.join("demo");
    let made = ecops_with(
        &["demo-data", "--items", &items.to_string(), "--out", s(&out)],
        &[],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (out.join("inventory/inventory.csv"), out.join("items"))
}

/// Runs ecops with the Slurm cluster's config; returns (exit code, last JSON line, stderr).
fn run(args: &[&str], slurm: Option<&str>) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecops"));
    // Submissions without --workdir write their scripts and logs under the
    // working directory: keep them out of the repository.
    let cwd = std::env::temp_dir().join("ecops-test-cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    cmd.args(args).env_remove("ECOPS_BASE").current_dir(cwd);
    if let Some(conf) = slurm {
        cmd.env("SLURM_CONF", conf);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("null");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(last).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str], slurm: Option<&str>) -> Value {
    let (code, value, stderr) = run(args, slurm);
    assert_eq!(code, 0, "ecops {args:?}: {stderr}\n{value}");
    value
}

fn init(base: &Path) {
    ok(&["init", "--base", s(base), "--json"], None);
}

/// (id, cell) → copies in the live table.
async fn rows(base: &Path) -> BTreeMap<(String, String), u32> {
    catalog_rows(s(base), &OpenOptions::default()).await
}

/// Every (id, cell) pair once; the distinct ids.
fn assert_each_once(rows: &BTreeMap<(String, String), u32>) -> BTreeSet<String> {
    let twice: Vec<_> = rows.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "rows registered twice: {twice:?}");
    rows.keys().map(|(id, _)| id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_through_slurm_array_tasks_registers_every_id_once_in_one_file_per_bucket() {
    let Some(conf) = slurm_conf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 1200);
    let base = dir.path().join("cat");
    init(&base);
    let done = ok(
        &[
            "backfill",
            "submit",
            "--base",
            s(&base),
            "--inventory",
            s(&inventory),
            "--items-root",
            s(&items),
            "--chunk-size",
            "150",
            "--tasks",
            "4",
            "--engine",
            "slurm",
            "--workdir",
            s(&dir.path().join("wd")),
            "--wait",
            "--json",
        ],
        Some(&conf),
    );
    assert_eq!(done["state"], "committed", "{done}");
    assert_eq!(done["chunks"]["total"], 8);
    assert_eq!(done["chunks"]["done"], 8);
    assert_eq!(done["items"], 1200);
    assert_eq!(done["snapshots_added"], 1);
    let ids = assert_each_once(&rows(&base).await);
    assert_eq!(ids.len(), 1200, "every id once");
    let stats = ok(&["stats", "--base", s(&base), "--json"], None);
    assert_eq!(
        stats["files"], stats["partitions"],
        "one file per (cell, year) bucket"
    );
    assert!(stats["snapshots"].as_u64().unwrap() <= 3, "{stats}");
    assert_eq!(
        stats["unique_items"], 1200,
        "the hash index follows the commit"
    );
    // The tasks ran as Slurm array tasks, recorded in the run ledger.
    let run = done["run"].as_str().unwrap();
    let shown = ok(&["runs", "show", run, "--base", s(&base), "--json"], None);
    let tasks: BTreeSet<String> = shown["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["phase"] == "map")
        .map(|w| w["engine_task"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tasks.len(), 4, "{tasks:?}");
    assert!(tasks.iter().all(|t| t.starts_with("slurm:")), "{tasks:?}");
    if let Some(py) = python() {
        let scanned = run_python(&py, "scan_rows.py", &[s(&base)]);
        let c = &scanned["catalogs"][0];
        assert_eq!(c["rows"], stats["rows"]);
        assert_eq!(c["rows"], c["distinct"]);
    }
}

/// A slow loopback source, so tasks can be killed mid-chunk.
async fn slow_items(items: &Path) -> HttpServer {
    HttpServer::start(
        items.to_path_buf(),
        Faults {
            latency: Some(Duration::from_millis(20)),
            ..Faults::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_tasks_and_a_retry_converge_on_the_table_of_an_uninterrupted_backfill() {
    let Some(conf) = slurm_conf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 900);
    let server = slow_items(&items).await;
    let url = server.url();
    // The reference: the same backfill, uninterrupted, here.
    let reference = dir.path().join("reference");
    init(&reference);
    let plan = |base: &Path| {
        vec![
            "--base".to_string(),
            s(base).to_string(),
            "--inventory".into(),
            s(&inventory).into(),
            "--items-root".into(),
            url.clone(),
            "--chunk-size".into(),
            "100".into(),
            "--tasks".into(),
            "3".into(),
            "--concurrency".into(),
            "4".into(),
        ]
    };
    let mut args: Vec<String> = vec!["backfill".into(), "submit".into()];
    args.extend(plan(&reference));
    args.extend([
        "--engine".into(),
        "local".into(),
        "--wait".into(),
        "--json".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(ok(&refs, None)["state"], "committed");
    let expected = rows(&reference).await;

    // Through Slurm, with every running array task SIGKILLed once some chunks are done.
    let base = dir.path().join("cat");
    init(&base);
    let mut args: Vec<String> = vec!["backfill".into(), "submit".into()];
    args.extend(plan(&base));
    args.extend([
        "--engine".into(),
        "slurm".into(),
        "--workdir".into(),
        s(&dir.path().join("wd")).into(),
        "--json".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let submitted = ok(&refs, Some(&conf));
    let jobs: Vec<String> = submitted["submission"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j.as_str().unwrap().to_string())
        .collect();
    let run = submitted["run"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = ok(
            &[
                "backfill",
                "status",
                "--base",
                s(&base),
                "--run",
                &run,
                "--json",
            ],
            None,
        );
        let done = st["chunks"]["done"].as_u64().unwrap();
        if done >= 2 {
            assert!(done < 9, "killed before the map phase ended: {st}");
            break;
        }
        assert!(Instant::now() < deadline, "no chunk mapped in time: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = Command::new("scancel")
        .args(["--signal=KILL", "--full"])
        .args(&jobs)
        .env("SLURM_CONF", &conf)
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = Command::new("scancel")
        .args(&jobs)
        .env("SLURM_CONF", &conf)
        .status();
    std::thread::sleep(Duration::from_secs(2));
    let partial = ok(
        &[
            "backfill",
            "status",
            "--base",
            s(&base),
            "--run",
            &run,
            "--json",
        ],
        None,
    );
    assert_ne!(partial["state"], "committed", "{partial}");
    let retried = ok(
        &[
            "backfill",
            "retry",
            "--base",
            s(&base),
            "--run",
            &run,
            "--wait",
            "--json",
        ],
        Some(&conf),
    );
    assert_eq!(retried["state"], "committed", "{retried}");
    let got = rows(&base).await;
    assert_each_once(&got);
    assert_eq!(
        got, expected,
        "the retried backfill equals the uninterrupted one"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_mapped_by_two_tasks_at_once_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 400);
    let base = dir.path().join("cat");
    init(&base);
    let plan = ok(
        &[
            "backfill",
            "plan",
            "--base",
            s(&base),
            "--inventory",
            s(&inventory),
            "--items-root",
            s(&items),
            "--chunk-size",
            "100",
            "--tasks",
            "1",
            "--json",
        ],
        None,
    );
    let run = plan["run"].as_str().unwrap().to_string();
    let work = || -> Child {
        Command::new(env!("CARGO_BIN_EXE_ecops"))
            .args([
                "backfill",
                "work",
                "--base",
                s(&base),
                "--run",
                &run,
                "--task",
                "0",
                "--json",
            ])
            .env_remove("ECOPS_BASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (a, b) = (work(), work());
    let mut mapped = 0;
    let mut lost_or_skipped = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let report: Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap())
                .unwrap();
        mapped += report["mapped"].as_u64().unwrap();
        lost_or_skipped += report["lost"].as_u64().unwrap() + report["skipped"].as_u64().unwrap();
    }
    assert_eq!(mapped, 4, "each of the 4 chunks has exactly one result");
    assert_eq!(
        lost_or_skipped, 4,
        "the other task's work on each chunk was dropped"
    );
    ok(
        &[
            "backfill",
            "reduce",
            "--base",
            s(&base),
            "--run",
            &run,
            "--json",
        ],
        None,
    );
    let committed = ok(
        &[
            "backfill",
            "commit",
            "--base",
            s(&base),
            "--run",
            &run,
            "--json",
        ],
        None,
    );
    assert_eq!(committed["snapshots_added"], 1);
    let ids = assert_each_once(&rows(&base).await);
    assert_eq!(ids.len(), 400);
    // A second commit is a no-op.
    let again = ok(
        &[
            "backfill",
            "commit",
            "--base",
            s(&base),
            "--run",
            &run,
            "--json",
        ],
        None,
    );
    assert_eq!(again["already_committed"], true);
    assert_eq!(again["snapshots_added"], 0);
    let stats = ok(&["stats", "--base", s(&base), "--json"], None);
    assert_eq!(stats["files"], stats["partitions"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_backfill_onto_an_ingested_table_adds_the_new_items_and_keeps_the_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 600);
    let text = std::fs::read_to_string(&inventory).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(250);
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::fs::write(&a, first.join("\n") + "\n").unwrap();
    std::fs::write(&b, second.join("\n") + "\n").unwrap();
    let base = dir.path().join("cat");
    ok(
        &[
            "ingest",
            "--base",
            s(&base),
            "--inventory",
            s(&a),
            "--items-root",
            s(&items),
            "--json",
        ],
        None,
    );
    let catalog = ecops::catalog::EarthCatalog::open(s(&base), &OpenOptions::default())
        .await
        .unwrap();
    let before: BTreeSet<String> =
        ecops::catalog::stats::live_files(&catalog.table().await.unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
    let done = ok(
        &[
            "backfill",
            "submit",
            "--base",
            s(&base),
            "--inventory",
            s(&b),
            "--items-root",
            s(&items),
            "--mode",
            "delta",
            "--tasks",
            "2",
            "--chunk-size",
            "100",
            "--engine",
            "local",
            "--workdir",
            s(&dir.path().join("wd")),
            "--wait",
            "--json",
        ],
        None,
    );
    assert_eq!(done["state"], "committed", "{done}");
    let after: BTreeSet<String> =
        ecops::catalog::stats::live_files(&catalog.table().await.unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
    assert!(before.is_subset(&after), "the ingested files stay");
    let ids = assert_each_once(&rows(&base).await);
    assert_eq!(ids.len(), 600);
    // A full backfill onto a table with rows is refused, nothing written.
    let (code, _, stderr) = run(
        &[
            "backfill",
            "plan",
            "--base",
            s(&base),
            "--inventory",
            s(&a),
            "--items-root",
            s(&items),
            "--mode",
            "full",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("empty table"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_before_reduce_is_done_is_refused_naming_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 300);
    let base = dir.path().join("cat");
    init(&base);
    let plan = ok(
        &[
            "backfill",
            "plan",
            "--base",
            s(&base),
            "--inventory",
            s(&inventory),
            "--items-root",
            s(&items),
            "--chunk-size",
            "100",
            "--tasks",
            "2",
            "--json",
        ],
        None,
    );
    let run = plan["run"].as_str().unwrap().to_string();
    // Reduce before map: refused, naming the chunks.
    let (code, _, stderr) = run_args(&base, &["backfill", "reduce", "--run", &run, "--task", "0"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not mapped") && stderr.contains("c000000"),
        "{stderr}"
    );
    for t in ["0", "1"] {
        ok(
            &[
                "backfill",
                "work",
                "--base",
                s(&base),
                "--run",
                &run,
                "--task",
                t,
                "--json",
            ],
            None,
        );
    }
    ok(
        &[
            "backfill",
            "reduce",
            "--base",
            s(&base),
            "--run",
            &run,
            "--task",
            "0",
            "--json",
        ],
        None,
    );
    let (code, _, stderr) = run_args(&base, &["backfill", "commit", "--run", &run]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("p0001") && stderr.contains("buckets"),
        "{stderr}"
    );
    let snapshots = ok(&["stats", "--base", s(&base), "--json"], None)["snapshots"].clone();
    assert_eq!(snapshots, 0, "nothing was committed");
    // An unknown run is refused with the recent ones listed.
    let (code, _, stderr) = run_args(&base, &["backfill", "work", "--run", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("recent runs"), "{stderr}");
}

fn run_args(base: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut all = args.to_vec();
    all.extend(["--base", s(base)]);
    run(&all, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_and_batch_outputs_follow_their_documented_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 50);
    let base = dir.path().join("cat");
    init(&base);
    let submit = |engine: &str| {
        ok(
            &[
                "backfill",
                "submit",
                "--base",
                s(&base),
                "--inventory",
                s(&inventory),
                "--items-root",
                s(&items),
                "--tasks",
                "6",
                "--max-parallel",
                "2",
                "--engine",
                engine,
                "--image",
                "registry.example/ecops:1",
                "--queue",
                "spot-q",
                "--workdir",
                s(&dir.path().join(engine)),
                "--json",
            ],
            None,
        )
    };
    let k8s = submit("k8s");
    let files: Vec<PathBuf> = k8s["submission"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect();
    assert_eq!(files.len(), 3);
    let manifest = |i: usize| -> Value {
        serde_json::from_str(&std::fs::read_to_string(&files[i]).unwrap()).unwrap()
    };
    let (map, reduce, commit) = (manifest(0), manifest(1), manifest(2));
    for m in [&map, &reduce] {
        assert_eq!(m["apiVersion"], "batch/v1");
        assert_eq!(m["kind"], "Job");
        assert_eq!(m["spec"]["completionMode"], "Indexed");
        assert_eq!(m["spec"]["completions"], 6);
        assert_eq!(m["spec"]["parallelism"], 2);
        assert!(m["spec"]["backoffLimitPerIndex"].as_u64().unwrap() >= 1);
        let c = &m["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "registry.example/ecops:1");
        assert_eq!(m["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }
    assert_eq!(commit["spec"]["completions"], 1);
    assert!(commit["spec"].get("completionMode").is_none());
    let batch = submit("batch");
    let files: Vec<PathBuf> = batch["submission"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect();
    let read = |p: &PathBuf| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let definition = read(&files[0]);
    assert_eq!(definition["type"], "container");
    assert_eq!(
        definition["containerProperties"]["image"],
        "registry.example/ecops:1"
    );
    let (map, reduce, commit) = (read(&files[1]), read(&files[2]), read(&files[3]));
    assert_eq!(map["arrayProperties"]["size"], 6);
    assert_eq!(map["jobQueue"], "spot-q");
    assert_eq!(map["jobDefinition"], definition["jobDefinitionName"]);
    assert!(map.get("dependsOn").is_none());
    assert_eq!(reduce["arrayProperties"]["size"], 6);
    assert!(
        reduce["dependsOn"][0]["jobId"]
            .as_str()
            .unwrap()
            .contains(map["jobName"].as_str().unwrap())
    );
    assert!(commit.get("arrayProperties").is_none());
    assert!(
        commit["dependsOn"][0]["jobId"]
            .as_str()
            .unwrap()
            .contains(reduce["jobName"].as_str().unwrap())
    );
    let command = map["containerOverrides"]["command"].as_array().unwrap();
    assert!(command.iter().any(|w| w == "work") && command.iter().any(|w| w == "--tasks"));
}

/// Sends `signal` (e.g. "KILL", "STOP") to one process, by its PID.
fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {}", child.id());
}

/// `ecops backfill PHASE --run RUN --task I --tasks N` as a child process.
fn task(
    base: &Path,
    phase: &str,
    run: &str,
    index: u32,
    tasks: u32,
    envs: &[(&str, &str)],
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecops"));
    cmd.args(["backfill", phase, "--json", "--base", s(base), "--run", run])
        .args(["--task", &index.to_string(), "--tasks", &tasks.to_string()])
        .env_remove("ECOPS_BASE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits for a child; its exit code and last JSON line.
fn report(child: Child) -> (i32, Value) {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value =
        serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), value)
}

/// What the fault round did, for the printed report.
#[derive(Debug, Default)]
struct FaultCounts {
    map_kills: u32,
    reduce_kills: u32,
    commit_kills: u32,
    sigterms: u32,
    late_results_ignored: u64,
    duplicate_tasks: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_under_kills_pauses_and_sigterm_converges_on_the_uninterrupted_table() {
    let seed = crate::common::seed();
    let mut rng = crate::common::Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let (inventory, items) = demo(dir.path(), 600);
    let server = slow_items(&items).await;
    let url = server.url();
    let source = |base: &Path| -> Vec<String> {
        [
            "--base",
            s(base),
            "--inventory",
            s(&inventory),
            "--items-root",
            &url,
            "--chunk-size",
            "50",
            "--tasks",
            "3",
            "--concurrency",
            "4",
            "--json",
        ]
        .map(str::to_string)
        .to_vec()
    };
    let reference = dir.path().join("reference");
    init(&reference);
    let mut args = vec!["backfill".to_string(), "submit".into(), "--wait".into()];
    args.extend(source(&reference));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(ok(&refs, None)["state"], "committed");
    let expected = rows(&reference).await;

    let base = dir.path().join("cat");
    init(&base);
    let mut args = vec!["backfill".to_string(), "plan".into()];
    args.extend(source(&base));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = ok(&refs, None)["run"].as_str().unwrap().to_string();
    let mut counts = FaultCounts::default();

    // Map: task 0 SIGKILLed, task 2 sent SIGTERM (spot reclaim), task 1 run
    // twice at once, the second copy paused while the first finishes its chunks.
    let delay = |rng: &mut crate::common::Rng| Duration::from_millis(150 + rng.below(900));
    let t0 = task(&base, "work", &run, 0, 3, &[]);
    let t1 = task(&base, "work", &run, 1, 3, &[]);
    let t1_again = task(&base, "work", &run, 1, 3, &[]);
    let t2 = task(&base, "work", &run, 2, 3, &[]);
    counts.duplicate_tasks += 1;
    std::thread::sleep(delay(&mut rng));
    signal(&t0, "KILL");
    counts.map_kills += 1;
    signal(&t1_again, "STOP");
    std::thread::sleep(delay(&mut rng));
    signal(&t2, "TERM");
    counts.sigterms += 1;
    let term_sent = Instant::now();
    let (code, stopped) = report(t2);
    let grace = term_sent.elapsed();
    assert!(grace < Duration::from_secs(10), "SIGTERM took {grace:?}");
    assert!(
        (code == 130 && stopped["stopped"] == true) || (code == 0 && stopped["stopped"] == false),
        "a task stopped by SIGTERM says so: exit {code}, {stopped}"
    );
    let (code, first) = report(t1);
    assert_eq!(code, 0, "{first}");
    signal(&t1_again, "CONT");
    let (code, late) = report(t1_again);
    assert_eq!(code, 0, "{late}");
    let _ = report(t0);
    // Every chunk of task 1 has one result: the resumed copy's work was dropped.
    let chunks_of_1 = first["chunks"].as_u64().unwrap();
    assert_eq!(
        first["mapped"].as_u64().unwrap() + late["mapped"].as_u64().unwrap(),
        chunks_of_1,
        "first {first}\nlate {late}"
    );
    let dropped = |r: &Value| r["lost"].as_u64().unwrap() + r["skipped"].as_u64().unwrap();
    assert_eq!(
        dropped(&first) + dropped(&late),
        chunks_of_1,
        "the other copy's work on each chunk was dropped"
    );
    counts.late_results_ignored += dropped(&late);

    // The rest of the map, then reduce with one task SIGKILLed mid-way.
    for i in [0, 2] {
        assert_eq!(report(task(&base, "work", &run, i, 3, &[])).0, 0);
    }
    let reducers: Vec<Child> = (0..3)
        .map(|i| task(&base, "reduce", &run, i, 3, &[]))
        .collect();
    std::thread::sleep(Duration::from_millis(rng.below(400)));
    let victim = rng.below(3) as usize;
    signal(&reducers[victim], "KILL");
    counts.reduce_kills += 1;
    for r in reducers {
        let _ = report(r);
    }
    for i in 0..3 {
        assert_eq!(report(task(&base, "reduce", &run, i, 3, &[])).0, 0);
    }

    // The committer killed while it holds the lock, just before its snapshot.
    let mut committer = Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args([
            "backfill",
            "commit",
            "--json",
            "--base",
            s(&base),
            "--run",
            &run,
        ])
        .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", "3000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500 + rng.below(1500)));
    committer.kill().unwrap();
    committer.wait().unwrap();
    counts.commit_kills += 1;
    assert_ne!(
        ok(
            &[
                "backfill",
                "status",
                "--base",
                s(&base),
                "--run",
                &run,
                "--json"
            ],
            None
        )["state"],
        "committed"
    );

    // The operator's retry converges on the uninterrupted table.
    let retried = ok(
        &[
            "backfill",
            "retry",
            "--base",
            s(&base),
            "--run",
            &run,
            "--wait",
            "--json",
        ],
        None,
    );
    assert_eq!(retried["state"], "committed", "{retried}");
    let got = rows(&base).await; // reads every referenced file: each must exist
    let ids = assert_each_once(&got);
    let lost = expected.keys().filter(|k| !got.contains_key(*k)).count();
    let extra = got.keys().filter(|k| !expected.contains_key(*k)).count();
    eprintln!(
        "backfill faults (seed {seed}): {counts:?}; SIGTERM exit in {grace:?}; rows lost {lost}, rows extra {extra}, distinct ids {}",
        ids.len()
    );
    assert_eq!((lost, extra), (0, 0));
    assert_eq!(
        got, expected,
        "the retried backfill equals the uninterrupted one"
    );
    let stats = ok(&["stats", "--base", s(&base), "--json"], None);
    assert_eq!(
        stats["files"], stats["partitions"],
        "one file per bucket: {stats}"
    );
    let staged = ecops::catalog::stats::live_files(
        &ecops::catalog::EarthCatalog::open(s(&base), &OpenOptions::default())
            .await
            .unwrap()
            .table()
            .await
            .unwrap(),
    )
    .await
    .unwrap()
    .into_iter()
    .filter(|f| f.path.contains("_ecops/"))
    .count();
    assert_eq!(staged, 0, "no staging file registered");
    drop(server);
}
