//! H3 fan-out: the cells a footprint touches at the table's resolution.
//!
//! Boundary-inclusive (`ContainmentMode::Covers`): every cell whose area
//! intersects the footprint, so no item is missed by a query on a
//! neighbouring cell (centroid containment would drop small footprints).

use geo_types::Geometry;
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};

/// Why a geometry could not be tiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compute H3 cells: {0}")]
pub struct GridError(pub String);

/// Parses a resolution 0–15.
pub fn resolution(res: u8) -> Result<Resolution, GridError> {
    Resolution::try_from(res).map_err(|e| GridError(e.to_string()))
}

/// The cells at `res` that `geometry` touches, sorted and unique.
pub fn cells_for(geometry: &Geometry<f64>, res: Resolution) -> Result<Vec<CellIndex>, GridError> {
    let mut cells = Vec::new();
    collect(geometry, res, &mut cells)?;
    cells.sort_unstable();
    cells.dedup();
    Ok(cells)
}

fn collect(
    geometry: &Geometry<f64>,
    res: Resolution,
    out: &mut Vec<CellIndex>,
) -> Result<(), GridError> {
    match geometry {
        Geometry::Point(p) => out.push(point_cell(p.x(), p.y(), res)?),
        Geometry::MultiPoint(mp) => {
            for p in &mp.0 {
                out.push(point_cell(p.x(), p.y(), res)?);
            }
        }
        Geometry::Polygon(_)
        | Geometry::MultiPolygon(_)
        | Geometry::Rect(_)
        | Geometry::Triangle(_) => {
            let mut tiler = TilerBuilder::new(res)
                .containment_mode(ContainmentMode::Covers)
                .build();
            match geometry {
                Geometry::Polygon(p) => tiler.add(p.clone()),
                Geometry::MultiPolygon(mp) => tiler.add_batch(mp.0.iter().cloned()),
                Geometry::Rect(r) => tiler.add(r.to_polygon()),
                Geometry::Triangle(t) => tiler.add(t.to_polygon()),
                _ => Ok(()),
            }
            .map_err(|e| GridError(e.to_string()))?;
            out.extend(tiler.into_coverage());
        }
        Geometry::LineString(l) => {
            for c in l.coords() {
                out.push(point_cell(c.x, c.y, res)?);
            }
        }
        Geometry::MultiLineString(ml) => {
            for c in ml.0.iter().flat_map(|l| l.coords()) {
                out.push(point_cell(c.x, c.y, res)?);
            }
        }
        Geometry::Line(l) => {
            out.push(point_cell(l.start.x, l.start.y, res)?);
            out.push(point_cell(l.end.x, l.end.y, res)?);
        }
        Geometry::GeometryCollection(gc) => {
            for g in &gc.0 {
                collect(g, res, out)?;
            }
        }
    }
    Ok(())
}

fn point_cell(lon: f64, lat: f64, res: Resolution) -> Result<CellIndex, GridError> {
    LatLng::new(lat, lon)
        .map(|ll| ll.to_cell(res))
        .map_err(|e| GridError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;

    #[test]
    fn small_footprint_gets_a_cell() {
        let tiny = polygon![(x: 10.0, y: 10.0), (x: 10.01, y: 10.0), (x: 10.01, y: 10.01), (x: 10.0, y: 10.0)];
        let cells = cells_for(&Geometry::Polygon(tiny), resolution(1).unwrap()).unwrap();
        assert_eq!(cells.len(), 1);
    }
}
