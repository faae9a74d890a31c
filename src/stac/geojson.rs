//! GeoJSON geometries ⇄ geo-types, with the validation ingest needs:
//! finite coordinates in lon/lat range, non-empty parts, closed rings, and a
//! vertex budget so a hostile footprint cannot exhaust memory or time.

use geo_types::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Point, Polygon,
};
use serde_json::{Value, json};

/// Most vertices one geometry may have.
pub const MAX_VERTICES: usize = 1_000_000;

/// Why a GeoJSON geometry was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    #[error("unknown geometry type {0}")]
    UnknownType(String),
    #[error("malformed coordinates: {0}")]
    Malformed(&'static str),
    #[error("coordinate ({0}, {1}) is not a finite lon/lat")]
    OutOfRange(f64, f64),
    #[error("empty geometry")]
    Empty,
    #[error("polygon ring has fewer than 4 positions")]
    ShortRing,
    #[error("more than {MAX_VERTICES} vertices")]
    TooManyVertices,
    /// Self-intersecting rings, holes outside their shell, overlapping parts…
    #[error("invalid polygon: {0}")]
    Invalid(String),
}

struct Budget(usize);

impl Budget {
    fn spend(&mut self, n: usize) -> Result<(), GeometryError> {
        self.0 = self
            .0
            .checked_add(n)
            .filter(|v| *v <= MAX_VERTICES)
            .ok_or(GeometryError::TooManyVertices)?;
        Ok(())
    }
}

/// Parses a GeoJSON geometry object.
pub fn geometry_from_json(value: &Value) -> Result<Geometry<f64>, GeometryError> {
    parse(value, &mut Budget(0), 0)
}

fn parse(value: &Value, budget: &mut Budget, depth: usize) -> Result<Geometry<f64>, GeometryError> {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or(GeometryError::Malformed("no type"))?;
    if kind == "GeometryCollection" {
        if depth > 4 {
            return Err(GeometryError::Malformed("collections nested too deep"));
        }
        let parts = value
            .get("geometries")
            .and_then(Value::as_array)
            .ok_or(GeometryError::Malformed("no geometries"))?;
        let parts = parts
            .iter()
            .map(|g| parse(g, budget, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        if parts.is_empty() {
            return Err(GeometryError::Empty);
        }
        return Ok(Geometry::GeometryCollection(GeometryCollection(parts)));
    }
    let coords = value
        .get("coordinates")
        .ok_or(GeometryError::Malformed("no coordinates"))?;
    Ok(match kind {
        "Point" => Geometry::Point(Point(position(coords, budget)?)),
        "LineString" => Geometry::LineString(line(coords, budget)?),
        "Polygon" => Geometry::Polygon(valid(polygon(coords, budget)?)?),
        "MultiPoint" => Geometry::MultiPoint(MultiPoint(
            array(coords)?
                .iter()
                .map(|c| position(c, budget).map(Point))
                .collect::<Result<_, _>>()?,
        )),
        "MultiLineString" => Geometry::MultiLineString(MultiLineString(
            array(coords)?
                .iter()
                .map(|c| line(c, budget))
                .collect::<Result<_, _>>()?,
        )),
        "MultiPolygon" => {
            let polys = array(coords)?
                .iter()
                .map(|c| polygon(c, budget))
                .collect::<Result<Vec<_>, _>>()?;
            if polys.is_empty() {
                return Err(GeometryError::Empty);
            }
            let multi = MultiPolygon(polys);
            geo::Validation::check_validation(&multi)
                .map_err(|e| GeometryError::Invalid(e.to_string()))?;
            Geometry::MultiPolygon(multi)
        }
        other => return Err(GeometryError::UnknownType(other.chars().take(40).collect())),
    })
}

/// OGC validity (geo's rules): a bow-tie footprint would tile to nonsense.
/// A polygon whose edges jump across the antimeridian (±180, the short way
/// round, as the grid reads it) is judged in an unwrapped frame
/// (longitudes < 0 moved by +360), where its holes lie inside its shell;
/// the polygon itself is kept as written.
fn valid(p: Polygon<f64>) -> Result<Polygon<f64>, GeometryError> {
    match geo::Validation::check_validation(&p) {
        Ok(()) => Ok(p),
        Err(e) if jumps_antimeridian(&p) => {
            let mut unwrapped = p.clone();
            geo::MapCoordsInPlace::map_coords_in_place(&mut unwrapped, |c| Coord {
                x: if c.x < 0.0 { c.x + 360.0 } else { c.x },
                y: c.y,
            });
            match geo::Validation::check_validation(&unwrapped) {
                Ok(()) => Ok(p),
                Err(_) => Err(GeometryError::Invalid(e.to_string())),
            }
        }
        Err(e) => Err(GeometryError::Invalid(e.to_string())),
    }
}

/// True when an edge of any ring spans more than 180° of longitude.
fn jumps_antimeridian(p: &Polygon<f64>) -> bool {
    std::iter::once(p.exterior())
        .chain(p.interiors())
        .flat_map(|ring| ring.lines())
        .any(|l| (l.end.x - l.start.x).abs() > 180.0)
}

fn array(v: &Value) -> Result<&Vec<Value>, GeometryError> {
    v.as_array()
        .ok_or(GeometryError::Malformed("expected an array"))
}

fn position(v: &Value, budget: &mut Budget) -> Result<Coord<f64>, GeometryError> {
    budget.spend(1)?;
    let a = array(v)?;
    if a.len() < 2 {
        return Err(GeometryError::Malformed("position needs two numbers"));
    }
    let (Some(x), Some(y)) = (a[0].as_f64(), a[1].as_f64()) else {
        return Err(GeometryError::Malformed("position is not numeric"));
    };
    if !(x.is_finite()
        && y.is_finite()
        && (-180.0..=180.0).contains(&x)
        && (-90.0..=90.0).contains(&y))
    {
        return Err(GeometryError::OutOfRange(x, y));
    }
    Ok(Coord { x, y })
}

fn line(v: &Value, budget: &mut Budget) -> Result<LineString<f64>, GeometryError> {
    let a = array(v)?;
    if a.is_empty() {
        return Err(GeometryError::Empty);
    }
    budget.spend(0)?;
    Ok(LineString::from(
        a.iter()
            .map(|c| position(c, budget))
            .collect::<Result<Vec<_>, _>>()?,
    ))
}

fn ring(v: &Value, budget: &mut Budget) -> Result<LineString<f64>, GeometryError> {
    let mut l = line(v, budget)?;
    if l.0.first() != l.0.last() {
        // Tolerate unclosed rings (common in the wild) by closing them.
        l.close();
    }
    if l.0.len() < 4 {
        return Err(GeometryError::ShortRing);
    }
    Ok(l)
}

fn polygon(v: &Value, budget: &mut Budget) -> Result<Polygon<f64>, GeometryError> {
    let rings = array(v)?;
    let Some((outer, holes)) = rings.split_first() else {
        return Err(GeometryError::Empty);
    };
    let exterior = ring(outer, budget)?;
    let interiors = holes
        .iter()
        .map(|h| ring(h, budget))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, interiors))
}

/// Converts a geometry to a GeoJSON geometry object.
pub fn geometry_to_json(g: &Geometry<f64>) -> Value {
    fn pos(c: &Coord<f64>) -> Value {
        json!([c.x, c.y])
    }
    fn line(l: &LineString<f64>) -> Value {
        Value::Array(l.0.iter().map(pos).collect())
    }
    fn poly(p: &Polygon<f64>) -> Value {
        Value::Array(
            std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(line)
                .collect(),
        )
    }
    match g {
        Geometry::Point(p) => json!({"type": "Point", "coordinates": pos(&p.0)}),
        Geometry::LineString(l) => json!({"type": "LineString", "coordinates": line(l)}),
        Geometry::Polygon(p) => json!({"type": "Polygon", "coordinates": poly(p)}),
        Geometry::MultiPoint(m) => {
            json!({"type": "MultiPoint", "coordinates": m.0.iter().map(|p| pos(&p.0)).collect::<Vec<_>>()})
        }
        Geometry::MultiLineString(m) => {
            json!({"type": "MultiLineString", "coordinates": m.0.iter().map(line).collect::<Vec<_>>()})
        }
        Geometry::MultiPolygon(m) => {
            json!({"type": "MultiPolygon", "coordinates": m.0.iter().map(poly).collect::<Vec<_>>()})
        }
        Geometry::GeometryCollection(c) => {
            json!({"type": "GeometryCollection", "geometries": c.0.iter().map(geometry_to_json).collect::<Vec<_>>()})
        }
        Geometry::Line(l) => geometry_to_json(&Geometry::LineString(LineString::from(vec![
            l.start, l.end,
        ]))),
        Geometry::Rect(r) => geometry_to_json(&Geometry::Polygon(r.to_polygon())),
        Geometry::Triangle(t) => geometry_to_json(&Geometry::Polygon(t.to_polygon())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let v = json!({"type": "MultiPolygon", "coordinates": [[[[170, 0], [180, 0], [180, 1], [170, 1], [170, 0]]],
                                                              [[[-180, 0], [-170, 0], [-170, 1], [-180, 1], [-180, 0]]]]});
        let g = geometry_from_json(&v).unwrap();
        assert!(matches!(&g, Geometry::MultiPolygon(m) if m.0.len() == 2));
        assert_eq!(geometry_from_json(&geometry_to_json(&g)).unwrap(), g);
        assert_eq!(
            geometry_to_json(&g)["coordinates"][1][0][1],
            json!([-170.0, 0.0])
        );
    }

    #[test]
    fn rejects_invalid() {
        let bad = [
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}),
            json!({"type": "Polygon", "coordinates": []}),
            json!({"type": "Point", "coordinates": [200, 0]}),
            json!({"type": "Point", "coordinates": ["a", 0]}),
            json!({"type": "Circle", "coordinates": [0, 0]}),
            json!({"type": "MultiPolygon", "coordinates": []}),
        ];
        for b in bad {
            assert!(geometry_from_json(&b).is_err(), "{b}");
        }
        // A footprint across ±180 with a hole: valid the short way round.
        let across = json!({"type": "Polygon", "coordinates": [
            [[170, -10], [-170, -10], [-170, 10], [170, 10], [170, -10]],
            [[178, -2], [-178, -2], [-178, 2], [178, 2], [178, -2]]]});
        assert!(geometry_from_json(&across).is_ok());
        // The same hole outside the shell stays invalid in that frame too.
        let outside = json!({"type": "Polygon", "coordinates": [
            [[170, -10], [-170, -10], [-170, 10], [170, 10], [170, -10]],
            [[178, 20], [-178, 20], [-178, 24], [178, 24], [178, 20]]]});
        assert!(geometry_from_json(&outside).is_err());
        // Unclosed rings are closed rather than rejected.
        let open = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]});
        assert!(geometry_from_json(&open).is_ok());
    }
}
