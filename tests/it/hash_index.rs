//! The hash index (`warehouse_id_hashes.parquet`): exactly the sorted
//! xxh3-128 (seed 42) of the distinct ids after ingest, a duplicate delta
//! and compaction (checked in Python with `xxhash`); repaired after a kill
//! between a commit and the index swap; `--skip-known` skips exactly the
//! known ids; a corrupt, unsorted or foreign index is reported and rebuilt;
//! a full-mode ingest resets it; `upgrade-catalog` moves a v0 catalog to v1.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{earthcatalog_fixture, ecops, ecops_json, python, run_python};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ecops demo-data` into `dir` (items under `dir/items`, inventory CSV).
fn demo(dir: &Path, n: usize, seed: u64) -> PathBuf {
    let out = ecops(&[
        "demo-data",
        "--items",
        &n.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        s(dir),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("inventory/inventory.csv")
}

/// Every item id under `dir`.
fn ids_under(dir: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if s(&p).ends_with(".stac.json") {
                let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                ids.insert(v["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

fn ingest(
    base: &str,
    inventory: &Path,
    root: &Path,
    job: &str,
    chunk: &str,
    extra: &[&str],
) -> Value {
    let mut args = vec![
        "ingest",
        "--json",
        "--base",
        base,
        "--inventory",
        s(inventory),
        "--items-root",
        s(root),
        "--job",
        job,
        "--chunk-size",
        chunk,
    ];
    args.extend_from_slice(extra);
    ecops_json(&args)
}

fn index_path(base: &str) -> PathBuf {
    PathBuf::from(format!("{base}/warehouse_id_hashes.parquet"))
}

/// Python's verdict on the index against `ids` (None without Python).
fn python_check(base: &str, ids: &BTreeSet<String>, dir: &Path) -> Option<Value> {
    let py = python()?;
    let list = dir.join("ids.txt");
    std::fs::write(
        &list,
        ids.iter().map(|i| format!("{i}\n")).collect::<String>(),
    )
    .unwrap();
    Some(run_python(
        &py,
        "hash_index_check.py",
        &[s(&index_path(base)), s(&list)],
    ))
}

fn verify(base: &str) -> (bool, Value) {
    let out = ecops(&["index", "verify", "--base", base, "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    (out.status.success(), v)
}

#[test]
fn the_index_holds_exactly_the_distinct_ids_after_ingest_duplicates_and_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let a = demo(&tmp.path().join("a"), 400, 1);
    let b = demo(&tmp.path().join("b"), 150, 2);
    let root = tmp.path().join("a/items");
    // One items tree; the delta lists 100 of A's keys again plus all of B.
    let copy = Command::new("cp")
        .arg("-r")
        .arg(tmp.path().join("b/items/."))
        .arg(&root)
        .status()
        .unwrap();
    assert!(copy.success());
    let a_lines: Vec<String> = std::fs::read_to_string(&a)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let delta = tmp.path().join("delta.csv");
    let mut delta_lines = a_lines[..100].to_vec();
    delta_lines.extend(
        std::fs::read_to_string(&b)
            .unwrap()
            .lines()
            .map(String::from),
    );
    std::fs::write(&delta, delta_lines.join("\n") + "\n").unwrap();
    let base = tmp.path().join("cat").to_string_lossy().into_owned();

    ingest(&base, &a, &root, "a", "150", &[]);
    let delta_run = ingest(&base, &delta, &root, "delta", "100", &[]);
    assert_eq!(delta_run["items"], 250);
    let ids = ids_under(&root);
    assert_eq!(ids.len(), 550);
    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(stats["unique_items"], 550, "{stats}");
    assert_eq!(stats["hash_index_current"], true);
    let compacted = ecops_json(&["compact", "--base", &base, "--json"]);
    assert!(
        compacted["duplicates_removed"].as_u64() > Some(0),
        "{compacted}"
    );

    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(stats["unique_items"], 550);
    assert_eq!(stats["hash_index_current"], true, "compaction adds no ids");
    let (ok, report) = verify(&base);
    assert!(ok, "{report}");
    assert_eq!(
        (report["missing"].as_u64(), report["extra"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(report["table_distinct"], 550);
    if let Some(check) = python_check(&base, &ids, tmp.path()) {
        assert_eq!(check["equal"], true, "{check}");
        assert_eq!(check["rows"], 550);
        assert_eq!(check["row_groups"], 1);
        assert_eq!(check["type"], "fixed_size_binary[16]");
        assert_eq!(check["columns"], serde_json::json!(["id_hash"]));
        // The check can fail: one id more and it does.
        let mut more = ids.clone();
        more.insert("not-in-the-catalog".into());
        let check = python_check(&base, &more, tmp.path()).unwrap();
        assert_eq!(check["equal"], false);
    }
}

/// Starts an ingest that pauses between each commit and its index update,
/// waits for its first commit, and kills it there.
fn kill_after_first_commit(base: &str, inventory: &Path, root: &Path, chunk: &str) {
    kill_at_commit(base, inventory, root, chunk, 1);
}

/// Starts an ingest whose index updates run normally for its first
/// `commit - 1` commits (leaving index deltas) and pause after commit
/// number `commit`; waits for that commit and kills the ingest there.
fn kill_at_commit(base: &str, inventory: &Path, root: &Path, chunk: &str, commit: u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args([
            "ingest",
            "--base",
            base,
            "--inventory",
            s(inventory),
            "--items-root",
            s(root),
            "--job",
            "killed",
            "--chunk-size",
            chunk,
        ])
        .env_remove("ECOPS_BASE")
        .env("ECOPS_FAULT_PAUSE_BEFORE_INDEX_MS", "120000")
        .env(
            "ECOPS_FAULT_PAUSE_BEFORE_INDEX_SKIP",
            (commit - 1).to_string(),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no commit within 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the ingest ended before it was killed"
        );
        let out = ecops(&["stats", "--base", base, "--json"]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(out.stdout.trim_ascii_end()).unwrap_or_default();
            if v["snapshots"].as_u64() >= Some(commit) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_kill_between_commit_and_index_swap_is_repaired_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let inventory = demo(&tmp.path().join("d"), 300, 3);
    let root = tmp.path().join("d/items");
    let ids = ids_under(&root);
    for (chunk, label) in [("100", "mid-job"), ("1000", "after the last commit")] {
        let base = tmp
            .path()
            .join(format!("cat-{chunk}"))
            .to_string_lossy()
            .into_owned();
        kill_after_first_commit(&base, &inventory, &root, chunk);
        let stats = ecops_json(&["stats", "--base", &base, "--json"]);
        assert_eq!(stats["hash_index_current"], false, "{label}: {stats}");
        assert_eq!(
            stats["unique_items"], 0,
            "{label}: the index still reflects the empty table"
        );
        let (ok, report) = verify(&base);
        assert!(!ok, "{label}: verify must see the missing ids");
        assert!(report["missing"].as_u64() > Some(0), "{label}: {report}");

        // The same command again: resumes (or finds the job complete) and repairs the index.
        let again = ingest(&base, &inventory, &root, "killed", chunk, &[]);
        assert_eq!(again["complete"], true, "{label}: {again}");
        let stats = ecops_json(&["stats", "--base", &base, "--json"]);
        assert_eq!(stats["hash_index_current"], true, "{label}: {stats}");
        assert_eq!(stats["unique_items"], ids.len(), "{label}");
        let (ok, report) = verify(&base);
        assert!(ok, "{label}: {report}");
        if let Some(check) = python_check(&base, &ids, tmp.path()) {
            assert_eq!(check["equal"], true, "{label}: {check}");
        }
    }
}

/// The index delta files beside the main file.
fn delta_files(base: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(format!("{base}/warehouse_id_hashes.deltas"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| s(p).ends_with(".parquet"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_kill_with_index_deltas_present_is_repaired_and_stale_deltas_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let inventory = demo(&tmp.path().join("d"), 300, 8);
    let root = tmp.path().join("d/items");
    let ids = ids_under(&root);
    let base = tmp.path().join("cat").to_string_lossy().into_owned();
    // Commits 1–3 update the index (one delta each); the kill lands after commit 4.
    kill_at_commit(&base, &inventory, &root, "50", 4);
    let deltas = delta_files(&base);
    assert_eq!(deltas.len(), 3, "{deltas:?}");
    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(stats["hash_index_current"], false, "{stats}");
    let (ok, report) = verify(&base);
    assert!(!ok, "verify must see commit 4's ids missing: {report}");
    assert_eq!(report["extra"], 0, "{report}");
    let missing = report["missing"].as_u64().unwrap();
    assert!(missing > 0, "{report}");
    let distinct = report["table_distinct"].as_u64().unwrap();
    // Main file (empty) and deltas read as one index: the first 3 chunks.
    assert_eq!(stats["unique_items"], distinct - missing, "{stats}");
    assert_eq!(report["index_rows"], distinct - missing, "{report}");
    assert_eq!(stats["unique_items"], 150, "{stats}");

    let keep = tmp.path().join("kept-deltas");
    std::fs::create_dir_all(&keep).unwrap();
    for d in &deltas {
        std::fs::copy(d, keep.join(d.file_name().unwrap())).unwrap();
    }
    let again = ingest(&base, &inventory, &root, "killed", "50", &[]);
    assert_eq!(again["complete"], true, "{again}");
    assert!(
        delta_files(&base).is_empty(),
        "merged at the end of the run"
    );
    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(stats["hash_index_current"], true, "{stats}");
    assert_eq!(stats["unique_items"], ids.len(), "{stats}");
    if let Some(check) = python_check(&base, &ids, tmp.path()) {
        assert_eq!(check["equal"], true, "the main file alone: {check}");
    }

    // A crash between a merge's swap and its removal of the deltas leaves
    // them stale: readers ignore them, the next writer removes them.
    for d in &deltas {
        std::fs::create_dir_all(d.parent().unwrap()).unwrap();
        std::fs::copy(keep.join(d.file_name().unwrap()), d).unwrap();
    }
    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(stats["hash_index_current"], true, "{stats}");
    assert_eq!(stats["unique_items"], ids.len(), "{stats}");
    let (ok, report) = verify(&base);
    assert!(ok, "{report}");
    let done = ingest(&base, &inventory, &root, "killed", "50", &[]);
    assert_eq!(done["already_complete"], true, "{done}");
    assert!(delta_files(&base).is_empty(), "stale deltas removed");
    let (ok, report) = verify(&base);
    assert!(ok, "{report}");
}

#[test]
fn skip_known_skips_exactly_the_known_ids_and_checks_ids_against_file_names() {
    let tmp = tempfile::tempdir().unwrap();
    let inventory = demo(&tmp.path().join("d"), 300, 4);
    let root = tmp.path().join("d/items");
    let lines: Vec<String> = std::fs::read_to_string(&inventory)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let first = tmp.path().join("first.csv");
    std::fs::write(&first, lines[..180].join("\n") + "\n").unwrap();
    let base = tmp.path().join("cat").to_string_lossy().into_owned();
    ingest(&base, &first, &root, "first", "100", &[]);

    let run = ingest(&base, &inventory, &root, "all", "100", &["--skip-known"]);
    assert_eq!(run["skipped_known"], 180, "{run}");
    assert_eq!(run["items"], 120);
    assert_eq!(run["fetched"], 120);
    assert_eq!(run["failed"], 0);
    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(stats["unique_items"], 300);
    // Nothing new: everything is skipped, nothing fetched.
    let again = ingest(&base, &inventory, &root, "again", "100", &["--skip-known"]);
    assert_eq!(
        (again["skipped_known"].as_u64(), again["fetched"].as_u64()),
        (Some(300), Some(0))
    );

    // An item whose file name is not its id: --skip-known cannot trust file names, so it stops.
    let (key, body) = {
        let key = lines[0]
            .split(',')
            .nth(1)
            .unwrap()
            .trim_matches('"')
            .to_string();
        (key.clone(), std::fs::read(root.join(&key)).unwrap())
    };
    let renamed = key.replace(".stac.json", "-copy.stac.json");
    std::fs::write(root.join(&renamed), &body).unwrap();
    let odd = tmp.path().join("odd.csv");
    std::fs::write(
        &odd,
        format!(
            "\"ecops-demo\",\"{renamed}\",\"{}\",\"2024-01-01T00:00:00.000Z\"\n",
            body.len()
        ),
    )
    .unwrap();
    let out = ecops(&[
        "ingest",
        "--base",
        &base,
        "--inventory",
        s(&odd),
        "--items-root",
        s(&root),
        "--job",
        "odd",
        "--skip-known",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("not named after its id"), "{said}");
    // Without --skip-known the same item is just ingested again.
    let plain = ingest(&base, &odd, &root, "odd-plain", "100", &[]);
    assert_eq!(plain["items"], 1);
}

#[test]
fn a_corrupt_unsorted_or_foreign_index_is_reported_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let inventory = demo(&tmp.path().join("d"), 150, 5);
    let root = tmp.path().join("d/items");
    let base = tmp.path().join("cat").to_string_lossy().into_owned();
    ingest(&base, &inventory, &root, "d", "100", &[]);
    let index = index_path(&base);

    let unsorted = {
        use arrow_array::{FixedSizeBinaryArray, RecordBatch};
        let hashes =
            FixedSizeBinaryArray::try_from_iter([[9u8; 16], [1u8; 16]].into_iter()).unwrap();
        let batch =
            RecordBatch::try_from_iter([("id_hash", std::sync::Arc::new(hashes) as _)]).unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        buf
    };
    let wrong_schema = {
        use arrow_array::{Int64Array, RecordBatch};
        let batch = RecordBatch::try_from_iter([(
            "id_hash",
            std::sync::Arc::new(Int64Array::from(vec![1])) as _,
        )])
        .unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        buf
    };
    let cases: Vec<(&str, Vec<u8>, Option<&str>, &str)> = vec![
        (
            "garbage",
            b"not a parquet file".to_vec(),
            Some("not a readable Parquet"),
            "not a readable Parquet",
        ),
        (
            "wrong schema",
            wrong_schema,
            Some("wrong schema"),
            "wrong schema",
        ),
        // The footer of an unsorted file looks fine: stats cannot trust it
        // (another tool's, no snapshot recorded); verify reads it and says why.
        ("unsorted", unsorted, None, "not sorted"),
    ];
    for (name, bytes, stats_problem, verify_problem) in cases {
        std::fs::write(&index, &bytes).unwrap();
        let stats = ecops_json(&["stats", "--base", &base, "--json"]);
        assert_eq!(stats["hash_index_current"], false, "{name}: {stats}");
        match stats_problem {
            Some(p) => {
                assert!(stats["unique_items"].is_null(), "{name}: {stats}");
                assert!(
                    stats["hash_index"]["problem"].as_str().unwrap().contains(p),
                    "{name}: {stats}"
                );
            }
            None => assert!(
                stats["hash_index"]["stale_reason"]
                    .as_str()
                    .unwrap()
                    .contains("records no snapshot"),
                "{name}: {stats}"
            ),
        }
        let (ok, report) = verify(&base);
        assert!(!ok, "{name}");
        assert!(
            report["problem"]
                .as_str()
                .unwrap_or("")
                .contains(verify_problem),
            "{name}: {report}"
        );
        let rebuilt = ecops_json(&["index", "rebuild", "--base", &base, "--json"]);
        assert_eq!(rebuilt["rows"], 150, "{name}: {rebuilt}");
        let (ok, report) = verify(&base);
        assert!(ok, "{name}: {report}");
    }
}

#[test]
fn a_full_mode_ingest_resets_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let a = demo(&tmp.path().join("a"), 120, 6);
    let b = demo(&tmp.path().join("b"), 80, 7);
    let base = tmp.path().join("cat").to_string_lossy().into_owned();
    ingest(&base, &a, &tmp.path().join("a/items"), "a", "100", &[]);
    let full = ingest(
        &base,
        &b,
        &tmp.path().join("b/items"),
        "b",
        "100",
        &["--mode", "full"],
    );
    assert_eq!(full["items"], 80);
    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(
        stats["unique_items"], 80,
        "only the new table's ids: {stats}"
    );
    assert_eq!(stats["hash_index_current"], true);
    let (ok, report) = verify(&base);
    assert!(ok, "{report}");
}

#[test]
fn upgrade_catalog_moves_a_v0_catalog_to_v1_and_leaves_others_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = earthcatalog_fixture();
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for name in ["earthcatalog.db", ".lock"] {
        std::fs::copy(fixture.join(name), copy.join(name)).unwrap();
    }
    let base = copy.to_string_lossy().into_owned();
    let info = ecops_json(&["info", "--base", &base, "--json"]);
    assert_eq!(info["catalog_schema"], "v0");
    let db_before = std::fs::read(copy.join("earthcatalog.db")).unwrap();
    // Reading (info, stats, query) changes nothing.
    ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(
        std::fs::read(copy.join("earthcatalog.db")).unwrap(),
        db_before
    );
    // earthcatalog's own lock is on it (stale): upgrading is a write, so it is refused…
    let out = ecops(&["upgrade-catalog", "--base", &base]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("backfill"),
        "names the holder"
    );
    let stolen = ecops_json(&["lock", "steal", "--yes", "--base", &base, "--json"]);
    let nonce = stolen["nonce"].as_str().unwrap();
    ecops_json(&[
        "lock", "release", "--base", &base, "--nonce", nonce, "--json",
    ]);
    // …and done once the lock is ours to take.
    let up = ecops_json(&["upgrade-catalog", "--base", &base, "--json"]);
    assert_eq!(
        (
            up["changed"].as_bool(),
            up["before"].as_str(),
            up["after"].as_str()
        ),
        (Some(true), Some("v0"), Some("v1"))
    );
    let again = ecops_json(&["upgrade-catalog", "--base", &base, "--json"]);
    assert_eq!(again["changed"], false);
    let stats = ecops_json(&["stats", "--base", &base, "--json"]);
    assert_eq!(stats["rows"], 490);
    if let Some(py) = python() {
        let seen = run_python(&py, "read_catalog.py", &[&base]);
        assert_eq!(seen["v0_warning"], false);
        assert_eq!(seen["rows"], 490);
        let original = run_python(&py, "read_catalog.py", &[s(&fixture)]);
        assert_eq!(original["v0_warning"], true, "the fixture itself stays v0");
    }
}
