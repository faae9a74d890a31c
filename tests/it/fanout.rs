//! H3 fan-out (`ecops::grid`) checked against an independent oracle: h3o's
//! point-to-cell assignment. Each footprint is sampled here, by this file's own
//! reading of it, densely inside and along its boundary; then
//! - complete: the cell of every sample must be returned, and
//! - tight: every returned cell must have its centre inside the footprint or
//!   hold a sample or a probe point within two sample spacings of the boundary.
//!
//! Run the timing with `cargo test --release --test fanout -- --ignored --nocapture`.

use crate::common;

use std::collections::{BTreeSet, HashSet};
use std::f64::consts::{PI, TAU};

use ecops::grid::{GridError, cells_for, cells_for_bbox, resolution};
use geo_types::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Point, Polygon, Rect,
};
use h3o::{CellIndex, LatLng, Resolution};

type Ll = (f64, f64); // (lon, lat) in degrees

fn res(r: u8) -> Resolution {
    resolution(r).unwrap()
}

fn wrap(lon: f64) -> f64 {
    lon - 360.0 * (lon / 360.0).round()
}

fn cell_of(p: Ll, r: Resolution) -> CellIndex {
    LatLng::new(p.1.clamp(-90.0, 90.0), wrap(p.0))
        .unwrap()
        .to_cell(r)
}

fn unit(p: Ll) -> [f64; 3] {
    let (lon, lat) = (p.0.to_radians(), p.1.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

fn lonlat(v: [f64; 3]) -> Ll {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    (
        v[1].atan2(v[0]).to_degrees(),
        (v[2] / n).asin().to_degrees(),
    )
}

fn angle(a: Ll, b: Ll) -> f64 {
    let (u, v) = (unit(a), unit(b));
    let d = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
    let c = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt().atan2(d)
}

/// The point `dist` radians from `p` on bearing `bearing` (radians).
fn destination(p: Ll, bearing: f64, dist: f64) -> Ll {
    let (lat, lon) = (p.1.to_radians(), p.0.to_radians());
    let lat2 = (lat.sin() * dist.cos() + lat.cos() * dist.sin() * bearing.cos()).asin();
    let lon2 =
        lon + (bearing.sin() * dist.sin() * lat.cos()).atan2(dist.cos() - lat.sin() * lat2.sin());
    (lon2.to_degrees(), lat2.to_degrees())
}

fn lerp(a: Ll, b: Ll, t: f64) -> Ll {
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

/// A footprint as this file reads it: samples and a membership test for
/// points (used for cell centres), all in a frame this file chose.
struct Region {
    name: String,
    interior: Vec<Ll>,
    boundary: Vec<Ll>,
    inside: Box<dyn Fn(Ll) -> bool>,
}

impl Region {
    fn union(name: &str, parts: Vec<Region>) -> Region {
        let mut interior = Vec::new();
        let mut boundary = Vec::new();
        let mut tests = Vec::new();
        for p in parts {
            interior.extend(p.interior);
            boundary.extend(p.boundary);
            tests.push(p.inside);
        }
        Region {
            name: name.into(),
            interior,
            boundary,
            inside: Box::new(move |p| tests.iter().any(|t| t(p))),
        }
    }
}

/// Planar even-odd test of `p` (any longitude copy) in a ring of this file's frame.
fn in_ring(ring: &[Ll], p: Ll) -> bool {
    (-2..=2).any(|k| {
        let (x, y) = (p.0 + 360.0 * f64::from(k), p.1);
        let mut inside = false;
        for i in 0..ring.len() {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            if (a.1 > y) != (b.1 > y) && x < a.0 + (y - a.1) * (b.0 - a.0) / (b.1 - a.1) {
                inside = !inside;
            }
        }
        inside
    })
}

/// A convex quadrilateral, corners in one continuous longitude frame; the
/// bilinear map of the unit square covers it.
fn quad(name: &str, c: [Ll; 4], per_edge: usize, grid: usize) -> Region {
    let mut boundary = Vec::new();
    for i in 0..4 {
        for k in 0..per_edge {
            boundary.push(lerp(c[i], c[(i + 1) % 4], k as f64 / per_edge as f64));
        }
    }
    let mut interior = Vec::new();
    for i in 0..grid {
        for j in 0..grid {
            let (s, t) = (
                (i as f64 + 0.5) / grid as f64,
                (j as f64 + 0.5) / grid as f64,
            );
            interior.push(lerp(lerp(c[0], c[1], s), lerp(c[3], c[2], s), t));
        }
    }
    let ring = c.to_vec();
    Region {
        name: name.into(),
        interior,
        boundary,
        inside: Box::new(move |p| in_ring(&ring, p)),
    }
}

/// The box [west, east] × [south, north] read literally (any width ≤ 360).
fn lon_lat_box(name: &str, w: f64, s: f64, e: f64, n: f64, per_edge: usize) -> Region {
    let c = [(w, s), (e, s), (e, n), (w, n)];
    let mut r = quad(name, c, per_edge, 80);
    r.inside = Box::new(move |p| {
        p.1 >= s && p.1 <= n && (-2..=2).any(|k| (w..=e).contains(&(p.0 + 360.0 * f64::from(k))))
    });
    r
}

/// A path (line) sampled along, in a continuous longitude frame.
fn path(name: &str, pts: &[Ll], per_edge: usize) -> Region {
    let mut boundary = Vec::new();
    for w in pts.windows(2) {
        for k in 0..per_edge {
            boundary.push(lerp(w[0], w[1], k as f64 / per_edge as f64));
        }
    }
    boundary.extend(pts.last());
    Region {
        name: name.into(),
        interior: vec![],
        boundary,
        inside: Box::new(|_| false),
    }
}

/// Asserts `cells` is complete and tight for `region` (see the file comment).
fn check(region: &Region, cells: &[CellIndex], r: Resolution) {
    let got: HashSet<CellIndex> = cells.iter().copied().collect();
    assert_eq!(got.len(), cells.len(), "{}: duplicates", region.name);
    assert!(
        cells.windows(2).all(|w| w[0] < w[1]),
        "{}: not sorted",
        region.name
    );
    let mut near = HashSet::new();
    for &p in region.interior.iter().chain(&region.boundary) {
        let c = cell_of(p, r);
        assert!(
            got.contains(&c),
            "{}: point {p:?} lies in cell {c}, which is missing (got {cells:?})",
            region.name
        );
        near.insert(c);
    }
    // Probes: two sample spacings around every boundary sample, 16 bearings.
    let spacing = region
        .boundary
        .windows(2)
        .map(|w| angle(w[0], w[1]))
        .fold(1e-7, f64::max);
    for &p in &region.boundary {
        for k in 0..16 {
            let q = destination(p, TAU * f64::from(k) / 16.0, 2.0 * spacing);
            near.insert(cell_of(q, r));
        }
    }
    for &c in cells {
        let ll = LatLng::from(c);
        assert!(
            near.contains(&c) || (region.inside)((ll.lng(), ll.lat())),
            "{}: cell {c} (centre {ll}) is not near the footprint",
            region.name
        );
    }
}

fn polygon(pts: &[Ll]) -> Polygon<f64> {
    let ring: LineString<f64> = pts.iter().map(|&(x, y)| Coord { x, y }).collect();
    Polygon::new(ring, vec![])
}

fn every_cell(r: Resolution) -> Vec<CellIndex> {
    let mut all: Vec<CellIndex> = CellIndex::base_cells()
        .flat_map(|b| b.children(r))
        .collect();
    all.sort_unstable();
    all
}

// --- the fixture catalog's real footprints -----------------------------------

struct FixtureItem {
    id: String,
    geometry: Geometry<f64>,
}

fn fixture_items() -> Vec<FixtureItem> {
    let catalog = common::earthcatalog_fixture();
    let items = catalog
        .parent()
        .unwrap()
        .join("earthcatalog-0.5.1-inputs/items");
    let mut files = Vec::new();
    let mut dirs = vec![items];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(".stac.json") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|f| {
            let item = ecops::stac::parse_item(&std::fs::read(f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            FixtureItem {
                geometry: item
                    .geometry
                    .unwrap_or_else(|| panic!("{} has a geometry", item.id)),
                id: item.id,
            }
        })
        .collect()
}

/// This file's reading of a fixture quad: corners in one continuous frame
/// (a longitude jump over 180° is a crossing of the antimeridian).
fn quad_of(name: &str, ring: &LineString<f64>, per_edge: usize, grid: usize) -> Region {
    let pts: Vec<Ll> = ring.coords().map(|c| (c.x, c.y)).collect();
    assert_eq!(
        pts.len(),
        5,
        "{name}: fixture footprints are quadrilaterals"
    );
    let mut c = [pts[0], pts[1], pts[2], pts[3]];
    for i in 1..4 {
        while c[i].0 - c[i - 1].0 > 180.0 {
            c[i].0 -= 360.0;
        }
        while c[i].0 - c[i - 1].0 < -180.0 {
            c[i].0 += 360.0;
        }
    }
    quad(name, c, per_edge, grid)
}

fn fixture_region(item: &FixtureItem, per_edge: usize, grid: usize) -> Region {
    match &item.geometry {
        Geometry::Polygon(p) => quad_of(&item.id, p.exterior(), per_edge, grid),
        Geometry::MultiPolygon(mp) => Region::union(
            &item.id,
            mp.0.iter()
                .map(|p| quad_of(&item.id, p.exterior(), per_edge, grid))
                .collect(),
        ),
        g => panic!("{}: unexpected geometry {g:?}", item.id),
    }
}

/// meta.json names its special items by their sequence number (the 7-digit
/// field of the id), not by position in a listing.
fn meta_ids(key: &str) -> Vec<String> {
    let catalog = common::earthcatalog_fixture();
    let meta = catalog
        .parent()
        .unwrap()
        .join("earthcatalog-0.5.1-inputs/meta.json");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    meta[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("_{:07}_", n.as_u64().unwrap()))
        .collect()
}

#[test]
fn every_fixture_footprint_is_complete_and_tight() {
    let items = fixture_items();
    assert_eq!(items.len(), 303);
    let mut polar = 0;
    for item in &items {
        let region = fixture_region(item, 200, 24);
        if region.boundary.iter().any(|p| p.1.abs() > 75.0) {
            polar += 1;
        }
        for r in [res(1), res(3)] {
            let cells = cells_for(&item.geometry, r).unwrap();
            check(&region, &cells, r);
        }
    }
    assert!(polar > 60, "fixture has its polar items ({polar})");
}

#[test]
fn fixture_antimeridian_items_stay_near_the_antimeridian() {
    let items = fixture_items();
    let split = meta_ids("antimeridian_split");
    let naive = meta_ids("antimeridian_naive");
    for tag in split.iter().chain(&naive) {
        let item = items.iter().find(|i| i.id.contains(tag.as_str())).unwrap();
        let is_split = split.contains(tag);
        assert_eq!(
            matches!(item.geometry, Geometry::MultiPolygon(_)),
            is_split,
            "{}: meta.json's split item is the MultiPolygon",
            item.id
        );
        for r in 1..=4 {
            let cells = cells_for(&item.geometry, res(r)).unwrap();
            check(&fixture_region(item, 300, 30), &cells, res(r));
            // Cells near ±180 only: nothing in between across the globe.
            for c in &cells {
                let lon = LatLng::from(*c).lng();
                assert!(lon.abs() > 150.0, "{}: cell {c} at lon {lon}", item.id);
            }
        }
    }
}

#[test]
fn naive_split_and_shifted_antimeridian_polygons_agree() {
    let items = fixture_items();
    let tag = &meta_ids("antimeridian_naive")[0];
    let item = items.iter().find(|i| i.id.contains(tag.as_str())).unwrap();
    let Geometry::Polygon(naive) = &item.geometry else {
        panic!("{}: naive item is one polygon", item.id)
    };
    // Same ring, longitudes east of 180 instead of jumping to -180.
    let shifted: Vec<Ll> = naive
        .exterior()
        .coords()
        .map(|c| (if c.x < 0.0 { c.x + 360.0 } else { c.x }, c.y))
        .collect();
    // And split at the antimeridian the RFC 7946 way (clip each side at 180).
    let clip = |keep_east: bool| -> Vec<Ll> {
        let mut out = Vec::new();
        for w in shifted.windows(2) {
            let (a, b) = (w[0], w[1]);
            let side = |p: Ll| (p.0 >= 180.0) == keep_east || p.0 == 180.0;
            if side(a) {
                out.push(a);
            }
            if (a.0 - 180.0) * (b.0 - 180.0) < 0.0 {
                out.push(lerp(a, b, (180.0 - a.0) / (b.0 - a.0)));
            }
        }
        out.push(out[0]);
        if keep_east {
            out.iter().map(|&(x, y)| (x - 360.0, y)).collect()
        } else {
            out
        }
    };
    let split = MultiPolygon(vec![polygon(&clip(false)), polygon(&clip(true))]);
    for r in 0..=5 {
        let want = cells_for(&item.geometry, res(r)).unwrap();
        assert_eq!(
            cells_for(&Geometry::Polygon(polygon(&shifted)), res(r)).unwrap(),
            want
        );
        assert_eq!(
            cells_for(&Geometry::MultiPolygon(split.clone()), res(r)).unwrap(),
            want
        );
    }
}

// --- cell edges and vertices: the boundary-inclusive rule, exactly --------------

/// Tiny boxes (±`half` degrees) on every vertex and edge midpoint of `cells`:
/// the result must equal the set of cells the box's dense samples fall in.
fn check_tiny_boxes(cells: &[CellIndex], r: Resolution, half: f64) -> (usize, usize) {
    let (mut boxes, mut straddling) = (0, 0);
    for &cell in cells {
        let verts: Vec<Ll> = cell.boundary().iter().map(|v| (v.lng(), v.lat())).collect();
        let mut centres = verts.clone();
        for i in 0..verts.len() {
            // Great-circle midpoint: on H3's edge, not on the lon/lat chord.
            let (a, b) = (unit(verts[i]), unit(verts[(i + 1) % verts.len()]));
            centres.push(lonlat([a[0] + b[0], a[1] + b[1], a[2] + b[2]]));
        }
        for (x, y) in centres {
            if y.abs() > 90.0 - 2.0 * half {
                continue;
            }
            let c = [
                (x - half, y - half),
                (x + half, y - half),
                (x + half, y + half),
                (x - half, y + half),
            ];
            let region = quad(&format!("box at {cell} ({x}, {y})"), c, 60, 12);
            let got = cells_for(
                &Geometry::Polygon(polygon(&[c[0], c[1], c[2], c[3], c[0]])),
                r,
            )
            .unwrap();
            let want: BTreeSet<CellIndex> = region
                .boundary
                .iter()
                .chain(&region.interior)
                .map(|&p| cell_of(p, r))
                .collect();
            assert_eq!(
                got,
                want.iter().copied().collect::<Vec<_>>(),
                "{}",
                region.name
            );
            boxes += 1;
            straddling += usize::from(want.len() > 1);
        }
    }
    (boxes, straddling)
}

#[test]
fn footprints_on_cell_edges_and_vertices_get_every_cell_they_touch() {
    // All of resolution 1 (including the poles, pentagons and the concave
    // Class III cells that cross icosahedron faces) with ~10 m boxes.
    let (boxes, straddling) = check_tiny_boxes(&every_cell(res(1)), res(1), 1e-4);
    assert!(
        boxes > 10_000 && straddling * 10 > boxes * 9,
        "{boxes} boxes, {straddling} straddling"
    );
    // Finer resolutions: pentagons and a spread of hexagons.
    for r in [res(2), res(3), res(5)] {
        let cells: Vec<CellIndex> = every_cell(r)
            .into_iter()
            .step_by(997)
            .chain(r.pentagons())
            .collect();
        check_tiny_boxes(&cells, r, 1e-5);
    }
}

#[test]
fn a_footprint_inside_one_cell_gets_only_that_cell() {
    for r in [res(0), res(1), res(2)] {
        for cell in every_cell(r) {
            let ll = LatLng::from(cell);
            let (x, y) = (ll.lng(), ll.lat());
            // About 10 km across, whatever the latitude.
            let (dy, dx) = (0.05, 0.05 / y.to_radians().cos());
            let pts = [
                (x - dx, y - dy),
                (x + dx, y - dy),
                (x + dx, y + dy),
                (x - dx, y + dy),
                (x - dx, y - dy),
            ];
            assert_eq!(
                cells_for(&Geometry::Polygon(polygon(&pts)), r).unwrap(),
                vec![cell]
            );
        }
    }
}

// --- poles, wide boxes, the world -----------------------------------------------

#[test]
fn the_whole_world_is_every_cell() {
    let world = [
        (-180.0, -90.0),
        (180.0, -90.0),
        (180.0, 90.0),
        (-180.0, 90.0),
        (-180.0, -90.0),
    ];
    for r in 0..=2 {
        let all = every_cell(res(r));
        assert_eq!(all.len() as u64, res(r).cell_count());
        assert_eq!(
            cells_for(&Geometry::Polygon(polygon(&world)), res(r)).unwrap(),
            all
        );
        let rect = Rect::new(
            Coord {
                x: -180.0,
                y: -90.0,
            },
            Coord { x: 180.0, y: 90.0 },
        );
        assert_eq!(cells_for(&Geometry::Rect(rect), res(r)).unwrap(), all);
        assert_eq!(
            cells_for_bbox(-180.0, -90.0, 180.0, 90.0, res(r)).unwrap(),
            all
        );
    }
    assert_eq!(
        cells_for_bbox(-180.0, -90.0, 180.0, 90.0, res(1))
            .unwrap()
            .len(),
        842
    );
}

#[test]
fn boxes_wider_than_180_degrees() {
    for r in [res(1), res(2)] {
        // Literal: 340° wide, leaving a 20° gap across the antimeridian.
        let rect = Rect::new(
            Coord {
                x: -170.0,
                y: -10.0,
            },
            Coord { x: 170.0, y: 10.0 },
        );
        let wide = cells_for(&Geometry::Rect(rect), r).unwrap();
        check(
            &lon_lat_box("wide rect", -170.0, -10.0, 170.0, 10.0, 2000),
            &wide,
            r,
        );
        assert_eq!(cells_for_bbox(-170.0, -10.0, 170.0, 10.0, r).unwrap(), wide);
        // The same box as a polygon needs vertices no more than 180° apart.
        let poly = polygon(&[
            (-170.0, -10.0),
            (0.0, -10.0),
            (170.0, -10.0),
            (170.0, 10.0),
            (0.0, 10.0),
            (-170.0, 10.0),
            (-170.0, -10.0),
        ]);
        assert_eq!(cells_for(&Geometry::Polygon(poly), r).unwrap(), wide);
        // A bbox with west > east crosses the antimeridian: the 20° gap.
        let gap = cells_for_bbox(170.0, -10.0, -170.0, 10.0, r).unwrap();
        check(
            &lon_lat_box("crossing bbox", 170.0, -10.0, 190.0, 10.0, 400),
            &gap,
            r,
        );
        // Written as a 4-corner polygon, the same corners are the short way.
        let short = polygon(&[
            (170.0, -10.0),
            (-170.0, -10.0),
            (-170.0, 10.0),
            (170.0, 10.0),
            (170.0, -10.0),
        ]);
        assert_eq!(cells_for(&Geometry::Polygon(short), r).unwrap(), gap);
        // Together they cover the band, overlapping on the boundary cells only.
        let band = cells_for_bbox(-180.0, -10.0, 180.0, 10.0, r).unwrap();
        let union: BTreeSet<CellIndex> = wide.iter().chain(&gap).copied().collect();
        assert_eq!(union.into_iter().collect::<Vec<_>>(), band);
    }
}

#[test]
fn polar_caps_in_every_spelling() {
    for r in [res(0), res(1), res(2)] {
        for (lat, pole) in [(80.0, 90.0), (-80.0, -90.0), (60.0, 90.0)] {
            let ring = |lons: &[f64]| lons.iter().map(|&x| (x, lat)).collect::<Vec<Ll>>();
            let spellings: Vec<Vec<Ll>> = vec![
                ring(&[0.0, 90.0, 180.0, -90.0, 0.0]),
                ring(&[0.0, -90.0, 180.0, 90.0, 0.0]),
                ring(
                    &(0..=36)
                        .map(|k| -180.0 + 10.0 * f64::from(k))
                        .chain([-180.0])
                        .collect::<Vec<_>>(),
                ),
                ring(
                    &(0..36)
                        .map(|k| 175.0 - 10.0 * f64::from(k))
                        .chain([175.0])
                        .collect::<Vec<_>>(),
                ),
                vec![
                    (-180.0, lat),
                    (180.0, lat),
                    (180.0, pole),
                    (-180.0, pole),
                    (-180.0, lat),
                ],
                vec![
                    (-180.0, lat),
                    (0.0, lat),
                    (180.0, lat),
                    (180.0, pole),
                    (0.0, pole),
                    (-180.0, pole),
                    (-180.0, lat),
                ],
            ];
            let want = cells_for_bbox(-180.0, lat.min(pole), 180.0, lat.max(pole), r).unwrap();
            let region = lon_lat_box("cap", -180.0, lat.min(pole), 180.0, lat.max(pole), 3000);
            check(&region, &want, r);
            for s in spellings {
                let got = cells_for(&Geometry::Polygon(polygon(&s)), r).unwrap();
                assert_eq!(got, want, "cap at {lat} spelled {s:?}");
            }
        }
    }
}

#[test]
fn footprints_touching_a_pole() {
    for r in [res(1), res(2), res(3)] {
        // A wedge with an edge along the pole (latitude 90).
        let wedge = [
            (0.0, 80.0),
            (90.0, 80.0),
            (90.0, 90.0),
            (0.0, 90.0),
            (0.0, 80.0),
        ];
        let cells = cells_for(&Geometry::Polygon(polygon(&wedge)), r).unwrap();
        let region = lon_lat_box("wedge", 0.0, 80.0, 90.0, 90.0, 2000);
        check(&region, &cells, r);
        assert!(cells.contains(&cell_of((0.0, 90.0), r)));
        // A scene with one corner on the south pole.
        let corner = [(10.0, -89.0), (20.0, -89.5), (0.0, -90.0), (10.0, -89.0)];
        let cells = cells_for(&Geometry::Polygon(polygon(&corner)), r).unwrap();
        assert!(cells.contains(&cell_of((0.0, -90.0), r)));
        let region = quad(
            "pole triangle",
            [corner[0], corner[1], corner[2], corner[2]],
            500,
            40,
        );
        check(&region, &cells, r);
    }
}

// --- large and hostile footprints ------------------------------------------------

#[test]
fn continent_sized_polygons() {
    // Roughly Africa, as a 16-vertex outline, and a box about its size.
    let africa = [
        (-17.0, 14.7),
        (-16.0, 21.0),
        (-9.0, 30.0),
        (-5.9, 35.8),
        (10.0, 37.3),
        (11.0, 33.0),
        (32.0, 31.5),
        (43.3, 12.0),
        (51.2, 11.8),
        (40.0, -3.0),
        (40.5, -15.0),
        (32.0, -27.0),
        (20.0, -34.8),
        (12.0, -17.0),
        (9.0, 4.0),
        (-7.5, 4.4),
        (-17.0, 14.7),
    ];
    for r in 1..=4 {
        let t = std::time::Instant::now();
        let cells = cells_for(&Geometry::Polygon(polygon(&africa)), res(r)).unwrap();
        let took = t.elapsed();
        // This file's reading: samples along the outline and inside on a grid.
        let mut region = path("africa", &africa, 400);
        region.interior = (0..=120)
            .flat_map(|i| {
                (0..=120).map(move |j| {
                    (
                        -18.0 + 70.0 * f64::from(i) / 120.0,
                        -35.0 + 73.0 * f64::from(j) / 120.0,
                    )
                })
            })
            .filter(|&p| in_ring(&africa, p))
            .collect();
        region.inside = Box::new(move |p| in_ring(&africa, p));
        check(&region, &cells, res(r));
        if r <= 3 {
            for c in every_cell(res(r)) {
                let ll = LatLng::from(c);
                if in_ring(&africa, (ll.lng(), ll.lat())) {
                    assert!(
                        cells.binary_search(&c).is_ok(),
                        "africa res {r}: centre cell {c}"
                    );
                }
            }
        }
        eprintln!("africa res {r}: {} cells in {took:?}", cells.len());
    }
    let cells = cells_for_bbox(-20.0, -35.0, 50.0, 35.0, res(4)).unwrap();
    check(
        &lon_lat_box("box", -20.0, -35.0, 50.0, 35.0, 2000),
        &cells,
        res(4),
    );
}

#[test]
fn hostile_sizes_are_refused_not_computed() {
    let t = std::time::Instant::now();
    for (r, g) in [
        (
            7,
            Geometry::Rect(Rect::new(
                Coord {
                    x: -180.0,
                    y: -90.0,
                },
                Coord { x: 180.0, y: 90.0 },
            )),
        ),
        (
            9,
            Geometry::Polygon(polygon(&[
                (-60.0, -60.0),
                (60.0, -60.0),
                (60.0, 60.0),
                (-60.0, 60.0),
                (-60.0, -60.0),
            ])),
        ),
        (
            13,
            Geometry::LineString(LineString::from(vec![
                (-179.0, 0.0),
                (0.0, 0.0),
                (179.0, 0.0),
            ])),
        ),
    ] {
        let e = cells_for(&g, res(r)).unwrap_err();
        assert!(e.0.contains("limit"), "{e}");
    }
    assert!(
        t.elapsed().as_secs() < 5,
        "refusal is cheap: {:?}",
        t.elapsed()
    );
}

// --- points, lines, multi-geometries, collections, empties ----------------------

#[test]
fn points_and_lines() {
    for r in [res(1), res(3), res(7)] {
        for p in [
            (0.0, 0.0),
            (-122.3, 47.6),
            (179.99, -16.0),
            (12.0, 89.999),
            (0.0, -90.0),
            (180.0, 0.0),
        ] {
            let cells = cells_for(&Geometry::Point(Point::new(p.0, p.1)), r).unwrap();
            assert_eq!(cells, vec![cell_of(p, r)], "point {p:?}");
        }
    }
    for r in [res(1), res(3)] {
        let line = [(-10.0, 40.0), (15.0, 52.0), (30.0, 52.0), (31.0, 70.0)];
        let cells = cells_for(&Geometry::LineString(LineString::from(line.to_vec())), r).unwrap();
        check(&path("line", &line, 3000), &cells, r);
        // Across the antimeridian the short way, not round the globe.
        let across = LineString::from(vec![(175.0, 10.0), (-175.0, 12.0)]);
        let cells = cells_for(&Geometry::LineString(across), r).unwrap();
        check(
            &path("across", &[(175.0, 10.0), (185.0, 12.0)], 3000),
            &cells,
            r,
        );
        // Over the pole along a meridian.
        let over = LineString::from(vec![(0.0, 85.0), (0.0, 90.0), (180.0, 90.0), (180.0, 85.0)]);
        let cells = cells_for(&Geometry::LineString(over), r).unwrap();
        let region = Region::union(
            "over the pole",
            vec![
                path("", &[(0.0, 85.0), (0.0, 90.0)], 1000),
                path("", &[(180.0, 90.0), (180.0, 85.0)], 1000),
            ],
        );
        check(&region, &cells, r);
    }
}

#[test]
fn multi_geometries_and_collections_are_unions() {
    let r = res(2);
    let a = polygon(&[
        (10.0, 10.0),
        (12.0, 10.0),
        (12.0, 12.0),
        (10.0, 12.0),
        (10.0, 10.0),
    ]);
    let b = polygon(&[
        (-60.0, -30.0),
        (-50.0, -30.0),
        (-50.0, -20.0),
        (-60.0, -30.0),
    ]);
    let line = LineString::from(vec![(100.0, 0.0), (104.0, 3.0)]);
    let pt = Point::new(-3.0, 51.0);
    let parts = [
        Geometry::Polygon(a.clone()),
        Geometry::Polygon(b.clone()),
        Geometry::LineString(line.clone()),
        Geometry::Point(pt),
    ];
    let union = |gs: &[Geometry<f64>]| -> Vec<CellIndex> {
        let set: BTreeSet<CellIndex> = gs.iter().flat_map(|g| cells_for(g, r).unwrap()).collect();
        set.into_iter().collect()
    };
    let mp = Geometry::MultiPolygon(MultiPolygon(vec![a, b]));
    assert_eq!(cells_for(&mp, r).unwrap(), union(&parts[..2]));
    let ml = Geometry::MultiLineString(MultiLineString(vec![
        line.clone(),
        LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]),
    ]));
    assert_eq!(
        cells_for(&ml, r).unwrap(),
        union(&[
            Geometry::LineString(line),
            Geometry::LineString(LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]))
        ])
    );
    let mpt = Geometry::MultiPoint(MultiPoint(vec![pt, Point::new(140.0, -35.0)]));
    assert_eq!(
        cells_for(&mpt, r).unwrap(),
        union(&[
            Geometry::Point(pt),
            Geometry::Point(Point::new(140.0, -35.0))
        ])
    );
    let nested = GeometryCollection(vec![
        parts[0].clone(),
        Geometry::GeometryCollection(GeometryCollection(parts[1..].to_vec())),
    ]);
    assert_eq!(
        cells_for(&Geometry::GeometryCollection(nested), r).unwrap(),
        union(&parts)
    );
    // A hole: cells wholly inside it are left out, the rim's cells stay.
    let outer = [
        (0.0, 0.0),
        (40.0, 0.0),
        (40.0, 40.0),
        (0.0, 40.0),
        (0.0, 0.0),
    ];
    let inner = [
        (10.0, 10.0),
        (30.0, 10.0),
        (30.0, 30.0),
        (10.0, 30.0),
        (10.0, 10.0),
    ];
    let holed = Polygon::new(
        polygon(&outer).exterior().clone(),
        vec![polygon(&inner).exterior().clone()],
    );
    let cells = cells_for(&Geometry::Polygon(holed), r).unwrap();
    assert!(!cells.contains(&cell_of((20.0, 20.0), r)));
    let mut region = Region::union(
        "holed",
        vec![path("", &outer, 2000), path("", &inner, 2000)],
    );
    region.interior = (0..40)
        .flat_map(|i| (0..40).map(move |j| (f64::from(i) + 0.5, f64::from(j) + 0.5)))
        .filter(|&p| !in_ring(&inner, p))
        .collect();
    region.inside = Box::new(move |p| in_ring(&outer, p) && !in_ring(&inner, p));
    check(&region, &cells, r);
}

#[test]
fn empty_and_invalid_geometries_are_errors_that_say_why() {
    let r = res(1);
    let empties = [
        Geometry::Polygon(Polygon::new(LineString::new(vec![]), vec![])),
        Geometry::MultiPolygon(MultiPolygon(vec![])),
        Geometry::LineString(LineString::new(vec![])),
        Geometry::MultiPoint(MultiPoint(vec![])),
        Geometry::GeometryCollection(GeometryCollection(vec![])),
        Geometry::GeometryCollection(GeometryCollection(vec![Geometry::MultiPolygon(
            MultiPolygon(vec![]),
        )])),
    ];
    for g in empties {
        let GridError(msg) = cells_for(&g, r).unwrap_err();
        assert!(msg.contains("empty geometry"), "{g:?}: {msg}");
    }
    let bad_lat = Geometry::Point(Point::new(0.0, 90.5));
    assert!(
        cells_for(&bad_lat, r)
            .unwrap_err()
            .to_string()
            .contains("latitude beyond")
    );
    let nan = Geometry::Polygon(polygon(&[
        (0.0, 0.0),
        (f64::NAN, 1.0),
        (1.0, 0.0),
        (0.0, 0.0),
    ]));
    assert!(
        cells_for(&nan, r)
            .unwrap_err()
            .to_string()
            .contains("not a finite number")
    );
}

// --- timing (not part of the suite) ----------------------------------------------

/// Rotated rectangles of 100–200 km at random places (|lat| < 80): scene
/// footprints like the fixture's.
fn scenes(n: usize, seed: u64) -> Vec<Geometry<f64>> {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let c = (
                (next() * 360.0 - 180.0),
                (next() * 2.0 - 1.0).asin().to_degrees() * 80.0 / 90.0,
            );
            let (w, h) = (100.0 + 100.0 * next(), 100.0 + 100.0 * next());
            let rot = next() * PI;
            let half_diag = (w * w + h * h).sqrt() / 2.0 / 6371.0;
            let a = (h / w).atan();
            let corners: Vec<Ll> = [a, PI - a, PI + a, TAU - a, a]
                .iter()
                .map(|&t| {
                    let p = destination(c, rot + t, half_diag);
                    (wrap(p.0), p.1)
                })
                .collect();
            Geometry::Polygon(polygon(&corners))
        })
        .collect()
}

#[test]
#[ignore = "timing: run in release with --ignored --nocapture"]
fn timing_scene_footprints() {
    let fixture: Vec<Geometry<f64>> = fixture_items().into_iter().map(|i| i.geometry).collect();
    let synthetic = scenes(20_000, 7);
    for (name, set) in [("synthetic 100-200 km", &synthetic), ("fixture", &fixture)] {
        for r in [res(1), res(3)] {
            let mut rows = 0usize;
            let t = std::time::Instant::now();
            let rounds = (200_000 / set.len()).max(1);
            for _ in 0..rounds {
                for g in set {
                    rows += cells_for(g, r).unwrap().len();
                }
            }
            let n = rounds * set.len();
            let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
            eprintln!(
                "{name} res {r}: {us:.2} µs/footprint, {:.3} cells/footprint",
                rows as f64 / n as f64
            );
        }
    }
}
