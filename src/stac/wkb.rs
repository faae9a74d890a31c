//! Well-Known Binary for the 2D geometries STAC footprints use (ISO WKB,
//! little-endian on write; either byte order and Z/M variants on read, with
//! Z/M dropped). Decoding never panics on malformed input and is bounded by
//! the input length.

use geo_types::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Point, Polygon,
};

/// Why a WKB blob could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WKB at byte {offset}: {reason}")]
pub struct WkbError {
    pub offset: usize,
    pub reason: &'static str,
}

const MAX_DEPTH: usize = 16;

/// Encodes a geometry as little-endian 2D WKB.
pub fn encode(geometry: &Geometry<f64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_geometry(&mut out, geometry);
    out
}

fn header(out: &mut Vec<u8>, kind: u32) {
    out.push(1);
    out.extend_from_slice(&kind.to_le_bytes());
}

fn count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn coords(out: &mut Vec<u8>, line: &LineString<f64>) {
    count(out, line.0.len());
    for c in &line.0 {
        out.extend_from_slice(&c.x.to_le_bytes());
        out.extend_from_slice(&c.y.to_le_bytes());
    }
}

fn polygon_body(out: &mut Vec<u8>, p: &Polygon<f64>) {
    if p.exterior().0.is_empty() {
        count(out, 0);
        return;
    }
    count(out, 1 + p.interiors().len());
    coords(out, p.exterior());
    for ring in p.interiors() {
        coords(out, ring);
    }
}

fn write_geometry(out: &mut Vec<u8>, g: &Geometry<f64>) {
    match g {
        Geometry::Point(p) => {
            header(out, 1);
            out.extend_from_slice(&p.x().to_le_bytes());
            out.extend_from_slice(&p.y().to_le_bytes());
        }
        Geometry::LineString(l) => {
            header(out, 2);
            coords(out, l);
        }
        Geometry::Polygon(p) => {
            header(out, 3);
            polygon_body(out, p);
        }
        Geometry::MultiPoint(mp) => {
            header(out, 4);
            count(out, mp.0.len());
            for p in &mp.0 {
                write_geometry(out, &Geometry::Point(*p));
            }
        }
        Geometry::MultiLineString(ml) => {
            header(out, 5);
            count(out, ml.0.len());
            for l in &ml.0 {
                header(out, 2);
                coords(out, l);
            }
        }
        Geometry::MultiPolygon(mp) => {
            header(out, 6);
            count(out, mp.0.len());
            for p in &mp.0 {
                header(out, 3);
                polygon_body(out, p);
            }
        }
        Geometry::GeometryCollection(gc) => {
            header(out, 7);
            count(out, gc.0.len());
            for g in &gc.0 {
                write_geometry(out, g);
            }
        }
        Geometry::Line(l) => write_geometry(
            out,
            &Geometry::LineString(LineString::from(vec![l.start, l.end])),
        ),
        Geometry::Rect(r) => write_geometry(out, &Geometry::Polygon(r.to_polygon())),
        Geometry::Triangle(t) => write_geometry(out, &Geometry::Polygon(t.to_polygon())),
    }
}

/// Decodes WKB (ISO or EWKB-style flags; Z/M ordinates are read and dropped).
pub fn decode(bytes: &[u8]) -> Result<Geometry<f64>, WkbError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        little: true,
    };
    let g = r.geometry(0)?;
    Ok(g)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    little: bool,
}

impl Reader<'_> {
    fn fail(&self, reason: &'static str) -> WkbError {
        WkbError {
            offset: self.pos,
            reason,
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], WkbError> {
        let end = self
            .pos
            .checked_add(N)
            .ok_or_else(|| self.fail("length overflow"))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| self.fail("truncated"))?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, WkbError> {
        let b = self.take::<4>()?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self) -> Result<f64, WkbError> {
        let b = self.take::<8>()?;
        Ok(if self.little {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }

    /// A count that cannot claim more elements than the bytes left could hold.
    fn count(&mut self, min_element_bytes: usize) -> Result<usize, WkbError> {
        let n = self.u32()? as usize;
        let left = self.bytes.len().saturating_sub(self.pos);
        if n.saturating_mul(min_element_bytes) > left {
            return Err(self.fail("count exceeds remaining bytes"));
        }
        Ok(n)
    }

    fn coord(&mut self, dims: usize) -> Result<Coord<f64>, WkbError> {
        let x = self.f64()?;
        let y = self.f64()?;
        for _ in 2..dims {
            self.f64()?;
        }
        Ok(Coord { x, y })
    }

    fn line(&mut self, dims: usize) -> Result<LineString<f64>, WkbError> {
        let n = self.count(8 * dims)?;
        (0..n)
            .map(|_| self.coord(dims))
            .collect::<Result<Vec<_>, _>>()
            .map(LineString::from)
    }

    fn polygon(&mut self, dims: usize) -> Result<Polygon<f64>, WkbError> {
        let rings = self.count(4)?;
        if rings == 0 {
            return Ok(Polygon::new(LineString::new(vec![]), vec![]));
        }
        let exterior = self.line(dims)?;
        let interiors = (1..rings)
            .map(|_| self.line(dims))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Polygon::new(exterior, interiors))
    }

    fn geometry(&mut self, depth: usize) -> Result<Geometry<f64>, WkbError> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nesting too deep"));
        }
        let order = self.take::<1>()?[0];
        self.little = match order {
            0 => false,
            1 => true,
            _ => return Err(self.fail("bad byte order")),
        };
        let raw = self.u32()?;
        // EWKB flags (Z 0x80000000, M 0x40000000, SRID 0x20000000), then ISO thousands.
        let (ewkb_z, ewkb_m, srid) = (
            raw & 0x8000_0000 != 0,
            raw & 0x4000_0000 != 0,
            raw & 0x2000_0000 != 0,
        );
        let code = raw & 0x0FFF_FFFF;
        if srid {
            self.u32()?;
        }
        let (kind, iso_dims) = (
            code % 1000,
            match code / 1000 {
                0 => 2,
                1 | 2 => 3,
                3 => 4,
                _ => return Err(self.fail("unknown geometry type")),
            },
        );
        let dims = iso_dims.max(2 + usize::from(ewkb_z) + usize::from(ewkb_m));
        Ok(match kind {
            1 => {
                let c = self.coord(dims)?;
                Geometry::Point(Point(c))
            }
            2 => Geometry::LineString(self.line(dims)?),
            3 => Geometry::Polygon(self.polygon(dims)?),
            4..=7 => {
                let n = self.count(5)?;
                let parts = (0..n)
                    .map(|_| self.geometry(depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                match kind {
                    4 => Geometry::MultiPoint(MultiPoint(
                        parts
                            .into_iter()
                            .filter_map(|g| {
                                if let Geometry::Point(p) = g {
                                    Some(p)
                                } else {
                                    None
                                }
                            })
                            .collect(),
                    )),
                    5 => Geometry::MultiLineString(MultiLineString(
                        parts
                            .into_iter()
                            .filter_map(|g| {
                                if let Geometry::LineString(l) = g {
                                    Some(l)
                                } else {
                                    None
                                }
                            })
                            .collect(),
                    )),
                    6 => Geometry::MultiPolygon(MultiPolygon(
                        parts
                            .into_iter()
                            .filter_map(|g| {
                                if let Geometry::Polygon(p) = g {
                                    Some(p)
                                } else {
                                    None
                                }
                            })
                            .collect(),
                    )),
                    _ => Geometry::GeometryCollection(GeometryCollection(parts)),
                }
            }
            _ => return Err(self.fail("unknown geometry type")),
        })
    }
}

/// GeoJSON/GeoParquet name of a geometry's type.
pub fn type_name(g: &Geometry<f64>) -> &'static str {
    match g {
        Geometry::Point(_) => "Point",
        Geometry::LineString(_) | Geometry::Line(_) => "LineString",
        Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => "Polygon",
        Geometry::MultiPoint(_) => "MultiPoint",
        Geometry::MultiLineString(_) => "MultiLineString",
        Geometry::MultiPolygon(_) => "MultiPolygon",
        Geometry::GeometryCollection(_) => "GeometryCollection",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;

    #[test]
    fn round_trips() {
        let p = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 0.0)];
        let mp = Geometry::MultiPolygon(MultiPolygon(vec![p.clone(), p.clone()]));
        for g in [
            Geometry::Polygon(p),
            mp,
            Geometry::Point(Point::new(3.5, -2.0)),
        ] {
            assert_eq!(decode(&encode(&g)).unwrap(), g);
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[1, 3, 0, 0, 0, 255, 255, 255, 255]).is_err());
        assert!(decode(&[7, 1, 0, 0, 0]).is_err());
        // Deep nesting of collections.
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.extend_from_slice(&[1, 7, 0, 0, 0, 1, 0, 0, 0]);
        }
        assert!(decode(&deep).is_err());
    }

    #[test]
    fn reads_big_endian_and_z() {
        // Big-endian PointZ (ISO 1001): x=1, y=2, z=3.
        let mut b = vec![0u8];
        b.extend_from_slice(&1001u32.to_be_bytes());
        for v in [1.0f64, 2.0, 3.0] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(decode(&b).unwrap(), Geometry::Point(Point::new(1.0, 2.0)));
    }
}
