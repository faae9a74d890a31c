//! `ecops query` against a brute-force oracle.
//!
//! The catalog is built by the real ingest from `ecops demo-data` output plus
//! hand-made items (pole caps, antimeridian footprints, a footprint inside a
//! query's hole, no geometry, no datetime). The oracle reads every item's
//! JSON and tests each one with its own small implementation of the
//! documented semantics (planar lon/lat intersection; footprint edges go the
//! short way across ±180 except along a pole; a bbox with W > E spans
//! W..E+360; copies shifted by ±360° count) — no cells, no pruning, no code
//! from `ecops::query`. Every shape must give exactly the oracle's ids: 0
//! missed, 0 extra, no duplicates; before and after a duplicate ingest, and
//! after `ecops compact`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use common::{
    earthcatalog_fixture, ecops, ecops_json, ecops_json_with, ecops_with, s3_base, s3_endpoint,
};
use ecops::catalog::{EarthCatalog, OpenOptions};
use ecops::query::{Query, QueryText, ScanOptions};
use geo::{Intersects, Translate};
use geo_types::{Coord, Geometry, LineString, MultiPolygon, Point, Polygon, Rect};
use serde_json::{Value, json};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------- oracle

/// An item as the oracle sees it.
#[derive(Debug, Clone)]
pub(crate) struct OracleItem {
    pub(crate) id: String,
    datetime: Option<DateTime<Utc>>,
    /// Unwrapped polygons (None: no geometry).
    pub(crate) footprint: Option<MultiPolygon<f64>>,
}

/// Unwraps a ring: each edge the short way in longitude, except edges along a pole.
fn unwrap_ring(ring: &[Value]) -> LineString<f64> {
    let pts: Vec<(f64, f64)> = ring
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let mut x = pts[0].0;
    let mut out = vec![Coord { x, y: pts[0].1 }];
    for w in pts.windows(2) {
        let mut d = w[1].0 - w[0].0;
        let along_pole = w[0].1.abs() == 90.0 && w[0].1 == w[1].1;
        if !along_pole && d.abs() > 180.0 {
            d -= 360.0 * d.signum();
        }
        x += d;
        out.push(Coord { x, y: w[1].1 });
    }
    LineString(out)
}

fn polygon_of(rings: &Value) -> Polygon<f64> {
    let rings = rings.as_array().unwrap();
    let exterior = unwrap_ring(rings[0].as_array().unwrap());
    let holes = rings[1..]
        .iter()
        .map(|r| unwrap_ring(r.as_array().unwrap()))
        .collect();
    Polygon::new(exterior, holes)
}

pub(crate) fn footprint_of(geometry: &Value) -> Option<MultiPolygon<f64>> {
    match geometry["type"].as_str()? {
        "Polygon" => Some(MultiPolygon(vec![polygon_of(&geometry["coordinates"])])),
        "MultiPolygon" => Some(MultiPolygon(
            geometry["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .map(polygon_of)
                .collect(),
        )),
        other => panic!("oracle: unexpected footprint type {other}"),
    }
}

fn oracle_item(v: &Value) -> OracleItem {
    let dt = v["properties"]["datetime"]
        .as_str()
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc));
    OracleItem {
        id: v["id"].as_str().unwrap().to_string(),
        datetime: dt,
        footprint: footprint_of(&v["geometry"]),
    }
}

/// Every `*.stac.json` under `dir`.
pub(crate) fn read_items(dir: &Path) -> Vec<OracleItem> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if s(&p).ends_with(".stac.json") {
                let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                out.push(oracle_item(&v));
            }
        }
    }
    out
}

/// The query shape as the oracle sees it.
#[derive(Debug, Clone)]
enum OracleShape {
    Any,
    Geom(Geometry<f64>),
}

#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    text: QueryText,
    shape: OracleShape,
    range: Option<Interval>,
}

/// A datetime interval; None on a side is open.
type Interval = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn oracle(items: &[OracleItem], case: &Case) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| match (&case.shape, &i.footprint) {
            (OracleShape::Any, _) => true,
            (OracleShape::Geom(_), None) => false,
            (OracleShape::Geom(q), Some(f)) => [-360.0, 0.0, 360.0]
                .iter()
                .any(|dx| f.intersects(&q.translate(*dx, 0.0))),
        })
        .filter(|i| match (&case.range, i.datetime) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((a, b)), Some(d)) => a.is_none_or(|a| d >= a) && b.is_none_or(|b| d <= b),
        })
        .map(|i| i.id.clone())
        .collect()
}

fn bbox(w: f64, s: f64, e: f64, n: f64) -> OracleShape {
    let e = if w > e { e + 360.0 } else { e };
    OracleShape::Geom(Geometry::Rect(Rect::new(
        Coord { x: w, y: s },
        Coord { x: e, y: n },
    )))
}

fn ring(pts: &[(f64, f64)]) -> Vec<Value> {
    pts.iter().map(|(x, y)| json!([x, y])).collect()
}

/// The shapes every catalog is checked with.
fn cases() -> Vec<Case> {
    let text = |f: &dyn Fn(&mut QueryText)| {
        let mut q = QueryText::default();
        f(&mut q);
        q
    };
    let hole_outer = [
        (25.0, -5.0),
        (45.0, -5.0),
        (45.0, 15.0),
        (25.0, 15.0),
        (25.0, -5.0),
    ];
    let hole_inner = [
        (32.0, 2.0),
        (38.0, 2.0),
        (38.0, 8.0),
        (32.0, 8.0),
        (32.0, 2.0),
    ];
    let am_outer = [
        (165.0, 45.0),
        (-165.0, 45.0),
        (-165.0, 75.0),
        (165.0, 75.0),
        (165.0, 45.0),
    ];
    let am_inner = [
        (175.0, 55.0),
        (-175.0, 55.0),
        (-175.0, 65.0),
        (175.0, 65.0),
        (175.0, 55.0),
    ];
    let wkt = |o: &[(f64, f64)], i: &[(f64, f64)]| {
        let r = |p: &[(f64, f64)]| {
            p.iter()
                .map(|(x, y)| format!("{x} {y}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("POLYGON (({}), ({}))", r(o), r(i))
    };
    let shape = |o: &[(f64, f64)], i: &[(f64, f64)]| {
        OracleShape::Geom(Geometry::Polygon(polygon_of(&json!([ring(o), ring(i)]))))
    };
    let point = |x: f64, y: f64| OracleShape::Geom(Geometry::Point(Point::new(x, y)));
    vec![
        Case {
            name: "point",
            text: text(&|q| q.point = Some("35.5,5.5".into())),
            shape: point(35.5, 5.5),
            range: None,
        },
        Case {
            name: "point in a hand-made antimeridian item",
            text: text(&|q| q.point = Some("-179.8,10.5".into())),
            shape: point(-179.8, 10.5),
            range: None,
        },
        Case {
            name: "point on the antimeridian",
            text: text(&|q| q.point = Some("180,10.5".into())),
            shape: point(180.0, 10.5),
            range: None,
        },
        Case {
            name: "north pole",
            text: text(&|q| q.point = Some("0,90".into())),
            shape: point(0.0, 90.0),
            range: None,
        },
        Case {
            name: "regional bbox",
            text: text(&|q| q.bbox = Some("30,0,40,10".into())),
            shape: bbox(30.0, 0.0, 40.0, 10.0),
            range: None,
        },
        Case {
            name: "bbox touching a hand-made item's edge",
            text: text(&|q| q.bbox = Some("50,20,51,21".into())),
            shape: bbox(50.0, 20.0, 51.0, 21.0),
            range: None,
        },
        Case {
            name: "bbox with a year range",
            text: text(&|q| {
                q.bbox = Some("30,0,40,10".into());
                q.datetime = Some("2018-01-01/2020-12-31".into());
            }),
            shape: bbox(30.0, 0.0, 40.0, 10.0),
            range: Some((
                Some(t("2018-01-01T00:00:00Z")),
                Some(t("2020-12-31T23:59:59.999999Z")),
            )),
        },
        Case {
            name: "datetime only",
            text: text(&|q| q.datetime = Some("2019-03-01T00:00:00Z/2019-06-30T23:59:59Z".into())),
            shape: OracleShape::Any,
            range: Some((
                Some(t("2019-03-01T00:00:00Z")),
                Some(t("2019-06-30T23:59:59Z")),
            )),
        },
        Case {
            name: "open-ended datetime",
            text: text(&|q| q.datetime = Some("2024-06-01T00:00:00Z/..".into())),
            shape: OracleShape::Any,
            range: Some((Some(t("2024-06-01T00:00:00Z")), None)),
        },
        Case {
            name: "antimeridian bbox",
            text: text(&|q| q.bbox = Some("170,50,-170,70".into())),
            shape: bbox(170.0, 50.0, -170.0, 70.0),
            range: None,
        },
        Case {
            name: "antimeridian bbox near the equator",
            text: text(&|q| q.bbox = Some("175,-20,-175,15".into())),
            shape: bbox(175.0, -20.0, -175.0, 15.0),
            range: None,
        },
        Case {
            name: "polar cap bbox",
            text: text(&|q| q.bbox = Some("-180,85,180,90".into())),
            shape: bbox(-180.0, 85.0, 180.0, 90.0),
            range: None,
        },
        Case {
            name: "south polar bbox",
            text: text(&|q| q.bbox = Some("-180,-90,180,-80".into())),
            shape: bbox(-180.0, -90.0, 180.0, -80.0),
            range: None,
        },
        Case {
            name: "whole world",
            text: text(&|q| q.bbox = Some("-180,-90,180,90".into())),
            shape: bbox(-180.0, -90.0, 180.0, 90.0),
            range: None,
        },
        Case {
            name: "polygon with a hole (WKT)",
            text: text(&|q| q.intersects = Some(wkt(&hole_outer, &hole_inner))),
            shape: shape(&hole_outer, &hole_inner),
            range: None,
        },
        Case {
            name: "polygon with a hole across the antimeridian (GeoJSON)",
            text: text(&|q| {
                q.intersects = Some(
                    json!({"type": "Polygon", "coordinates": [ring(&am_outer), ring(&am_inner)]})
                        .to_string(),
                )
            }),
            shape: shape(&am_outer, &am_inner),
            range: None,
        },
    ]
}

// ---------------------------------------------------------------- catalog

/// Hand-made items: (id, geometry, datetime).
fn handmade() -> Vec<Value> {
    let poly = |pts: &[(f64, f64)]| json!({"type": "Polygon", "coordinates": [ring(pts)]});
    let item = |id: &str, geometry: Value, datetime: Value| {
        json!({
            "type": "Feature", "stac_version": "1.0.0", "id": id, "collection": "handmade",
            "geometry": geometry,
            "properties": {"datetime": datetime, "platform": "HM", "percent_valid_pixels": 50,
                           "start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2020-01-02T00:00:00Z"},
            "assets": {"data": {"href": format!("s3://handmade/{id}.tif")}},
            "links": []
        })
    };
    let dt = json!("2020-06-15T12:00:00Z");
    vec![
        item(
            "hm-north-cap",
            poly(&[
                (-180.0, 87.0),
                (-60.0, 87.5),
                (60.0, 87.2),
                (180.0, 87.0),
                (180.0, 90.0),
                (-180.0, 90.0),
                (-180.0, 87.0),
            ]),
            dt.clone(),
        ),
        item(
            "hm-south-cap",
            poly(&[
                (-180.0, -86.0),
                (-180.0, -90.0),
                (180.0, -90.0),
                (180.0, -86.0),
                (0.0, -86.5),
                (-180.0, -86.0),
            ]),
            dt.clone(),
        ),
        item(
            "hm-am-jump",
            poly(&[
                (179.5, 10.0),
                (-179.5, 10.0),
                (-179.5, 11.0),
                (179.5, 11.0),
                (179.5, 10.0),
            ]),
            dt.clone(),
        ),
        item(
            "hm-am-split",
            json!({"type": "MultiPolygon", "coordinates": [
                [ring(&[(179.0, -12.0), (180.0, -12.0), (180.0, -11.0), (179.0, -11.0), (179.0, -12.0)])],
                [ring(&[(-180.0, -12.0), (-179.0, -12.0), (-179.0, -11.0), (-180.0, -11.0), (-180.0, -12.0)])]
            ]}),
            dt.clone(),
        ),
        // Inside the hole of the "polygon with a hole" query: must not match it.
        item(
            "hm-in-hole",
            poly(&[
                (34.0, 4.0),
                (36.0, 4.0),
                (36.0, 6.0),
                (34.0, 6.0),
                (34.0, 4.0),
            ]),
            dt.clone(),
        ),
        // Inside the antimeridian hole.
        item(
            "hm-in-am-hole",
            poly(&[
                (178.0, 58.0),
                (-178.0, 58.0),
                (-178.0, 62.0),
                (178.0, 62.0),
                (178.0, 58.0),
            ]),
            dt.clone(),
        ),
        // Shares only its east edge with the bbox 50,20,51,21 (boundary-inclusive).
        item(
            "hm-touch",
            poly(&[
                (49.0, 20.2),
                (50.0, 20.2),
                (50.0, 20.8),
                (49.0, 20.8),
                (49.0, 20.2),
            ]),
            dt.clone(),
        ),
        item("hm-no-geometry", Value::Null, dt.clone()),
        item(
            "hm-no-datetime",
            poly(&[
                (31.0, 1.0),
                (31.5, 1.0),
                (31.5, 1.5),
                (31.0, 1.5),
                (31.0, 1.0),
            ]),
            Value::Null,
        ),
    ]
}

/// Writes the hand-made items under `dir/items/handmade/` and their inventory.
fn write_handmade(dir: &Path) -> PathBuf {
    let items = dir.join("items/handmade");
    std::fs::create_dir_all(&items).unwrap();
    let mut inventory = String::new();
    for v in handmade() {
        let id = v["id"].as_str().unwrap();
        let body = v.to_string();
        std::fs::write(items.join(format!("{id}.stac.json")), &body).unwrap();
        inventory.push_str(&format!(
            "\"handmade\",\"handmade/{id}.stac.json\",\"{}\",\"2024-01-01T00:00:00.000Z\"\n",
            body.len()
        ));
    }
    let inv = dir.join("handmade.csv");
    std::fs::write(&inv, inventory).unwrap();
    inv
}

fn ingest(base: &str, inventory: &Path, items_root: &Path, job: &str, chunk: &str) {
    let v = ecops_json(&[
        "ingest",
        "--json",
        "--base",
        base,
        "--inventory",
        s(inventory),
        "--items-root",
        s(items_root),
        "--job",
        job,
        "--chunk-size",
        chunk,
    ]);
    assert_eq!(v["failed"], 0, "{v}");
}

/// Builds the demo catalog: `n` demo items (small chunks, so buckets have
/// several files to compact) and the hand-made items.
pub(crate) fn build(dir: &Path, n: usize) -> (String, Vec<OracleItem>) {
    let data = dir.join("data");
    let out = ecops(&["demo-data", "--items", &n.to_string(), "--out", s(&data)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = dir.join("catalog").to_string_lossy().into_owned();
    ingest(
        &base,
        &data.join("inventory/inventory.csv"),
        &data.join("items"),
        "demo",
        "500",
    );
    let hand = dir.join("handmade");
    let inv = write_handmade(&hand);
    ingest(&base, &inv, &hand.join("items"), "handmade", "500");
    let mut items = read_items(&data.join("items"));
    items.extend(read_items(&hand.join("items")));
    (base, items)
}

async fn run(base: &str, text: &QueryText) -> Vec<String> {
    let catalog = EarthCatalog::open(
        base,
        &OpenOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let query = Query::parse(text).unwrap();
    let result = ecops::query::search(&catalog, &query, &ScanOptions::default())
        .await
        .unwrap();
    result.hits.into_iter().map(|h| h.id).collect()
}

/// Every case on the catalog at `base` gives exactly the oracle's ids, once each.
/// Returns the number of matches per case (for checks that cases are not vacuous).
pub(crate) async fn check_all(
    label: &str,
    base: &str,
    items: &[OracleItem],
) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases() {
        let got = run(base, &case.text).await;
        let distinct: BTreeSet<String> = got.iter().cloned().collect();
        let expected = oracle(items, &case);
        let missed: Vec<&String> = expected.difference(&distinct).take(5).collect();
        let extra: Vec<&String> = distinct.difference(&expected).take(5).collect();
        if got.len() != distinct.len() || !missed.is_empty() || !extra.is_empty() {
            failures.push(format!(
                "{label} / {}: {} rows, {} distinct, {} expected; missed {:?}, extra {:?}",
                case.name,
                got.len(),
                distinct.len(),
                expected.len(),
                missed,
                extra
            ));
        }
        counts.insert(case.name, expected.len());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_matches_brute_force_before_and_after_duplicates_and_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, items) = build(tmp.path(), 2500);
    let ids: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), items.len(), "demo ids are distinct");

    let counts = check_all("fresh", &base, &items).await;
    // The shapes are not vacuous: each finds items, the world finds every
    // item with a geometry, and the hand-made edge cases are where they should be.
    for (name, n) in &counts {
        assert!(*n > 0, "case {name} matches nothing in the oracle");
    }
    let with_geometry = items.iter().filter(|i| i.footprint.is_some()).count();
    assert_eq!(counts["whole world"], with_geometry);
    let world = run(&base, &cases()[13].text).await;
    assert!(!world.contains(&"hm-no-geometry".to_string()));
    let hole = run(&base, &cases()[14].text).await;
    assert!(!hole.contains(&"hm-in-hole".to_string()));
    assert!(hole.contains(&"hm-no-datetime".to_string()));
    let am_hole = run(&base, &cases()[15].text).await;
    assert!(!am_hole.contains(&"hm-in-am-hole".to_string()));
    assert!(am_hole.contains(&"hm-am-jump".to_string()) || !am_hole.is_empty());
    assert!(
        run(&base, &cases()[3].text)
            .await
            .contains(&"hm-north-cap".to_string())
    );
    assert!(
        run(&base, &cases()[5].text)
            .await
            .contains(&"hm-touch".to_string())
    );
    let on_am = run(&base, &cases()[2].text).await;
    assert!(on_am.contains(&"hm-am-jump".to_string()), "{on_am:?}");

    // The same hand-made items ingested again (a second job): still once each.
    let hand = tmp.path().join("handmade");
    ingest(
        &base,
        &hand.join("handmade.csv"),
        &hand.join("items"),
        "handmade-again",
        "500",
    );
    let dup = run(
        &base,
        &QueryText {
            ids: Some("hm-am-jump,hm-north-cap".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(dup.len(), 2, "{dup:?}");
    let hand_ids: BTreeSet<String> = handmade()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let by_collection = run(
        &base,
        &QueryText {
            collections: Some("handmade".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_collection.len(), hand_ids.len(), "{by_collection:?}");
    assert_eq!(by_collection.into_iter().collect::<BTreeSet<_>>(), hand_ids);
    check_all("after a duplicate ingest", &base, &items).await;

    // After compaction (replace snapshots): the same answers.
    let before = ecops_json(&["stats", "--base", &base, "--json"]);
    let out = ecops(&["compact", "--base", &base, "--threshold", "2", "--json"]);
    assert!(
        out.status.success(),
        "compact: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = ecops_json(&["stats", "--base", &base, "--json"]);
    assert!(
        after["files"].as_u64() < before["files"].as_u64(),
        "compaction merged files: {before} → {after}"
    );
    check_all("after compaction", &base, &items).await;
}

// ---------------------------------------------------------------- fixture

/// (id, cell) of every live row of a catalog, read with parquet directly.
async fn catalog_rows(base: &str) -> Vec<(String, String)> {
    common::catalog_rows(base, &OpenOptions::default())
        .await
        .into_iter()
        .flat_map(|(row, n)| std::iter::repeat_n(row, n as usize))
        .collect()
}

/// earthcatalog's files (no field ids, rustac column order, ms timestamps)
/// are read by name. Its own fan-out misses cells (centroid rule), so a
/// geometric query can only find an item through a cell earthcatalog filed
/// it under: every oracle match with a row in a query cell must be found,
/// and nothing outside the oracle. A datetime-only query (no cells) must be exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earthcatalog_fixture_is_read_by_column_name() {
    let root = earthcatalog_fixture();
    let base = root.to_string_lossy().into_owned();
    let inputs = root
        .parent()
        .unwrap()
        .join("earthcatalog-0.5.1-inputs/items");
    let rows = catalog_rows(&base).await;
    let in_catalog: BTreeSet<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    let items: Vec<OracleItem> = read_items(&inputs)
        .into_iter()
        .filter(|i| in_catalog.contains(&i.id))
        .collect();
    // The inputs hold a few items twice (a later delta run re-ingested them).
    let input_ids: BTreeSet<String> = items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(input_ids, in_catalog, "every catalog id has its input item");
    let res = ecops::grid::resolution(1).unwrap();
    let mut checked = 0;
    for case in cases() {
        let got = run(&base, &case.text).await;
        let distinct: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(got.len(), distinct.len(), "{}: duplicates", case.name);
        let expected = oracle(&items, &case);
        let extra: Vec<_> = distinct.difference(&expected).collect();
        assert!(extra.is_empty(), "{}: extra {extra:?}", case.name);
        let query = Query::parse(&case.text).unwrap();
        let reachable: BTreeSet<String> =
            match ecops::query::plan::query_cells(&query, res).unwrap() {
                None => expected.clone(),
                Some(cells) => {
                    let cells: HashSet<String> = cells.iter().map(|c| c.to_string()).collect();
                    rows.iter()
                        .filter(|(id, cell)| expected.contains(id) && cells.contains(cell))
                        .map(|(id, _)| id.clone())
                        .collect()
                }
            };
        let missed: Vec<_> = reachable.difference(&distinct).collect();
        assert!(missed.is_empty(), "{}: missed {missed:?}", case.name);
        checked += reachable.len();
    }
    assert!(checked > 50, "the fixture cases found only {checked} items");
    // A datetime-only query over all files, with a property filter.
    let got = run(
        &base,
        &QueryText {
            datetime: Some("2000-01-01/..".into()),
            filter: Some("percent_valid_pixels >= 0".into()),
            ..Default::default()
        },
    )
    .await;
    let with_dt: BTreeSet<&str> = items
        .iter()
        .filter(|i| i.datetime.is_some())
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(
        got.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        with_dt
    );
    assert_eq!(got.len(), with_dt.len(), "no duplicates");
}

// ---------------------------------------------------------------- CLI

/// A small catalog for CLI tests.
fn small_catalog(dir: &Path) -> (String, PathBuf) {
    let data = dir.join("data");
    let out = ecops(&["demo-data", "--items", "300", "--out", s(&data)]);
    assert!(out.status.success());
    let base = dir.join("catalog").to_string_lossy().into_owned();
    ingest(
        &base,
        &data.join("inventory/inventory.csv"),
        &data.join("items"),
        "demo",
        "1000",
    );
    (base, data)
}

fn stdout_of(args: &[&str]) -> String {
    let out = ecops(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn output_formats_and_uris() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, data) = small_catalog(tmp.path());
    let raw: BTreeMap<String, Value> = {
        let mut m = BTreeMap::new();
        let mut stack = vec![data.join("items")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                    m.insert(v["id"].as_str().unwrap().to_string(), v);
                }
            }
        }
        m
    };
    let q = ["query", "--base", &base, "--bbox", "-180,-90,180,90"];
    let with = |extra: &[&str]| {
        let mut a = q.to_vec();
        a.extend_from_slice(extra);
        stdout_of(&a)
    };
    // ndjson: one object per item, with id, datetime, grid_partition and GeoJSON geometry.
    let nd = with(&["--format", "ndjson"]);
    let lines: Vec<Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let with_geometry = raw.values().filter(|v| !v["geometry"].is_null()).count();
    assert_eq!(lines.len(), with_geometry);
    for l in &lines {
        let id = l["id"].as_str().unwrap();
        let item = &raw[id];
        assert_eq!(l["geometry"]["type"], item["geometry"]["type"], "{id}");
        assert_eq!(
            DateTime::parse_from_rfc3339(l["datetime"].as_str().unwrap()).unwrap(),
            DateTime::parse_from_rfc3339(item["properties"]["datetime"].as_str().unwrap()).unwrap()
        );
        let cell = u64::from_str_radix(l["grid_partition"].as_str().unwrap(), 16).unwrap();
        assert!(h3o::CellIndex::try_from(cell).is_ok());
        assert_eq!(l["assets"], item["assets"]);
    }
    // json and geojson parse and hold the same ids.
    let ids_nd: BTreeSet<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    let arr: Value = serde_json::from_str(&with(&["--format", "json"])).unwrap();
    let ids_json: BTreeSet<&str> = arr
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids_json, ids_nd);
    let fc: Value = serde_json::from_str(&with(&["--format", "geojson"])).unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"].as_array().unwrap().len(), ids_nd.len());
    assert_eq!(fc["features"][0]["type"], "Feature");
    // --json alone is --format json: one JSON value on the last stdout line.
    let last = ecops_json(&[
        "query",
        "--base",
        &base,
        "--bbox",
        "-180,-90,180,90",
        "--json",
    ]);
    assert_eq!(last.as_array().unwrap().len(), ids_nd.len());
    // csv: header plus one line per item.
    let csv = with(&["--format", "csv"]);
    assert_eq!(
        csv.lines().next().unwrap(),
        "id,datetime,platform,collection,grid_partition"
    );
    assert_eq!(csv.lines().count(), ids_nd.len() + 1);
    // --uris: (id, data href) pairs exactly as the items carry them.
    let uris = with(&["--uris", "--format", "ndjson"]);
    let pairs: BTreeMap<String, String> = uris
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["href"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), ids_nd.len());
    for (id, href) in &pairs {
        assert_eq!(raw[id]["assets"]["data"]["href"].as_str().unwrap(), href);
    }
    let thumbs = with(&["--uris", "--asset", "thumbnail", "--format", "csv"]);
    assert!(
        thumbs.lines().skip(1).all(|l| l.contains(".png")),
        "{thumbs}"
    );
    // --limit stops early; --sort orders by datetime.
    let limited = with(&["--format", "ndjson", "--limit", "7"]);
    assert_eq!(limited.lines().count(), 7);
    let sorted = with(&["--format", "ndjson", "--sort", "-datetime", "--limit", "20"]);
    let times: Vec<String> = sorted
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["datetime"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut all_times: Vec<DateTime<Utc>> = raw
        .values()
        .filter(|v| !v["geometry"].is_null())
        .map(|v| t(v["properties"]["datetime"].as_str().unwrap()))
        .collect();
    all_times.sort_by(|a, b| b.cmp(a));
    let got_times: Vec<DateTime<Utc>> = times.iter().map(|s| t(s)).collect();
    assert_eq!(got_times, all_times[..20].to_vec());
    // A property filter, checked against the item JSON.
    let filtered = with(&[
        "--format",
        "ndjson",
        "--filter",
        "percent_valid_pixels >= 80 and platform in ('L8', 'S2A')",
    ]);
    let expect: BTreeSet<&str> = raw
        .iter()
        .filter(|(_, v)| {
            !v["geometry"].is_null()
                && v["properties"]["percent_valid_pixels"]
                    .as_i64()
                    .is_some_and(|p| p >= 80)
                && matches!(v["properties"]["platform"].as_str(), Some("L8" | "S2A"))
        })
        .map(|(k, _)| k.as_str())
        .collect();
    let got: BTreeSet<String> = filtered
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        got.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        expect
    );
    assert!(!expect.is_empty());
    // --explain shows the plan.
    let plan = ecops_json(&[
        "query",
        "--base",
        &base,
        "--bbox",
        "30,0,40,10",
        "--explain",
        "--json",
    ]);
    assert!(plan["files_kept"].as_u64().unwrap() <= plan["files_total"].as_u64().unwrap());
    assert!(plan["files_total"].as_u64().unwrap() > 0);
    assert!(!plan["cells"].as_array().unwrap().is_empty());
}

#[test]
fn malformed_queries_point_at_the_offending_character() {
    // Parsing happens before the catalog is opened: no catalog needed.
    let cases: [(&[&str], &str, usize); 7] = [
        (&["--bbox", "10,20,x,30"], "--bbox", 7),
        (&["--point", "12.5;3"], "--point", 5),
        (&["--datetime", "2020-01-01T25:00:00Z"], "--datetime", 12),
        (&["--filter", "percent_valid_pixels >> 80"], "--filter", 23),
        (&["--filter", "platfrom = 'LC08'"], "--filter", 1),
        (
            &["--intersects", "POLYGON ((0 0, 1 0, 1 x, 0 0))"],
            "--intersects",
            23,
        ),
        (
            &[
                "--intersects",
                "{\"type\": \"Polygon\", \"coordinates\": [[[0, 0], [1, 0]], }",
            ],
            "--intersects",
            55,
        ),
    ];
    for (args, field, column) in cases {
        let mut all = vec!["query", "--base", "/nonexistent/catalog"];
        all.extend_from_slice(args);
        let out = ecops(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{field}: ")) && err.contains(&format!("at character {column}")),
            "{args:?}: {err}"
        );
        // The caret sits under that character of the echoed input (which may be a window of it).
        let lines: Vec<&str> = err.lines().collect();
        let caret = lines
            .iter()
            .position(|l| l.trim_end().ends_with('^'))
            .expect("caret line");
        let at = lines[caret].find('^').unwrap();
        let echoed: Vec<char> = lines[caret - 1].chars().collect();
        let offending = args[1].chars().nth(column - 1).unwrap();
        assert_eq!(echoed[at], offending, "{err}");
    }
    let out = ecops(&[
        "query", "--base", "/x", "--bbox", "1,2,3,4", "--point", "1,2",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most one of"));
}

/// An s3:// catalog (written by ingest through the S3 test server) answers
/// like the same catalog on local disk: files are read through object_store.
#[test]
fn s3_catalog_answers_like_the_local_one() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (local, data) = small_catalog(tmp.path());
    let remote = s3_base("query");
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let out = ecops_with(
        &[
            "ingest",
            "--json",
            "--base",
            &remote,
            "--inventory",
            s(&data.join("inventory/inventory.csv")),
            "--items-root",
            s(&data.join("items")),
            "--job",
            "demo",
            "--chunk-size",
            "1000",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shape in [
        ["--bbox", "170,50,-170,70"],
        ["--bbox", "-180,-90,180,90"],
        ["--datetime", "2020-01-01/.."],
    ] {
        let ids = |base: &str| -> BTreeSet<String> {
            let v = ecops_json_with(
                &["query", "--base", base, shape[0], shape[1], "--json"],
                &env,
            );
            v.as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap().to_string())
                .collect()
        };
        let (a, b) = (ids(&local), ids(&remote));
        assert!(!a.is_empty(), "{shape:?}");
        assert_eq!(a, b, "{shape:?}");
    }
}

/// An item ingested again with new properties (a later data sequence number)
/// is answered with its latest version, before any compaction.
#[tokio::test(flavor = "multi_thread")]
async fn a_reingested_item_is_answered_with_its_latest_version() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("catalog").to_string_lossy().into_owned();
    let versions = [("old", 10), ("new", 90)];
    for (label, pixels) in versions {
        let dir = tmp.path().join(label);
        let items = dir.join("items/v");
        std::fs::create_dir_all(&items).unwrap();
        // A footprint over several cells, so every cell's file holds a copy.
        let body = json!({
            "type": "Feature", "stac_version": "1.0.0", "id": "hm-versioned",
            "geometry": {"type": "Polygon", "coordinates": [ring(&[(10.0, 10.0), (25.0, 10.0), (25.0, 20.0), (10.0, 20.0), (10.0, 10.0)])]},
            "properties": {"datetime": "2021-05-01T00:00:00Z", "platform": "HM", "percent_valid_pixels": pixels},
            "assets": {"data": {"href": format!("s3://handmade/{label}.tif")}},
            "links": []
        })
        .to_string();
        std::fs::write(items.join("item.stac.json"), &body).unwrap();
        let inv = dir.join("inventory.csv");
        std::fs::write(
            &inv,
            format!(
                "\"b\",\"v/item.stac.json\",\"{}\",\"2024-01-01T00:00:00Z\"\n",
                body.len()
            ),
        )
        .unwrap();
        ingest(&base, &inv, &dir.join("items"), label, "10");
    }
    let catalog = EarthCatalog::open(&base, &OpenOptions::default())
        .await
        .unwrap();
    let text = QueryText {
        bbox: Some("0,0,40,40".into()),
        ..Default::default()
    };
    let result = ecops::query::search(
        &catalog,
        &Query::parse(&text).unwrap(),
        &ScanOptions {
            fields: ecops::query::Fields::All,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(result.hits.len(), 1, "one item, once");
    let hit = &result.hits[0];
    assert!(
        result.plan.files_kept > 2,
        "copies in several files: {}",
        result.plan.files_kept
    );
    assert_eq!(hit.href("data"), Some("s3://handmade/new.tif"));
    assert_eq!(hit.properties.get("percent_valid_pixels"), Some(&json!(90)));
}

/// One-shot `ecops query` runs share the snapshot's file list through the
/// cache folder; after a commit only its new manifests are decoded.
#[test]
fn one_shot_queries_share_the_file_list_until_the_next_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let base = tmp.path().join("catalog").to_string_lossy().into_owned();
    let hand = tmp.path().join("handmade");
    let inv = write_handmade(&hand);
    ingest(&base, &inv, &hand.join("items"), "first", "500");
    let explain = || {
        ecops_json_with(
            &[
                "query",
                "--base",
                &base,
                "--bbox",
                "-180,-90,180,90",
                "--explain",
                "--json",
            ],
            &[("ECOPS_CACHE_DIR", cache.to_str().unwrap())],
        )
    };
    let entries = || {
        std::fs::read_dir(cache.join("summary/v1/manifests"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let cold = explain();
    assert_eq!(cold["cached"], false, "{cold}");
    assert_eq!(cold["manifests_decoded"], cold["manifests"], "{cold}");
    let manifests = cold["manifests"].as_u64().unwrap() as usize;
    assert_eq!(entries(), manifests);
    let warm = explain();
    assert_eq!(warm["cached"], true, "{warm}");
    for key in ["files_total", "files_kept", "rows_kept", "bytes_total"] {
        assert_eq!(warm[key], cold[key], "{key}");
    }
    // A new commit: a new snapshot, read from its manifests.
    ingest(&base, &inv, &hand.join("items"), "second", "500");
    let after = explain();
    assert_eq!(after["cached"], false, "{after}");
    let (total, decoded) = (
        after["manifests"].as_u64(),
        after["manifests_decoded"].as_u64(),
    );
    assert!(decoded > Some(0) && decoded < total, "{after}");
    assert_eq!(total.map(|t| t as usize), Some(entries()));
    assert!(after["files_total"].as_u64() > cold["files_total"].as_u64());
}
