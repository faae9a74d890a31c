//! The hostile input corpus (tests/data/hostile, written by
//! scripts/make_hostile_corpus.py): malformed and bomb-like JSON, bad
//! encodings, bad STAC, bad geometries and datetimes, hostile inventory rows,
//! gzip bombs, truncated and corrupt gzip, manifests pointing outside.
//!
//! Every run is the real `ecops` binary on a copy of the corpus in a fresh
//! sandbox (its working directory, HOME and TMPDIR inside the sandbox too),
//! so a write anywhere but the catalog folder shows up in the sandbox tree.
//! Expected outcomes come from `cases.json`, which the script writes from
//! the same table as the corpus.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ecops::catalog::OpenOptions;
use ecops::ingest::dead_letter::DeadLetter;
use serde_json::Value;

const MIB: u64 = 1024 * 1024;
/// Peak RSS allowed for any run on the corpus.
const RSS_LIMIT: u64 = 600 * MIB;
/// A run still going after this is hung (a guard against endless loops on
/// hostile input, not a speed check: speed lives in the benches, and a debug
/// build on a loaded 2-core machine needs over a minute for the bomb).
const TIME_LIMIT: Duration = Duration::from_secs(300);

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile")
}

fn meta() -> Value {
    serde_json::from_slice(&std::fs::read(corpus().join("cases.json")).expect("cases.json"))
        .expect("cases.json is JSON")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A sandbox: the corpus copied in, a catalog base four folders down (so a
/// path escaping the base by `../..` still lands inside the sandbox), and
/// empty HOME, TMPDIR and working directory for the child.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&corpus(), &dir.path().join("corpus"));
        for d in ["home", "tmp", "cwd", "d1/d2/d3"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Sandbox { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn corpus(&self) -> PathBuf {
        self.root().join("corpus")
    }

    fn base(&self) -> PathBuf {
        self.root().join("d1/d2/d3/catalog")
    }

    /// Runs `ecops ingest --json --base <base> ARGS`; returns (exit code,
    /// summary, stderr, wall time).
    fn ingest(&self, args: &[&str]) -> (i32, Value, String, Duration) {
        let (code, stdout, stderr, took) = self.run(args);
        let last = stdout.lines().last().unwrap_or_default();
        let json = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
        (code, json, stderr, took)
    }

    /// Runs `ecops ingest --json --base <base> ARGS` for an error before any
    /// row is read; returns (exit code, stderr).
    fn ingest_fails(&self, args: &[&str]) -> (i32, String) {
        let (code, stdout, stderr, _) = self.run(args);
        // No summary: just the error, as one JSON line (--json), said on stderr too.
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {stdout}");
        let json: Value = serde_json::from_str(lines[0]).expect("JSON error line");
        assert!(json.get("items").is_none(), "no summary expected: {stdout}");
        let error = json["error"].as_str().expect("an error");
        assert!(stderr.contains(error), "{stderr}");
        (code, stderr)
    }

    fn run(&self, args: &[&str]) -> (i32, String, String, Duration) {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_ecops"))
            .args(["ingest", "--json", "--base", s(&self.base())])
            .args(args)
            .current_dir(self.root().join("cwd"))
            .env_remove("ECOPS_BASE")
            .env_remove("ECOPS_CACHE_DIR")
            .env("HOME", self.root().join("home"))
            .env("TMPDIR", self.root().join("tmp"))
            .output()
            .expect("run ecops");
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code().unwrap_or(-1);
        assert_ne!(code, 101, "ecops panicked: {stderr}");
        assert!(!stderr.contains("panicked"), "ecops panicked: {stderr}");
        assert!(code >= 0, "ecops was killed by a signal: {stderr}");
        (code, stdout.into_owned(), stderr, took)
    }

    /// Every file and folder of the sandbox with a digest of its content.
    fn tree(&self) -> BTreeMap<PathBuf, u64> {
        let mut out = BTreeMap::new();
        walk(self.root(), self.root(), &mut out);
        out
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        let location = ecops::store::Location::parse(s(&self.base())).unwrap();
        let store = ecops::store::open_location(&location, &Default::default()).unwrap();
        ecops::ingest::dead_letter::read_all(&store, None)
            .await
            .unwrap()
            .0
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, u64>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.insert(rel, 0);
            walk(root, &path, out);
        } else {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            kind.is_symlink().hash(&mut h);
            std::fs::read(&path).unwrap_or_default().hash(&mut h);
            out.insert(rel, h.finish());
        }
    }
}

/// Asserts that only paths below `base` (relative to the sandbox) changed.
fn only_base_changed(before: &BTreeMap<PathBuf, u64>, after: &BTreeMap<PathBuf, u64>, base: &Path) {
    let outside = |m: &BTreeMap<PathBuf, u64>| -> BTreeMap<PathBuf, u64> {
        m.iter()
            .filter(|(p, _)| !p.starts_with(base))
            .map(|(p, h)| (p.clone(), *h))
            .collect()
    };
    let (b, a) = (outside(before), outside(after));
    let appeared: Vec<_> = a.keys().filter(|p| !b.contains_key(*p)).collect();
    let vanished: Vec<_> = b.keys().filter(|p| !a.contains_key(*p)).collect();
    let changed: Vec<_> = a
        .iter()
        .filter(|(p, h)| b.get(*p).is_some_and(|old| old != *h))
        .map(|(p, _)| p)
        .collect();
    assert!(
        appeared.is_empty() && vanished.is_empty() && changed.is_empty(),
        "outside the catalog: appeared {appeared:?}, vanished {vanished:?}, changed {changed:?}"
    );
}

/// Every path below the base belongs to a catalog (README "Layout of a catalog").
fn base_holds_only_catalog_files(after: &BTreeMap<PathBuf, u64>, base: &Path) {
    let known = [
        "earthcatalog.db",
        "warehouse",
        "warehouse_id_hashes.parquet",
        "dead_letters",
        "_ecops",
        ".lock",
    ];
    for path in after.keys().filter(|p| p.starts_with(base)) {
        let rel = path.strip_prefix(base).unwrap();
        let Some(first) = rel.components().next() else {
            continue;
        };
        let first = first.as_os_str().to_string_lossy();
        assert!(
            // `.lock` comes with `.lock.guard` and `.lock-audit/`.
            known.iter().any(|k| first == *k)
                || first.starts_with(".lock.")
                || first.starts_with(".lock-"),
            "unexpected file in the catalog: {path:?}"
        );
        let text = rel.to_string_lossy();
        assert!(
            !text.contains("outside") && !text.contains("evil") && !text.contains("calc"),
            "an id became a path: {path:?}"
        );
    }
}

/// The rows an item file must produce (one per cell at resolution 1), from
/// the library's parser and grid.
fn expected_rows(path: &Path, rows: &mut BTreeMap<(String, String), u32>) {
    let res = ecops::grid::resolution(1).unwrap();
    let item = ecops::stac::item::parse_item(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{path:?} should be a valid item: {e}"));
    let cells: Vec<String> = match &item.geometry {
        Some(g) => ecops::grid::cells_for(g, res)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect(),
        None => vec!["__none__".into()],
    };
    for cell in cells {
        *rows.entry((item.id.clone(), cell)).or_insert(0) += 1;
    }
}

/// A valid item (the corpus's control polygon) with `edit` applied, as JSON text.
fn control_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(corpus().join("items/controls/ok-polygon.stac.json")).unwrap(),
    )
    .unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// The corpus's generated cases (too big to commit), written into the sandbox.
fn write_generated(items: &Path) {
    let dir = items.join("generated");
    std::fs::create_dir_all(&dir).unwrap();
    let eight = "x".repeat(8 * MIB as usize);
    std::fs::write(
        dir.join("huge-string-8mib.stac.json"),
        control_with(|v| {
            v["id"] = "huge-string".into();
            v["properties"]["notes"] = eight.clone().into();
        }),
    )
    .unwrap();
    std::fs::write(
        dir.join("huge-id-8mib.stac.json"),
        control_with(|v| v["id"] = eight.clone().into()),
    )
    .unwrap();
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn bounded(summary: &Value, what: &str, limit: u64) {
    let peak = u(&summary["peak_rss_bytes"]);
    eprintln!(
        "{what}: peak RSS {} MiB, {:.1} s",
        peak / MIB,
        summary["seconds"].as_f64().unwrap_or_default()
    );
    assert!(
        peak < limit,
        "{what}: peak RSS {} MiB ≥ {} MiB",
        peak / MIB,
        limit / MIB
    );
}

#[tokio::test]
async fn hostile_items_and_rows_are_all_reported() {
    let meta = meta();
    let cases = meta["cases"].as_array().unwrap();
    let sandbox = Sandbox::new();
    let corpus = sandbox.corpus();
    write_generated(&corpus.join("items"));
    let before = sandbox.tree();

    let (code, summary, stderr, took) = sandbox.ingest(&[
        "--inventory",
        s(&corpus.join("inventory.csv")),
        "--items-root",
        s(&corpus.join("items")),
        "--since",
        meta["since"].as_str().unwrap(),
        "--chunk-size",
        "16",
    ]);
    assert_eq!(code, 3, "some items dead-lettered: {summary}\n{stderr}");
    assert!(took < TIME_LIMIT, "took {took:?}");
    assert_eq!(summary["phase"], "done", "{summary}");
    assert_eq!(summary["complete"], true);
    assert!(summary["error"].is_null(), "{summary}");
    bounded(
        &summary,
        "corpus with 8 MiB strings and nesting bombs",
        RSS_LIMIT,
    );

    let expect = |what: &str| {
        cases
            .iter()
            .filter(|c| c["expect"] == what)
            .collect::<Vec<_>>()
    };
    let (dead, ingested) = (expect("dead_letter"), expect("ingested"));
    assert!(dead.len() > 70 && ingested.len() >= 5, "corpus is complete");
    assert_eq!(
        dead.len()
            + ingested.len()
            + expect("skipped_since").len()
            + expect("skipped_suffix").len(),
        cases.len(),
        "every case has an outcome"
    );
    assert_eq!(u(&summary["failed"]), dead.len() as u64, "{summary}");
    assert_eq!(u(&summary["skipped_since"]), 1, "{summary}");
    assert_eq!(u(&summary["skipped_suffix"]), 1, "{summary}");

    // Every hostile case is a dead letter at its position, for its reason.
    let letters = sandbox.dead_letters().await;
    let by_position: BTreeMap<u64, &DeadLetter> = letters.iter().map(|l| (l.position, l)).collect();
    assert_eq!(
        letters.len(),
        dead.len(),
        "one dead letter per hostile case"
    );
    let mut problems = Vec::new();
    for case in &dead {
        let name = case["name"].as_str().unwrap();
        let Some(letter) = by_position.get(&u(&case["position"])) else {
            problems.push(format!("{name}: no dead letter"));
            continue;
        };
        let stage = serde_json::to_value(letter.stage).unwrap();
        if stage != case["stage"] {
            problems.push(format!(
                "{name}: stage {stage}, expected {} ({})",
                case["stage"], letter.reason
            ));
        }
        for keyword in case["keywords"].as_array().unwrap() {
            let keyword = keyword.as_str().unwrap();
            if !letter.reason.contains(keyword) {
                problems.push(format!(
                    "{name}: reason {:?} lacks {keyword:?}",
                    letter.reason
                ));
            }
        }
        if case["stage"] != "inventory"
            && let Some(key) = case["key"].as_str()
            && letter.key.as_deref() != Some(key)
        {
            problems.push(format!("{name}: key {:?}, expected {key:?}", letter.key));
        }
        if letter.reason.len() > 4096 {
            problems.push(format!("{name}: reason of {} bytes", letter.reason.len()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Every accepted case is in the catalog, with exactly its rows; nothing else is.
    let rows = common::catalog_rows(s(&sandbox.base()), &OpenOptions::default()).await;
    let mut expected = BTreeMap::new();
    for case in &ingested {
        assert!(
            !by_position.contains_key(&u(&case["position"])),
            "{} was dead-lettered: {}",
            case["name"],
            by_position[&u(&case["position"])].reason
        );
        expected_rows(
            &corpus.join("items").join(case["key"].as_str().unwrap()),
            &mut expected,
        );
    }
    assert_eq!(
        rows, expected,
        "catalog rows are exactly the accepted items'"
    );
    let ids: BTreeSet<&str> = rows.keys().map(|(id, _)| id.as_str()).collect();
    let wanted: BTreeSet<&str> = ingested.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, wanted);
    assert!(
        !ids.contains(meta["bait_id"].as_str().unwrap()),
        "a traversal key worked"
    );
    let large = rows
        .keys()
        .filter(|(id, _)| id == "control-large-area")
        .count();
    assert!(
        large > 100,
        "the enormous footprint fans out: {large} cells"
    );
    assert_eq!(
        u(&summary["rows"]),
        rows.values().map(|n| *n as u64).sum::<u64>()
    );

    // Nothing was written outside the catalog folder, and inside it only catalog files.
    let after = sandbox.tree();
    let base_rel = Path::new("d1/d2/d3/catalog");
    only_base_changed(&before, &after, base_rel);
    base_holds_only_catalog_files(&after, base_rel);
}

#[test]
fn hostile_gzip_bomb_is_read_in_bounded_memory_and_time() {
    let bomb = &meta()["bomb"];
    let sandbox = Sandbox::new();
    let inventory = sandbox.corpus().join(bomb["file"].as_str().unwrap());
    let compressed = std::fs::metadata(&inventory).unwrap().len();
    let expanded = u(&bomb["bytes"]);
    assert!(
        expanded > 500 * compressed,
        "a bomb: {compressed} → {expanded} bytes"
    );
    let before = sandbox.tree();
    let (code, summary, stderr, took) = sandbox.ingest(&["--inventory", s(&inventory)]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    assert!(took < TIME_LIMIT, "took {took:?}");
    // Read to the end, row by row: every row counted, none an item.
    assert_eq!(u(&summary["position"]), u(&bomb["rows"]), "{summary}");
    assert_eq!(u(&summary["skipped_suffix"]), u(&bomb["rows"]), "{summary}");
    assert_eq!(u(&summary["items"]), 0);
    assert_eq!(u(&summary["failed"]), 0);
    // Streamed: far less memory than the decompressed text.
    bounded(&summary, "gzip bomb", expanded.min(RSS_LIMIT) / 2);
    only_base_changed(&before, &sandbox.tree(), Path::new("d1/d2/d3/catalog"));
}

#[tokio::test]
async fn hostile_giant_line_is_refused_before_it_is_buffered() {
    let giant = &meta()["giant_line"];
    let sandbox = Sandbox::new();
    let inventory = sandbox.corpus().join(giant["file"].as_str().unwrap());
    let (code, summary, stderr, took) = sandbox.ingest(&["--inventory", s(&inventory)]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    assert!(took < TIME_LIMIT, "took {took:?}");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("giant-line.csv.gz line/row 1")
            && error.contains(&format!(
                "longer than {} bytes",
                ecops::ingest::inventory::MAX_CSV_LINE_BYTES
            )),
        "{summary}"
    );
    assert_eq!(u(&summary["items"]), 0);
    // Never holds the line: well under its 64 MiB.
    bounded(&summary, "giant line", u(&giant["bytes"]));
    assert!(sandbox.dead_letters().await.is_empty());
}

#[tokio::test]
async fn hostile_truncated_and_corrupt_gzip_are_clear_errors() {
    let meta = meta();
    let truncated = &meta["truncated"];
    let sandbox = Sandbox::new();
    let corpus = sandbox.corpus();
    let (code, summary, stderr, _) = sandbox.ingest(&[
        "--inventory",
        s(&corpus.join("truncated.csv.gz")),
        "--items-root",
        s(&corpus.join("items")),
    ]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    let error = summary["error"].as_str().unwrap_or_default();
    // The line after the last complete one is where the stream broke off.
    let line = u(&truncated["complete_lines"]) + 1;
    assert!(
        error.contains(&format!("truncated.csv.gz line/row {line}"))
            && error.contains("truncated or corrupt"),
        "{error}"
    );
    // The rows before the damage are committed.
    assert_eq!(
        u(&summary["items"]),
        u(&truncated["items_before_cut"]),
        "{summary}"
    );
    assert_eq!(
        u(&summary["skipped_suffix"]),
        u(&truncated["complete_lines"]) - u(&truncated["items_before_cut"])
    );
    assert_eq!(summary["complete"], false);
    let rows = common::catalog_rows(s(&sandbox.base()), &OpenOptions::default()).await;
    assert_eq!(
        rows.values().map(|n| u64::from(*n)).sum::<u64>(),
        u(&truncated["items_before_cut"]),
        "one row per copy of the control point: {rows:?}"
    );

    let other = Sandbox::new();
    let (code, summary, stderr, _) =
        other.ingest(&["--inventory", s(&other.corpus().join("corrupt.csv.gz"))]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("corrupt.csv.gz line/row 1") && error.contains("corrupt deflate"),
        "{error}"
    );
    assert_eq!(u(&summary["items"]), 0);
}

#[test]
fn hostile_manifests_cannot_reach_outside() {
    let sandbox = Sandbox::new();
    let corpus = sandbox.corpus();
    let before = sandbox.tree();
    // A part key with '..' is refused outright.
    let (code, stderr) =
        sandbox.ingest_fails(&["--inventory", s(&corpus.join("manifest-dot-dot.json"))]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("manifest part key '../../outside/part.csv.gz' contains '..'"),
        "{stderr}"
    );
    // `/etc/passwd` is not below the manifest's folder, nor below an ancestor
    // the key leads back through: not found, never read.
    let (code, stderr) =
        sandbox.ingest_fails(&["--inventory", s(&corpus.join("manifest-absolute.json"))]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("manifest part '/etc/passwd' not found"),
        "{stderr}"
    );
    // A nesting bomb is not a manifest.
    let (code, stderr) =
        sandbox.ingest_fails(&["--inventory", s(&corpus.join("manifest-deep.json"))]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not an S3 Inventory manifest"), "{stderr}");
    only_base_changed(&before, &sandbox.tree(), Path::new("d1/d2/d3/catalog"));
}

#[tokio::test]
async fn hostile_huge_geometries_are_too_large() {
    let sandbox = Sandbox::new();
    let items = sandbox.corpus().join("items");
    let dir = items.join("generated");
    std::fs::create_dir_all(&dir).unwrap();
    let limit = ecops::stac::item::MAX_ITEM_BYTES;

    // 5 000 000 vertices on a circle: a body far above the item limit.
    let mut body = br#"{"type":"Feature","stac_version":"1.0.0","id":"polygon-5m","properties":{"datetime":"2024-01-01T00:00:00Z"},"geometry":{"type":"Polygon","coordinates":[["#.to_vec();
    let n = 5_000_000;
    for i in 0..=n {
        let a = (i % n) as f64 / n as f64 * std::f64::consts::TAU;
        if i > 0 {
            body.push(b',');
        }
        write!(body, "[{:.5},{:.5}]", 10.0 + a.cos(), 59.0 + a.sin()).unwrap();
    }
    body.extend_from_slice(b"]]}}");
    assert!(body.len() > limit);
    std::fs::write(dir.join("polygon-5m.stac.json"), &body).unwrap();
    drop(body);

    // 1 200 000 vertices in under the body limit: the vertex budget stops it.
    let mut body = br#"{"type":"Feature","stac_version":"1.0.0","id":"polygon-1m2","properties":{},"geometry":{"type":"Polygon","coordinates":[["#.to_vec();
    for i in 0..1_200_000 {
        body.extend_from_slice(if i == 0 { b"[0,0]" } else { b",[0,0]" });
    }
    body.extend_from_slice(b"]]}}");
    assert!(body.len() < limit);
    std::fs::write(dir.join("polygon-1m2.stac.json"), &body).unwrap();
    drop(body);

    // A valid item whose body is 17 MiB.
    let seventeen = "y".repeat(17 * MIB as usize);
    std::fs::write(
        dir.join("oversize-body.stac.json"),
        control_with(|v| {
            v["id"] = "oversize".into();
            v["properties"]["notes"] = seventeen.into();
        }),
    )
    .unwrap();

    let cases: [(&str, &str, &str); 3] = [
        (
            "generated/polygon-5m.stac.json",
            "fetch",
            "body larger than",
        ),
        (
            "generated/polygon-1m2.stac.json",
            "parse",
            "more than 1000000 vertices",
        ),
        (
            "generated/oversize-body.stac.json",
            "fetch",
            "body larger than",
        ),
    ];
    let mut inventory = String::from("\"hostile\",\"controls/ok-polygon.stac.json\",\"1\",\"\"\n");
    for (key, _, _) in cases {
        inventory += &format!("\"hostile\",\"{key}\",\"1\",\"\"\n");
    }
    let inv = sandbox.root().join("tmp/huge.csv");
    std::fs::write(&inv, inventory).unwrap();
    let before = sandbox.tree();

    let (code, summary, stderr, took) =
        sandbox.ingest(&["--inventory", s(&inv), "--items-root", s(&items)]);
    assert_eq!(code, 3, "{summary}\n{stderr}");
    assert!(took < TIME_LIMIT, "took {took:?}");
    assert_eq!(u(&summary["failed"]), 3, "{summary}");
    bounded(&summary, "huge geometries", RSS_LIMIT);
    let letters = sandbox.dead_letters().await;
    for (key, stage, keyword) in cases {
        let letter = letters
            .iter()
            .find(|l| l.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no dead letter for {key}: {letters:?}"));
        assert_eq!(serde_json::to_value(letter.stage).unwrap(), stage, "{key}");
        assert!(letter.reason.contains(keyword), "{key}: {}", letter.reason);
    }
    let rows = common::catalog_rows(s(&sandbox.base()), &OpenOptions::default()).await;
    let mut expected = BTreeMap::new();
    expected_rows(&items.join("controls/ok-polygon.stac.json"), &mut expected);
    assert_eq!(rows, expected, "only the control item");
    only_base_changed(&before, &sandbox.tree(), Path::new("d1/d2/d3/catalog"));
}
