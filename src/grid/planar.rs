//! The exact geometric test: planar lon/lat `Intersects` (geo), in a frame
//! where antimeridian-crossing shapes are contiguous.
//!
//! Each polygon, line or point is *unwrapped* with the grid's rules
//! ([`crate::grid::cells_for`]): an edge spanning more than 180° of longitude
//! goes the short way across ±180 (so `[179,…],[-179,…]` is 2° wide, not
//! 358°), an edge along a pole (both ends at latitude ±90) is read as written,
//! an edge from -180 to +180 away from a pole is a full turn or no step
//! (whichever gives the ring an area, then whichever does not wind round a
//! pole), and a ring that winds once round the globe is closed through the
//! nearer pole. Unwrapped longitudes may run past ±180; two shapes intersect
//! when some copy of one, shifted by a multiple of 360°, intersects the other.
//! A bbox with `west > east` is one box from west to east + 360.

use geo::{Area, Covers, Intersects, Translate};
use geo_types::{Coord, Geometry, LineString, Point, Polygon, Rect};

/// A shape as planar parts, each contiguous in longitude, with its lon range.
#[derive(Debug, Clone)]
pub struct Planar {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
struct Part {
    geom: Geometry<f64>,
    lon_min: f64,
    lon_max: f64,
    lat_min: f64,
    lat_max: f64,
}

impl Part {
    fn new(geom: Geometry<f64>) -> Option<Self> {
        use geo::BoundingRect;
        let r = geom.bounding_rect()?;
        Some(Self {
            geom,
            lon_min: r.min().x,
            lon_max: r.max().x,
            lat_min: r.min().y,
            lat_max: r.max().y,
        })
    }

    /// The 360° copies of `b` (as shifts) that can meet `a`.
    fn shifts(a: &Part, b: &Part) -> std::ops::RangeInclusive<i64> {
        const EPS: f64 = 1e-9;
        let k_min = ((a.lon_min - b.lon_max) / 360.0 - EPS).ceil() as i64;
        let k_max = ((a.lon_max - b.lon_min) / 360.0 + EPS).floor() as i64;
        k_min..=k_max
    }

    fn shifted(&self, k: i64) -> std::borrow::Cow<'_, Geometry<f64>> {
        if k == 0 {
            std::borrow::Cow::Borrowed(&self.geom)
        } else {
            std::borrow::Cow::Owned(self.geom.translate(360.0 * k as f64, 0.0))
        }
    }
}

impl Planar {
    /// A GeoJSON-style box (degrees); `west > east` crosses the antimeridian.
    pub fn bbox(west: f64, south: f64, east: f64, north: f64) -> Self {
        let east = if west > east { east + 360.0 } else { east };
        let rect = Rect::new(Coord { x: west, y: south }, Coord { x: east, y: north });
        Self {
            parts: Part::new(Geometry::Rect(rect)).into_iter().collect(),
        }
    }

    /// A point (longitude normalised into -180..180).
    pub fn point(lon: f64, lat: f64) -> Self {
        Self {
            parts: Part::new(Geometry::Point(Point::new(normalize(lon), lat)))
                .into_iter()
                .collect(),
        }
    }

    /// Any geometry, unwrapped part by part (see the module doc).
    pub fn from_geometry(g: &Geometry<f64>) -> Self {
        let mut parts = Vec::new();
        add(g, &mut parts);
        Self { parts }
    }

    /// True if the shapes share a point (boundary-inclusive), in any 360° copy.
    pub fn intersects(&self, other: &Planar) -> bool {
        self.parts.iter().any(|a| {
            other
                .parts
                .iter()
                .any(|b| Part::shifts(a, b).any(|k| a.geom.intersects(b.shifted(k).as_ref())))
        })
    }

    /// True if every part of `self` lies within (boundary included) a single
    /// part of `other`, in some 360° copy. A conservative test of "`other`
    /// covers `self`": false does not prove a point of `self` is outside.
    pub fn covered_by(&self, other: &Planar) -> bool {
        !self.parts.is_empty()
            && self.parts.iter().all(|a| {
                other
                    .parts
                    .iter()
                    .any(|b| Part::shifts(a, b).any(|k| b.shifted(k).as_ref().covers(&a.geom)))
            })
    }

    /// Bounding boxes (min lon, min lat, max lon, max lat) of the parts, in
    /// the unwrapped frame (longitudes may run past ±180).
    pub fn part_bounds(&self) -> impl Iterator<Item = [f64; 4]> + '_ {
        self.parts
            .iter()
            .map(|p| [p.lon_min, p.lat_min, p.lon_max, p.lat_max])
    }

    /// True when there is nothing to test (an empty geometry).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Planar area in square degrees (unwrapped frame); 0 for points and lines.
    pub fn area(&self) -> f64 {
        self.parts.iter().map(|p| p.geom.unsigned_area()).sum()
    }
}

fn add(g: &Geometry<f64>, parts: &mut Vec<Part>) {
    let geom = match g {
        Geometry::Point(p) => Geometry::Point(Point::new(normalize(p.x()), p.y())),
        Geometry::MultiPoint(mp) => {
            mp.0.iter().for_each(|p| add(&Geometry::Point(*p), parts));
            return;
        }
        Geometry::Line(l) => Geometry::LineString(path(&[l.start, l.end])),
        Geometry::LineString(ls) => Geometry::LineString(path(&ls.0)),
        Geometry::MultiLineString(ml) => {
            ml.0.iter()
                .for_each(|ls| add(&Geometry::LineString(ls.clone()), parts));
            return;
        }
        Geometry::Polygon(p) => match polygon(p) {
            Some(p) => Geometry::Polygon(p),
            None => return,
        },
        Geometry::MultiPolygon(mp) => {
            mp.0.iter()
                .for_each(|p| add(&Geometry::Polygon(p.clone()), parts));
            return;
        }
        Geometry::Triangle(t) => {
            add(&Geometry::Polygon(t.to_polygon()), parts);
            return;
        }
        Geometry::Rect(r) => Geometry::Rect(*r),
        Geometry::GeometryCollection(gc) => {
            gc.0.iter().for_each(|g| add(g, parts));
            return;
        }
    };
    parts.extend(Part::new(geom));
}

/// Longitude into [-180, 180].
fn normalize(lon: f64) -> f64 {
    lon - 360.0 * (lon / 360.0).round()
}

/// A longitude step taken the short way round (|result| ≤ 180).
fn short_way(d: f64) -> f64 {
    if d.abs() <= 180.0 {
        d
    } else {
        d - 360.0 * (d / 360.0).round()
    }
}

fn path(coords: &[Coord<f64>]) -> LineString<f64> {
    let Some(first) = coords.first() else {
        return LineString(vec![]);
    };
    let mut x = normalize(first.x);
    let mut out = vec![Coord { x, y: first.y }];
    for w in coords.windows(2) {
        x += short_way(w[1].x - w[0].x);
        out.push(Coord { x, y: w[1].y });
    }
    LineString(out)
}

/// The polygon with every ring unwrapped and holes moved next to the exterior.
fn polygon(p: &Polygon<f64>) -> Option<Polygon<f64>> {
    let exterior = ring(&p.exterior().0)?;
    let (e_min, e_max) = lon_range(&exterior);
    let centre = (e_min + e_max) / 2.0;
    let holes = p
        .interiors()
        .iter()
        .filter_map(|h| ring(&h.0))
        .map(|h| {
            let (h_min, h_max) = lon_range(&h);
            let shift = 360.0 * ((centre - (h_min + h_max) / 2.0) / 360.0).round();
            LineString(
                h.into_iter()
                    .map(|c| Coord {
                        x: c.x + shift,
                        y: c.y,
                    })
                    .collect(),
            )
        })
        .collect();
    Some(Polygon::new(LineString(exterior), holes))
}

fn lon_range(pts: &[Coord<f64>]) -> (f64, f64) {
    pts.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), c| {
            (a.min(c.x), b.max(c.x))
        })
}

/// A closed ring unwrapped by the grid's rules.
fn ring(coords: &[Coord<f64>]) -> Option<Vec<Coord<f64>>> {
    let first = *coords.first()?;
    let mut coords = coords.to_vec();
    if coords.last() != Some(&first) {
        coords.push(first);
    }
    let long = unwrap(&coords, true);
    if !long.ambiguous {
        return Some(long.pts);
    }
    let short = unwrap(&coords, false);
    let rank = |u: &Unwrapped| (1 + u8::from(planar_area(&u.pts) > 1e-6)) * 2 + u8::from(!u.winds);
    Some(if rank(&short) > rank(&long) {
        short.pts
    } else {
        long.pts
    })
}

struct Unwrapped {
    pts: Vec<Coord<f64>>,
    ambiguous: bool,
    winds: bool,
}

fn unwrap(coords: &[Coord<f64>], ambiguous_long: bool) -> Unwrapped {
    let first = coords[0];
    let mut x = normalize(first.x);
    let mut pts = vec![Coord { x, y: first.y }];
    let mut ambiguous = false;
    for w in coords.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = b.x - a.x;
        let along_pole = a.y.abs() == 90.0 && a.y == b.y;
        let full_turn = (d.abs() - 360.0).abs() < 1e-12;
        let step = if along_pole {
            d
        } else if full_turn {
            ambiguous = true;
            if ambiguous_long { d } else { 0.0 }
        } else {
            short_way(d)
        };
        x += step;
        pts.push(Coord { x, y: b.y });
    }
    let start = pts[0].x;
    let end = x;
    let turns = ((end - start) / 360.0).round();
    let winds = turns != 0.0;
    if winds {
        // Closed through the pole nearer the ring's vertices.
        let mean_lat = pts.iter().map(|c| c.y).sum::<f64>() / pts.len() as f64;
        let pole = if mean_lat >= 0.0 { 90.0 } else { -90.0 };
        pts.push(Coord { x: end, y: pole });
        pts.push(Coord { x: start, y: pole });
        pts.push(pts[0]);
    }
    Unwrapped {
        pts,
        ambiguous,
        winds,
    }
}

fn planar_area(pts: &[Coord<f64>]) -> f64 {
    pts.windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum::<f64>()
        .abs()
        / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;

    #[test]
    fn jump_polygon_is_narrow_and_matches_across_the_antimeridian() {
        let jump = polygon![(x: 179.0, y: 0.0), (x: -179.0, y: 0.0), (x: -179.0, y: 1.0), (x: 179.0, y: 1.0), (x: 179.0, y: 0.0)];
        let item = Planar::from_geometry(&Geometry::Polygon(jump));
        assert!(item.intersects(&Planar::point(-179.5, 0.5)));
        assert!(item.intersects(&Planar::point(179.5, 0.5)));
        assert!(!item.intersects(&Planar::point(0.0, 0.5)));
        assert!(item.intersects(&Planar::bbox(170.0, -5.0, -175.0, 5.0)));
        assert!(item.intersects(&Planar::bbox(-180.0, -90.0, 180.0, 90.0)));
        assert!(!item.intersects(&Planar::bbox(-170.0, -5.0, 170.0, 5.0)));
    }

    #[test]
    fn pole_cap_reaches_every_longitude() {
        // Cut at the antimeridian and closed along the pole, as producers write it.
        let cap = polygon![(x: -180.0, y: 85.0), (x: 0.0, y: 85.0), (x: 180.0, y: 85.0), (x: 180.0, y: 90.0), (x: -180.0, y: 90.0), (x: -180.0, y: 85.0)];
        let item = Planar::from_geometry(&Geometry::Polygon(cap));
        assert!(item.intersects(&Planar::point(123.0, 88.0)));
        assert!(item.intersects(&Planar::point(-77.0, 86.0)));
        assert!(!item.intersects(&Planar::point(-77.0, 84.0)));
        // A ring written without the pole edge winds; it is closed through the pole.
        let winding = polygon![(x: 0.0, y: 80.0), (x: 90.0, y: 80.0), (x: 180.0, y: 80.0), (x: -90.0, y: 80.0), (x: 0.0, y: 80.0)];
        let item = Planar::from_geometry(&Geometry::Polygon(winding));
        assert!(item.intersects(&Planar::point(45.0, 89.0)));
        assert!(!item.intersects(&Planar::point(45.0, 70.0)));
    }

    #[test]
    fn holes_are_honoured() {
        let p = Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (10.0, 0.0),
                (10.0, 10.0),
                (0.0, 10.0),
                (0.0, 0.0),
            ]),
            vec![LineString::from(vec![
                (2.0, 2.0),
                (8.0, 2.0),
                (8.0, 8.0),
                (2.0, 8.0),
                (2.0, 2.0),
            ])],
        );
        let q = Planar::from_geometry(&Geometry::Polygon(p));
        assert!(!q.intersects(&Planar::point(5.0, 5.0)));
        assert!(q.intersects(&Planar::point(1.0, 5.0)));
        assert!(
            q.intersects(&Planar::point(2.0, 5.0)),
            "hole boundary belongs to the polygon"
        );
    }
}
