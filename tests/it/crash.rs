//! Proof under faults: `ecops ingest` and `ecops compact` run as real child
//! processes and are killed with SIGKILL at seeded random points (before the
//! first commit, between writing a chunk's files and committing them, inside
//! a commit, during the upload of an S3-hosted catalog database), then rerun
//! to completion. After every scenario the table is valid (every file any
//! snapshot references exists) and its (id, grid_partition) rows equal an
//! uninterrupted run's: none lost, none duplicated. PyIceberg scans every
//! local catalog at the end.
//!
//! Also: transient storage faults injected through `ECOPS_FAULTS` (5xx,
//! SlowDown, timeouts, resets, truncated bodies, lost acks) make a run fail
//! cleanly, and reruns converge on the same rows.
//!
//! `ECOPS_CRASH_SEED=N` reproduces a run (the seed is printed);
//! `ECOPS_SOAK=1` runs many more scenarios.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{catalog_rows as rows, ecops_with, python, run_python, s3_base, s3_endpoint};
use ecops::catalog::{EarthCatalog, OpenOptions};

use crate::common::{Rng, seed};

type Rows = BTreeMap<(String, String), u32>;

fn soak() -> bool {
    std::env::var("ECOPS_SOAK").is_ok_and(|v| v == "1")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn s3_opts(endpoint: Option<&str>) -> OpenOptions {
    OpenOptions {
        read_only: true,
        s3: ecops::store::S3Options {
            endpoint: endpoint.map(str::to_string),
            anonymous: false,
        },
        ..Default::default()
    }
}

/// Synthetic items and their inventory.
fn demo(dir: &Path, items: usize) -> (PathBuf, PathBuf) {
    let out = dir.join("demo");
    let run = ecops_with(
        &["demo-data", "--items", &items.to_string(), "--out", s(&out)],
        &[],
    );
    assert!(run.status.success());
    (out.join("inventory/inventory.csv"), out.join("items"))
}

/// Every file referenced by any snapshot (manifest lists, data files); asserts each exists.
async fn assert_valid(base: &str, opts: &OpenOptions, what: &str) -> BTreeSet<String> {
    let catalog = EarthCatalog::open(base, opts).await.unwrap();
    let table = catalog.table().await.unwrap();
    let mut referenced = BTreeSet::new();
    for snapshot in table.metadata().snapshots() {
        assert!(
            table
                .file_io()
                .exists(snapshot.manifest_list())
                .await
                .unwrap(),
            "{what}: manifest list {} is missing",
            snapshot.manifest_list()
        );
        let list = ecops::catalog::stats::manifest_list(&table, snapshot)
            .await
            .unwrap();
        for file in ecops::catalog::stats::files_of_manifests(&table, list.entries())
            .await
            .unwrap()
        {
            referenced.insert(file.path);
        }
    }
    for path in &referenced {
        assert!(
            table.file_io().exists(path).await.unwrap(),
            "{what}: {path} is referenced but missing"
        );
    }
    referenced
}

fn assert_same_rows(got: &Rows, expected: &Rows, what: &str) {
    let lost: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    let dup: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        lost.is_empty() && extra.is_empty() && dup.is_empty(),
        "{what}: {} lost (e.g. {:?}), {} unexpected, {} duplicated (e.g. {:?})",
        lost.len(),
        lost.first(),
        extra.len(),
        dup.len(),
        dup.first()
    );
    assert_eq!(got, expected, "{what}");
}

fn parquet_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.insert(p);
        }
    }
    out
}

/// Where the kills landed, and how many there were.
#[derive(Default, Debug)]
struct Tally {
    kills: u32,
    completed_before_kill: u32,
    uncommitted_files: u32,
    mid_commit: u32,
    before_first_commit: u32,
    between_commits: u32,
    s3_kills: u32,
    scenarios: u32,
    reruns: u32,
}

/// Spawns `args`, sleeps `delay`, SIGKILLs it; false if it finished first.
fn spawn_and_kill(args: &[&str], envs: &[(&str, String)], delay: Duration) -> bool {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecops"));
    cmd.args(args)
        .env_remove("ECOPS_BASE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL (an error means it had already exited)
    let status = child.wait().unwrap();
    match status.code() {
        // Killed by our signal (not by an abort or a segfault of its own).
        None => {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "{args:?} died by {status:?}");
            true
        }
        // It finished on its own (possibly just before the signal): it must
        // not have crashed.
        Some(code) => {
            assert_ne!(code, 101, "{args:?} panicked");
            false
        }
    }
}

/// Runs to completion; asserts success.
fn run_ok(args: &[&str], envs: &[(&str, String)]) -> serde_json::Value {
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = ecops_with(args, &envs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?} failed after kills: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_default()
}

struct Inputs {
    inv: PathBuf,
    items: PathBuf,
    reference: Rows,
}

fn ingest_args<'a>(base: &'a str, inputs: &'a Inputs, chunk: &'a str) -> Vec<&'a str> {
    vec![
        "ingest",
        "--json",
        "--base",
        base,
        "--inventory",
        s(&inputs.inv),
        "--items-root",
        s(&inputs.items),
        "--chunk-size",
        chunk,
    ]
}

/// What a kill left behind on a local catalog: data files no snapshot
/// references (written, never committed) and files in the metadata folder
/// (manifests, manifest lists, table metadata) the current metadata does not
/// reach (a commit under way when the process died).
async fn leftovers(base: &Path) -> Option<(usize, usize)> {
    if !base.join("earthcatalog.db").is_file() {
        return None;
    }
    let catalog = EarthCatalog::open(s(base), &s3_opts(None)).await.ok()?;
    let t = catalog.table().await.ok()?;
    t.metadata().current_snapshot()?;
    let mut data = BTreeSet::new();
    let mut meta: BTreeSet<PathBuf> = t
        .metadata()
        .metadata_log()
        .iter()
        .map(|l| PathBuf::from(&l.metadata_file))
        .collect();
    meta.insert(PathBuf::from(t.metadata_location()?));
    for snap in t.metadata().snapshots() {
        meta.insert(PathBuf::from(snap.manifest_list()));
        let list = ecops::catalog::stats::manifest_list(&t, snap)
            .await
            .unwrap();
        for m in list.entries() {
            meta.insert(PathBuf::from(&m.manifest_path));
        }
        for f in ecops::catalog::stats::files_of_manifests(&t, list.entries())
            .await
            .unwrap()
        {
            data.insert(PathBuf::from(f.path));
        }
    }
    let meta_dir = base.join("warehouse/earthcatalog/stac_items/metadata");
    let on_disk_meta: BTreeSet<PathBuf> = std::fs::read_dir(&meta_dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let data_orphans = parquet_files(&base.join("warehouse"))
        .difference(&data)
        .count();
    Some((data_orphans, on_disk_meta.difference(&meta).count()))
}

/// Classifies a kill by what it left behind compared with the previous one.
async fn classify(base: &Path, tally: &mut Tally, seen: &mut (usize, usize)) {
    let Some((data, meta)) = leftovers(base).await else {
        tally.before_first_commit += 1;
        return;
    };
    if meta > seen.1 {
        tally.mid_commit += 1;
    } else if data > seen.0 {
        tally.uncommitted_files += 1;
    } else {
        tally.between_commits += 1;
    }
    *seen = (data.max(seen.0), meta.max(seen.1));
}

/// A fault plan that only slows the writes of table metadata (manifests,
/// manifest lists, metadata.json), widening the window inside a commit.
fn slow_commits(rng: &mut Rng) -> String {
    format!(
        "seed={},latency_ms={},only=stac_items/metadata/**,quiet=1",
        rng.next(),
        5 + rng.below(30)
    )
}

/// One ingest scenario on a fresh local catalog: up to `kills` SIGKILLs at
/// random points, sometimes a compaction in between, then a rerun to completion.
async fn ingest_scenario(
    dir: &Path,
    n: u32,
    inputs: &Inputs,
    rng: &mut Rng,
    kills: u32,
    tally: &mut Tally,
) -> PathBuf {
    let base = dir.join(format!("ingest-{n}"));
    let chunk = (5 + rng.below(11)).to_string();
    let mut seen = (0, 0);
    let mut landed = 0;
    let mut attempts = 0;
    while landed < kills && attempts < kills * 3 {
        attempts += 1;
        let pause = rng.below(40);
        let delay = Duration::from_millis(rng.below(350));
        let mut envs = vec![("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", pause.to_string())];
        if rng.below(2) == 0 {
            envs.push(("ECOPS_FAULTS", slow_commits(rng)));
        }
        if spawn_and_kill(&ingest_args(s(&base), inputs, &chunk), &envs, delay) {
            landed += 1;
            tally.kills += 1;
            classify(&base, tally, &mut seen).await;
            // Once anything is committed the table must be valid after every kill.
            if leftovers(&base).await.is_some() {
                assert_valid(
                    s(&base),
                    &s3_opts(None),
                    &format!("ingest-{n} after a kill"),
                )
                .await;
            }
        } else {
            tally.completed_before_kill += 1;
            break;
        }
    }
    if rng.below(3) == 0 && base.join("earthcatalog.db").is_file() {
        // A compaction between the kills and the resume must not confuse the checkpoint.
        run_ok(&["compact", "--base", s(&base), "--json"], &[]);
    }
    let summary = run_ok(&ingest_args(s(&base), inputs, &chunk), &[]);
    tally.reruns += 1;
    assert_eq!(summary["complete"], true, "{summary}");
    tally.scenarios += 1;
    let what = format!("ingest scenario {n} (chunk {chunk})");
    assert_valid(s(&base), &s3_opts(None), &what).await;
    assert_same_rows(
        &rows(s(&base), &s3_opts(None)).await,
        &inputs.reference,
        &what,
    );
    base
}

/// One compaction scenario: an uninterrupted ingest in tiny chunks, then
/// compactions killed at random points, then a rerun to completion.
async fn compact_scenario(
    dir: &Path,
    n: u32,
    inputs: &Inputs,
    rng: &mut Rng,
    kills: u32,
    tally: &mut Tally,
) -> PathBuf {
    let base = dir.join(format!("compact-{n}"));
    let chunk = (3 + rng.below(5)).to_string();
    run_ok(&ingest_args(s(&base), inputs, &chunk), &[]);
    let group = (2 + rng.below(4)).to_string();
    let args = [
        "compact",
        "--json",
        "--base",
        s(&base),
        "--group-files",
        &group,
    ];
    let mut seen = leftovers(&base).await.unwrap_or_default();
    let mut landed = 0;
    let mut attempts = 0;
    while landed < kills && attempts < kills * 3 {
        attempts += 1;
        let pause = rng.below(40);
        let delay = Duration::from_millis(rng.below(300));
        let mut envs = vec![("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", pause.to_string())];
        if rng.below(2) == 0 {
            envs.push(("ECOPS_FAULTS", slow_commits(rng)));
        }
        if spawn_and_kill(&args, &envs, delay) {
            landed += 1;
            tally.kills += 1;
            classify(&base, tally, &mut seen).await;
            let what = format!("compact-{n} after a kill");
            assert_valid(s(&base), &s3_opts(None), &what).await;
            assert_same_rows(
                &rows(s(&base), &s3_opts(None)).await,
                &inputs.reference,
                &what,
            );
        } else {
            tally.completed_before_kill += 1;
            break;
        }
    }
    let summary = run_ok(&args, &[]);
    tally.reruns += 1;
    assert_eq!(summary["phase"], "done", "{summary}");
    tally.scenarios += 1;
    let what = format!("compaction scenario {n}");
    assert_valid(s(&base), &s3_opts(None), &what).await;
    assert_same_rows(
        &rows(s(&base), &s3_opts(None)).await,
        &inputs.reference,
        &what,
    );
    base
}

/// An ingest into an S3-hosted catalog killed at random points: in chunk
/// writes, commits and the database upload that follows each commit.
async fn s3_scenario(
    endpoint: &str,
    cache: &Path,
    n: u32,
    inputs: &Inputs,
    rng: &mut Rng,
    kills: u32,
    tally: &mut Tally,
) {
    let base = s3_base(&format!("crash-{n}"));
    let chunk = (4 + rng.below(6)).to_string();
    let mut landed = 0;
    let mut attempts = 0;
    while landed < kills && attempts < kills * 3 {
        attempts += 1;
        let envs = [
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("ECOPS_CACHE_DIR", s(cache).to_string()),
            (
                "ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS",
                rng.below(30).to_string(),
            ),
        ];
        let delay = Duration::from_millis(20 + rng.below(500));
        if spawn_and_kill(&ingest_args(&base, inputs, &chunk), &envs, delay) {
            landed += 1;
            tally.kills += 1;
            tally.s3_kills += 1;
        } else {
            tally.completed_before_kill += 1;
            break;
        }
    }
    let envs = [
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("ECOPS_CACHE_DIR", s(cache).to_string()),
    ];
    let summary = run_ok(&ingest_args(&base, inputs, &chunk), &envs);
    tally.reruns += 1;
    assert_eq!(summary["complete"], true, "{summary}");
    tally.scenarios += 1;
    let what = format!("S3 scenario {n} (chunk {chunk})");
    let opts = s3_opts(Some(endpoint));
    assert_valid(&base, &opts, &what).await;
    assert_same_rows(&rows(&base, &opts).await, &inputs.reference, &what);
}

fn reference(dir: &Path, inv: &Path, items: &Path) -> PathBuf {
    let base = dir.join("reference");
    let out = ecops_with(
        &[
            "ingest",
            "--base",
            s(&base),
            "--inventory",
            s(inv),
            "--items-root",
            s(items),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_anywhere_then_rerun_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let seed = seed();
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let (inv, items) = demo(tmp.path(), 120);
    let reference_base = reference(tmp.path(), &inv, &items);
    let reference = rows(s(&reference_base), &s3_opts(None)).await;
    assert!(reference.len() > 120, "fan-out gives more rows than items");
    let inputs = Inputs {
        inv,
        items,
        reference,
    };

    let (min_kills, s3_runs) = if soak() { (1000, 10) } else { (50, 2) };
    let mut tally = Tally::default();
    let mut bases = vec![];
    let mut n = 0;
    while tally.kills - tally.s3_kills < min_kills {
        n += 1;
        let base = if n % 3 == 0 {
            compact_scenario(tmp.path(), n, &inputs, &mut rng, 4, &mut tally).await
        } else {
            ingest_scenario(tmp.path(), n, &inputs, &mut rng, 4, &mut tally).await
        };
        bases.push(base);
        assert!(n < 200, "kills keep missing: {tally:?}");
    }
    if let Some(endpoint) = s3_endpoint() {
        let cache = tmp.path().join("cache");
        for _ in 0..s3_runs {
            n += 1;
            s3_scenario(&endpoint, &cache, n, &inputs, &mut rng, 3, &mut tally).await;
        }
        assert!(tally.s3_kills > 0, "no kill landed on S3: {tally:?}");
    }
    assert!(
        tally.uncommitted_files > 0,
        "no kill landed between writing files and committing: {tally:?}"
    );

    // PyIceberg reads every local catalog, once, at the end.
    if let Some(py) = python() {
        let args: Vec<&str> = bases.iter().map(|b| s(b)).collect();
        let report = run_python(&py, "scan_rows.py", &args);
        for (base, got) in bases.iter().zip(report["catalogs"].as_array().unwrap()) {
            assert_eq!(
                got["rows"].as_u64(),
                Some(inputs.reference.len() as u64),
                "PyIceberg rows of {}: {got}",
                base.display()
            );
            assert_eq!(
                got["distinct"].as_u64(),
                Some(inputs.reference.len() as u64),
                "PyIceberg distinct (id, cell) of {}",
                base.display()
            );
        }
    }
    eprintln!(
        "crash: seed {seed}: {} scenarios, {} kill points ({} on S3; local: {} before the first commit, \
         {} between commits, {} between files and commit, {} inside a commit), {} runs finished before their kill, \
         {} reruns, rows lost 0, duplicated 0, {:.1} s",
        tally.scenarios,
        tally.kills,
        tally.s3_kills,
        tally.before_first_commit,
        tally.between_commits,
        tally.uncommitted_files,
        tally.mid_commit,
        tally.completed_before_kill,
        tally.reruns,
        started.elapsed().as_secs_f64()
    );
}

/// Runs `args` under `ECOPS_FAULTS` until it succeeds; every failure must be a
/// clean error (exit 1, the injected fault named), never a panic. Returns
/// (failed runs, faults injected).
fn until_success(args: &[&str], envs: &[(&str, &str)], faults: &str) -> (u32, u64) {
    let mut failed = 0;
    let mut injected = 0;
    for attempt in 0..60 {
        // A rerun meets other faults than the run before it (a new seed each time).
        let plan = faults.replace("{attempt}", &attempt.to_string());
        let mut all = envs.to_vec();
        all.push(("ECOPS_FAULTS", &plan));
        let out = ecops_with(args, &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        injected += stderr.matches("fault injected:").count() as u64;
        assert!(stderr.contains("ECOPS_FAULTS is set"), "{stderr}");
        match out.status.code() {
            Some(0) => return (failed, injected),
            Some(1) => {
                // The error is on stderr, or in the --json summary's "error".
                let stdout = String::from_utf8_lossy(&out.stdout);
                let summary_error = stdout
                    .lines()
                    .last()
                    .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let last = stderr
                    .lines()
                    .rfind(|l| l.starts_with("ecops: error"))
                    .unwrap_or_default();
                assert!(
                    last.contains("injected by ECOPS_FAULTS")
                        || summary_error.contains("injected by ECOPS_FAULTS"),
                    "a failure not caused by an injected fault: {stderr}\n{stdout}"
                );
                failed += 1;
            }
            other => panic!("{args:?} exited {other:?} under faults: {stderr}"),
        }
    }
    panic!("{args:?} never succeeded under {faults}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_store_faults_fail_cleanly_and_reruns_converge() {
    let seed = seed();
    let tmp = tempfile::tempdir().unwrap();
    let (inv, items) = demo(tmp.path(), 80);
    let reference_base = reference(tmp.path(), &inv, &items);
    let reference = rows(s(&reference_base), &s3_opts(None)).await;
    let inputs = Inputs {
        inv,
        items,
        reference,
    };
    let mut total_failed = 0;
    let mut total_injected = 0;
    for round in 0..3u64 {
        let base = tmp.path().join(format!("faulty-{round}"));
        let faults = format!(
            "seed={}{{attempt}},latency_ms=2,error_rate=0.01,slowdown_rate=0.01,timeout_rate=0.005,timeout_ms=20,reset_rate=0.005,truncate_rate=0.01,ack_loss_rate=0.01,only=warehouse/**",
            seed + round
        );
        let (failed, injected) = until_success(&ingest_args(s(&base), &inputs, "8"), &[], &faults);
        total_failed += failed;
        total_injected += injected;
        let what = format!("ingest under {faults}");
        assert_valid(s(&base), &s3_opts(None), &what).await;
        assert_same_rows(
            &rows(s(&base), &s3_opts(None)).await,
            &inputs.reference,
            &what,
        );
        // Compaction under the same faults.
        let (failed, injected) = until_success(
            &[
                "compact",
                "--json",
                "--base",
                s(&base),
                "--group-files",
                "3",
            ],
            &[],
            &faults,
        );
        total_failed += failed;
        total_injected += injected;
        let what = format!("compaction under {faults}");
        assert_valid(s(&base), &s3_opts(None), &what).await;
        assert_same_rows(
            &rows(s(&base), &s3_opts(None)).await,
            &inputs.reference,
            &what,
        );
    }
    assert!(total_injected > 0, "no fault was injected");

    // An S3-hosted catalog whose database upload fails (the 3rd one), and one
    // whose upload lands but is reported as failed (a lost ack).
    if let Some(endpoint) = s3_endpoint() {
        let cache = tmp.path().join("cache");
        for faults in [
            "fail_nth_put=3:earthcatalog.db".to_string(),
            format!("seed={seed}{{attempt}},ack_loss_rate=0.3,only=earthcatalog.db"),
            format!("seed={seed}{{attempt}},slowdown_rate=0.03,error_rate=0.02,truncate_rate=0.03"),
        ] {
            let base = s3_base("faulty");
            let envs = [
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("ECOPS_CACHE_DIR", s(&cache)),
            ];
            let (failed, injected) =
                until_success(&ingest_args(&base, &inputs, "10"), &envs, &faults);
            total_failed += failed;
            total_injected += injected;
            let opts = s3_opts(Some(&endpoint));
            let what = format!("S3 ingest under {faults}");
            assert_valid(&base, &opts, &what).await;
            assert_same_rows(&rows(&base, &opts).await, &inputs.reference, &what);
        }
    }
    eprintln!(
        "faults: seed {seed}: {total_injected} faults injected, {total_failed} runs failed cleanly, rows lost 0, duplicated 0"
    );
}
