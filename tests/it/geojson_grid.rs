//! GeoJSON-region grids (earthcatalog's `grid.type = geojson`): boundaries
//! are checked at `init` (a clear error naming the feature, nothing
//! created); ingest files each item under every region its footprint
//! touches — regions crossing ±180 and covering the poles included — or
//! under `__outside__`; every query shape gives exactly the brute-force
//! oracle's items (tests/it/query.rs), before and after compaction; PyIceberg
//! reads the catalog; and a catalog in earthcatalog's own layout with a
//! GeoJSON grid (outside items in `__none__`) opens and answers queries.

use crate::common;
use crate::query::{OracleItem, build, check_all, footprint_of, read_items};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{ecops, ecops_json, python, run_python};
use geo::{Intersects, Translate};
use geo_types::MultiPolygon;
use serde_json::{Value, json};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ring(pts: &[(f64, f64)]) -> Value {
    json!([pts.iter().map(|(x, y)| json!([x, y])).collect::<Vec<_>>()])
}

fn feature(id: Value, geometry: Value) -> Value {
    json!({"type": "Feature", "properties": {"rid": id, "name": "x"}, "geometry": geometry})
}

fn polygon(pts: &[(f64, f64)]) -> Value {
    json!({"type": "Polygon", "coordinates": ring(pts)})
}

/// Regions: one across ±180 (written with a jump, as one polygon), a cap
/// on each pole, a MultiPolygon with a numeric id, and a plain box. Much of
/// the world is outside every region.
fn regions() -> Value {
    json!({"type": "FeatureCollection", "features": [
        feature(json!("africa"), polygon(&[(-20.0, -35.0), (52.0, -35.0), (52.0, 38.0), (-20.0, 38.0), (-20.0, -35.0)])),
        feature(json!("dateline"), polygon(&[(160.0, -30.0), (-165.0, -30.0), (-165.0, 30.0), (160.0, 30.0), (160.0, -30.0)])),
        feature(json!("arctic"), polygon(&[(-180.0, 72.0), (0.0, 72.0), (180.0, 72.0), (180.0, 90.0), (-180.0, 90.0), (-180.0, 72.0)])),
        feature(json!("antarctic"), polygon(&[(-180.0, -70.0), (-180.0, -90.0), (180.0, -90.0), (180.0, -70.0), (0.0, -70.0), (-180.0, -70.0)])),
        feature(json!(42), json!({"type": "MultiPolygon", "coordinates": [
            ring(&[(-125.0, 25.0), (-70.0, 25.0), (-70.0, 50.0), (-125.0, 50.0), (-125.0, 25.0)]),
            ring(&[(-80.0, -55.0), (-35.0, -55.0), (-35.0, 5.0), (-80.0, 5.0), (-80.0, -55.0)]),
        ]})),
    ]})
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).unwrap()).unwrap();
}

fn init_geojson(base: &Path, boundaries: &Path) -> std::process::Output {
    ecops(&[
        "init",
        "--base",
        s(base),
        "--grid",
        "geojson",
        "--boundaries",
        s(boundaries),
        "--id-field",
        "rid",
    ])
}

#[test]
fn bad_boundaries_are_refused_at_init_naming_the_feature_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let good = |id: Value| {
        feature(
            id,
            polygon(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]),
        )
    };
    let fc = |features: Vec<Value>| json!({"type": "FeatureCollection", "features": features});
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("missing", None, "does not exist"),
        (
            "not-a-collection",
            Some(json!({"type": "Feature", "geometry": null})),
            "not a GeoJSON FeatureCollection",
        ),
        (
            "no-id",
            Some(fc(vec![
                good(json!("a")),
                json!({"type": "Feature", "properties": {"name": "b"}, "geometry": polygon(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)])}),
            ])),
            "feature 1: no property 'rid'",
        ),
        (
            "duplicate",
            Some(fc(vec![
                good(json!("a")),
                good(json!("b")),
                good(json!("a")),
            ])),
            "features 0 and 2 have the same id 'a'",
        ),
        (
            "bow-tie",
            Some(fc(vec![
                good(json!("a")),
                feature(
                    json!("bow"),
                    polygon(&[(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)]),
                ),
            ])),
            "feature 1 (id 'bow'): invalid polygon",
        ),
        (
            "flat",
            Some(fc(vec![feature(
                json!("flat"),
                polygon(&[(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (0.0, 0.0)]),
            )])),
            "feature 0 (id 'flat')",
        ),
        (
            "empty",
            Some(fc(vec![feature(
                json!("e"),
                json!({"type": "Polygon", "coordinates": []}),
            )])),
            "feature 0 (id 'e'): empty geometry",
        ),
        ("no-features", Some(fc(vec![])), "no features"),
    ];
    for (name, body, expect) in cases {
        let file = tmp.path().join(format!("{name}.geojson"));
        if let Some(body) = body {
            write_json(&file, &body);
        }
        let base = tmp.path().join(format!("cat-{name}"));
        let out = init_geojson(&base, &file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: init succeeded");
        assert!(stderr.contains(expect), "{name}: {stderr}");
        assert!(
            !base.join("earthcatalog.db").exists(),
            "{name}: a catalog was created"
        );
    }
}

/// The regions an item's footprint touches, by the oracle's own geometry
/// (unwrapped, ±360° copies): what ingest must have filed it under.
fn oracle_partitions(
    item: &OracleItem,
    regions: &[(String, MultiPolygon<f64>)],
) -> BTreeSet<String> {
    let Some(f) = &item.footprint else {
        return BTreeSet::from(["__none__".to_string()]);
    };
    let touched: BTreeSet<String> = regions
        .iter()
        .filter(|(_, r)| {
            [-360.0, 0.0, 360.0]
                .iter()
                .any(|dx| f.intersects(&r.translate(*dx, 0.0)))
        })
        .map(|(id, _)| id.clone())
        .collect();
    if touched.is_empty() {
        BTreeSet::from(["__outside__".to_string()])
    } else {
        touched
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_geojson_grid_files_items_by_region_and_answers_every_shape_like_brute_force() {
    let tmp = tempfile::tempdir().unwrap();
    let boundaries = tmp.path().join("regions.geojson");
    write_json(&boundaries, &regions());
    let base_path = tmp.path().join("catalog");
    let out = init_geojson(&base_path, &boundaries);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, items) = build(tmp.path(), 1500);

    // Fan-out: every row's partition is a region the footprint touches, and
    // every region it touches has its row.
    let region_shapes: Vec<(String, MultiPolygon<f64>)> = regions()["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let id = match &f["properties"]["rid"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (id, footprint_of(&f["geometry"]).unwrap())
        })
        .collect();
    let mut filed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((id, cell), _) in common::catalog_rows(&base, &Default::default()).await {
        filed.entry(id).or_default().insert(cell);
    }
    let mut outside = 0;
    for item in &items {
        let expect = oracle_partitions(item, &region_shapes);
        outside += usize::from(expect.contains("__outside__"));
        assert_eq!(filed.get(&item.id), Some(&expect), "{}", item.id);
    }
    assert!(outside > 50, "only {outside} items outside every region");
    for region in ["africa", "dateline", "arctic", "antarctic", "42"] {
        assert!(
            filed.values().any(|cells| cells.contains(region)),
            "no item in region {region}"
        );
    }
    let stats = ecops_json(&["stats", "--base", &base, "--json", "--top", "20"]);
    let cells: BTreeSet<&str> = stats["top_cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cell"].as_str().unwrap())
        .collect();
    assert!(
        cells.contains("__outside__") && cells.contains("dateline"),
        "{cells:?}"
    );
    assert_eq!(stats["grid"]["kind"], "geojson");
    assert_eq!(stats["unique_items"], items.len());
    let info = ecops_json(&["info", "--base", &base, "--json"]);
    assert_eq!(info["regions"], 5);
    assert_eq!(info["grid"]["id_field"], "rid");

    let counts = check_all("geojson grid", &base, &items).await;
    assert!(
        counts.values().filter(|n| **n > 0).count() >= 12,
        "{counts:?}"
    );

    // Region ids become partition folders; compaction rewrites them.
    let compacted = ecops_json(&["compact", "--base", &base, "--json"]);
    assert!(
        compacted["buckets_compacted"].as_u64() > Some(0),
        "{compacted}"
    );
    check_all("geojson grid, compacted", &base, &items).await;

    if let Some(py) = python() {
        let seen = run_python(&py, "read_catalog.py", &[&base, "dateline"]);
        assert_eq!(seen["ids"].as_array().unwrap().len(), items.len());
        let in_dateline = filed.values().filter(|c| c.contains("dateline")).count();
        assert_eq!(seen["cell_rows"].as_u64(), Some(in_dateline as u64));
        assert_eq!(seen["properties"]["earthcatalog.grid.type"], "geojson");
    }
}

/// A catalog as earthcatalog 0.5 writes one with a GeoJSON grid (its
/// properties, files registered without field ids, millisecond timestamps,
/// JSON-text columns, items outside every region in `__none__`), made with
/// PyIceberg by tests/py/write_reference_geojson.py: ecops opens it, says
/// what its grid is, and answers every shape like brute force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_layout_geojson_catalog_opens_and_answers_queries() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = ecops(&["demo-data", "--items", "600", "--out", s(&data)]);
    assert!(out.status.success());
    // earthcatalog intersects planar shapes as written: split the dateline
    // region at ±180 (as RFC 7946 asks) so both readings agree.
    let mut boundaries = regions();
    boundaries["features"][1]["geometry"] = json!({"type": "MultiPolygon", "coordinates": [
        ring(&[(160.0, -30.0), (180.0, -30.0), (180.0, 30.0), (160.0, 30.0), (160.0, -30.0)]),
        ring(&[(-180.0, -30.0), (-165.0, -30.0), (-165.0, 30.0), (-180.0, 30.0), (-180.0, -30.0)]),
    ]});
    let boundaries_path = tmp.path().join("regions.geojson");
    write_json(&boundaries_path, &boundaries);
    let base = tmp.path().join("reference");
    let written = run_python(
        &py,
        "write_reference_geojson.py",
        &[s(&base), s(&boundaries_path), "rid", s(&data.join("items"))],
    );
    let ids: BTreeSet<String> = written["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(written["outside"].as_u64() > Some(10), "{written}");
    let items: Vec<OracleItem> = read_items(&data.join("items"))
        .into_iter()
        .filter(|i| ids.contains(&i.id))
        .collect();
    assert_eq!(items.len(), ids.len());
    let base = base.to_string_lossy().into_owned();
    let info = ecops_json(&["info", "--base", &base, "--json"]);
    assert_eq!(info["grid"]["kind"], "geojson");
    assert_eq!(info["regions"], 5);
    assert_eq!(info["catalog_schema"], "v1");
    check_all("reference geojson catalog", &base, &items).await;
}
