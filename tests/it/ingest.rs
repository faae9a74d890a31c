//! `ecops ingest` end to end on earthcatalog's own inputs (tests/fixtures):
//! every inventory format, `--since`, dead letters and their retry, a
//! truncated inventory, resume after kill -9, an HTTP items root with
//! injected faults, and S3 for inventory, items and catalog.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{catalog_rows, earthcatalog_fixture, ecops_with, s3_base, s3_endpoint};
use ecops::catalog::{EarthCatalog, OpenOptions};
use serde_json::Value;

/// The fixture's inputs: items/ and inventory/ as earthcatalog used them.
pub(crate) fn inputs() -> PathBuf {
    earthcatalog_fixture()
        .parent()
        .unwrap()
        .join("earthcatalog-0.5.1-inputs")
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs ingest with `--json`; returns (exit code, summary).
pub(crate) fn ingest(args: &[&str], envs: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["ingest", "--json"];
    all.extend_from_slice(args);
    let out = ecops_with(&all, envs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let json = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The rows an ingest of `keys` must produce, computed from the item files
/// with the library's parser and grid (one row per item per cell).
pub(crate) fn expected_rows(items_dir: &Path, keys: &[String]) -> BTreeMap<(String, String), u32> {
    let res = ecops::grid::resolution(1).unwrap();
    let mut rows = BTreeMap::new();
    for key in keys {
        let item =
            ecops::stac::item::parse_item(&std::fs::read(items_dir.join(key)).unwrap()).unwrap();
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
    rows
}

/// (key, last_modified) of an AWS inventory CSV, read independently of ecops.
pub(crate) fn csv_rows(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(|f| f.trim_matches('"')).collect();
            (f[1].to_string(), f[3].to_string())
        })
        .collect()
}

/// Every dead letter of a local catalog, and the objects holding them.
pub(crate) async fn dead_letters(
    base: &Path,
) -> (
    Vec<ecops::ingest::dead_letter::DeadLetter>,
    Vec<object_store::path::Path>,
) {
    let location = ecops::store::Location::parse(s(base)).unwrap();
    let store = ecops::store::open_location(&location, &Default::default()).unwrap();
    ecops::ingest::dead_letter::read_all(&store, None)
        .await
        .unwrap()
}

fn local() -> OpenOptions {
    OpenOptions::default()
}

#[tokio::test]
async fn every_inventory_format_gives_the_same_rows() {
    let inputs = inputs();
    let items = inputs.join("items");
    let tmp = tempfile::tempdir().unwrap();
    let keys: Vec<String> = csv_rows(&inputs.join("inventory/full.csv"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let expected = expected_rows(&items, &keys);

    // gzip and a two-part manifest made here from the CSV.
    let gz = tmp.path().join("full.csv.gz");
    let csv = std::fs::read(inputs.join("inventory/full.csv")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&csv).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let manifest_dir = tmp.path().join("manifest");
    std::fs::create_dir_all(manifest_dir.join("data")).unwrap();
    let mut files = vec![];
    for (i, part) in lines.chunks(lines.len() / 2 + 1).enumerate() {
        let key = format!("data/part-{i}.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all((part.join("\n") + "\n").as_bytes()).unwrap();
        let bytes = enc.finish().unwrap();
        std::fs::write(manifest_dir.join(&key), &bytes).unwrap();
        files.push(serde_json::json!({"key": key, "size": bytes.len(), "MD5checksum": "x"}));
    }
    let manifest = manifest_dir.join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::json!({"sourceBucket": "its-live-synth", "destinationBucket": "arn:aws:s3:::inv",
            "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate", "files": files})
        .to_string(),
    )
    .unwrap();

    let sources = [
        inputs.join("inventory/full.csv"),
        inputs.join("inventory/full_header.csv"),
        inputs.join("inventory/full.parquet"),
        gz,
        manifest,
    ];
    for (i, inventory) in sources.iter().enumerate() {
        let base = tmp.path().join(format!("cat-{i}"));
        let (code, summary) = ingest(
            &[
                "--base",
                s(&base),
                "--inventory",
                s(inventory),
                "--items-root",
                s(&items),
                "--chunk-size",
                "64",
            ],
            &[],
        );
        assert_eq!(code, 0, "{inventory:?}: {summary}");
        assert_eq!(summary["items"], keys.len(), "{inventory:?}");
        assert_eq!(summary["failed"], 0);
        assert_eq!(summary["commits"], keys.len().div_ceil(64), "{inventory:?}");
        let rows = catalog_rows(s(&base), &local()).await;
        assert_eq!(rows, expected, "rows from {inventory:?}");
        // The MultiPolygon (antimeridian) item earthcatalog drops is here.
        let ids: std::collections::BTreeSet<_> = rows.keys().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), 300, "distinct ids from {inventory:?}");
    }
}

#[test]
fn since_keeps_rows_modified_at_or_after_it() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let cutoff = "2026-01-02";
    let newer = csv_rows(&inputs.join("inventory/full.csv"))
        .iter()
        .filter(|(_, d)| d.as_str() >= cutoff)
        .count();
    assert!(newer > 0 && newer < 303);
    for inventory in ["full.csv", "full.parquet"] {
        let (code, summary) = ingest(
            &[
                "--base",
                s(&tmp.path().join(inventory)),
                "--inventory",
                s(&inputs.join("inventory").join(inventory)),
                "--items-root",
                s(&inputs.join("items")),
                "--since",
                cutoff,
            ],
            &[],
        );
        assert_eq!(code, 0);
        assert_eq!(summary["items"], newer, "{inventory}");
        assert_eq!(summary["skipped_since"], 303 - newer as u64, "{inventory}");
    }
}

/// Items dir with the fixture's first `n` items plus deliberately bad ones.
fn items_with_bad_ones(dir: &Path, n: usize) -> (PathBuf, Vec<(String, &'static str)>) {
    let inputs = inputs();
    let items = dir.join("items");
    let mut inventory = String::from("Bucket,Key,Size,Last_Modified_Date\n");
    for (key, date) in csv_rows(&inputs.join("inventory/initial.csv"))
        .into_iter()
        .take(n)
    {
        let target = items.join(&key);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(inputs.join("items").join(&key), &target).unwrap();
        inventory += &format!("b,{key},1,{date}\n");
    }
    let good = std::fs::read_to_string(
        inputs
            .join("items")
            .join(&csv_rows(&inputs.join("inventory/initial.csv"))[0].0),
    )
    .unwrap();
    let mut value: Value = serde_json::from_str(&good).unwrap();
    let variant = |id: &str, f: &dyn Fn(&mut Value)| {
        let mut v = value.clone();
        v["id"] = Value::from(id);
        f(&mut v);
        v.to_string()
    };
    let bad: Vec<(String, String, &'static str)> = vec![
        (
            "bad/not-json.stac.json".into(),
            "{ this is not json".into(),
            "parse",
        ),
        (
            "bad/no-id.stac.json".into(),
            variant("x", &|v| {
                v.as_object_mut().unwrap().remove("id");
            }),
            "parse",
        ),
        (
            "bad/bad-date.stac.json".into(),
            variant("bad-date", &|v| {
                v["properties"]["datetime"] = "31/12/2020".into()
            }),
            "parse",
        ),
        (
            "bad/bowtie.stac.json".into(),
            variant("bowtie", &|v| {
                v["geometry"] = serde_json::json!({"type": "Polygon", "coordinates": [[[0,0],[2,2],[2,0],[0,2],[0,0]]]});
                v["bbox"] = serde_json::json!([0, 0, 2, 2]);
            }),
            "parse",
        ),
        ("bad/missing.stac.json".into(), String::new(), "fetch"),
        ("../escape.stac.json".into(), String::new(), "fetch"),
    ];
    value["id"] = Value::from("unused");
    for (key, body, _) in &bad {
        if !body.is_empty() {
            let p = items.join(key);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        inventory += &format!("b,{key},1,2026-01-01T00:00:00Z\n");
    }
    inventory += "only-one-field\n";
    std::fs::write(dir.join("inventory.csv"), inventory).unwrap();
    (
        items,
        bad.into_iter().map(|(k, _, stage)| (k, stage)).collect(),
    )
}

#[tokio::test]
async fn bad_items_are_dead_lettered_and_can_be_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let (items, bad) = items_with_bad_ones(tmp.path(), 20);
    let base = tmp.path().join("cat");
    let inv = tmp.path().join("inventory.csv");
    let args = [
        "--base",
        s(&base),
        "--inventory",
        s(&inv),
        "--items-root",
        s(&items),
    ];
    let (code, summary) = ingest(&args, &[]);
    assert_eq!(code, 3, "some items failed: {summary}");
    assert_eq!(summary["items"], 20 + bad.len() as u64);
    assert_eq!(
        summary["failed"],
        bad.len() as u64 + 1,
        "bad items + the short row"
    );
    assert_eq!(summary["complete"], true);

    let (letters, objects) = dead_letters(&base).await;
    assert!(!objects.is_empty());
    for (key, stage) in &bad {
        let letter = letters
            .iter()
            .find(|l| l.key.as_deref() == Some(key.as_str()))
            .unwrap_or_else(|| panic!("no dead letter for {key}"));
        assert_eq!(
            serde_json::to_value(letter.stage).unwrap(),
            *stage,
            "{key}: {}",
            letter.reason
        );
        assert!(!letter.reason.is_empty());
    }
    assert!(
        letters
            .iter()
            .any(|l| l.key.is_none() && l.reason.contains("field"))
    );
    assert!(!tmp.path().join("escape.stac.json").exists());
    let rows_before = catalog_rows(s(&base), &local()).await;

    // Repair one item and retry just the dead letters.
    let first_key = &csv_rows(&inputs().join("inventory/initial.csv"))[30].0;
    std::fs::copy(
        inputs().join("items").join(first_key),
        items.join("bad/missing.stac.json"),
    )
    .unwrap();
    let (code, retry) = ingest(&["--base", s(&base), "--retry-dead-letters"], &[]);
    assert_eq!(code, 3, "the others still fail: {retry}");
    assert_eq!(retry["failed"], bad.len() as u64, "{retry}");
    let rows_after = catalog_rows(s(&base), &local()).await;
    let added: Vec<_> = rows_after
        .keys()
        .filter(|k| !rows_before.contains_key(*k))
        .collect();
    assert!(!added.is_empty(), "the repaired item was ingested");
    let (letters, _) = dead_letters(&base).await;
    assert_eq!(
        letters.len(),
        bad.len(),
        "old records replaced by the retry's: {letters:?}"
    );
    assert!(
        letters
            .iter()
            .all(|l| l.key.as_deref() != Some("bad/missing.stac.json"))
    );
}

#[test]
fn a_truncated_inventory_keeps_the_rows_before_the_damage() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let csv = std::fs::read(inputs.join("inventory/full.csv")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&csv).unwrap();
    let gz = enc.finish().unwrap();
    let cut = tmp.path().join("cut.csv.gz");
    std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
    let base = tmp.path().join("cat");
    let (code, summary) = ingest(
        &[
            "--base",
            s(&base),
            "--inventory",
            s(&cut),
            "--items-root",
            s(&inputs.join("items")),
            "--chunk-size",
            "50",
        ],
        &[],
    );
    assert_eq!(code, 1, "{summary}");
    let error = summary["error"].as_str().unwrap();
    assert!(error.contains("line"), "{error}");
    let items = summary["items"].as_u64().unwrap();
    assert!(items > 50 && items < 303, "{summary}");
    assert!(summary["rows"].as_u64().unwrap() > 0);
    assert_eq!(summary["complete"], false);
}

/// Snapshots committed so far, read from the SQLite catalog like any reader.
pub(crate) fn commits(base: &Path) -> usize {
    let db = base.join("earthcatalog.db");
    if !db.exists() {
        return 0;
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    let Ok(loc) = conn.query_row("SELECT metadata_location FROM iceberg_tables", [], |r| {
        r.get::<_, String>(0)
    }) else {
        return 0;
    };
    std::fs::read_to_string(loc)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|m| m["snapshots"].as_array().map(Vec::len))
        .unwrap_or(0)
}

fn parquet_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                parquet_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

#[tokio::test]
async fn resume_after_kill_9_equals_an_uninterrupted_run() {
    let inputs = inputs();
    let items = inputs.join("items");
    let inv = inputs.join("inventory/full.csv");
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    let (code, _) = ingest(
        &[
            "--base",
            s(&reference),
            "--inventory",
            s(&inv),
            "--items-root",
            s(&items),
            "--chunk-size",
            "25",
        ],
        &[],
    );
    assert_eq!(code, 0);

    let base = tmp.path().join("killed");
    // Kill twice: once between commits, once after a chunk's files are written but before its commit.
    for (round, wait_for) in [(0, 2usize), (1, 5usize)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecops"))
            .args([
                "ingest",
                "--json",
                "--base",
                s(&base),
                "--inventory",
                s(&inv),
                "--items-root",
                s(&items),
                "--chunk-size",
                "25",
            ])
            .env_remove("ECOPS_BASE")
            .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", "400")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while commits(&base) < wait_for {
            assert!(Instant::now() < deadline, "no progress in round {round}");
            assert!(
                child.try_wait().unwrap().is_none(),
                "finished before it could be killed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if round == 1 {
            // Wait until the next chunk's files are on disk, uncommitted.
            let committed_files = ecops::catalog::stats::live_files(
                &EarthCatalog::open(s(&base), &local())
                    .await
                    .unwrap()
                    .table()
                    .await
                    .unwrap(),
            )
            .await
            .unwrap()
            .len();
            let deadline = Instant::now() + Duration::from_secs(30);
            while parquet_files(&base.join("warehouse")) <= committed_files {
                assert!(Instant::now() < deadline, "no uncommitted files appeared");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let (code, summary) = ingest(
        &[
            "--base",
            s(&base),
            "--inventory",
            s(&inv),
            "--items-root",
            s(&items),
            "--chunk-size",
            "25",
        ],
        &[],
    );
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary["resumed_from"].as_u64().unwrap() >= 25 * 5,
        "{summary}"
    );
    assert_eq!(summary["complete"], true);
    assert_eq!(
        catalog_rows(s(&base), &local()).await,
        catalog_rows(s(&reference), &local()).await,
        "resumed catalog differs from the uninterrupted one"
    );
    // Running it again does nothing: the job is complete.
    let (code, again) = ingest(
        &[
            "--base",
            s(&base),
            "--inventory",
            s(&inv),
            "--items-root",
            s(&items),
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(again["already_complete"], true);
    assert_eq!(again["rows"], 0);
}

#[tokio::test]
async fn http_items_root_retries_5xx_and_dead_letters_what_keeps_failing() {
    let inputs = inputs();
    let items = inputs.join("items");
    let tmp = tempfile::tempdir().unwrap();
    let keys: Vec<String> = csv_rows(&inputs.join("inventory/initial.csv"))
        .into_iter()
        .take(40)
        .map(|(k, _)| k)
        .collect();
    let broken = &keys[7];
    let server = ecops::testkit::http_server::HttpServer::start(
        items.clone(),
        ecops::testkit::http_server::Faults {
            unavailable_first: 2,
            always_fail: Some(broken.rsplit('/').next().unwrap().to_string()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let inv = tmp.path().join("inv.csv");
    std::fs::write(
        &inv,
        keys.iter()
            .map(|k| format!("\"b\",\"{k}\",\"1\",\"2025-01-01T00:00:00.000Z\"\n"))
            .collect::<String>(),
    )
    .unwrap();
    let base = tmp.path().join("cat");
    let url = server.url();
    let out = tokio::task::spawn_blocking({
        let (base, inv) = (base.clone(), inv.clone());
        move || {
            ingest(
                &[
                    "--base",
                    s(&base),
                    "--inventory",
                    s(&inv),
                    "--items-root",
                    &url,
                    "--attempts",
                    "4",
                ],
                &[],
            )
        }
    })
    .await
    .unwrap();
    let (code, summary) = out;
    assert_eq!(code, 3, "{summary}");
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["fetched"], 39);
    assert_eq!(
        server.requests_for(&format!("/{}", keys[0])),
        3,
        "two 503s, then 200"
    );
    assert_eq!(
        server.requests_for(&format!("/{broken}")),
        4,
        "every attempt used"
    );
    let mut expected = expected_rows(&items, &keys);
    let broken_id = broken
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".stac.json");
    expected.retain(|(id, _), _| id != broken_id);
    assert_eq!(catalog_rows(s(&base), &local()).await, expected);
}

#[tokio::test]
async fn s3_inventory_items_and_catalog() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    use object_store::ObjectStoreExt;
    let inputs = inputs();
    let prefix = s3_base("ingest");
    let loc = ecops::store::Location::parse(&prefix).unwrap();
    let s3 = ecops::store::S3Options {
        endpoint: Some(endpoint.clone()),
        anonymous: false,
    };
    let store = ecops::store::open_location(&loc, &s3).unwrap();
    let keys: Vec<(String, String)> = csv_rows(&inputs.join("inventory/full.csv"))
        .into_iter()
        .take(60)
        .collect();
    for (key, _) in &keys {
        let body = std::fs::read(inputs.join("items").join(key)).unwrap();
        store
            .object_store()
            .put(&store.key(&format!("items/{key}")), body.into())
            .await
            .unwrap();
    }
    // A CSV inventory part listed by a manifest on S3, as AWS writes them.
    // Rows name the items' real bucket and key: fetched from s3://<bucket>/<key>.
    let ecops::store::Location::S3 {
        bucket,
        prefix: key_prefix,
    } = &loc
    else {
        unreachable!()
    };
    let csv: String = keys
        .iter()
        .map(|(k, d)| format!("\"{bucket}\",\"{key_prefix}/items/{k}\",\"1\",\"{d}\"\n"))
        .collect();
    store
        .object_store()
        .put(&store.key("inv/data/part-0.csv"), csv.into_bytes().into())
        .await
        .unwrap();
    let manifest = serde_json::json!({"sourceBucket": "b", "destinationBucket": format!("arn:aws:s3:::{bucket}"),
        "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate",
        "files": [{"key": format!("{key_prefix}/inv/data/part-0.csv"), "size": 1, "MD5checksum": "x"}]});
    store
        .object_store()
        .put(
            &store.key("inv/manifest.json"),
            manifest.to_string().into_bytes().into(),
        )
        .await
        .unwrap();

    let base = format!("{prefix}/catalog");
    let manifest_uri = format!("{prefix}/inv/manifest.json");
    let (code, summary) = tokio::task::spawn_blocking({
        let (base, m, e) = (base.clone(), manifest_uri.clone(), endpoint.clone());
        move || {
            ingest(
                &["--base", &base, "--inventory", &m, "--chunk-size", "25"],
                &[("AWS_ENDPOINT_URL", &e)],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["items"], 60);
    assert_eq!(summary["commits"], 3);
    let opts = OpenOptions {
        read_only: true,
        s3,
        ..Default::default()
    };
    let key_list: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        catalog_rows(&base, &opts).await,
        expected_rows(&inputs.join("items"), &key_list)
    );
}

/// CSV (AWS, no header), CSV with a header, CSV.gz and Parquet inventories
/// read from s3:// URLs, items fetched from an S3 mirror (`--items-root`), into
/// a local catalog: each gives exactly the rows the items make.
#[tokio::test]
async fn s3_inventories_in_every_format_with_an_s3_items_root() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let inputs = inputs();
    let prefix = s3_base("ingest-formats");
    let s3 = ecops::store::S3Options {
        endpoint: Some(endpoint.clone()),
        anonymous: false,
    };
    let store =
        ecops::store::open_location(&ecops::store::Location::parse(&prefix).unwrap(), &s3).unwrap();
    let keys: Vec<String> = csv_rows(&inputs.join("inventory/full.csv"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    futures::stream::iter(keys.iter())
        .map(|key| {
            let (store, body) = (
                store.clone(),
                std::fs::read(inputs.join("items").join(key)).unwrap(),
            );
            async move {
                store
                    .object_store()
                    .put(&store.key(&format!("items/{key}")), body.into())
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let csv = std::fs::read(inputs.join("inventory/full.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv).unwrap();
    let inventories: Vec<(&str, Vec<u8>)> = vec![
        ("full.csv", csv.clone()),
        (
            "full_header.csv",
            std::fs::read(inputs.join("inventory/full_header.csv")).unwrap(),
        ),
        ("full.csv.gz", gz.finish().unwrap()),
        (
            "full.parquet",
            std::fs::read(inputs.join("inventory/full.parquet")).unwrap(),
        ),
    ];
    let expected = expected_rows(&inputs.join("items"), &keys);
    let tmp = tempfile::tempdir().unwrap();
    for (name, body) in inventories {
        store
            .object_store()
            .put(&store.key(&format!("inv/{name}")), body.into())
            .await
            .unwrap();
        let base = tmp.path().join(name.replace('.', "_"));
        let (inventory, items_root) = (format!("{prefix}/inv/{name}"), format!("{prefix}/items"));
        let (code, summary) = tokio::task::spawn_blocking({
            let (base, e) = (base.clone(), endpoint.clone());
            move || {
                ingest(
                    &[
                        "--base",
                        s(&base),
                        "--inventory",
                        &inventory,
                        "--items-root",
                        &items_root,
                        "--chunk-size",
                        "100",
                    ],
                    &[("AWS_ENDPOINT_URL", &e)],
                )
            }
        })
        .await
        .unwrap();
        assert_eq!(code, 0, "{name}: {summary}");
        assert_eq!(summary["items"], keys.len(), "{name}");
        assert_eq!(summary["failed"], 0, "{name}");
        assert_eq!(
            catalog_rows(s(&base), &local()).await,
            expected,
            "{name}: rows differ from the items'"
        );
    }
}

#[tokio::test]
async fn ingest_refuses_a_held_lock_and_changes_nothing() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("cat");
    assert!(
        ecops_with(&["init", "--base", s(&base)], &[])
            .status
            .success()
    );
    let store = ecops::store::open_location(
        &ecops::store::Location::parse(s(&base)).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let lease = ecops::lock::Lease::acquire(
        &store,
        ecops::lock::LeaseOptions::manual("maintenance-window", Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let (inv, items) = (inputs.join("inventory/full.csv"), inputs.join("items"));
    let args = [
        "ingest",
        "--base",
        s(&base),
        "--inventory",
        s(&inv),
        "--items-root",
        s(&items),
    ];
    let out = ecops_with(&args, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("held by") && stderr.contains("maintenance-window"),
        "{stderr}"
    );
    assert_eq!(
        commits(&base),
        0,
        "nothing committed while the lock was held"
    );

    lease.release().await.unwrap();
    let out = ecops_with(&args, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(commits(&base) > 0);
}

/// Arguments that can be checked cheaply are checked before a missing catalog
/// is created: a mistyped inventory path or date leaves nothing behind.
#[test]
fn bad_arguments_create_no_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("catalog");
    let inventory = inputs().join("inventory/full.csv");
    let missing = tmp.path().join("missing.csv");
    let cases: [(&[&str], &str); 2] = [
        (&["--inventory", s(&missing)], "no such file"),
        (
            &["--inventory", s(&inventory), "--since", "yesterday"],
            "--since",
        ),
    ];
    for (args, says) in cases {
        let (code, summary) = ingest(&[&["--base", s(&base)][..], args].concat(), &[]);
        assert_eq!(code, 1, "{summary}");
        assert!(
            summary["error"].as_str().unwrap_or_default().contains(says),
            "{summary}"
        );
        assert!(!base.exists(), "a catalog was created for {args:?}");
    }
}

/// The HTTP server holding the items goes away mid-ingest: the job stops at
/// its last commit with "items source unreachable" and exit code 1, without
/// dead-lettering the items it never reached; with the server back, the
/// same command resumes and the table is the full one.
#[tokio::test]
async fn a_source_outage_stops_the_ingest_and_the_rerun_resumes() {
    use ecops::testkit::http_server::{Faults, HttpServer};
    let inputs = inputs();
    let items = inputs.join("items");
    let tmp = tempfile::tempdir().unwrap();
    let keys: Vec<String> = csv_rows(&inputs.join("inventory/full.csv"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let faults = Faults {
        latency: Some(Duration::from_millis(10)),
        ..Default::default()
    };
    let server = HttpServer::start(items.clone(), faults.clone())
        .await
        .unwrap();
    let (addr, url) = (server.addr, server.url());
    let base = tmp.path().join("cat");
    let inv = inputs.join("inventory/full.csv");
    let args = [
        "ingest",
        "--json",
        "--base",
        s(&base),
        "--inventory",
        s(&inv),
        "--items-root",
        &url,
        "--chunk-size",
        "20",
        "--concurrency",
        "2",
        "--attempts",
        "2",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args(args)
        .env_remove("ECOPS_BASE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.total_requests() < 120 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(server.total_requests() >= 120, "the ingest never got going");
    drop(server);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_eq!(out.status.code(), Some(1), "{summary}");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("items source unreachable: connection refused"),
        "{summary}"
    );
    let letters = dead_letter_reasons(summary["dead_letters"].as_str().unwrap_or_default());
    assert_eq!(
        summary["failed"], 0,
        "unreached items were dead-lettered: {letters:?}\n{summary}"
    );
    assert_eq!(summary["complete"], false);
    let committed = summary["position"].as_u64().unwrap();
    assert!(committed < keys.len() as u64, "{summary}");

    let back = HttpServer::start_on(addr, items.clone(), faults)
        .await
        .unwrap();
    let rest: Vec<String> = args[2..].iter().map(|a| a.to_string()).collect();
    let (code, rerun) = tokio::task::spawn_blocking(move || {
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        ingest(&rest, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{rerun}");
    assert_eq!(rerun["complete"], true);
    assert_eq!(rerun["resumed_from"].as_u64(), Some(committed), "{rerun}");
    assert!(back.total_requests() as usize <= keys.len() - committed as usize + 4);
    assert_eq!(
        catalog_rows(s(&base), &local()).await,
        expected_rows(&items, &keys),
        "the resumed table differs from the source's items"
    );
}

/// The reasons recorded in a dead-letter folder (for failure messages).
fn dead_letter_reasons(dir: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .map(|v| v["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}
