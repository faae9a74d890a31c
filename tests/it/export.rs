//! STAC tools read our answers: `ecops export` and `ecops query --format
//! stac-geoparquet` write spec-conformant stac-geoparquet that PyPI's
//! `rustac` and `stac-geoparquet` read back as the very items `--format
//! json` prints; the table's own data files no longer claim the
//! `stac-geoparquet` key (their layout is earthcatalog's JSON columns) but
//! say which layout they follow.

use crate::common;

use std::path::Path;

use common::{ecops, ecops_json, python, run_python};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A catalog of `n` demo items; returns its base.
fn catalog(dir: &Path, n: usize) -> String {
    let data = dir.join("data");
    let out = ecops(&["demo-data", "--items", &n.to_string(), "--out", s(&data)]);
    assert!(out.status.success());
    let base = dir.join("catalog").to_string_lossy().into_owned();
    ecops_json(&[
        "ingest",
        "--json",
        "--base",
        &base,
        "--inventory",
        s(&data.join("inventory/inventory.csv")),
        "--items-root",
        s(&data.join("items")),
        "--chunk-size",
        "200",
    ]);
    base
}

/// `ecops query --format json` with `args`, saved to `path`; returns the items.
fn query_json(base: &str, args: &[&str], path: &Path) -> Vec<Value> {
    let mut all = vec!["query", "--base", base, "--format", "json"];
    all.extend_from_slice(args);
    let out = ecops(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(path, &out.stdout).unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn readers_agree(py: &str, parquet: &Path, json: &Path, expected: usize) {
    let seen = run_python(py, "read_stac_geoparquet.py", &[s(parquet), s(json)]);
    assert_eq!(seen["expected"], expected, "{seen}");
    for reader in ["rustac", "stac_geoparquet"] {
        let r = &seen[reader];
        assert_eq!(r["items"], expected, "{reader}: {r}");
        assert_eq!(r["differ"], 0, "{reader}: {r}");
        assert!(r["missing"].as_array().unwrap().is_empty(), "{reader}: {r}");
        assert!(r["extra"].as_array().unwrap().is_empty(), "{reader}: {r}");
    }
    assert_eq!(seen["stac_geoparquet_key"]["version"], "1.0.0");
    assert_eq!(seen["geo_primary"], "geometry");
    assert_eq!(
        seen["bbox_type"],
        "struct<xmin: double, ymin: double, xmax: double, ymax: double>"
    );
}

#[test]
fn exports_read_back_through_rustac_and_stac_geoparquet_as_the_items_json_prints() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = catalog(tmp.path(), 500);

    // The whole table. Demo items without a geometry cannot be
    // stac-geoparquet (its geometry column is required): left out, and said.
    let all_json = tmp.path().join("all.json");
    let items = query_json(&base, &[], &all_json);
    let with_geometry = items.iter().filter(|i| !i["geometry"].is_null()).count();
    assert!(
        with_geometry < items.len(),
        "the demo has items without geometry"
    );
    let all = tmp.path().join("all.parquet");
    let report = ecops_json(&["export", "--base", &base, "--output", s(&all), "--json"]);
    assert_eq!(report["items"], with_geometry);
    assert_eq!(report["without_geometry"], items.len() - with_geometry);
    readers_agree(&py, &all, &all_json, with_geometry);

    // A query's answer, across the antimeridian.
    let q_json = tmp.path().join("q.json");
    let q_args = ["--bbox", "150,-60,-150,80"];
    let q_items = query_json(&base, &q_args, &q_json);
    assert!(q_items.len() > 10, "{}", q_items.len());
    let q = tmp.path().join("q.parquet");
    let mut args = vec![
        "query",
        "--base",
        &base,
        "--format",
        "stac-geoparquet",
        "--output",
        s(&q),
        "--json",
    ];
    args.extend_from_slice(&q_args);
    let report = ecops_json(&args);
    assert_eq!(report["items"], q_items.len());
    readers_agree(&py, &q, &q_json, q_items.len());

    // The comparison can fail: one changed property is one difference per reader.
    let mut tampered = q_items.clone();
    tampered[0]["platform"] = Value::String("changed".into());
    let tampered_path = tmp.path().join("tampered.json");
    std::fs::write(&tampered_path, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let seen = run_python(&py, "read_stac_geoparquet.py", &[s(&q), s(&tampered_path)]);
    assert_eq!(seen["rustac"]["differ"], 1, "{seen}");
    assert_eq!(seen["stac_geoparquet"]["differ"], 1, "{seen}");
}

#[test]
fn binary_output_needs_a_file_and_files_are_replaced_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let base = catalog(tmp.path(), 50);
    let out = ecops(&["query", "--base", &base, "--format", "stac-geoparquet"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    let out = ecops(&["query", "--base", &base, "--output", "x.parquet"]);
    assert!(!out.status.success());
    // An unwritable target leaves nothing behind.
    let missing_dir = tmp.path().join("no/such/dir/out.parquet");
    let out = ecops(&["export", "--base", &base, "--output", s(&missing_dir)]);
    assert!(!out.status.success());
    assert!(!missing_dir.exists());
    let file = tmp.path().join("out.parquet");
    ecops_json(&["export", "--base", &base, "--output", s(&file), "--json"]);
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out.parquet"))
        .collect();
    assert_eq!(
        names,
        vec!["out.parquet".to_string()],
        "no staging file left"
    );
}

#[tokio::test]
async fn data_files_say_their_layout_instead_of_claiming_stac_geoparquet() {
    let tmp = tempfile::tempdir().unwrap();
    let base = catalog(tmp.path(), 60);
    let catalog = ecops::catalog::EarthCatalog::open(&base, &Default::default())
        .await
        .unwrap();
    let table = catalog.table().await.unwrap();
    let files = ecops::catalog::stats::live_files(&table).await.unwrap();
    assert!(!files.is_empty());
    for f in files {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(std::fs::File::open(&f.path).unwrap()).unwrap();
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .clone();
        assert!(!kv.iter().any(|k| k.key == "stac-geoparquet"), "{}", f.path);
        let layout: Value = serde_json::from_str(
            kv.iter()
                .find(|k| k.key == "earthcatalog")
                .unwrap()
                .value
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(layout["stac_geoparquet"], false);
        assert!(
            layout["json_columns"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "assets")
        );
    }
}
