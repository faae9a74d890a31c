//! H3 fan-out: the cells a footprint touches at the table's resolution.
//!
//! Ingest files an item under every cell [`cells_for`] returns and the query
//! engine finds items through the same function, so the rule below is the
//! catalog's contract: a query misses nothing an item's footprint touches.
//!
//! Why not h3o's tiler (`ContainmentMode::Covers`): it tests cells as planar
//! lon/lat polygons through their vertices, but a real H3 cell edge is a great
//! circle that bows poleward of that chord (for resolution-1 edges by up to
//! ~6 km at 45° latitude and ~30 km at 75°), so a footprint in the bow loses a
//! cell (8 of the fixture's 303 items at resolution 1); its transmeridian
//! heuristic also misreads boxes wider than 180° and rings round a pole.

mod cover;
mod footprint;
pub mod planar;
pub mod regions;
mod sphere;

use std::sync::Arc;

use geo_types::Geometry;
use h3o::{CellIndex, Resolution};

pub use regions::{BoundariesError, OUTSIDE, Region, RegionGrid};

use cover::Cover;
use footprint::Footprint;

/// Why a geometry could not be placed on the grid (the message says which
/// input and why; ingest dead-letters the item with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compute H3 cells: {0}")]
pub struct GridError(pub String);

/// Most cells one footprint may cover. A scene covers 1–3 cells at resolution
/// 1; the whole world is 2 016 842 cells at resolution 5. Larger requests are
/// refused (before the work, from an estimate, and during it, by count) so
/// hostile input cannot exhaust memory.
pub const MAX_CELLS: usize = 5_000_000;

/// Parses a resolution 0–15.
pub fn resolution(res: u8) -> Result<Resolution, GridError> {
    Resolution::try_from(res).map_err(|e| GridError(e.to_string()))
}

/// The cells at `res` that `geometry` touches, sorted and unique.
///
/// **Touches** means shares at least one point with the closed cell
/// (boundary-inclusive): a footprint smaller than a cell gets that cell, one
/// straddling a cell edge gets both cells, one on a vertex gets all three.
/// Cells are H3's true cells (what [`h3o::LatLng::to_cell`] assigns points to);
/// distances under ~1 mm count as touching.
///
/// Footprint geometry (GeoJSON, degrees): edges are straight in (lon, lat),
/// as RFC 7946 says. Longitude is read as follows:
/// - **Antimeridian.** An edge whose ends are more than 180° of longitude
///   apart goes the short way across ±180° (a footprint written without
///   splitting, e.g. `[179, …], [-179, …]`). Footprints split at the
///   antimeridian (a MultiPolygon, RFC 7946 §3.1.9) need nothing special.
///   Exceptions: an edge along a pole (both ends at latitude ±90) is read as
///   written (every longitude there is one point), and an edge from -180 to
///   +180 or back is either a full turn (a box as wide as the world) or no
///   step at all: the reading that gives the ring an area wins, then the one
///   that does not wind round a pole, then the full turn.
/// - **Poles.** A ring that winds once around the globe (e.g. lat 80 at
///   longitudes 0, 90, 180, -90) encloses the pole nearer its vertices (for a
///   ring on the equator, the pole on its left, as RFC 7946 winds exteriors).
///   A ring may also reach a pole explicitly (an edge at latitude 90).
/// - **Boxes wider than 180°.** Give a [`Geometry::Rect`] (taken as written,
///   up to the whole globe), use [`cells_for_bbox`], or write the polygon
///   with intermediate vertices so no edge spans more than 180°.
/// - Areas use the even-odd rule; holes are honoured. Lines and points touch
///   the cells along them. Collections are the union of their members.
///
/// # Errors
/// An empty geometry (no coordinates at all; empty members of a collection
/// that has others are ignored), a non-finite coordinate, a
/// latitude beyond ±90°, a ring winding around the globe more than once, or
/// more than [`MAX_CELLS`] cells.
pub fn cells_for(geometry: &Geometry<f64>, res: Resolution) -> Result<Vec<CellIndex>, GridError> {
    cover(&Footprint::from_geometry(geometry)?, res)
}

/// The cells at `res` that a bounding box touches, with GeoJSON bbox meaning
/// (degrees): `west > east` crosses the antimeridian; otherwise the box runs
/// from `west` to `east` however wide (`-180, -90, 180, 90` is the world).
/// Same rule and errors as [`cells_for`].
pub fn cells_for_bbox(
    west: f64,
    south: f64,
    east: f64,
    north: f64,
    res: Resolution,
) -> Result<Vec<CellIndex>, GridError> {
    cover(&Footprint::from_bbox(west, south, east, north)?, res)
}

/// A table's grid, ready to place footprints.
#[derive(Debug, Clone)]
pub enum Grid {
    /// H3 cells at one resolution.
    H3(Resolution),
    /// Named regions from a boundaries file.
    Regions(Arc<RegionGrid>),
}

impl Grid {
    /// The partition values a footprint goes to: the H3 cells it touches
    /// ([`cells_for`]), or the regions it touches ([`RegionGrid::partitions`]).
    pub fn partitions(&self, geometry: &Geometry<f64>) -> Result<Vec<String>, GridError> {
        match self {
            Grid::H3(res) => Ok(cells_for(geometry, *res)?
                .iter()
                .map(ToString::to_string)
                .collect()),
            Grid::Regions(regions) => regions.partitions(geometry),
        }
    }
}

fn cover(fp: &Footprint, res: Resolution) -> Result<Vec<CellIndex>, GridError> {
    let estimate = fp.estimate(res);
    if estimate > MAX_CELLS as f64 {
        return Err(GridError(format!(
            "footprint would cover about {estimate:.0} cells at resolution {res}, \
             more than the limit of {MAX_CELLS}"
        )));
    }
    let mut cover = Cover::new(res);
    for area in &fp.areas {
        cover.area(area)?;
    }
    for edge in &fp.edges {
        cover.edge(edge)?;
    }
    Ok(cover.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{Point, polygon};

    fn res(r: u8) -> Resolution {
        resolution(r).unwrap()
    }

    #[test]
    fn small_footprint_gets_its_cell() {
        let tiny = polygon![(x: 10.0, y: 10.0), (x: 10.01, y: 10.0), (x: 10.01, y: 10.01), (x: 10.0, y: 10.0)];
        let cells = cells_for(&Geometry::Polygon(tiny), res(1)).unwrap();
        let expect = h3o::LatLng::new(10.005, 10.005).unwrap().to_cell(res(1));
        assert_eq!(cells, vec![expect]);
    }

    #[test]
    fn whole_world_is_every_cell() {
        for r in 0..=2 {
            let n = res(r).cell_count() as usize;
            assert_eq!(
                cells_for_bbox(-180.0, -90.0, 180.0, 90.0, res(r))
                    .unwrap()
                    .len(),
                n
            );
        }
    }

    #[test]
    fn too_many_cells_is_refused_with_a_reason() {
        let e = cells_for_bbox(-180.0, -90.0, 180.0, 90.0, res(7)).unwrap_err();
        assert!(e.0.contains("more than the limit"), "{e}");
        let p = cells_for(&Geometry::Point(Point::new(0.0, 0.0)), res(15)).unwrap();
        assert_eq!(p.len(), 1);
    }
}
