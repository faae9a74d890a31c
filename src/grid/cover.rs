//! The cells a footprint touches: trace its edges cell by cell, then fill.
//!
//! A cell meets a closed area iff it meets the area's boundary or lies wholly
//! inside it. So: (1) every ring edge is traced from the cell of its start
//! through neighbouring cells, keeping those the edge touches (exact tests in
//! [`super::sphere`]); (2) the cells next to the traced ones that the boundary
//! does not touch are wholly in or wholly out, decided by their centre; the
//! inside ones spread to their untouched neighbours without further tests.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use h3o::{CellIndex, LatLng, Resolution};

use super::footprint::Ring;
use super::sphere::{CellShape, Edge, Exits};
use super::{GridError, MAX_CELLS};

/// No cell is smaller than this fraction of the mean cell area (pentagons are
/// the smallest, at 0.505–0.59 of the mean; checked in the tests).
pub(super) const MIN_CELL_AREA: f64 = 0.45;

/// Shapes kept per call; beyond that the cache starts again (memory bound).
const SHAPE_CACHE: usize = 100_000;

pub(super) struct Cover {
    res: Resolution,
    shapes: HashMap<CellIndex, CellShape, Mix>,
    cells: CellSet,
    /// Longest edge traced in one piece (a few cells), so each trace stays local.
    max_edge: f64,
}

impl Cover {
    pub fn new(res: Resolution) -> Self {
        Self {
            res,
            shapes: HashMap::default(),
            cells: CellSet::default(),
            max_edge: 4.0 * res.edge_length_rads(),
        }
    }

    /// Adds the cells an area (exterior ring, then holes) touches.
    pub fn area(&mut self, rings: &[Ring]) -> Result<(), GridError> {
        let mut boundary = CellSet::default();
        for ring in rings {
            let mut hint = None;
            for edge in ring.edges() {
                hint = self.trace(&edge, hint, &mut boundary)?;
            }
        }
        // A cell the boundary does not touch is wholly inside or outside; none
        // fits inside an area smaller than the smallest cell (a pentagon).
        if rings[0].bbox_area() < MIN_CELL_AREA * self.res.area_rads2() {
            for c in boundary.iter() {
                self.cells.insert(c);
            }
            return self.check_len(0);
        }
        let contains = |cell: CellIndex| {
            let ll = LatLng::from(cell);
            let (lon, lat) = (ll.lng_radians(), ll.lat_radians());
            rings[0].contains(lon, lat) && !rings[1..].iter().any(|h| h.contains(lon, lat))
        };
        // The boundary lies strictly inside one cell: the area is either within
        // that cell or covers everything outside it; one outside point decides.
        if let Some(only) = boundary.single()
            && neighbours(only).next().is_some_and(|n| !contains(n))
        {
            self.cells.insert(only);
            return self.check_len(0);
        }
        let mut inside = CellSet::default();
        let mut outside = CellSet::default();
        let mut queue = Vec::new();
        for cell in boundary.iter() {
            for n in neighbours(cell) {
                if boundary.contains(n) || inside.contains(n) || outside.contains(n) {
                    continue;
                }
                if contains(n) {
                    inside.insert(n);
                    queue.push(n);
                } else {
                    outside.insert(n);
                }
            }
        }
        // Untouched neighbours of an inside cell share an untouched edge with it.
        while let Some(cell) = queue.pop() {
            for n in neighbours(cell) {
                if !boundary.contains(n) && inside.insert(n) {
                    queue.push(n);
                    self.check_len(boundary.len() + inside.len())?;
                }
            }
        }
        for c in boundary.iter().chain(inside.iter()) {
            self.cells.insert(c);
        }
        self.check_len(0)
    }

    /// Adds the cells a line edge or a point touches.
    pub fn edge(&mut self, edge: &Edge) -> Result<(), GridError> {
        let mut cells = std::mem::take(&mut self.cells);
        let result = self.trace(edge, None, &mut cells);
        self.cells = cells;
        result.map(|_| ())
    }

    /// The sorted, unique cells.
    pub fn finish(self) -> Vec<CellIndex> {
        let mut out: Vec<CellIndex> = self.cells.iter().collect();
        out.sort_unstable();
        out
    }

    fn check_len(&self, pending: usize) -> Result<(), GridError> {
        if self.cells.len() + pending > MAX_CELLS {
            return Err(GridError(format!(
                "footprint covers more than {MAX_CELLS} cells at resolution {}",
                self.res
            )));
        }
        Ok(())
    }

    /// Adds to `into` the cells `edge` touches. `hint` is a cell known to hold the
    /// edge's start; returns a cell holding the end when the edge never leaves it.
    fn trace(
        &mut self,
        edge: &Edge,
        hint: Option<CellIndex>,
        into: &mut CellSet,
    ) -> Result<Option<CellIndex>, GridError> {
        let pieces = (edge.length_bound() / self.max_edge).ceil().max(1.0);
        if pieces > 1.0 {
            // Each piece starts where the last ended; chain the holding cell.
            let mut hint = hint;
            for piece in edge.split(pieces as usize) {
                hint = self.trace_piece(&piece, hint, into)?;
            }
            return Ok(hint);
        }
        self.trace_piece(edge, hint, into)
    }

    fn trace_piece(
        &mut self,
        edge: &Edge,
        hint: Option<CellIndex>,
        into: &mut CellSet,
    ) -> Result<Option<CellIndex>, GridError> {
        let start = match hint {
            Some(c) => c,
            None => cell_at(edge.lon0, edge.lat0, self.res)?,
        };
        into.insert(start);
        // Breadth-first through the sides the edge may cross: the touched
        // cells are linked by the sides and vertices the edge meets.
        let mut seen = vec![start];
        let mut queue = vec![start];
        let mut next = Vec::new();
        while let Some(cell) = queue.pop() {
            next.clear();
            let res = self.res;
            let shape = self.shape(cell);
            match shape.exits(edge) {
                Exits::None if cell == start => return Ok(Some(start)),
                Exits::None => continue,
                Exits::Sides(mask) => {
                    for i in (0..32).filter(|i| mask & (1 << i) != 0) {
                        next.extend(shape.across(i, res));
                    }
                }
                Exits::Any => next.extend(neighbours(cell)),
            }
            for &n in &next {
                if seen.contains(&n) {
                    continue;
                }
                seen.push(n);
                if self.shape(n).touches(edge) {
                    into.insert(n);
                    queue.push(n);
                }
            }
            self.check_len(into.len())?;
        }
        Ok(None)
    }

    fn shape(&mut self, cell: CellIndex) -> &mut CellShape {
        if self.shapes.len() >= SHAPE_CACHE && !self.shapes.contains_key(&cell) {
            self.shapes.clear();
        }
        self.shapes
            .entry(cell)
            .or_insert_with(|| CellShape::new(cell))
    }
}

/// The cell holding (lon, lat) radians, longitude in any turn.
fn cell_at(lon: f64, lat: f64, res: Resolution) -> Result<CellIndex, GridError> {
    let lon = lon - std::f64::consts::TAU * (lon / std::f64::consts::TAU).round();
    LatLng::from_radians(lat, lon)
        .map(|ll| ll.to_cell(res))
        .map_err(|e| GridError(format!("invalid coordinate: {e}")))
}

/// The cells sharing an edge with `cell` (5 for a pentagon, else 6).
fn neighbours(cell: CellIndex) -> impl Iterator<Item = CellIndex> {
    let mut buf = [cell; 7];
    let mut n = 0;
    for c in cell.grid_disk_fast(1) {
        match c {
            Some(c) if n < buf.len() => {
                buf[n] = c;
                n += 1;
            }
            _ => {
                // Near a pentagon the fast walk gives up: use the safe one.
                n = 0;
                break;
            }
        }
    }
    if n == 0 {
        for c in cell.grid_disk_safe(1).take(buf.len()) {
            buf[n] = c;
            n += 1;
        }
    }
    buf.into_iter().take(n).filter(move |c| *c != cell)
}

/// A set of cells: a vector while small (most footprints touch 1–3 cells),
/// a hash set beyond.
#[derive(Default)]
pub(super) struct CellSet {
    small: Vec<CellIndex>,
    big: Option<HashSet<CellIndex, Mix>>,
}

impl CellSet {
    const SMALL: usize = 32;

    pub fn insert(&mut self, c: CellIndex) -> bool {
        if let Some(big) = &mut self.big {
            return big.insert(c);
        }
        if self.small.contains(&c) {
            return false;
        }
        self.small.push(c);
        if self.small.len() > Self::SMALL {
            self.big = Some(self.small.drain(..).collect());
        }
        true
    }

    pub fn contains(&self, c: CellIndex) -> bool {
        match &self.big {
            Some(big) => big.contains(&c),
            None => self.small.contains(&c),
        }
    }

    pub fn len(&self) -> usize {
        self.big.as_ref().map_or(self.small.len(), HashSet::len)
    }

    pub fn single(&self) -> Option<CellIndex> {
        match (self.big.is_none(), self.small.as_slice()) {
            (true, [only]) => Some(*only),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = CellIndex> + '_ {
        self.small
            .iter()
            .copied()
            .chain(self.big.iter().flat_map(|b| b.iter().copied()))
    }
}

/// A cheap hasher for cell indexes: their low bits are mostly constant, so mix
/// all 64 bits (SplitMix64 finaliser).
#[derive(Default, Clone, Copy)]
pub(super) struct Mix;

impl BuildHasher for Mix {
    type Hasher = MixHasher;
    fn build_hasher(&self) -> MixHasher {
        MixHasher(0)
    }
}

pub(super) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, x: u64) {
        let mut z = x ^ self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cell_is_smaller_than_the_assumed_minimum() {
        for res in [
            Resolution::Zero,
            Resolution::One,
            Resolution::Two,
            Resolution::Three,
        ] {
            let min = CellIndex::base_cells()
                .flat_map(|b| b.children(res))
                .map(CellIndex::area_rads2)
                .fold(f64::INFINITY, f64::min);
            assert!(
                min > MIN_CELL_AREA * res.area_rads2() * 1.05,
                "{res}: {min}"
            );
        }
    }

    #[test]
    fn cell_sets_switch_to_hashing_without_losing_cells() {
        let cells: Vec<CellIndex> = CellIndex::base_cells().collect();
        let mut set = CellSet::default();
        for c in cells.iter().chain(&cells) {
            set.insert(*c);
        }
        assert_eq!(set.len(), cells.len());
        assert!(cells.iter().all(|c| set.contains(*c)));
        let mut back: Vec<CellIndex> = set.iter().collect();
        back.sort_unstable();
        assert_eq!(back, cells);
    }
}
