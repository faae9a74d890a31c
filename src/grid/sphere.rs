//! Exact-within-tolerance geometry between footprint edges and H3 cells.
//!
//! Model (checked against `LatLng::to_cell` in the tests below):
//! - a cell is the spherical polygon whose vertices are `CellIndex::boundary()`
//!   joined by great-circle arcs (H3 edges are straight lines in each icosahedron
//!   face's gnomonic projection). Every cell is star-shaped about its centre, but
//!   Class III cells that cross a face edge can be slightly concave, so a
//!   non-convex cell is split into the triangles (centre, vᵢ, vᵢ₊₁);
//! - a footprint edge is straight in (longitude, latitude), as RFC 7946 says,
//!   with longitude unwrapped so that it may run past ±180°.
//!
//! Whether an edge meets a convex piece is decided by branch and bound on
//! `F(t) = minᵢ nᵢ·u(t)` (nᵢ the inward plane normals, u(t) the unit vector of
//! the edge point), bounded with the edge's speed (Lipschitz constant) and
//! curvature (second-derivative bound); so are whether it stays inside a cell
//! and which sides it may cross. Distances closer than [`EPS`] count as
//! touching, so a cell whose boundary the footprint merely grazes is included.
//! Every answer errs on the side of including a cell, never of dropping one.

use h3o::{CellIndex, LatLng};

/// A unit vector (or plane normal) in Earth-centred coordinates.
pub(super) type V3 = [f64; 3];

/// Touching tolerance in radians (~0.6 mm on the Earth): far above rounding
/// error, far below anything a footprint means.
pub(super) const EPS: f64 = 1e-10;

/// Node budget per branch-and-bound query; reaching it answers conservatively
/// (it takes an edge tangent to a cell edge over a long stretch to get there).
const NODE_BUDGET: u32 = 4096;

#[inline]
pub(super) fn unit(lat: f64, lon: f64) -> V3 {
    let (sl, cl) = lat.sin_cos();
    let (so, co) = lon.sin_cos();
    [cl * co, cl * so, sl]
}

#[inline]
fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// The unit plane normal through `a` and `b` oriented towards `inside`, or
/// None when `a` and `b` (nearly) coincide.
fn plane(a: V3, b: V3, inside: V3) -> Option<V3> {
    let n = cross(a, b);
    let len = dot(n, n).sqrt();
    if len < 1e-14 {
        return None;
    }
    let s = if dot(n, inside) < 0.0 { -1.0 } else { 1.0 } / len;
    Some([n[0] * s, n[1] * s, n[2] * s])
}

/// A footprint edge, straight in (lon, lat) radians: `p(t) = p0 + t·Δ`, t ∈ [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Edge {
    pub lon0: f64,
    pub lat0: f64,
    pub dlon: f64,
    pub dlat: f64,
    /// Upper bound of |du/dt| (also an upper bound of the edge's length).
    speed: f64,
    /// Upper bound of |d²u/dt²|.
    curv: f64,
}

impl Edge {
    /// The edge from (lon0, lat0) to (lon1, lat1), radians, longitudes unwrapped.
    pub fn new(lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> Self {
        let (dlon, dlat) = (lon1 - lon0, lat1 - lat0);
        // Extremes of cos φ and |sin φ| over the latitude range of the edge.
        let (lo, hi) = (lat0.min(lat1), lat0.max(lat1));
        let cos_max = if lo <= 0.0 && hi >= 0.0 {
            1.0
        } else {
            lo.abs().min(hi.abs()).cos()
        };
        let sin_max = lo.abs().max(hi.abs()).sin();
        // |u_λ| = cos φ, |u_φ| = 1, |u_λλ| = cos φ, |u_λφ| = |sin φ|, |u_φφ| = 1.
        let speed = (dlat * dlat + (dlon * cos_max).powi(2)).sqrt();
        let curv = cos_max * dlon * dlon + 2.0 * sin_max * (dlon * dlat).abs() + dlat * dlat;
        Self {
            lon0,
            lat0,
            dlon,
            dlat,
            speed,
            curv,
        }
    }

    /// A zero-length edge (a point).
    pub fn point(lon: f64, lat: f64) -> Self {
        Self::new(lon, lat, lon, lat)
    }

    /// Upper bound of the edge's length on the unit sphere.
    pub fn length_bound(&self) -> f64 {
        self.speed
    }

    /// (lon, lat) at parameter `t`.
    pub fn lonlat(&self, t: f64) -> (f64, f64) {
        (self.lon0 + t * self.dlon, self.lat0 + t * self.dlat)
    }

    #[inline]
    fn at(&self, t: f64) -> V3 {
        let (lon, lat) = self.lonlat(t);
        unit(lat, lon)
    }

    /// Splits the edge into `n` equal parts (the same curve: it is straight in lon/lat).
    pub fn split(&self, n: usize) -> impl Iterator<Item = Edge> + '_ {
        let n = n.max(1);
        (0..n).map(move |k| {
            let (a, b) = (k as f64 / n as f64, (k + 1) as f64 / n as f64);
            let (lon0, lat0) = self.lonlat(a);
            let (lon1, lat1) = self.lonlat(b);
            Edge::new(lon0, lat0, lon1, lat1)
        })
    }
}

/// Most planes in one convex piece (a Class III cell crossing face edges has
/// up to 10 vertices).
const MAX_PLANES: usize = 12;

/// Values nᵢ·u(t) of one piece's planes at one parameter.
#[derive(Clone, Copy)]
struct Sample {
    t: f64,
    vals: [f64; MAX_PLANES],
    min: f64,
}

fn sample(edge: &Edge, normals: &[V3], t: f64) -> Sample {
    let u = edge.at(t);
    let mut vals = [0.0; MAX_PLANES];
    let mut min = f64::INFINITY;
    for (v, n) in vals.iter_mut().zip(normals) {
        *v = dot(*n, u);
        min = min.min(*v);
    }
    Sample { t, vals, min }
}

/// The geometry of one cell: its sides, and convex pieces as inward plane normals.
#[derive(Debug, Clone)]
pub(super) struct CellShape {
    /// Inward unit normals of the sides' great circles; the points within all of
    /// them (the kernel, the cell being star-shaped about its centre) are in the cell.
    sides: Vec<V3>,
    /// A point just outside each side's midpoint, and the cell there once asked.
    outside: Vec<V3>,
    across: Vec<Option<CellIndex>>,
    /// Convex pieces, flattened: `ends[k]` is one past the last normal of piece k.
    normals: Vec<V3>,
    ends: Vec<usize>,
    /// Every side has a plane, so [`CellShape::exits`] can name the sides crossed.
    sided: bool,
}

/// Where an edge that starts in a cell may go.
pub(super) enum Exits {
    /// Nowhere: it stays in the cell, farther than [`EPS`] from its boundary.
    None,
    /// Only across these sides (bit i: side i), so only to the cells there.
    Sides(u32),
    /// Unknown: try every neighbour.
    Any,
}

impl CellShape {
    pub fn new(cell: CellIndex) -> Self {
        let ll = LatLng::from(cell);
        let centre = unit(ll.lat_radians(), ll.lng_radians());
        let verts: Vec<V3> = cell
            .boundary()
            .iter()
            .map(|v| unit(v.lat_radians(), v.lng_radians()))
            .collect();
        let k = verts.len();
        let planes: Vec<Option<V3>> = (0..k)
            .map(|i| plane(verts[i], verts[(i + 1) % k], centre))
            .collect();
        let sided = k <= MAX_PLANES && planes.iter().all(Option::is_some);
        let sides: Vec<V3> = planes.iter().flatten().copied().collect();
        let outside = (0..k)
            .filter_map(|i| {
                let (a, b) = (verts[i], verts[(i + 1) % k]);
                let n = planes[i]?;
                // A step of 1e-4 of the side's length off its midpoint: well
                // inside the cell across (sides are never under a quarter of the
                // mean edge length), far beyond rounding.
                let len = dot(cross(a, b), cross(a, b)).sqrt();
                let step = 1e-4 * len;
                let m = [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
                let ml = dot(m, m).sqrt();
                Some([
                    m[0] / ml - step * n[0],
                    m[1] / ml - step * n[1],
                    m[2] / ml - step * n[2],
                ])
            })
            .collect();
        let across = vec![None; sides.len()];
        // Convex iff no vertex lies outside any side's great circle.
        let convex = sides
            .iter()
            .all(|n| verts.iter().all(|v| dot(*n, *v) > -1e-12));
        let (normals, ends) = if convex && sides.len() <= MAX_PLANES {
            (sides.clone(), vec![sides.len()])
        } else {
            // Fan of triangles (centre, vᵢ, vᵢ₊₁): each convex, their union the cell.
            let mut normals = Vec::with_capacity(3 * k);
            let mut ends = Vec::with_capacity(k);
            for i in 0..k {
                let (a, b) = (verts[i], verts[(i + 1) % k]);
                // Planes through the centre, each oriented towards the other vertex.
                if let (Some(side), Some(ra), Some(rb)) =
                    (planes[i], plane(centre, a, b), plane(centre, b, a))
                {
                    normals.extend([side, ra, rb]);
                    ends.push(normals.len());
                }
            }
            (normals, ends)
        };
        Self {
            sides,
            outside,
            across,
            normals,
            ends,
            sided,
        }
    }

    fn pieces(&self) -> impl Iterator<Item = &[V3]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| &self.normals[s..e])
    }

    /// Whether the edge comes within [`EPS`] of the cell (closed).
    pub fn touches(&self, edge: &Edge) -> bool {
        self.pieces().any(|p| piece_touches(edge, p))
    }

    /// Where an edge starting in this cell may leave it. A side is listed unless
    /// the edge provably stays farther than [`EPS`] inside its great circle;
    /// a cell the edge touches across a side is then the cell across it (or is
    /// reached through one that is: the touched cells are linked by the sides
    /// and vertices the edge meets).
    pub fn exits(&self, edge: &Edge) -> Exits {
        if !self.sided {
            return Exits::Any;
        }
        let a = sample(edge, &self.sides, 0.0);
        let b = sample(edge, &self.sides, 1.0);
        let mut budget = NODE_BUDGET;
        if a.min > EPS && b.min > EPS && holds_rec(edge, &self.sides, &a, &b, &mut budget) {
            return Exits::None;
        }
        let mut mask = 0;
        for (i, n) in self.sides.iter().enumerate() {
            let mut budget = NODE_BUDGET;
            if !plane_clear(edge, *n, (0.0, a.vals[i]), (1.0, b.vals[i]), &mut budget) {
                mask |= 1 << i;
            }
        }
        Exits::Sides(mask)
    }

    /// The cell across side `i` (from [`Exits::Sides`]).
    pub fn across(&mut self, i: usize, res: h3o::Resolution) -> Option<CellIndex> {
        if self.across[i].is_none() {
            let p = self.outside[i];
            let lat = p[2].clamp(-1.0, 1.0).asin();
            let lon = p[1].atan2(p[0]);
            self.across[i] = LatLng::from_radians(lat, lon)
                .ok()
                .map(|ll| ll.to_cell(res));
        }
        self.across[i]
    }
}

/// Whether n·u(t) > EPS over the whole edge (false when unsure).
fn plane_clear(edge: &Edge, n: V3, a: (f64, f64), b: (f64, f64), budget: &mut u32) -> bool {
    if a.1 <= EPS || b.1 <= EPS {
        return false;
    }
    let h = b.0 - a.0;
    let lower = (a.1.min(b.1) - edge.curv * h * h / 8.0).max((a.1 + b.1 - edge.speed * h) / 2.0);
    if lower > EPS {
        return true;
    }
    if *budget == 0 || edge.speed * h <= EPS {
        return false;
    }
    *budget -= 1;
    let t = (a.0 + b.0) / 2.0;
    let m = (t, dot(n, edge.at(t)));
    plane_clear(edge, n, a, m, budget) && plane_clear(edge, n, m, b, budget)
}

/// Upper and lower bounds of F on [a.t, b.t].
fn bounds(edge: &Edge, a: &Sample, b: &Sample, k: usize) -> (f64, f64) {
    let h = b.t - a.t;
    let slack = edge.curv * h * h / 8.0;
    // Each plane value is within `slack` of its chord, so F ≤ minᵢ max(chord) + slack…
    let mut upper_q = f64::INFINITY;
    let mut lower_q = f64::INFINITY;
    for i in 0..k {
        upper_q = upper_q.min(a.vals[i].max(b.vals[i]));
        lower_q = lower_q.min(a.vals[i].min(b.vals[i]));
    }
    // …and F is `speed`-Lipschitz, which is the sharper bound near a corner.
    let lip = edge.speed * h / 2.0;
    let mid = (a.min + b.min) / 2.0;
    let upper = (upper_q + slack).min(mid + lip);
    let lower = (lower_q - slack).max(mid - lip);
    (upper, lower)
}

fn piece_touches(edge: &Edge, normals: &[V3]) -> bool {
    let a = sample(edge, normals, 0.0);
    if a.min >= -EPS {
        return true;
    }
    let b = sample(edge, normals, 1.0);
    if b.min >= -EPS {
        return true;
    }
    let mut budget = NODE_BUDGET;
    touches_rec(edge, normals, &a, &b, &mut budget)
}

fn touches_rec(edge: &Edge, normals: &[V3], a: &Sample, b: &Sample, budget: &mut u32) -> bool {
    let (upper, _) = bounds(edge, a, b, normals.len());
    if upper < -EPS {
        return false;
    }
    // Both ends are below -EPS and F is speed-Lipschitz over a span of at most
    // EPS/speed, so F < -EPS/2 throughout: the edge misses the piece.
    if edge.speed * (b.t - a.t) <= EPS {
        return false;
    }
    if *budget == 0 {
        return true;
    }
    *budget -= 1;
    let m = sample(edge, normals, (a.t + b.t) / 2.0);
    if m.min >= -EPS {
        return true;
    }
    touches_rec(edge, normals, a, &m, budget) || touches_rec(edge, normals, &m, b, budget)
}

fn holds_rec(edge: &Edge, normals: &[V3], a: &Sample, b: &Sample, budget: &mut u32) -> bool {
    let (_, lower) = bounds(edge, a, b, normals.len());
    if lower > EPS {
        return true;
    }
    if *budget == 0 || edge.speed * (b.t - a.t) <= EPS {
        return false;
    }
    *budget -= 1;
    let m = sample(edge, normals, (a.t + b.t) / 2.0);
    if m.min <= EPS {
        return false;
    }
    holds_rec(edge, normals, a, &m, budget) && holds_rec(edge, normals, &m, b, budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::Resolution;

    /// Deterministic xorshift in [0, 1).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn margin(shape: &CellShape, lon: f64, lat: f64) -> f64 {
        let u = unit(lat, lon);
        shape
            .pieces()
            .map(|p| p.iter().map(|n| dot(*n, u)).fold(f64::INFINITY, f64::min))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The cell model agrees with h3o's point-to-cell assignment, including next
    /// to the vertices of pentagons and face-crossing (concave) Class III cells.
    #[test]
    fn cell_model_matches_to_cell() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for res in [Resolution::One, Resolution::Two, Resolution::Three] {
            let mut shapes = std::collections::HashMap::new();
            let mut concave = 0;
            let cells: Vec<CellIndex> = CellIndex::base_cells()
                .flat_map(|b| b.children(res))
                .filter(|c| c.is_pentagon() || c.boundary().len() > 6)
                .collect();
            for cell in cells {
                let shape = CellShape::new(cell);
                concave += usize::from(shape.ends.len() > 1);
                for v in cell.boundary().iter() {
                    for _ in 0..24 {
                        let r = 0.05 * res.edge_length_rads() * rng.next();
                        let th = rng.next() * std::f64::consts::TAU;
                        let lim = std::f64::consts::FRAC_PI_2 - 1e-4;
                        let lat = (v.lat_radians() + r * th.sin()).clamp(-lim, lim);
                        let lon = v.lng_radians() + r * th.cos() / lat.cos();
                        let ll = LatLng::from_radians(lat, lon).unwrap();
                        let owner = ll.to_cell(res);
                        for n in owner.grid_disk::<Vec<_>>(1) {
                            let shape = shapes.entry(n).or_insert_with(|| CellShape::new(n));
                            let m = margin(shape, lon, lat);
                            if n == owner {
                                assert!(m > -1e-12, "{n} should hold ({lat},{lon}): {m}");
                            } else {
                                assert!(m < 1e-12, "{n} should not hold ({lat},{lon}): {m}");
                            }
                        }
                    }
                }
            }
            if res.is_class3() {
                assert!(concave > 0, "expected concave Class III cells at {res}");
            }
        }
    }

    /// The cells across the sides are exactly the neighbours.
    #[test]
    fn sides_lead_to_the_neighbours() {
        for res in [
            Resolution::Zero,
            Resolution::One,
            Resolution::Two,
            Resolution::Three,
        ] {
            let cells = CellIndex::base_cells().flat_map(|b| b.children(res));
            for (k, cell) in cells.enumerate() {
                if res >= Resolution::Two && k % 7 != 0 && !cell.is_pentagon() {
                    continue;
                }
                let mut shape = CellShape::new(cell);
                assert!(shape.sided, "{cell}");
                let mut across: Vec<CellIndex> = (0..shape.sides.len())
                    .map(|i| shape.across(i, res).unwrap())
                    .collect();
                across.sort_unstable();
                across.dedup();
                let mut want: Vec<CellIndex> = cell
                    .grid_disk::<Vec<_>>(1)
                    .into_iter()
                    .filter(|n| *n != cell)
                    .collect();
                want.sort_unstable();
                assert_eq!(across, want, "{cell}");
            }
        }
    }

    /// Branch and bound agrees with dense sampling of the edge.
    #[test]
    fn touches_and_exits_agree_with_sampling() {
        let mut rng = Rng(42);
        let res = Resolution::Two;
        for _ in 0..150 {
            let lat0 = (rng.next() * 170.0 - 85.0).to_radians();
            let lon0 = (rng.next() * 360.0 - 180.0).to_radians();
            let len = res.edge_length_rads() * 3.0 * rng.next();
            let th = rng.next() * std::f64::consts::TAU;
            let lat1 = (lat0 + len * th.sin()).clamp(-1.55, 1.55);
            let lon1 = lon0 + len * th.cos() / lat0.cos().max(0.2);
            let edge = Edge::new(lon0, lat0, lon1, lat1);
            let start = LatLng::from_radians(lat0, lon0).unwrap().to_cell(res);
            let n = 2000;
            let at: Vec<V3> = (0..=n)
                .map(|i| {
                    let (lon, lat) = edge.lonlat(i as f64 / n as f64);
                    unit(lat, lon)
                })
                .collect();
            // Sampling can only under-estimate a maximum; allow its error.
            let step = edge.length_bound() / n as f64;
            for cell in start.grid_disk::<Vec<_>>(2) {
                let shape = CellShape::new(cell);
                let margins: Vec<f64> = at
                    .iter()
                    .map(|u| {
                        shape
                            .pieces()
                            .map(|p| p.iter().map(|n| dot(*n, *u)).fold(f64::INFINITY, f64::min))
                            .fold(f64::NEG_INFINITY, f64::max)
                    })
                    .collect();
                let max = margins.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let min = margins.iter().copied().fold(f64::INFINITY, f64::min);
                if max >= 0.0 {
                    assert!(shape.touches(&edge), "{cell} touched (sampled {max})");
                }
                if max < -step - EPS {
                    assert!(!shape.touches(&edge), "{cell} not touched (sampled {max})");
                }
                match shape.exits(&edge) {
                    Exits::None => assert!(min > 0.0, "{cell} holds but sampled margin {min}"),
                    Exits::Sides(mask) => {
                        for (i, n) in shape.sides.iter().enumerate() {
                            let side_min =
                                at.iter().map(|u| dot(*n, *u)).fold(f64::INFINITY, f64::min);
                            if side_min <= 0.0 {
                                assert!(mask & (1 << i) != 0, "{cell}: side {i} is reached");
                            }
                        }
                    }
                    Exits::Any => panic!("{cell}: every H3 cell has sides"),
                }
            }
        }
    }
}
