//! The GeoJSON-region grid (earthcatalog's `grid.type = geojson`): named
//! polygons from a boundaries FeatureCollection (drainage basins, glacier
//! regions, polar zones); an item's partitions are the ids of every region
//! its footprint touches.
//!
//! **Touches** is the query engine's exact test ([`Planar::intersects`]):
//! planar lon/lat, boundary-inclusive, with the grid's antimeridian and pole
//! rules applied to footprints and regions alike, so a query that shares a
//! point with an item shares a region with it. Items that touch no region
//! go to the one partition [`OUTSIDE`], which queries read unless one region
//! covers the query geometry. Candidate regions come from an R-tree over the
//! regions' part boxes (each also shifted by ±360°, ±720°, for shapes whose
//! unwrapped longitudes run past ±180).

use std::collections::HashSet;

use geo_types::Geometry;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use serde_json::Value;

use super::GridError;
use super::planar::Planar;
use crate::catalog::schema::NO_CELL;
use crate::stac::geojson::geometry_from_json;

/// Partition of items whose footprint touches no region.
pub const OUTSIDE: &str = "__outside__";
/// Longest region id (bytes): it becomes a partition value and a path segment.
pub const MAX_ID_BYTES: usize = 200;

/// Why a boundaries file cannot be a grid; each names the feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundariesError {
    #[error("boundaries are not JSON: {0}")]
    NotJson(String),
    #[error("boundaries are not a GeoJSON FeatureCollection ({0})")]
    NotFeatureCollection(String),
    #[error("boundaries hold no features")]
    NoFeatures,
    #[error("feature {index}: {reason}")]
    Feature { index: usize, reason: String },
    #[error("feature {index} (id '{id}'): {reason}")]
    Region {
        index: usize,
        id: String,
        reason: String,
    },
    #[error("features {first} and {second} have the same id '{id}'")]
    DuplicateId {
        id: String,
        first: usize,
        second: usize,
    },
}

/// One named region.
#[derive(Debug, Clone)]
pub struct Region {
    /// The partition value (the id field's value as text).
    pub id: String,
    /// The polygon(s) as the boundaries file gives them (lon/lat degrees):
    /// what a map draws.
    pub geometry: Geometry<f64>,
    planar: Planar,
}

impl Region {
    /// The outline rings (exterior and holes of every polygon), as the file
    /// gives them, for drawing.
    pub fn outline(&self) -> Vec<Vec<(f64, f64)>> {
        let polygons: Vec<&geo_types::Polygon<f64>> = match &self.geometry {
            Geometry::Polygon(p) => vec![p],
            Geometry::MultiPolygon(mp) => mp.0.iter().collect(),
            _ => vec![],
        };
        polygons
            .into_iter()
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .map(|ring| ring.0.iter().map(|c| (c.x, c.y)).collect())
            .collect()
    }
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// The regions of a boundaries file, indexed for fan-out and planning.
#[derive(Debug)]
pub struct RegionGrid {
    regions: Vec<Region>,
    tree: RTree<Entry>,
}

impl RegionGrid {
    /// Parses and checks a GeoJSON FeatureCollection: every feature has a
    /// Polygon or MultiPolygon (valid, non-empty, finite lon/lat) and a
    /// string or number `id_field` property, unique across features.
    pub fn from_geojson(bytes: &[u8], id_field: &str) -> Result<Self, BoundariesError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| BoundariesError::NotJson(e.to_string()))?;
        let kind = doc.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "FeatureCollection" {
            return Err(BoundariesError::NotFeatureCollection(if kind.is_empty() {
                "no \"type\"".into()
            } else {
                format!("type is {}", kind.chars().take(40).collect::<String>())
            }));
        }
        let features = doc
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| BoundariesError::NotFeatureCollection("no \"features\" array".into()))?;
        if features.is_empty() {
            return Err(BoundariesError::NoFeatures);
        }
        let mut regions = Vec::with_capacity(features.len());
        let mut seen = std::collections::HashMap::new();
        for (index, feature) in features.iter().enumerate() {
            let region = region(index, feature, id_field)?;
            if let Some(first) = seen.insert(region.id.clone(), index) {
                return Err(BoundariesError::DuplicateId {
                    id: region.id,
                    first,
                    second: index,
                });
            }
            regions.push(region);
        }
        Ok(Self::new(regions))
    }

    fn new(regions: Vec<Region>) -> Self {
        let mut entries = Vec::new();
        for (i, r) in regions.iter().enumerate() {
            for [x0, y0, x1, y1] in r.planar.part_bounds() {
                for k in -2..=2 {
                    let dx = 360.0 * f64::from(k);
                    entries.push(GeomWithData::new(
                        Rectangle::from_corners([x0 + dx, y0], [x1 + dx, y1]),
                        i,
                    ));
                }
            }
        }
        Self {
            regions,
            tree: RTree::bulk_load(entries),
        }
    }

    /// The regions, in file order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Indexes of the regions `shape` touches, ascending.
    pub fn touching(&self, shape: &Planar) -> Vec<usize> {
        let mut candidates: Vec<usize> = Vec::new();
        for [x0, y0, x1, y1] in shape.part_bounds() {
            let envelope = AABB::from_corners([x0, y0], [x1, y1]);
            candidates.extend(
                self.tree
                    .locate_in_envelope_intersecting(&envelope)
                    .map(|e| e.data),
            );
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&i| shape.intersects(&self.regions[i].planar));
        candidates
    }

    /// The partitions an item footprint goes to: the ids of the regions it
    /// touches, or [`OUTSIDE`] when it touches none.
    ///
    /// # Errors
    /// An empty geometry (nothing to place).
    pub fn partitions(&self, geometry: &Geometry<f64>) -> Result<Vec<String>, GridError> {
        let shape = Planar::from_geometry(geometry);
        if shape.is_empty() {
            return Err(GridError(
                "empty geometry: it has no coordinates to place on the grid".into(),
            ));
        }
        let touched = self.touching(&shape);
        Ok(if touched.is_empty() {
            vec![OUTSIDE.to_string()]
        } else {
            touched
                .into_iter()
                .map(|i| self.regions[i].id.clone())
                .collect()
        })
    }

    /// The partitions a query shape must read: the regions it touches and,
    /// unless one of them covers it whole, the partitions of items outside
    /// every region ([`OUTSIDE`], and [`NO_CELL`], where earthcatalog files them).
    pub fn query_partitions(&self, shape: &Planar) -> Vec<String> {
        let touched = self.touching(shape);
        let covered = touched
            .iter()
            .any(|&i| shape.covered_by(&self.regions[i].planar));
        let mut out: Vec<String> = touched
            .into_iter()
            .map(|i| self.regions[i].id.clone())
            .collect();
        if !covered {
            out.push(OUTSIDE.to_string());
            out.push(NO_CELL.to_string());
        }
        let mut seen = HashSet::new();
        out.retain(|p| seen.insert(p.clone()));
        out
    }
}

/// One feature as a region, or the reason it cannot be one.
fn region(index: usize, feature: &Value, id_field: &str) -> Result<Region, BoundariesError> {
    let fail = |reason: String| BoundariesError::Feature { index, reason };
    if feature.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(fail("not a GeoJSON Feature".into()));
    }
    let id = match feature.get("properties").and_then(|p| p.get(id_field)) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => {
            return Err(fail(format!("no property '{id_field}' (the id field)")));
        }
        Some(other) => {
            return Err(fail(format!(
                "property '{id_field}' is {}, not a string or number",
                json_kind(other)
            )));
        }
    };
    let bad = |reason: String| BoundariesError::Region {
        index,
        id: id.chars().take(60).collect(),
        reason,
    };
    check_id(&id).map_err(bad)?;
    let geometry = feature
        .get("geometry")
        .filter(|g| !g.is_null())
        .ok_or_else(|| bad("no geometry".into()))?;
    let geometry = geometry_from_json(geometry).map_err(|e| bad(e.to_string()))?;
    if !matches!(geometry, Geometry::Polygon(_) | Geometry::MultiPolygon(_)) {
        return Err(bad("the geometry is not a Polygon or MultiPolygon".into()));
    }
    let planar = Planar::from_geometry(&geometry);
    if planar.is_empty() || planar.area() <= 0.0 {
        return Err(bad("the polygon is empty (no area)".into()));
    }
    Ok(Region {
        id,
        geometry,
        planar,
    })
}

/// A region id becomes a partition value (and, encoded, a path segment).
fn check_id(id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("the id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("the id is longer than {MAX_ID_BYTES} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err("the id holds control characters".into());
    }
    if id == OUTSIDE || id == NO_CELL {
        return Err(format!("the id '{id}' is reserved"));
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;
    use serde_json::json;

    fn fc(features: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({"type": "FeatureCollection", "features": features})).unwrap()
    }

    fn feature(id: Value, rings: Value) -> Value {
        json!({"type": "Feature", "properties": {"rid": id}, "geometry": {"type": "Polygon", "coordinates": rings}})
    }

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Value {
        json!([[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]])
    }

    fn grid() -> RegionGrid {
        RegionGrid::from_geojson(
            &fc(vec![
                feature(json!("A"), square(0.0, 0.0, 10.0, 10.0)),
                feature(json!(7), square(10.0, 0.0, 20.0, 10.0)),
                // Crosses ±180, written with a jump.
                feature(json!("dateline"), square(170.0, -10.0, -170.0, 10.0)),
                // A cap round the north pole, cut at the antimeridian.
                feature(
                    json!("arctic"),
                    json!([[
                        [-180.0, 80.0],
                        [0.0, 80.0],
                        [180.0, 80.0],
                        [180.0, 90.0],
                        [-180.0, 90.0],
                        [-180.0, 80.0]
                    ]]),
                ),
            ]),
            "rid",
        )
        .unwrap()
    }

    fn parts(g: &RegionGrid, geom: Geometry<f64>) -> Vec<String> {
        g.partitions(&geom).unwrap()
    }

    #[test]
    fn footprints_go_to_every_region_they_touch_boundary_included() {
        let g = grid();
        let p = |x: f64, y: f64| Geometry::Point(geo_types::Point::new(x, y));
        assert_eq!(parts(&g, p(5.0, 5.0)), vec!["A"]);
        assert_eq!(
            parts(&g, p(10.0, 5.0)),
            vec!["A", "7"],
            "a shared edge belongs to both"
        );
        assert_eq!(parts(&g, p(50.0, 50.0)), vec![OUTSIDE]);
        assert_eq!(parts(&g, p(-175.0, 0.0)), vec!["dateline"]);
        assert_eq!(parts(&g, p(179.0, 5.0)), vec!["dateline"]);
        assert_eq!(parts(&g, p(-60.0, 89.0)), vec!["arctic"]);
        assert_eq!(parts(&g, p(120.0, 85.0)), vec!["arctic"]);
        let across = polygon![(x: 178.0, y: 0.0), (x: -178.0, y: 0.0), (x: -178.0, y: 1.0), (x: 178.0, y: 1.0), (x: 178.0, y: 0.0)];
        assert_eq!(parts(&g, Geometry::Polygon(across)), vec!["dateline"]);
    }

    #[test]
    fn queries_read_the_outside_partition_unless_one_region_covers_them() {
        let g = grid();
        assert_eq!(g.query_partitions(&Planar::point(5.0, 5.0)), vec!["A"]);
        assert_eq!(
            g.query_partitions(&Planar::bbox(5.0, 5.0, 15.0, 8.0)),
            vec!["A", "7", OUTSIDE, NO_CELL],
            "covered by two regions together, not by one: read the outside too"
        );
        assert_eq!(
            g.query_partitions(&Planar::bbox(175.0, -1.0, -175.0, 1.0)),
            vec!["dateline"]
        );
        assert_eq!(
            g.query_partitions(&Planar::point(60.0, 60.0)),
            vec![OUTSIDE, NO_CELL]
        );
    }

    #[test]
    fn bad_boundaries_name_the_feature() {
        let err = |bytes: &[u8]| {
            RegionGrid::from_geojson(bytes, "rid")
                .unwrap_err()
                .to_string()
        };
        assert!(err(b"{").contains("not JSON"));
        assert!(err(br#"{"type":"Feature"}"#).contains("not a GeoJSON FeatureCollection"));
        assert!(err(&fc(vec![])).contains("no features"));
        let no_id = json!({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": square(0.0, 0.0, 1.0, 1.0)}});
        assert_eq!(
            err(&fc(vec![no_id])),
            "feature 0: no property 'rid' (the id field)"
        );
        let dup = fc(vec![
            feature(json!("x"), square(0.0, 0.0, 1.0, 1.0)),
            feature(json!("x"), square(2.0, 0.0, 3.0, 1.0)),
        ]);
        assert_eq!(err(&dup), "features 0 and 1 have the same id 'x'");
        let bowtie = feature(
            json!("b"),
            json!([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]),
        );
        assert!(
            err(&fc(vec![bowtie])).starts_with("feature 0 (id 'b'): invalid polygon"),
            "{}",
            err(&fc(vec![feature(
                json!("b"),
                json!([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]])
            )]))
        );
        let flat = feature(json!("f"), json!([[[0, 0], [1, 0], [2, 0], [0, 0]]]));
        assert!(err(&fc(vec![flat])).starts_with("feature 0 (id 'f'): "));
        let empty = feature(json!("e"), json!([]));
        assert!(err(&fc(vec![empty])).starts_with("feature 0 (id 'e'): "));
        let line = json!({"type": "Feature", "properties": {"rid": "l"}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}});
        assert!(err(&fc(vec![line])).contains("not a Polygon or MultiPolygon"));
        assert!(
            err(&fc(vec![feature(
                json!("__outside__"),
                square(0.0, 0.0, 1.0, 1.0)
            )]))
            .contains("reserved")
        );
        assert!(
            err(&fc(vec![feature(json!(true), square(0.0, 0.0, 1.0, 1.0))])).contains("a boolean")
        );
    }

    #[test]
    fn outlines_are_the_rings_as_given() {
        let g = grid();
        let a = &g.regions()[0];
        assert_eq!(
            a.outline(),
            vec![vec![
                (0.0, 0.0),
                (10.0, 0.0),
                (10.0, 10.0),
                (0.0, 10.0),
                (0.0, 0.0)
            ]]
        );
        assert_eq!(g.regions()[1].id, "7");
    }
}
