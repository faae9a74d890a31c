//! Footprints as planar (lon, lat) rings and edges, with the antimeridian and
//! the poles resolved (the rules are stated on [`super::cells_for`]).

use std::f64::consts::TAU;

use geo_types::{Coord, Geometry, LineString, Polygon};

use super::GridError;
use super::sphere::Edge;

/// A footprint ready for tiling: areas (exterior ring first, then holes) and
/// loose edges (from lines and points).
#[derive(Debug, Default)]
pub(super) struct Footprint {
    pub areas: Vec<Vec<Ring>>,
    pub edges: Vec<Edge>,
}

impl Footprint {
    pub fn from_geometry(geometry: &Geometry<f64>) -> Result<Self, GridError> {
        let mut fp = Self::default();
        fp.add(geometry)?;
        fp.non_empty()
    }

    /// A GeoJSON-style bbox in degrees; `west > east` crosses the antimeridian.
    pub fn from_bbox(west: f64, south: f64, east: f64, north: f64) -> Result<Self, GridError> {
        let east = if west > east { east + 360.0 } else { east };
        let mut fp = Self::default();
        fp.add_box(west, south, east, north)?;
        fp.non_empty()
    }

    fn non_empty(self) -> Result<Self, GridError> {
        if self.areas.is_empty() && self.edges.is_empty() {
            return Err(GridError(
                "empty geometry: it has no coordinates to place on the grid".into(),
            ));
        }
        Ok(self)
    }

    fn add(&mut self, geometry: &Geometry<f64>) -> Result<(), GridError> {
        match geometry {
            Geometry::Point(p) => self.add_path(&[p.0]),
            Geometry::MultiPoint(mp) => mp.0.iter().try_for_each(|p| self.add_path(&[p.0])),
            Geometry::Line(l) => self.add_path(&[l.start, l.end]),
            Geometry::LineString(ls) => self.add_path(&ls.0),
            Geometry::MultiLineString(ml) => ml.0.iter().try_for_each(|ls| self.add_path(&ls.0)),
            Geometry::Polygon(p) => self.add_polygon(p),
            Geometry::MultiPolygon(mp) => mp.0.iter().try_for_each(|p| self.add_polygon(p)),
            Geometry::Triangle(t) => self.add_polygon(&t.to_polygon()),
            Geometry::Rect(r) => self.add_box(r.min().x, r.min().y, r.max().x, r.max().y),
            Geometry::GeometryCollection(gc) => gc.0.iter().try_for_each(|g| self.add(g)),
        }
    }

    /// A point or a line: every edge the short way round in longitude.
    fn add_path(&mut self, coords: &[Coord<f64>]) -> Result<(), GridError> {
        let Some(first) = coords.first() else {
            return Ok(());
        };
        check(first)?;
        let mut lon = normalize_deg(first.x);
        if coords.len() == 1 {
            self.edges
                .push(Edge::point(lon.to_radians(), first.y.to_radians()));
        }
        for w in coords.windows(2) {
            check(&w[1])?;
            let next = lon + short_way(w[1].x - w[0].x);
            self.edges.push(Edge::new(
                lon.to_radians(),
                w[0].y.to_radians(),
                next.to_radians(),
                w[1].y.to_radians(),
            ));
            lon = next;
        }
        Ok(())
    }

    fn add_polygon(&mut self, polygon: &Polygon<f64>) -> Result<(), GridError> {
        let Some(exterior) = Ring::from_coords(polygon.exterior())? else {
            return Ok(());
        };
        let mut rings = vec![exterior];
        for hole in polygon.interiors() {
            rings.extend(Ring::from_coords(hole)?);
        }
        self.areas.push(rings);
        Ok(())
    }

    /// An explicit box, as wide as given (up to the whole globe).
    fn add_box(&mut self, west: f64, south: f64, east: f64, north: f64) -> Result<(), GridError> {
        for c in [Coord { x: west, y: south }, Coord { x: east, y: north }] {
            check(&c)?;
        }
        if south > north {
            return Err(GridError(format!(
                "invalid box: south {south} is north of north {north}"
            )));
        }
        if east < west {
            return Err(GridError(format!(
                "invalid box: east {east} is west of west {west}"
            )));
        }
        let east = east.min(west + 360.0);
        // Intermediate vertices keep every edge under 180° so no rule reads it
        // the short way; they do not change the box (edges are straight in lon/lat).
        let steps = ((east - west) / 90.0).ceil().max(1.0) as usize;
        let lon = |k: usize| west + (east - west) * k as f64 / steps as f64;
        let mut pts: Vec<(f64, f64)> = Vec::with_capacity(2 * steps + 3);
        pts.extend((0..=steps).map(|k| (lon(k), south)));
        pts.extend((0..=steps).rev().map(|k| (lon(k), north)));
        pts.push((west, south));
        let shift = west - normalize_deg(west);
        let pts = pts
            .into_iter()
            .map(|(x, y)| ((x - shift).to_radians(), y.to_radians()))
            .collect();
        self.areas.push(vec![Ring::new(pts)]);
        Ok(())
    }

    /// Rough number of cells at a resolution: area over the mean cell area,
    /// plus the cells along the boundary. Used to refuse hostile input early.
    pub fn estimate(&self, res: h3o::Resolution) -> f64 {
        let area: f64 = self.areas.iter().map(|rings| rings[0].area()).sum();
        let edges = self.areas.iter().flatten().flat_map(Ring::edges);
        let perimeter: f64 = edges
            .chain(self.edges.iter().copied())
            .map(|e| e.length_bound())
            .sum();
        let pieces = self.areas.iter().flatten().count() + self.edges.len();
        area / res.area_rads2() + 2.0 * perimeter / res.edge_length_rads() + pieces as f64
    }
}

fn check(c: &Coord<f64>) -> Result<(), GridError> {
    if !c.x.is_finite() || !c.y.is_finite() {
        return Err(GridError(format!(
            "invalid coordinate (lon {}, lat {}): not a finite number",
            c.x, c.y
        )));
    }
    if c.y.abs() > 90.0 {
        return Err(GridError(format!(
            "invalid coordinate (lon {}, lat {}): latitude beyond ±90°",
            c.x, c.y
        )));
    }
    Ok(())
}

/// Longitude into [-180, 180].
fn normalize_deg(lon: f64) -> f64 {
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

/// A closed ring, planar in (lon, lat) radians with longitudes unwrapped (they
/// may run past ±π). A point is inside if any of its copies lon + 2πk is.
#[derive(Debug)]
pub(super) struct Ring {
    pts: Vec<(f64, f64)>,
    lon_min: f64,
    lon_max: f64,
    lat_min: f64,
    lat_max: f64,
    bands: Option<Bands>,
}

impl Ring {
    fn new(pts: Vec<(f64, f64)>) -> Self {
        let (mut lon_min, mut lon_max) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut lat_min, mut lat_max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(lon, lat) in &pts {
            (lon_min, lon_max) = (lon_min.min(lon), lon_max.max(lon));
            (lat_min, lat_max) = (lat_min.min(lat), lat_max.max(lat));
        }
        let bands = (pts.len() > 33).then(|| Bands::new(&pts));
        Self {
            pts,
            lon_min,
            lon_max,
            lat_min,
            lat_max,
            bands,
        }
    }

    /// Resolves a GeoJSON ring (degrees). None when it has no coordinates.
    fn from_coords(ring: &LineString<f64>) -> Result<Option<Self>, GridError> {
        let mut coords = ring.0.clone();
        let Some(&first) = coords.first() else {
            return Ok(None);
        };
        for c in &coords {
            check(c)?;
        }
        if coords.last() != Some(&first) {
            coords.push(first);
        }
        // An edge between +180 and -180 (away from a pole) is either a full
        // turn (a box as wide as the globe) or no step at all. Read it so the
        // ring has area, then so it does not wind round a pole, then as written.
        let long = unwrap(&coords, true);
        let pts = match &long {
            Ok(u) if !u.ambiguous => None,
            _ => {
                let short = unwrap(&coords, false);
                let rank = |u: &Result<Unwrapped, GridError>| match u {
                    Ok(u) => (1 + u8::from(planar_area(&u.pts) > 1e-6)) * 2 + u8::from(!u.winds),
                    Err(_) => 0,
                };
                (rank(&short) > rank(&long)).then_some(short)
            }
        };
        let pts = pts.unwrap_or(long)?.pts;
        Ok(Some(Self::new(to_radians(pts))))
    }

    pub fn edges(&self) -> impl Iterator<Item = Edge> + '_ {
        self.pts
            .windows(2)
            .map(|w| Edge::new(w[0].0, w[0].1, w[1].0, w[1].1))
    }

    /// Even-odd containment of (lon, lat) radians, any longitude copy.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let k_min = ((self.lon_min - lon) / TAU).ceil() as i64;
        let k_max = ((self.lon_max - lon) / TAU).floor() as i64;
        (k_min..=k_max).any(|k| self.crossings(lon + k as f64 * TAU, lat))
    }

    fn crossings(&self, x: f64, y: f64) -> bool {
        let mut inside = false;
        let mut test = |i: usize| {
            let ((x0, y0), (x1, y1)) = (self.pts[i], self.pts[i + 1]);
            if (y0 > y) != (y1 > y) {
                let xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0);
                if x < xi {
                    inside = !inside;
                }
            }
        };
        match &self.bands {
            Some(b) => b.edges_at(y).iter().for_each(|&i| test(i as usize)),
            None => (0..self.pts.len().saturating_sub(1)).for_each(test),
        }
        inside
    }

    /// Area on the unit sphere of the ring's lon/lat bounding box: at least the
    /// area of what the ring encloses, however it winds or crosses itself.
    pub fn bbox_area(&self) -> f64 {
        (self.lon_max - self.lon_min) * (self.lat_max.sin() - self.lat_min.sin())
    }

    /// Area on the unit sphere (steradians) of the planar region: by Green's
    /// theorem ∬ cos φ dφ dλ = -∮ sin φ dλ, exact for lon/lat-straight edges.
    pub fn area(&self) -> f64 {
        let sum: f64 = self
            .pts
            .windows(2)
            .map(|w| {
                let ((l0, p0), (l1, p1)) = (w[0], w[1]);
                let dp = p1 - p0;
                let mean_sin = if dp.abs() < 1e-12 {
                    p0.sin()
                } else {
                    (p0.cos() - p1.cos()) / dp
                };
                (l1 - l0) * mean_sin
            })
            .sum();
        sum.abs()
    }
}

fn to_radians(pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    pts.into_iter()
        .map(|(x, y)| (x.to_radians(), y.to_radians()))
        .collect()
}

/// Shoelace area in the unwrapped plane, square degrees (only whether it is
/// about zero matters: a real ring with an edge across the globe has far more).
fn planar_area(pts: &[(f64, f64)]) -> f64 {
    pts.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum::<f64>()
        .abs()
        / 2.0
}

/// A ring with its longitudes unwrapped (degrees).
struct Unwrapped {
    pts: Vec<(f64, f64)>,
    /// A -180↔+180 edge away from the poles was met.
    ambiguous: bool,
    /// The ring winds once round the globe (it was closed through a pole).
    winds: bool,
}

/// Unwraps a closed ring (degrees): each edge goes the short way in longitude,
/// except along a pole and, when `ambiguous_long`, between -180 and +180. A ring
/// that winds once around the globe is closed through the nearer pole.
fn unwrap(coords: &[Coord<f64>], ambiguous_long: bool) -> Result<Unwrapped, GridError> {
    let first = coords[0];
    let start = normalize_deg(first.x);
    let mut pts = Vec::with_capacity(coords.len() + 2);
    pts.push((start, first.y));
    let mut lon = start;
    let mut ambiguous = false;
    for w in coords.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = b.x - a.x;
        let d = if d.abs() <= 180.0 {
            d
        } else if a.y == b.y && a.y.abs() == 90.0 {
            // Along a pole every longitude is the same point: as written.
            d
        } else if a.x.abs() == 180.0 && b.x.abs() == 180.0 {
            ambiguous = true;
            if ambiguous_long { d } else { 0.0 }
        } else {
            short_way(d)
        };
        lon += d;
        pts.push((lon, b.y));
    }
    let winding = ((lon - start) / 360.0).round();
    if winding.abs() > 1.0 {
        return Err(GridError(format!(
            "ring winds {} times around the globe",
            winding.abs()
        )));
    }
    if winding != 0.0 {
        // Encircles a pole: close through the pole nearer to the ring (for a
        // ring on the equator, the pole on its left, as RFC 7946 winds exteriors).
        let n = (coords.len() - 1).max(1) as f64;
        let mean_lat: f64 = coords[..coords.len() - 1].iter().map(|c| c.y).sum::<f64>() / n;
        let pole = if mean_lat > 0.0 || (mean_lat == 0.0 && winding > 0.0) {
            90.0
        } else {
            -90.0
        };
        pts.extend([(lon, pole), (start, pole), (start, first.y)]);
    }
    Ok(Unwrapped {
        pts,
        ambiguous,
        winds: winding != 0.0,
    })
}

/// Latitude bands listing the edges that span them, so that containment tests
/// on long rings (coastlines) look at a few edges instead of all.
#[derive(Debug)]
struct Bands {
    lat_min: f64,
    scale: f64,
    count: usize,
    /// `starts[b]..starts[b + 1]` indexes `edges` for band b.
    starts: Vec<u32>,
    edges: Vec<u32>,
}

impl Bands {
    fn new(pts: &[(f64, f64)]) -> Self {
        let n_edges = pts.len() - 1;
        let (lat_min, lat_max) = pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.1), hi.max(p.1))
            });
        let span = (lat_max - lat_min).max(1e-12);
        let mut count = (n_edges / 4).clamp(1, 4096);
        // Long north-south edges sit in many bands: keep the index linear in size.
        loop {
            let scale = count as f64 / span;
            let total: usize = pts
                .windows(2)
                .map(|w| {
                    let (a, b) = band_range(w[0].1, w[1].1, lat_min, scale, count);
                    b - a + 1
                })
                .sum();
            if total <= 8 * n_edges || count == 1 {
                break;
            }
            count /= 2;
        }
        let scale = count as f64 / span;
        let mut starts = vec![0u32; count + 1];
        for w in pts.windows(2) {
            let (a, b) = band_range(w[0].1, w[1].1, lat_min, scale, count);
            for s in &mut starts[a + 1..=b + 1] {
                *s += 1;
            }
        }
        for b in 0..count {
            starts[b + 1] += starts[b];
        }
        let mut fill = starts.clone();
        let mut edges = vec![0u32; starts[count] as usize];
        for (i, w) in pts.windows(2).enumerate() {
            let (a, b) = band_range(w[0].1, w[1].1, lat_min, scale, count);
            for f in &mut fill[a..=b] {
                edges[*f as usize] = i as u32;
                *f += 1;
            }
        }
        Self {
            lat_min,
            scale,
            count,
            starts,
            edges,
        }
    }

    fn edges_at(&self, lat: f64) -> &[u32] {
        let b = band(lat, self.lat_min, self.scale, self.count);
        &self.edges[self.starts[b] as usize..self.starts[b + 1] as usize]
    }
}

fn band(lat: f64, lat_min: f64, scale: f64, count: usize) -> usize {
    (((lat - lat_min) * scale).floor().max(0.0) as usize).min(count - 1)
}

fn band_range(y0: f64, y1: f64, lat_min: f64, scale: f64, count: usize) -> (usize, usize) {
    (
        band(y0.min(y1), lat_min, scale, count),
        band(y0.max(y1), lat_min, scale, count),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{Rect, coord, line_string, polygon};

    fn ring_coords(coords: &[(f64, f64)]) -> LineString<f64> {
        coords.iter().map(|&(x, y)| coord! { x: x, y: y }).collect()
    }

    fn ring(coords: &[(f64, f64)]) -> Ring {
        Ring::from_coords(&ring_coords(coords)).unwrap().unwrap()
    }

    fn inside(r: &Ring, lon: f64, lat: f64) -> bool {
        r.contains(lon.to_radians(), lat.to_radians())
    }

    #[test]
    fn naive_antimeridian_ring_goes_the_short_way() {
        let r = ring(&[
            (179.0, 0.0),
            (-179.0, 0.0),
            (-179.0, 1.0),
            (179.0, 1.0),
            (179.0, 0.0),
        ]);
        assert!(inside(&r, 179.5, 0.5));
        assert!(inside(&r, -179.5, 0.5));
        assert!(!inside(&r, 0.0, 0.5));
        assert!(!inside(&r, 178.5, 0.5));
        // 2° × 1° near the equator.
        let expect = 2f64.to_radians() * 1f64.to_radians();
        assert!((r.area() - expect).abs() / expect < 1e-3, "{}", r.area());
    }

    #[test]
    fn rings_around_a_pole_close_through_it() {
        let cap_area = TAU * (1.0 - 80f64.to_radians().sin());
        let forms: [&[(f64, f64)]; 4] = [
            // Short edges all the way round, either direction.
            &[
                (0.0, 80.0),
                (90.0, 80.0),
                (180.0, 80.0),
                (-90.0, 80.0),
                (0.0, 80.0),
            ],
            &[
                (0.0, 80.0),
                (-90.0, 80.0),
                (180.0, 80.0),
                (90.0, 80.0),
                (0.0, 80.0),
            ],
            // RFC 7946 style: an explicit edge along the pole.
            &[
                (-180.0, 80.0),
                (180.0, 80.0),
                (180.0, 90.0),
                (-180.0, 90.0),
                (-180.0, 80.0),
            ],
            // Ends on +180, closes on -180: the last edge has no length.
            &[
                (-180.0, 80.0),
                (-90.0, 80.0),
                (0.0, 80.0),
                (90.0, 80.0),
                (180.0, 80.0),
                (-180.0, 80.0),
            ],
        ];
        for f in forms {
            let r = ring(f);
            for lon in [-180.0, -135.0, -1.0, 0.0, 45.0, 179.9] {
                assert!(inside(&r, lon, 85.0), "{f:?} at {lon}");
                assert!(!inside(&r, lon, 75.0), "{f:?} at {lon}");
            }
            assert!(
                (r.area() - cap_area).abs() / cap_area < 1e-9,
                "{f:?}: {}",
                r.area()
            );
        }
        let south = ring(&[(0.0, -80.0), (120.0, -80.0), (-120.0, -80.0), (0.0, -80.0)]);
        assert!(inside(&south, 10.0, -85.0));
        assert!(!inside(&south, 10.0, 85.0));
    }

    #[test]
    fn an_edge_from_180_to_minus_180_is_read_so_the_ring_makes_sense() {
        // A box touching the antimeridian with one corner written as -180: as a
        // full turn it would wind round the pole; as no step it is the box.
        let r = ring(&[
            (170.0, 10.0),
            (180.0, 10.0),
            (-180.0, 20.0),
            (170.0, 20.0),
            (170.0, 10.0),
        ]);
        assert!(inside(&r, 175.0, 15.0));
        assert!(!inside(&r, 0.0, 15.0) && !inside(&r, 175.0, 80.0));
    }

    #[test]
    fn whole_world_and_wide_boxes_are_read_as_given() {
        let world = ring(&[
            (-180.0, -90.0),
            (180.0, -90.0),
            (180.0, 90.0),
            (-180.0, 90.0),
            (-180.0, -90.0),
        ]);
        assert!((world.area() - 2.0 * TAU).abs() < 1e-9);
        assert!(inside(&world, 123.0, -45.0));
        let mut fp = Footprint::default();
        fp.add(&Geometry::Rect(Rect::new(
            coord! { x: -170.0, y: -10.0 },
            coord! { x: 170.0, y: 10.0 },
        )))
        .unwrap();
        let r = &fp.areas[0][0];
        assert!(inside(r, 0.0, 0.0) && inside(r, 169.0, 5.0) && !inside(r, 175.0, 0.0));
        let crossing = Footprint::from_bbox(170.0, -10.0, -170.0, 10.0).unwrap();
        let r = &crossing.areas[0][0];
        assert!(inside(r, 175.0, 0.0) && inside(r, -175.0, 0.0) && !inside(r, 0.0, 0.0));
    }

    #[test]
    fn long_rings_use_bands_and_agree_with_a_scan() {
        // A 400-vertex star around (10°E, 40°N).
        let pts: Vec<(f64, f64)> = (0..=400)
            .map(|i| {
                let a = TAU * (i % 400) as f64 / 400.0;
                let r = if i % 2 == 0 { 10.0 } else { 4.0 };
                (10.0 + r * a.cos(), 40.0 + r * a.sin())
            })
            .collect();
        let r = ring(&pts);
        assert!(r.bands.is_some());
        let scan = Ring {
            bands: None,
            ..Ring::new(r.pts.clone())
        };
        for i in 0..2000 {
            let lon = -2.0 + 24.0 * (i % 50) as f64 / 50.0;
            let lat = 28.0 + 24.0 * (i / 50) as f64 / 40.0;
            assert_eq!(inside(&r, lon, lat), inside(&scan, lon, lat), "{lon} {lat}");
        }
    }

    #[test]
    fn invalid_and_empty_input_is_refused_clearly() {
        let bad =
            Geometry::Polygon(polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 91.0), (x: 1.0, y: 0.0)]);
        let e = Footprint::from_geometry(&bad).unwrap_err();
        assert!(e.0.contains("latitude"), "{e}");
        let nan = Geometry::LineString(line_string![(x: f64::NAN, y: 0.0), (x: 1.0, y: 1.0)]);
        assert!(
            Footprint::from_geometry(&nan)
                .unwrap_err()
                .0
                .contains("finite")
        );
        let empty = Geometry::Polygon(Polygon::new(LineString::new(vec![]), vec![]));
        assert!(
            Footprint::from_geometry(&empty)
                .unwrap_err()
                .0
                .contains("empty")
        );
        // Twice round the equator band: no reading makes that a footprint.
        let twice = ring_coords(&[
            (0.0, 0.0),
            (120.0, 0.0),
            (-120.0, 0.0),
            (0.0, 1.0),
            (120.0, 1.0),
            (-120.0, 1.0),
            (0.0, 0.0),
        ]);
        let e =
            Footprint::from_geometry(&Geometry::Polygon(Polygon::new(twice, vec![]))).unwrap_err();
        assert!(e.0.contains("winds 2 times"), "{e}");
    }
}
