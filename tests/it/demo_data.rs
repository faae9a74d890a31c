//! `ecops demo-data` through the real binary: the files it promises, the JSON
//! summary, determinism across runs, and clear refusals.

use crate::common;

use std::io::Read;
use std::path::Path;

use common::{ecops, ecops_json};
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn demo_data_writes_every_inventory_format_and_reports_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let out_s = out.to_str().unwrap();
    let summary = ecops_json(&[
        "demo-data",
        "--items",
        "800",
        "--out",
        out_s,
        "--invalid",
        "6",
        "--parts",
        "3",
        "--bucket",
        "my-demo",
        "--json",
    ]);
    assert_eq!(summary["items"], 800);
    assert_eq!(summary["invalid"], 6);
    assert_eq!(summary["rows"], 806);
    assert_eq!(summary["out"], out_s);
    // 800 items + 5 invalid bodies (one is a missing file) + 6 inventory files
    // + 3 × 2 parts + meta.json + marker.
    assert_eq!(summary["files"], 800 + 5 + 6 + 6 + 2);
    assert!(summary["bytes"].as_u64().unwrap() > 800 * 1500);
    assert!(summary["seconds"].as_f64().unwrap() >= 0.0);

    let inv = out.join("inventory");
    let csv = std::fs::read_to_string(inv.join("inventory.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 806);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("\"my-demo\",\"velocity_image_pair/")
                && l.ends_with("Z\"")
                && l.split("\",\"").count() == 4)
    );
    let header = std::fs::read_to_string(inv.join("inventory_header.csv")).unwrap();
    assert_eq!(header, format!("bucket,key,size,last_modified_date\n{csv}"));
    assert_eq!(gunzip(&inv.join("inventory.csv.gz")), csv);
    assert!(inv.join("inventory.parquet").is_file());

    let manifest = read_json(&inv.join("manifest.json"));
    assert_eq!(manifest["sourceBucket"], "my-demo");
    assert_eq!(
        manifest["destinationBucket"],
        "arn:aws:s3:::my-demo-inventory"
    );
    assert_eq!(manifest["fileFormat"], "CSV");
    assert_eq!(
        manifest["fileSchema"],
        "Bucket, Key, Size, LastModifiedDate"
    );
    assert!(
        manifest["creationTimestamp"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );
    let parts: String = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = inv.join(f["key"].as_str().unwrap());
            assert_eq!(
                f["size"].as_u64().unwrap(),
                std::fs::metadata(&p).unwrap().len()
            );
            assert_eq!(f["MD5checksum"].as_str().unwrap().len(), 32);
            gunzip(&p)
        })
        .collect();
    assert_eq!(parts, csv, "the parts concatenate to the inventory");
    let pq_manifest = read_json(&inv.join("manifest-parquet.json"));
    assert_eq!(pq_manifest["fileFormat"], "Parquet");
    assert_eq!(pq_manifest["files"].as_array().unwrap().len(), 3);

    let meta = read_json(&out.join("meta.json"));
    assert_eq!(meta["items"], 800);
    assert_eq!(meta["bucket"], "my-demo");
    assert_eq!(meta["invalid"].as_array().unwrap().len(), 6);
    let since = meta["since_cutoff"].as_str().unwrap();
    let after = lines
        .iter()
        .filter(|l| l.rsplit("\",\"").next().unwrap().trim_end_matches('"') >= since)
        .count();
    assert_eq!(
        after as u64,
        meta["rows_at_or_after_since"].as_u64().unwrap()
    );
    for key in [
        "polar",
        "antimeridian_split",
        "antimeridian_jump",
        "no_geometry",
    ] {
        assert!(meta[key].is_u64(), "meta.{key}");
    }
    // A listed, valid item is where the key says, and its size matches.
    let first: Vec<&str> = lines[0].trim_matches('"').split("\",\"").collect();
    let body = std::fs::read(out.join("items").join(first[1])).unwrap();
    assert_eq!(body.len().to_string(), first[2]);
}

#[test]
fn demo_data_is_deterministic_and_seeded() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        let o = ecops(&[
            "demo-data",
            "--items",
            "300",
            "--out",
            out.to_str().unwrap(),
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(text.contains("wrote 300 items"), "{text}");
        let read = |p: &str| std::fs::read(out.join(p)).unwrap();
        (
            read("inventory/inventory.csv"),
            read("inventory/inventory.parquet"),
            read("inventory/inventory.csv.gz"),
            read("meta.json"),
        )
    };
    let a = run("a", "7");
    let b = run("b", "7");
    let c = run("c", "8");
    assert!(a == b, "same seed, same bytes");
    assert_ne!(a.0, c.0, "another seed, other items");
}

#[test]
fn demo_data_refuses_bad_arguments_and_foreign_folders() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let o = ecops(&[
        "demo-data",
        "--items",
        "5",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not empty"), "{err}");
    assert!(tmp.path().join("notes.txt").is_file());

    let fresh = tmp.path().join("fresh");
    let o = ecops(&[
        "demo-data",
        "--items",
        "0",
        "--out",
        fresh.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 1"));
    let o = ecops(&["demo-data", "--out", fresh.to_str().unwrap()]);
    assert!(!o.status.success(), "--items is required");
}

/// Soak (not run by default): every item of a large set parses, and the
/// counters in meta.json hold at scale. `ECOPS_DEMO_SOAK_ITEMS` (default 200 000),
/// `ECOPS_DEMO_SOAK_DIR` (default a temp dir; tmpfs keeps it fast).
#[test]
#[ignore]
fn demo_data_soak_every_item_parses() {
    let n: u64 = std::env::var("ECOPS_DEMO_SOAK_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let tmp = match std::env::var("ECOPS_DEMO_SOAK_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let out = tmp.path().join("demo");
    let summary = ecops::demo::generate(&ecops::demo::DemoOptions::new(n, &out)).unwrap();
    let csv = std::fs::read_to_string(out.join("inventory/inventory.csv")).unwrap();
    let (mut rows, mut no_geometry, mut crossing) = (0u64, 0u64, 0u64);
    for line in csv.lines() {
        let key = line.split("\",\"").nth(1).unwrap();
        let body = std::fs::read(out.join("items").join(key)).unwrap();
        let item = ecops::stac::parse_item(&body).unwrap_or_else(|e| panic!("{key}: {e}"));
        no_geometry += u64::from(item.geometry.is_none());
        let bbox: Vec<f64> = item
            .bbox
            .as_deref()
            .map(|b| serde_json::from_str(b).unwrap())
            .unwrap_or_default();
        crossing += u64::from(bbox.len() == 4 && bbox[0] > bbox[2]);
        rows += 1;
    }
    let m = &summary.meta;
    assert_eq!(rows, n);
    assert_eq!(no_geometry, m.no_geometry);
    assert_eq!(crossing, m.antimeridian_split + m.antimeridian_jump);
    eprintln!(
        "soak: {n} items in {:.1} s ({:.0}/s), {m:?}",
        summary.seconds,
        n as f64 / summary.seconds
    );
}
