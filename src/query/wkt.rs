//! A small WKT reader (OGC simple features, 2D; Z/M values are read and
//! dropped) for `--intersects`. Errors point at the offending character.

use geo_types::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Point, Polygon,
};

use super::model::ParseError;

/// Deepest nesting of GEOMETRYCOLLECTIONs accepted.
const MAX_DEPTH: usize = 8;

/// Parses one WKT geometry (the whole text).
pub fn parse(field: &'static str, text: &str) -> Result<Geometry<f64>, ParseError> {
    let mut p = Parser {
        field,
        text,
        pos: 0,
    };
    let g = p.geometry(0)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.error("unexpected text after the geometry"));
    }
    Ok(g)
}

struct Parser<'a> {
    field: &'static str,
    text: &'a str,
    pos: usize,
}

/// Coordinates per position: 2, 3 (Z or M) or 4 (ZM).
#[derive(Clone, Copy)]
struct Dims(usize);

impl<'a> Parser<'a> {
    fn error(&self, message: &str) -> ParseError {
        ParseError::new(self.field, self.text, self.pos, message)
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.as_bytes().get(self.pos).copied()
    }

    fn word(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let n = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        (n > 0).then(|| {
            self.pos += n;
            &rest[..n]
        })
    }

    fn eat(&mut self, c: u8) -> Result<(), ParseError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", c as char)))
        }
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E')))
            .unwrap_or(rest.len());
        match rest[..n].parse::<f64>() {
            Ok(v) if v.is_finite() => {
                self.pos += n;
                Ok(v)
            }
            _ => Err(self.error("expected a number")),
        }
    }

    fn coord(&mut self, dims: Dims) -> Result<Coord<f64>, ParseError> {
        let at = self.pos;
        let x = self.number()?;
        let y = self.number()?;
        for _ in 2..dims.0 {
            self.number()?;
        }
        if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
            self.pos = at;
            self.skip_ws();
            return Err(self.error(&format!("({x} {y}) is not a lon/lat position in degrees")));
        }
        Ok(Coord { x, y })
    }

    /// `( a, b, … )` of items parsed by `item`.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        self.eat(b'(')?;
        let mut out = vec![item(self)?];
        loop {
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(item(self)?);
                }
                Some(b')') => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => return Err(self.error("expected ',' or ')'")),
            }
        }
    }

    fn line(&mut self, dims: Dims) -> Result<LineString<f64>, ParseError> {
        Ok(LineString(self.list(|p| p.coord(dims))?))
    }

    fn ring(&mut self, dims: Dims) -> Result<LineString<f64>, ParseError> {
        let at = self.pos;
        let ring = self.line(dims)?;
        if ring.0.len() < 4 || ring.0.first() != ring.0.last() {
            self.pos = at;
            self.skip_ws();
            return Err(self
                .error("a polygon ring needs at least 4 positions, the last equal to the first"));
        }
        Ok(ring)
    }

    fn polygon(&mut self, dims: Dims) -> Result<Polygon<f64>, ParseError> {
        let mut rings = self.list(|p| p.ring(dims))?;
        let exterior = rings.remove(0);
        Ok(Polygon::new(exterior, rings))
    }

    fn dims(&mut self) -> Dims {
        let save = self.pos;
        match self.word().map(|w| w.to_ascii_uppercase()) {
            Some(w) if w == "Z" || w == "M" => Dims(3),
            Some(w) if w == "ZM" => Dims(4),
            _ => {
                self.pos = save;
                Dims(2)
            }
        }
    }

    fn geometry(&mut self, depth: usize) -> Result<Geometry<f64>, ParseError> {
        self.skip_ws();
        let at = self.pos;
        let Some(kind) = self.word().map(|w| w.to_ascii_uppercase()) else {
            return Err(self.error("expected a WKT geometry type (POINT, POLYGON, …) or GeoJSON"));
        };
        let dims = self.dims();
        let save = self.pos;
        if self.word().is_some_and(|w| w.eq_ignore_ascii_case("EMPTY")) {
            self.pos = at;
            return Err(self.error("an EMPTY geometry matches nothing"));
        }
        self.pos = save;
        Ok(match kind.as_str() {
            "POINT" => {
                let c = self.list(|p| p.coord(dims))?;
                if c.len() != 1 {
                    self.pos = at;
                    return Err(self.error("a POINT has one position"));
                }
                Geometry::Point(Point(c[0]))
            }
            "LINESTRING" => Geometry::LineString(self.line(dims)?),
            "POLYGON" => Geometry::Polygon(self.polygon(dims)?),
            "MULTIPOINT" => Geometry::MultiPoint(MultiPoint(self.list(|p| {
                // Both `MULTIPOINT (1 2, 3 4)` and `MULTIPOINT ((1 2), (3 4))`.
                if p.peek() == Some(b'(') {
                    p.pos += 1;
                    let c = p.coord(dims)?;
                    p.eat(b')')?;
                    Ok(Point(c))
                } else {
                    Ok(Point(p.coord(dims)?))
                }
            })?)),
            "MULTILINESTRING" => {
                Geometry::MultiLineString(MultiLineString(self.list(|p| p.line(dims))?))
            }
            "MULTIPOLYGON" => Geometry::MultiPolygon(MultiPolygon(self.list(|p| p.polygon(dims))?)),
            "GEOMETRYCOLLECTION" => {
                if depth >= MAX_DEPTH {
                    self.pos = at;
                    return Err(self.error("GEOMETRYCOLLECTIONs nested too deep"));
                }
                Geometry::GeometryCollection(GeometryCollection(
                    self.list(|p| p.geometry(depth + 1))?,
                ))
            }
            _ => {
                self.pos = at;
                return Err(self.error(&format!("unknown WKT geometry type {kind}")));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_polygons_with_holes_and_multis() {
        let g = parse(
            "w",
            "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))",
        )
        .unwrap();
        let Geometry::Polygon(p) = g else {
            panic!("{g:?}")
        };
        assert_eq!(p.interiors().len(), 1);
        let g = parse("w", "multipoint z ((1 2 3), (4 5 6))").unwrap();
        assert!(matches!(g, Geometry::MultiPoint(m) if m.0.len() == 2));
        let g = parse(
            "w",
            "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))",
        )
        .unwrap();
        assert!(matches!(g, Geometry::GeometryCollection(c) if c.0.len() == 2));
    }

    #[test]
    fn errors_point_at_the_character() {
        let e = parse("w", "POLYGON ((0 0, 10 0, 10 x, 0 0))").unwrap_err();
        assert_eq!(e.offset, 24);
        let e = parse("w", "POINT (1 2) junk").unwrap_err();
        assert_eq!(e.offset, 12);
        let e = parse("w", "POLYGN ((0 0))").unwrap_err();
        assert_eq!(e.offset, 0);
        let e = parse("w", "POINT (200 1)").unwrap_err();
        assert_eq!(e.offset, 7);
    }
}
